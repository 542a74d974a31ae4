"""Which windows are measured: one rule (``workload.is_measured``) and its count for a scenario."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from harness.workload import Windows, is_measured, measured_window_count

START = 1_764_072_000_000  # a multiple of every slide used here


def test_a_window_closed_only_by_the_end_of_run_records_is_not_measured() -> None:
    # load 0..40 s after START, warm-up 10 s, D = 2 s: the window ending at 38 s needs an event at >= 40 s
    ends = START + np.array([10_000, 10_001, 37_999, 38_000])
    measured = is_measured(ends, warmup_end_ms=START + 10_000, load_end_ms=START + 40_000, watermark_delay_ms=2_000)
    assert measured.tolist() == [False, True, True, False]


def test_count_for_tumbling_and_hopping_windows() -> None:
    # smoke: 5 s windows, 40 s load, 10 s warm-up, D = 2 s: ends 15, 20, 25, 30, 35 s
    assert measured_window_count(Windows(5_000, 5_000, 2_000), warmup_ms=10_000, duration_ms=40_000) == 5
    # the same with 10 s windows: ends 20 and 30 s; 40 s + D is past the load
    assert measured_window_count(Windows(10_000, 10_000, 2_000), warmup_ms=10_000, duration_ms=40_000) == 2
    # sliding.yaml: 10 s windows sliding by 2 s, 90 s load, 20 s warm-up: ends 22 .. 86 s; 88 s + D == 90 s is not
    assert measured_window_count(Windows(10_000, 2_000, 2_000), warmup_ms=20_000, duration_ms=90_000) == 33


def test_count_when_nothing_is_measured() -> None:
    assert measured_window_count(Windows(10_000, 10_000, 2_000), warmup_ms=0, duration_ms=12_000) == 0
    assert measured_window_count(Windows(10_000, 10_000, 2_000), warmup_ms=0, duration_ms=12_001) == 1


@pytest.mark.parametrize(
    "size, slide, delay",
    [(1_000, 1_000, 0), (1_000, 1_000, 1_000), (3_000, 1_000, 500), (4_000, 2_000, 2_000), (2_000, 500, 1_250)],
)
def test_count_agrees_with_the_rule_applied_to_every_window(size: int, slide: int, delay: int) -> None:
    windows = Windows(size, slide, delay)
    for warmup, duration in itertools.product(range(0, 6_000, 250), range(250, 12_000, 250)):
        if warmup >= duration:
            continue
        ends = START + np.arange(slide, duration + size + slide, slide)  # every window holding a load event
        rule = is_measured(ends, warmup_end_ms=START + warmup, load_end_ms=START + duration,
                           watermark_delay_ms=delay)
        assert measured_window_count(windows, warmup_ms=warmup, duration_ms=duration) == int(rule.sum()), (
            warmup, duration
        )
