"""The oracle: hand-computed expected counts, and every diff category provoked on purpose."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness import workload
from harness.loadgen.events import EventPlan, iter_chunks
from harness.oracle import Expected, diff_output, expected_counts, expected_for_run
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


def output(*rows: tuple[Any, ...], timestamps: list[int] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user", "window_start", "window_end", "count"])
    if timestamps is not None:
        frame["timestamp"] = timestamps
    return frame


EXACT = [("u00000", 0, 10, 2), ("u00001", 0, 10, 1), ("u00000", 10, 20, 1), ("u00002", 10, 20, 1),
         ("u00000", 20, 30, 1)]


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
        monkeypatch.setattr("harness.oracle.DENSE_LIMIT", 0)  # force the sort-based path
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
    assert diff_output(expected, output()).correct


def test_expected_for_run_regenerates_the_generators_events() -> None:
    scenario = parse_scenario(
        {"name": "t", "duration": "10s", "load": {"rate": "5k", "distribution": "zipf", "users": 100,
                                                   "late": {"fraction": 0.02, "by": "20s"},
                                                   "disorder": {"fraction": 0.1, "max_delay": "2s"}},
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


# ---------------------------------------------------------------------------------------------------- diff
def test_exact_output_is_correct() -> None:
    diff = diff_output(tumbling_case(), output(*EXACT))
    assert (diff.expected, diff.exact, diff.missing, diff.wrong, diff.extra, diff.duplicated) == (5, 5, 0, 0, 0, 0)
    assert diff.correct and diff.problems.empty
    assert (diff.late_made, diff.late_dropped, diff.records) == (2, 2.0, 5)


def test_late_events_may_be_counted() -> None:
    counted = [("u00000", 0, 10, 3), *EXACT[1:], ("u00001", -10, 0, 1)]
    diff = diff_output(tumbling_case(), output(*counted))
    assert diff.correct and diff.exact == 5 and diff.late_dropped == 0.0


def test_missing_pair() -> None:
    diff = diff_output(tumbling_case(), output(*EXACT[:3], EXACT[4]))
    assert (diff.missing, diff.exact, diff.correct) == (1, 4, False)
    row = diff.problems.iloc[0]
    assert (row["kind"], row["user"], row["window_start"], row["difference"]) == ("missing", "u00002", 10, -1)


def test_wrong_counts_carry_signed_differences_to_the_allowed_range() -> None:
    rows = [("u00000", 0, 10, 5), ("u00001", 0, 10, 0), *EXACT[2:]]
    diff = diff_output(tumbling_case(), output(*rows))
    assert (diff.wrong, diff.exact, diff.correct) == (2, 3, False)
    by_user = {r.user: r.difference for r in diff.problems.itertuples()}
    assert by_user == {"u00000": 2, "u00001": -1}  # 5 vs at most 3; 0 vs exactly 1
    assert diff.summary()["wrong_difference_sum"] == 1


def test_late_only_pair_with_too_high_a_count_is_wrong() -> None:
    diff = diff_output(tumbling_case(), output(*EXACT, ("u00001", -10, 0, 2)))
    assert diff.wrong == 1 and diff.exact == 5 and not diff.correct


def test_extra_pairs_unknown_user_or_wrong_window_end() -> None:
    rows = [*EXACT, ("u00009", 0, 10, 1), ("u00000", 20, 25, 1)]
    diff = diff_output(tumbling_case(), output(*rows))
    assert (diff.extra, diff.exact, diff.correct) == (2, 5, False)
    assert set(diff.problems["kind"]) == {"extra"} and diff.problems["difference"].tolist() == [1, 1]


def test_updates_last_record_wins() -> None:
    rows = [("u00000", 10, 20, 5), *EXACT]  # an early wrong update, corrected later
    assert diff_output(tumbling_case(), output(*rows)).correct
    rows = [*EXACT, ("u00000", 10, 20, 5)]  # the last word is wrong
    assert diff_output(tumbling_case(), output(*rows)).wrong == 1


def test_broker_timestamps_order_the_records() -> None:
    rows = [*EXACT, ("u00000", 10, 20, 5)]
    stamps = [10, 10, 10, 10, 10, 5]  # the wrong value was written first, despite its row position
    diff = diff_output(tumbling_case(), output(*rows, timestamps=stamps))
    assert diff.correct and diff.duplicated == 0


def test_duplicated_final_records() -> None:
    rows = [("u00000", 0, 10, 1), ("u00000", 0, 10, 2), ("u00000", 0, 10, 2), ("u00000", 0, 10, 2), *EXACT[1:],
            ("u00001", 0, 10, 1)]
    diff = diff_output(tumbling_case(), output(*rows))
    assert (diff.duplicated, diff.duplicate_records) == (2, 3)
    assert diff.correct  # the values are right; the duplicates are reported, not held against correctness


def test_a_repeated_earlier_value_is_not_a_duplicate_of_the_final_one() -> None:
    rows = [("u00000", 0, 10, 1), ("u00000", 0, 10, 1), *EXACT]
    assert diff_output(tumbling_case(), output(*rows)).duplicated == 0


def test_flush_user_records_are_ignored() -> None:
    rows = [*EXACT, (workload.FLUSH_USER, 30, 40, 4)]
    diff = diff_output(tumbling_case(), output(*rows))
    assert diff.correct and diff.records == 5 and diff.extra == 0


def test_no_output_at_all() -> None:
    diff = diff_output(tumbling_case(), output())
    assert (diff.missing, diff.exact, diff.records, diff.correct) == (5, 0, 0, False)


def test_late_dropped_counts_events_across_hopping_windows() -> None:
    # one late event at ts 7 in windows [0,10) and [5,15); the engine counted it in one of them only
    expected = expected_counts(np.array([0, 0]), np.array([2, 7]), np.array([False, True]), users=1,
                               windows=HOPPING)
    rows = [("u00000", -5, 5, 1), ("u00000", 0, 10, 2)]
    diff = diff_output(expected, output(*rows))
    assert diff.correct and diff.late_dropped == 0.5 and diff.late_made == 1


def test_summary_is_json_ready() -> None:
    summary = diff_output(tumbling_case(), output(*EXACT[:4], ("u00000", 20, 30, 3))).summary()
    assert summary["problems"] == [
        {"kind": "wrong", "user": "u00000", "window_start": 20, "window_end": 30, "count_min": 1, "count_max": 1,
         "count": 3, "difference": 2}
    ]
    assert summary["correct"] is False
