"""Capacity directories for the report and compare tests, written by the real code (capacity.json of a finished
search, then capacity.md and capacity.png rendered from it, as ``bench capacity`` does) with searches given as
(capacity, bracket) pairs instead of running trials."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from harness.capacity.results import CapacityOutcome, EngineSearch, write_capacity_json
from harness.capacity.search import SearchResult, TrialRecord
from harness.report.capacity import write_capacity_files
from harness.scenario import CapacityConfig, parse_scenario

FINGERPRINT = {"cpu_model": "AMD EPYC (test)", "cpu_logical": 2, "cpu_physical": 1, "versions": {"kafka": "3.9.0"}}


def capacity_scenario(window: str = "5s", **capacity: Any):
    return parse_scenario({
        "name": "cap", "duration": "40s", "warmup": "10s", "load": {"rate": "2k", "users": 100},
        "window": {"size": window, "watermark_delay": "2s"}, "engines": ["calibration", "spark"],
        "capacity": {"trial": {"duration": "25s", "warmup": "5s"}, **capacity},
    })


def found(capacity: float | None, high: float | None, *, ended: str = "precision reached") -> SearchResult:
    """A search that passed at ``capacity`` (and at half of it) and failed at ``high`` (None: never failed)."""
    trials = []
    if capacity is not None:
        for rate in (capacity / 2, capacity):
            trials.append(TrialRecord(rate, "pass", "", {"p50_ms": 2000.0 + rate / 100, "p99_ms": 2500.0 + rate / 50,
                                                         "processed_rate": rate, "cpu_mean_percent": rate / 100,
                                                         "rss_max_bytes": 300 * 2**20}))
    if high is not None:
        trials.append(TrialRecord(high, "fail", "not sustained: input lag grows",
                                  {"p50_ms": 30_000.0, "p99_ms": 60_000.0, "processed_rate": high * 0.9}))
    return SearchResult(capacity, (capacity, high), trials, ended)


def write_capacity_dir(path: Path, searches: dict[str, list[SearchResult]], monkeypatch: pytest.MonkeyPatch, *,
                       status: str = "complete", scenario=None, fingerprint: dict | None = None,
                       plot: bool = False) -> Path:
    """A capacity directory at ``path`` with these searches per engine (in rounds, as the runner runs them);
    capacity.png is only drawn with ``plot`` (matplotlib takes seconds)."""
    monkeypatch.setattr("harness.results.environment_fingerprint", lambda **_: dict(fingerprint or FINGERPRINT))
    if not plot:
        monkeypatch.setattr("harness.report.capacity.plot_capacity", lambda data, target: target)
    rounds = max(len(v) for v in searches.values())
    flat = [EngineSearch(engine, runs[number], 100.0 + number, calibration=engine == "calibration", search=number + 1)
            for number in range(rounds) for engine, runs in searches.items() if number < len(runs)]
    scenario = scenario or capacity_scenario(repetitions=rounds)
    path.mkdir(parents=True)
    outcome = CapacityOutcome(path, scenario.capacity or CapacityConfig(), flat, status)
    write_capacity_json(outcome, scenario, dt.datetime(2026, 11, 25, tzinfo=dt.timezone.utc))
    write_capacity_files(path)
    return path
