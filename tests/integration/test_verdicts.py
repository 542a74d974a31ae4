"""Every verdict proved with an engine whose truth is known, end to end through the real broker and collector.

The engine is the calibration job with its knobs switched on (tests/engines.py): a known capacity, transactional
output committed a known delay after it was written, malformed records beside genuine ones, wrong answers. All
but the capacity runs (two rates of their own) read the session's shared known-truth run
(tests/integration/known_truth_run.py).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.run.collector import VISIBILITY_ERROR_MS
from harness.results import RepetitionSummary, load_run
from harness.run.runner import run_scenario
from harness.scenario import parse_scenario
from tests.integration.known_truth_run import COMMIT_DELAY_MS, KnownTruthRun

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ENGINE = "tests.engines:KnownTruthEngine"


def run(tmp_path: Path, bootstrap: str, engines: list[dict[str, Any]], *, rate: str = "2k",
        duration: str = "26s", warmup: str = "6s", drain_timeout: str = "2m") -> Path:
    """One run of ``engines`` (one after another) on the session's shared broker."""
    scenario = parse_scenario({
        "name": "verdict", "duration": duration, "warmup": warmup, "drain_timeout": drain_timeout, "seed": 3,
        "load": {"rate": rate, "users": 100, "disorder": {"fraction": 0.1, "max_delay": "500ms"}},
        "window": {"size": "4s", "watermark_delay": "1s"},
        "kafka": {"mode": "external", "bootstrap": bootstrap, "partitions": 2}, "engines": engines,
    })
    outcome = run_scenario(scenario, tmp_path / "results")
    assert outcome.status == "complete", outcome.failures
    return outcome.run_dir


def summary_of(run_dir: Path, label: str) -> RepetitionSummary:
    return load_run(run_dir).engines[label][0].summary


def assert_valid_but_for_the_generators_timing(summary: RepetitionSummary) -> None:
    """Every invalid reason is the generator's own timing verdict (a busy 2-core machine can delay its sends
    while the broker and engine run); anything engine- or collector-side fails the test."""
    others = [r for r in summary.invalid_reasons if not r.startswith("generator could not drive the load")]
    assert others == [], summary.invalid_reasons
    if summary.invalid_reasons:
        warnings.warn(f"{summary.engine}: {summary.invalid_reasons[0]}", stacklevel=2)


def test_known_capacity_is_sustained_at_80_percent_and_not_at_110_percent(kafka_broker: str, tmp_path: Path) -> None:
    """Two engines of capacity 4,000/s at 3,200/s and 4,400/s: one reporting its input rows, one reporting none
    (as a plug-in engine without such a metric: judged from its output and its latency trend)."""
    capacity = 4_000
    engines = [{"engine": ENGINE, "label": "capped", "settings": {"capacity": capacity}},
               {"engine": ENGINE, "label": "silent", "settings": {"capacity": capacity, "report_input_rows": False}}]
    below_run = run(tmp_path / "a", kafka_broker, engines, rate="3200")
    above_run = run(tmp_path / "b", kafka_broker, engines, rate="4400")

    below = summary_of(below_run, "capped")
    assert_valid_but_for_the_generators_timing(below)
    assert below.sustained.sustained is True, below.sustained
    assert below.correctness is not None and below.correctness.correct
    above = summary_of(above_run, "capped")
    assert_valid_but_for_the_generators_timing(above)
    assert above.sustained.sustained is False
    failed = " ".join(above.sustained.failed)
    assert "processed:" in failed and "input lag:" in failed
    # the engine consumed at its capacity, not at the offered rate
    assert above.throughput.processed_rate == pytest.approx(capacity, rel=0.05)
    assert above.correctness is not None and above.correctness.correct  # slow, but every answer right
    assert any(w.startswith("not sustained at this rate: processed:") for w in above.warnings)

    silent_below, silent_above = summary_of(below_run, "silent"), summary_of(above_run, "silent")
    for summary in (silent_below, silent_above):
        assert_valid_but_for_the_generators_timing(summary)
        assert summary.throughput.processed_rate_engine is None  # no input rows: judged without them
        assert summary.sustained.judged == 2 and summary.sustained.processed_source == "output windows"
        assert summary.sustained.skipped == ["input lag: the engine reported no input-row counts"]
        assert summary.correctness is not None and summary.correctness.correct
    assert silent_below.sustained.sustained is True, silent_below.sustained
    assert silent_above.sustained.sustained is False, silent_above.sustained
    assert silent_above.sustained.processed_ratio == pytest.approx(capacity / 4_400, abs=0.04)
    assert "processed (from output: no input-row counts)" in " ".join(silent_above.sustained.failed)


def test_transactional_output_is_timed_at_its_commit(known_truth: KnownTruthRun) -> None:
    """The transactional engine of the shared known-truth run beside the calibration engine's plain output."""
    run_dir = known_truth.run_dir
    txn, plain = summary_of(run_dir, "txn"), summary_of(run_dir, "calibration")
    assert txn.read_committed and not plain.read_committed
    assert txn.correctness is not None and txn.correctness.correct and txn.correctness.duplicated == 0
    # the results were appended about when plain output is, but readable only 2 s later, at the commit
    assert txn.result_latency.p50_ms > plain.result_latency.p50_ms + COMMIT_DELAY_MS - 500
    rep = run_dir / "txn" / "rep-1"
    commits = [json.loads(line) for line in (rep / "work" / "python-count-transactions.jsonl").read_text().splitlines()]
    commit_by_window = {c["window_start"]: c["commit_ms"] for c in commits}
    with gzip.open(rep / "pairs.csv.gz", "rb") as handle:
        pairs = pd.read_csv(io.BytesIO(handle.read()))
    answered = pairs[pairs["visible_ms"].notna()]
    error = (answered["visible_ms"] - answered["window_start"].map(commit_by_window)).groupby(
        answered["window_start"]).max()  # per window (one transaction): the latest record's error
    low, high = VISIBILITY_ERROR_MS
    assert error.notna().all() and len(error) >= 5
    # the receive time follows the commit within the stated bound (the median window); on a 2-core machine shared
    # with the broker, generator and engine the collector's thread (or the job's, which stamps commit_ms after the
    # commit returned) is sometimes scheduled late: seen up to 234 ms and down to -20 ms for single windows while
    # other runs loaded the CPUs, so single windows are only held to a coarse bound
    assert low <= error.median() <= high, error.describe()
    assert error.between(-100, 500).all(), error.describe()


def test_malformed_records_are_counted_by_kind_and_the_genuine_ones_judged(known_truth: KnownTruthRun) -> None:
    s = summary_of(known_truth.run_dir, "garbage")
    assert_valid_but_for_the_generators_timing(s)
    assert s.correctness is not None and s.correctness.correct, s.correctness
    assert s.collector["bad_records"] > 0 and not s.collector.get("failed")
    assert sum(s.collector["bad_by_kind"].values()) == s.collector["bad_records"]
    assert s.collector["bad_samples"]
    assert any("were not valid result records" in w for w in s.warnings)


def test_a_wrong_engine_is_judged_wrong_without_waiting_out_the_drain(known_truth: KnownTruthRun) -> None:
    """The wrong engine runs last in the shared run, whose drain deadline is 5 min."""
    run_dir = known_truth.run_dir
    s = summary_of(run_dir, "liar")
    assert s.correctness is not None and not s.correctness.correct
    assert s.correctness.wrong > 0 and s.correctness.missing == 0
    assert any(w.startswith("incorrect:") for w in s.warnings)
    # the answer was settled: the run ended long before the 5 min drain deadline
    finished = dt.datetime.fromisoformat(load_run(run_dir).status["finished_utc"].replace("Z", "+00:00"))
    assert finished.timestamp() * 1000 - s.timeline.load_end_ms < 120_000
