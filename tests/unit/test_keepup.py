"""The keep-up verdict: each criterion provoked on its own, and judged only where it can be."""

from __future__ import annotations

import numpy as np

from harness.analysis.keepup import judge_keep_up, output_processed_rate

ENDS = np.repeat(np.arange(1, 31) * 10_000, 20)


def verdict(processed: float | None = 10_000.0, lag_slope: float = 0.0, latency_slope: float = 0.0,
            ends: np.ndarray = ENDS, noise_ms: float = 300.0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    lag = 5_000 + lag_slope * np.arange(60) + rng.normal(0, 300, 60)
    latency = 3_000 + latency_slope * ends / 1000.0 + rng.normal(0, noise_ms, ends.size)
    return judge_keep_up(processed_rate=processed, achieved_rate=10_000.0, lag=lag, window_end=ends,
                         latency_ms=latency)


def test_an_engine_that_keeps_up_is_sustained() -> None:
    check = verdict()
    assert check.sustained is True and check.failed == [] and check.skipped == []
    assert abs(check.lag_slope_per_s) < 100 and abs(check.latency_slope_ms_per_s) < 20


def test_processing_below_99_percent_of_the_achieved_rate_fails() -> None:
    check = verdict(processed=9_800.0)
    assert check.sustained is False and check.processed_ratio == 0.98
    assert check.failed[0].startswith("processed: 9,800/s is 98.0% of the achieved 10,000/s")


def test_growing_input_lag_fails() -> None:
    check = verdict(lag_slope=500.0)  # 5 % of the rate accumulates every second
    assert check.sustained is False and check.failed[0].startswith("input lag: grows by 49")


def test_rising_latency_fails_but_a_flat_high_one_does_not() -> None:
    rising = verdict(latency_slope=100.0)  # 100 ms later every second: +29 s over the run
    assert rising.sustained is False and rising.failed[0].startswith("latency: grows by 100 ms per s")
    # the v1 rule (growth > max(window, 50 % of the start)) let this pass: 40 ms/s over 290 s = 11.6 s
    assert verdict(latency_slope=60.0).sustained is False


def test_a_rise_the_fit_cannot_tell_from_noise_passes_and_a_clean_one_fails_however_small() -> None:
    """The latency criterion needs the slope above the limit with 95 % confidence; no one-window floor: a clean
    rise of 100 ms/s over 30 s (3 s, below one 10 s slide) is an engine falling behind."""
    ends = np.repeat(np.arange(1, 5) * 10_000, 20)
    assert verdict(latency_slope=100.0, ends=ends, noise_ms=5_000).sustained is True
    clean = verdict(latency_slope=100.0, ends=ends, noise_ms=30)
    assert clean.sustained is False and clean.failed[0].startswith("latency: grows by 100 ms per s (at least 9")


def test_what_cannot_be_judged_is_named() -> None:
    check = judge_keep_up(processed_rate=None, achieved_rate=1_000.0, lag=np.full(10, np.nan),
                          window_end=np.array([10_000, 20_000]), latency_ms=np.array([1.0, 2.0]))
    assert check.sustained is None and len(check.skipped) == 3 and check.windows == 2 and check.judged == 0


def engine_without_input_counts(capacity: float, rate: float = 3_300.0, windows: int = 12):
    """An engine of known ``capacity`` offered ``rate`` (5 s windows from 20 s on), reporting no input rows: each
    window's answers become visible when it has worked through the window's events (it starts behind by its
    latency of 2.5 s), the events per window ``rate`` × 5 s over 100 users."""
    ends = np.arange(20_000, 20_000 + windows * 5_000, 5_000)
    per_window = rate * 5
    seconds_per_window = per_window / min(capacity, rate)
    done = ends[0] + 2_500.0 + np.arange(windows) * seconds_per_window * 1000.0
    users = 100
    window_end = np.repeat(ends, users)
    visible = np.repeat(done, users)
    count = np.full(window_end.size, per_window / users)
    output = output_processed_rate(window_end, visible, count, per_event=1)
    return judge_keep_up(processed_rate=None, achieved_rate=rate, lag=np.full(60, np.nan), window_end=window_end,
                         latency_ms=visible - window_end, output_rate=output)


def test_an_engine_without_input_counts_is_judged_by_its_output_and_latency_trend() -> None:
    """The case that was judged sustained: 1.1x its capacity (3,000/s offered 3,300/s), latency growing 100 ms
    per s, 5.5 s over the measured windows (once below the one-window floor), processed 0.91 from the output
    (once computed and ignored)."""
    behind = engine_without_input_counts(capacity=3_000)
    assert behind.sustained is False and behind.judged == 2 and behind.processed_source == "output windows"
    assert behind.processed_ratio is not None and abs(behind.processed_ratio - 3_000 / 3_300) < 0.005
    assert behind.failed[0].startswith("processed (from output: no input-row counts): windows completed at 3,000 "
                                       "events/s, 90.9% of the achieved 3,300/s")
    assert behind.failed[1].startswith("latency: grows by 100 ms per s")
    assert behind.skipped == ["input lag: the engine reported no input-row counts"]
    keeping_up = engine_without_input_counts(capacity=4_125)  # offered 0.8x its capacity
    assert keeping_up.sustained is True and keeping_up.judged == 2
    assert keeping_up.processed_ratio is not None and abs(keeping_up.processed_ratio - 1.0) < 0.005


def test_an_engine_still_working_off_its_start_up_backlog_gets_a_warning() -> None:
    import dataclasses

    from tests.unit.test_results import make_result

    from harness.analysis import verdicts

    summary = make_result("spark").summary
    settled = dataclasses.replace(summary.sustained, processed_ratio=1.01, latency_slope_ms_per_s=-3.0)
    catching_up = dataclasses.replace(summary.sustained, processed_ratio=1.31, latency_slope_ms_per_s=-502.0)
    assert not any("catching up" in w for w in verdicts.repetition_warnings(
        dataclasses.replace(summary, sustained=settled)))
    [warning] = [w for w in verdicts.repetition_warnings(dataclasses.replace(summary, sustained=catching_up))
                 if "catching up" in w]
    assert "processed 131% of the achieved rate, latency falling 502 ms per s" in warning


def test_a_repetition_that_shared_the_cpus_says_so() -> None:
    import dataclasses

    from tests.unit.test_results import make_result

    from harness.analysis import verdicts
    from harness.results import ResourceStats
    from harness.analysis.resources import OTHERS

    summary = make_result("spark").summary

    def shared(mean: float) -> list[str]:
        stats = ResourceStats(cpu_mean_percent=mean, cpu_max_percent=mean + 40, rss_max_bytes=None, samples=30)
        with_others = dataclasses.replace(summary, resources={**summary.resources, OTHERS: stats})
        return [w for w in verdicts.repetition_warnings(with_others) if "outside the run" in w]

    assert shared(verdicts.SHARED_CPU_PERCENT - 1) == []
    [warning] = shared(80.0)
    assert "used 0.80 cores on average (up to 1.20)" in warning
