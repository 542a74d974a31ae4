"""The oracle: hand-computed expected counts, and every diff category provoked on purpose."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from harness import workload
from harness.loadgen.events import EventPlan, iter_chunks
from harness.analysis.oracle import Expected, expected_counts, expected_for_run
from harness.scenario import parse_scenario

TUMBLING = workload.Windows(size_ms=10, slide_ms=10, watermark_delay_ms=2)
HOPPING = workload.Windows(size_ms=10, slide_ms=5, watermark_delay_ms=2)


def pairs(expected: Expected) -> dict[tuple[str, int, int], tuple[int, int]]:
    rows = expected.pairs.itertuples(index=False)
    return {(r.user, r.window_start, r.window_end): (r.count_min, r.count_max) for r in rows}


def tumbling_case() -> Expected:
    #           user  ts   late
    events = [(0, 0, False), (0, 9, False), (1, 5, False), (0, 10, False), (2, 19, False), (0, 25, False),
              (1, -3, True), (0, 3, True)]
    user, ts, late = (np.array(column) for column in zip(*events))
    return expected_counts(user, ts, late, users=3, windows=TUMBLING)


# ------------------------------------------------------------------------------------------ expected counts
def test_tumbling_counts_by_hand() -> None:
    expected = tumbling_case()
    assert pairs(expected) == {
        ("u00000", 0, 10): (2, 3),  # the late event at ts 3 may or may not count
        ("u00001", 0, 10): (1, 1),
        ("u00000", 10, 20): (1, 1),
        ("u00002", 10, 20): (1, 1),
        ("u00000", 20, 30): (1, 1),
        ("u00001", -10, 0): (0, 1),  # only a late event: may be absent
    }
    assert (expected.events, expected.late_events, expected.required) == (8, 2, 5)


def test_hopping_counts_by_hand() -> None:
    expected = expected_counts(np.array([0, 0, 1]), np.array([3, 7, 12]), np.zeros(3, bool), users=2,
                               windows=HOPPING)
    assert pairs(expected) == {
        ("u00000", -5, 5): (1, 1),
        ("u00000", 0, 10): (2, 2),
        ("u00000", 5, 15): (1, 1),
        ("u00001", 5, 15): (1, 1),
        ("u00001", 10, 20): (1, 1),
    }
    assert expected.windows_per_event == 2


def test_event_times_before_the_epoch_use_floor_windows() -> None:
    expected = expected_counts(np.array([0]), np.array([-1]), np.zeros(1, bool), users=1, windows=HOPPING)
    assert pairs(expected) == {("u00000", -10, 0): (1, 1), ("u00000", -5, 5): (1, 1)}


@pytest.mark.parametrize("windows", [TUMBLING, HOPPING, workload.Windows(60, 15, 0)])
@pytest.mark.parametrize("dense", [True, False])
def test_matches_a_per_event_count_with_windows_starts_of(
    windows: workload.Windows, dense: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not dense:
        monkeypatch.setattr("harness.analysis.oracle.DENSE_LIMIT", 0)  # force the sort-based path
    rng = np.random.default_rng(3)
    user, ts, late = rng.integers(0, 7, 2000), rng.integers(-500, 500, 2000), rng.random(2000) < 0.1
    brute: dict[tuple[str, int, int], list[int]] = {}
    for u, t, lt in zip(user.tolist(), ts.tolist(), late.tolist()):
        for start in windows.starts_of(t):
            entry = brute.setdefault((workload.user_id(u, 7), start, start + windows.size_ms), [0, 0])
            entry[1] += 1
            entry[0] += 0 if lt else 1
    assert pairs(expected_counts(user, ts, late, users=7, windows=windows)) == {k: tuple(v) for k, v in brute.items()}


def test_no_events_give_an_empty_table() -> None:
    expected = expected_counts(np.zeros(0), np.zeros(0), np.zeros(0, bool), users=3, windows=TUMBLING)
    assert expected.pairs.empty and expected.required == 0


def test_expected_for_run_regenerates_the_generators_events() -> None:
    scenario = parse_scenario(
        {"name": "t", "duration": "10s", "load": {"rate": "5k", "distribution": "zipf", "users": 100,
                                                   "late": {"fraction": 0.02, "by": "20s"},
                                                   "disorder": {"fraction": 0.1, "max_delay": "1900ms"}},
         "window": {"size": "2s", "slide": "500ms"}, "engines": ["x"]},
        check_engines=False,
    )
    start = 1_764_072_000_000
    expected = expected_for_run(scenario, start)
    plan = EventPlan.from_scenario(scenario, start)
    late = sum(int(batch.late.sum()) for batch in iter_chunks(plan))
    assert expected.events == plan.total_events == 50_000
    assert expected.late_events == late > 0
    # every event is in size/slide = 4 windows
    assert expected.pairs["count_max"].sum() == 4 * 50_000
    assert (expected.pairs["count_max"] - expected.pairs["count_min"]).sum() == 4 * late


# --------------------------------------------------------------------------------------------- max ts, shift
def test_max_ts_ignores_late_events_and_covers_hopping_windows() -> None:
    hopping = workload.Windows(10_000, 5_000, 2_000)
    user, ts, late = np.array([0, 0, 1, 0, 1]), np.array([1_000, 7_000, 3_000, 8_000, 9_000]), np.array(
        [False, False, False, True, True])
    got = {(r.user, r.window_start): r.max_ts for r in expected_counts(user, ts, late, users=2,
                                                                       windows=hopping).pairs.itertuples()}
    assert got[("u00000", -5_000)] == 1_000
    assert got[("u00000", 0)] == 7_000 and got[("u00000", 5_000)] == 7_000  # the late event at 8 000 is ignored
    assert got[("u00001", -5_000)] == 3_000 and got[("u00001", 0)] == 3_000
    assert np.isnan(got[("u00001", 5_000)])  # only a late event: no on-time ts


def test_expected_at_zero_shifted_equals_expected_at_the_start() -> None:
    scenario = parse_scenario({
        "name": "shift", "duration": "20s", "warmup": "5s",
        "load": {"rate": "2k", "users": 50, "disorder": {"fraction": 0.3, "max_delay": "900ms"},
                 "late": {"fraction": 0.01, "by": "15s"}},
        "window": {"size": "4s", "slide": "2s", "watermark_delay": "1s"}, "engines": ["spark"],
    })
    start = 1_764_072_000_000  # a multiple of the slide, as the generator aligns it
    direct = expected_for_run(scenario, start)
    shifted = expected_for_run(scenario, 0).shifted(start)
    pd.testing.assert_frame_equal(direct.pairs, shifted.pairs)
    assert (direct.events, direct.late_events) == (shifted.events, shifted.late_events)
