"""The input path's own delay (issue 11 item 9): input topic append time − intended send time, per repetition,
in summary.json and in the report beside the publish delay."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.analysis.input_delay import InputAppendTimes, summarize_input_delay
from harness.loadgen.events import EventPlan, iter_chunks
from harness.loadgen.schedule import RateSchedule
from harness.report.document import render_report
from harness.results import create_run_dir, load_run, write_repetition, write_run_info
from tests.unit.test_results import FINGERPRINT, T0, make_result, make_scenario

SCENARIO = make_scenario()
"""60 s at 200 events/s, 10 s warm-up: event i is intended at 5·i ms, events 2,000 .. 11,999 are measured."""
SCHEDULE = RateSchedule.from_load(SCENARIO.load, SCENARIO.duration)
TOTAL = SCHEDULE.total_events


def read_back(delay_ms: dict[int, int], *, default_ms: int = 3, flush: int = 4) -> InputAppendTimes:
    """Every load event appended ``default_ms`` after its intended millisecond (``delay_ms`` overrides by seq),
    then ``flush`` end-of-run records appended an hour late; in a shuffled order, as partitions interleave."""
    seq = np.arange(TOTAL + flush, dtype=np.int64)
    intended = T0 + np.floor(SCHEDULE.offsets_of(np.minimum(seq, TOTAL - 1))).astype(np.int64)
    delays = np.full(seq.size, default_ms, dtype=np.int64)
    for s, d in delay_ms.items():
        delays[s] = d
    delays[TOTAL:] = 3_600_000
    order = np.random.default_rng(3).permutation(seq.size)
    return InputAppendTimes(seq[order], (intended + delays)[order], not_append_time=2)


def test_offsets_of_any_order_equal_the_slices_intended_times() -> None:
    plan = EventPlan.from_scenario(SCENARIO, T0)
    batches = list(iter_chunks(plan))
    seq = np.concatenate([b.seq for b in batches])
    intended = np.concatenate([b.intended_ms for b in batches])
    order = np.random.default_rng(1).permutation(seq.size)
    np.testing.assert_allclose(T0 + SCHEDULE.offsets_of(seq[order]), intended[order], rtol=0, atol=1e-6)


def test_measured_load_events_only_with_percentiles_of_their_delay() -> None:
    # seq 100 is in the warm-up (10 s late), seq 11_000 measured (250 ms late), seq 5_000 appended 1 ms early
    summary = summarize_input_delay(read_back({100: 10_000, 11_000: 250, 5_000: -1}), SCHEDULE,
                                    load_start_ms=T0, warmup_ms=SCENARIO.warmup)
    assert summary.events == TOTAL - 2_000 - 1
    assert summary.negative == 1
    assert summary.not_append_time == 2
    assert summary.delay_ms["p50"] == pytest.approx(3.0, rel=1e-3)
    assert summary.delay_ms["p99"] == pytest.approx(3.0, rel=1e-3)
    assert summary.delay_ms["max"] == pytest.approx(250.0, rel=1e-3)


def test_a_delay_of_zero_whole_milliseconds_is_reported_as_about_zero() -> None:
    summary = summarize_input_delay(read_back({}, default_ms=0), SCHEDULE, load_start_ms=T0, warmup_ms=SCENARIO.warmup)
    assert summary.events == TOTAL - 2_000
    assert summary.delay_ms["max"] < 0.01


def test_summary_json_carries_it_and_the_report_shows_it_per_repetition(tmp_path: Path) -> None:
    run_dir = create_run_dir(tmp_path, "unit")
    write_run_info(run_dir, SCENARIO, FINGERPRINT)
    write_repetition(run_dir, make_result("spark", input_append=read_back({11_000: 250})))
    write_repetition(run_dir, make_result("flink"))  # e.g. interrupted before the read-back: not measured
    stored = json.loads((run_dir / "spark" / "rep-1" / "summary.json").read_text())["input_delay"]
    assert stored["events"] == TOTAL - 2_000 and stored["delay_ms"]["max"] == pytest.approx(250.0, rel=1e-3)
    run = load_run(run_dir)
    assert run.engines["spark"][0].summary.input_delay.delay_ms["p50"] == pytest.approx(3.0, rel=1e-3)
    assert run.engines["flink"][0].summary.input_delay is None
    text = render_report(run)
    assert "### Input path" in text
    # publish delay of make_generator (0.2 / 1.5 / 5 ms) beside the input append delay (3 / 3 / 250 ms)
    assert "| spark | 1 | 0.20 ms | 1.50 ms | 5.00 ms | 3.00 ms | 3.00 ms | 250 ms | 0 |" in text
    assert "| flink |" not in text.split("### Input path")[1].split("###")[0]


def test_runs_without_it_have_no_input_path_table(tmp_path: Path) -> None:
    run_dir = create_run_dir(tmp_path, "unit")
    write_run_info(run_dir, SCENARIO, FINGERPRINT)
    write_repetition(run_dir, make_result("spark"))
    assert "### Input path" not in render_report(load_run(run_dir))
