"""Result files: building a repetition from records, writing without overwriting, reading back."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import histograms
from harness.analysis.repetition import RepetitionInputs, analyse
from harness.errors import HarnessError
from harness.analysis.input_delay import InputAppendTimes
from harness.loadgen import GeneratorResult
from harness.loadgen.generator import SecondStats
from harness.analysis.oracle import expected_counts
from harness.results import (
    FORMAT_VERSION,
    RepetitionResult,
    Timeline,
    create_run_dir,
    load_run,
    write_repetition,
    write_run_info,
    write_run_status,
)
from harness.analysis.series import SERIES_COLUMNS
from harness.scenario import Scenario, parse_scenario
from harness.workload import Windows

T0 = 1_764_072_000_000
FINGERPRINT = {
    "hostname": "bench-host",
    "cpu_model": "Test CPU",
    "cpu_logical": 2,
    "memory_bytes": 8 * 2**30,
    "python": "3.11.7",
    "java": 'openjdk version "17.0.15"',
    "versions": {"kafka": "4.1.1", "spark": "4.2.0", "flink": "2.2.1"},
    "git_commit": "0123456789abcdef",
    "git_dirty": False,
    "clock": "one host clock",
}


def make_scenario(repetitions: int = 1, engines: tuple[str, ...] = ("spark", "flink")) -> Scenario:
    return parse_scenario(
        {
            "name": "unit",
            "duration": "60s",
            "warmup": "10s",
            "repetitions": repetitions,
            "load": {"rate": 200, "users": 20},
            "engines": list(engines),
        },
        check_engines=False,
    )


def make_result(
    engine: str,
    repetition: int = 1,
    *,
    scenario: Scenario | None = None,
    latency_ms: float = 2500.0,
    jitter_ms: float = 200.0,
    growth_ms_per_window: float = 0.0,
    seed: int = 1,
    drop_pairs: int = 0,
    fairness: dict[str, str] | None = None,
    cpu: float = 80.0,
    status: str = "ok",
    error: str | None = None,
    input_append: InputAppendTimes | None = None,
) -> RepetitionResult:
    """A synthetic repetition: exact answers visible ``latency_ms`` (+ noise, + growth) after window end;
    ``input_append``: the input topic as read back (``summary.input_delay``), none by default."""
    scenario = scenario or make_scenario()
    rng = np.random.default_rng(seed)
    windows = Windows(10_000, 10_000, 2_000)
    n = 12_000
    ts = np.sort(T0 + rng.integers(0, 60_000, n))
    user = rng.integers(0, 20, n)
    late = np.zeros(n, dtype=bool)
    expected = expected_counts(user, ts, late, users=20, windows=windows)
    pairs = expected.pairs.iloc[drop_pairs:] if drop_pairs else expected.pairs
    index = (pairs["window_end"].to_numpy() - T0) // 10_000
    append = (
        pairs["window_end"].to_numpy()
        + latency_ms
        + growth_ms_per_window * index
        + rng.normal(0, jitter_ms, len(pairs)).round()
    ).astype(np.int64)
    records = pd.DataFrame(
        {
            "user": pairs["user"].to_numpy(),
            "window_start": pairs["window_start"].to_numpy(),
            "window_end": pairs["window_end"].to_numpy(),
            "count": pairs["count_min"].to_numpy(),
            "append_ms": append,
            "partition": 0,
            "offset": np.arange(len(pairs)),
        }
    )
    generator = make_generator(events=n)
    resources = pd.DataFrame(
        [
            (T0 + s * 1000, component, value, rss, 1)
            for s in range(0, 62)
            for component, value, rss in ((engine, cpu + (s % 3), 700 * 2**20), ("broker", 30.0, 400 * 2**20))
        ],
        columns=["t_ms", "component", "cpu_percent", "rss_bytes", "processes"],
    )
    return analyse(RepetitionInputs(
        engine=engine,
        repetition=repetition,
        scenario=scenario,
        timeline=timeline_for(scenario, T0),
        records=records if status != "failed" else pd.DataFrame(),
        expected=expected,
        generator=generator,
        engine_metrics={"batches": 12},
        resources=resources,
        fairness=fairness or {"output_mode": "append", "parallelism": "2"},
        status=status,  # type: ignore[arg-type]
        error=error,
        log_tail=["line 1", "line 2"] if error else (),
        input_append=input_append,
    ))


def timeline_for(scenario: Scenario, start_ms: int) -> Timeline:
    return Timeline.of(start_ms, warmup_ms=scenario.warmup, duration_ms=scenario.duration)


def make_generator(*, events: int, valid: bool = True, reason: str | None = None) -> GeneratorResult:
    """A generator that drove 200 events/s for 60 s (10 s warm-up)."""
    delays = histograms.record(np.array([200.0, 500.0, 1_500.0]), highest=histograms.DELAY_HIGHEST_US).histogram
    return GeneratorResult(
        start_epoch_ms=T0, duration_ms=60_000, warmup_ms=10_000, backend="confluent", workers=1, partitions=1,
        linger_ms=5, nice=-10, events_planned=events, events_sent=events, late_events=0, flush_ts=T0 + 73_000,
        target_rate=200.0, achieved_rate=200.0,
        publish_delay_ms={"p50": 0.2, "p90": 0.5, "p99": 1.5, "p99_9": 3.0, "max": 5.0},
        publish_delay_histogram=histograms.encode(delays),
        seconds=[SecondStats(second=s, target=200, achieved=200, delay_max_ms=1.0) for s in range(60)],
        valid=valid, reason=reason,
    )


def test_run_dir_is_created_exclusively(tmp_path: Path) -> None:
    now = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.timezone.utc)
    first = create_run_dir(tmp_path, "smoke", now=now)
    second = create_run_dir(tmp_path, "smoke", now=now)
    third = create_run_dir(tmp_path, "smoke", now=now)
    assert [p.name for p in (first, second, third)] == [
        "20261125T120000Z-smoke",
        "20261125T120000Z-smoke-2",
        "20261125T120000Z-smoke-3",
    ]


def test_build_measures_only_windows_inside_the_measured_period() -> None:
    result = make_result("spark")
    pairs = result.pairs
    assert pairs is not None
    s = result.summary
    # windows end at T0+10s .. T0+60s: warm-up end T0+10s excluded; T0+60s (= load end) excluded too, since only
    # the end-of-run records move the watermark past 60 s + D: the flush closes that window, not the load
    measured = pairs[(pairs["window_end"] > T0 + 10_000) & (pairs["window_end"] + 2_000 < T0 + 60_000)]
    assert s.result_latency.pairs == len(measured)
    assert s.correctness is not None and s.correctness.correct
    assert s.valid and s.status == "ok"
    assert 1800 < s.result_latency.p50_ms < 3200
    assert s.event_time_latency.p50_ms > s.result_latency.p50_ms  # max ts lies before window end
    assert s.throughput.processed_rate_source == "output"
    assert s.sustained.sustained is True
    assert s.resources["spark"].cpu_max_percent == 82.0


def test_missing_pairs_make_the_result_incorrect_and_warn() -> None:
    s = make_result("spark", drop_pairs=3).summary
    assert s.correctness is not None
    assert (s.correctness.missing, s.correctness.correct) == (3, False)
    assert any(w.startswith("incorrect: 3 missing") for w in s.warnings)


def test_failed_engine_is_recorded_as_invalid_with_its_error() -> None:
    s = make_result("flink", status="failed", error="job not RUNNING within 60 s").summary
    assert s.status == "failed" and not s.valid
    assert s.invalid_reasons[0] == "engine failed: job not RUNNING within 60 s"
    assert s.correctness is None and s.log_tail == ["line 1", "line 2"]


def test_generator_that_fell_behind_makes_the_repetition_invalid() -> None:
    scenario = make_scenario()
    bad = make_generator(events=12_000, valid=False,
                         reason="generator could not drive the load: achieved 150/s < 99% of target 200/s")
    rebuilt = analyse(RepetitionInputs(engine="spark", repetition=1, scenario=scenario,
                                       timeline=timeline_for(scenario, T0), records=pd.DataFrame(), expected=None,
                                       generator=bad))
    assert not rebuilt.summary.valid
    assert rebuilt.summary.invalid_reasons[0].startswith("generator could not drive the load")


def test_write_then_load_round_trips_and_never_overwrites(tmp_path: Path) -> None:
    run_dir = create_run_dir(tmp_path, "unit")
    write_run_info(run_dir, make_scenario(), FINGERPRINT)
    result = make_result("spark")
    rep_dir = write_repetition(run_dir, result)
    write_run_status(run_dir, "complete")
    assert sorted(p.name for p in rep_dir.iterdir()) == [
        "engine-metrics.json",
        "event-time-latency.hdr",
        "generator.json",
        "pairs.csv.gz",
        "resources.csv",
        "result-latency.hdr",
        "series.csv",
        "summary.json",
    ]
    assert json.loads((rep_dir / "summary.json").read_text())["format_version"] == FORMAT_VERSION
    run = load_run(run_dir)
    loaded = run.engines["spark"][0]
    assert loaded.summary == result.summary
    assert loaded.result_histogram.get_total_count() == result.summary.result_latency.pairs
    assert len(loaded.pairs()) == len(result.pairs)
    assert list(loaded.series.columns) == list(SERIES_COLUMNS)
    with pytest.raises(HarnessError, match="never overwritten"):
        write_repetition(run_dir, result)
    with pytest.raises(HarnessError, match="never overwritten"):
        write_run_status(run_dir, "interrupted")


def test_unknown_format_version_is_refused(tmp_path: Path) -> None:
    run_dir = create_run_dir(tmp_path, "unit")
    (run_dir / "run.json").write_text(json.dumps({"format_version": 99, "scenario": {}}))
    with pytest.raises(HarnessError, match="format_version 99 is not supported"):
        load_run(run_dir)
