"""Run directories for the compare, gate and history tests, written file by file in the stored format.

Each run is the frozen golden run's ``run.json`` and one of its ``summary.json`` files as templates, with the
figures the test names filled in: only what ``bench compare`` and ``bench history`` read (run.json,
run-status.json, <engine>/rep-<n>/summary.json). Building them here instead of through the harness's writers keeps
these tests about the judgement, not about how results are produced.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "report-golden" / "20261125T120000Z-unit"
_RUN = json.loads((GOLDEN / "run.json").read_text())
_SUMMARY = json.loads((GOLDEN / "spark" / "rep-1" / "summary.json").read_text())
MIB = 2**20


@dataclass(frozen=True)
class Rep:
    """One repetition's figures: result latency p50 (the other percentiles follow it), processed rate, CPU."""

    p50: float = 2500.0
    processed: float = 5000.0
    cpu: float = 80.0
    status: str = "ok"
    valid: bool = True
    correct: bool = True
    sustained: bool | None = True


def reps(*p50: float, **fields: Any) -> list[Rep]:
    """One :class:`Rep` per result latency p50 (ms), the other fields as given."""
    return [Rep(p50=value, **fields) for value in p50]


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in, nested mappings key by key."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def summary(engine: str, repetition: int, rep: Rep, load_start_ms: int) -> dict[str, Any]:
    """summary.json of one repetition with ``rep``'s figures."""
    s = copy.deepcopy(_SUMMARY)
    s.update(engine=engine, repetition=repetition, status=rep.status, valid=rep.valid)
    s["error"] = None if rep.status == "ok" else f"{engine} {rep.status}: synthetic"
    s["invalid_reasons"] = [] if rep.valid else ["generator could not drive the load (synthetic)"]
    s["timeline"] = {"load_start_ms": load_start_ms, "warmup_end_ms": load_start_ms + 10_000,
                     "load_end_ms": load_start_ms + 60_000}
    for key, offset in (("result_latency", 0.0), ("event_time_latency", 100.0)):
        v = rep.p50 + offset
        s[key].update(p50_ms=v, p90_ms=v * 1.1, p99_ms=v * 1.2, p99_9_ms=v * 1.25, max_ms=v * 1.3, mean_ms=v)
    s["throughput"].update(processed_rate=rep.processed, processed_rate_output=rep.processed)
    s["resources"] = {
        engine: {"cpu_mean_percent": rep.cpu, "cpu_max_percent": rep.cpu + 5, "rss_max_bytes": 700 * MIB,
                 "samples": 51},
        "broker": {"cpu_mean_percent": 30.0, "cpu_max_percent": 30.0, "rss_max_bytes": 400 * MIB, "samples": 51},
    }
    s["correctness"].update(correct=rep.correct, exact=120 if rep.correct else 118, missing=0 if rep.correct else 2)
    s["sustained"]["sustained"] = rep.sustained
    return s


def write_run(
    base: Path,
    engines: dict[str, list[Rep]],
    *,
    started: str = "20270101T021700Z",
    name: str = "nightly",
    status: str | None = "complete",
    scenario: dict[str, Any] | None = None,
    fingerprint: dict[str, Any] | None = None,
) -> Path:
    """A run directory ``base/<started>-<name>`` with one repetition per :class:`Rep`. The scenario lists the
    engines given and as many repetitions as the longest list; ``scenario`` and ``fingerprint`` are merged into
    the golden run's. ``status`` None writes no run-status.json (an unfinished run)."""
    run_dir = base / f"{started}-{name}"
    run_dir.mkdir(parents=True)
    resolved = merge(_RUN["scenario"], {
        "name": name,
        "repetitions": max(len(r) for r in engines.values()),
        "engines": [{"engine": e, "label": None, "settings": {}} for e in engines],
    })
    info = {"format_version": _RUN["format_version"], "scenario": merge(resolved, scenario or {}),
            "fingerprint": merge(_RUN["fingerprint"], fingerprint or {})}
    (run_dir / "run.json").write_text(json.dumps(info, indent=2))
    if status is not None:
        (run_dir / "run-status.json").write_text(json.dumps({"status": status, "message": "", "finished_utc": ""}))
    start = dt.datetime.strptime(started, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    start_ms = int(start.timestamp() * 1000)
    for e_index, (engine, engine_reps) in enumerate(engines.items()):
        for index, rep in enumerate(engine_reps, start=1):
            rep_dir = run_dir / engine / f"rep-{index}"
            rep_dir.mkdir(parents=True)
            load_start = start_ms + (e_index * len(engine_reps) + index) * 90_000
            (rep_dir / "summary.json").write_text(json.dumps(summary(engine, index, rep, load_start), indent=2))
    return run_dir
