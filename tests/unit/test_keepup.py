"""The keep-up verdict: each criterion provoked on its own, and judged only where it can be."""

from __future__ import annotations

import numpy as np

from harness.analysis.keepup import judge_keep_up

ENDS = np.repeat(np.arange(1, 31) * 10_000, 20)


def verdict(processed: float | None = 10_000.0, lag_slope: float = 0.0, latency_slope: float = 0.0,
            ends: np.ndarray = ENDS):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    lag = 5_000 + lag_slope * np.arange(60) + rng.normal(0, 300, 60)
    latency = 3_000 + latency_slope * ends / 1000.0 + rng.normal(0, 300, ends.size)
    return judge_keep_up(processed_rate=processed, achieved_rate=10_000.0, lag=lag, window_end=ends,
                         latency_ms=latency, slide_ms=10_000)


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


def test_small_rises_are_noise() -> None:
    ends = np.repeat(np.arange(1, 5) * 10_000, 20)  # 30 s of windows: +60 ms/s is below one slide in total
    assert verdict(latency_slope=60.0, ends=ends).sustained is True


def test_what_cannot_be_judged_is_named() -> None:
    check = judge_keep_up(processed_rate=None, achieved_rate=1_000.0, lag=np.full(10, np.nan),
                          window_end=np.array([10_000, 20_000]), latency_ms=np.array([1.0, 2.0]), slide_ms=10_000)
    assert check.sustained is None and len(check.skipped) == 3 and check.windows == 2


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
