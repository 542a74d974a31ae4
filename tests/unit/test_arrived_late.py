"""Events the load path made late: an on-time event appended to the input topic below the contract's watermark
(max event time appended earlier − D) may be dropped by an engine, and the judge allows it — the engine is not
blamed for a broker restart's backlog arriving out of order."""

from __future__ import annotations

import numpy as np

from harness.analysis.input_delay import InputAppendTimes, arrived_late
from harness.analysis.judge import judge
from tests.unit.test_judge import EXACT, HOPPING, TUMBLING, output, tumbling_case

D = 2  # TUMBLING's watermark delay, ms


def appended(rows: list[tuple[int, int, int]], users: list[str] | None = None) -> InputAppendTimes:
    """(seq, append ms, ts) per record, in the order a consumer read them."""
    seq, append, ts = (np.array(column, dtype=np.int64) for column in zip(*rows))
    user = np.array(users or ["u00000"] * len(rows), dtype=object)
    return InputAppendTimes(seq, append, ts=ts, user=user)


def test_an_event_appended_after_a_newer_one_by_more_than_d_arrived_late() -> None:
    times = appended([(0, 100, 10), (1, 101, 20), (2, 105, 17), (3, 105, 30), (4, 106, 27), (5, 107, 26)])
    # seq 2: max before = 20, 17 ≥ 18? no → late; seq 4: max of earlier ms = 30 → 27 ≥ 28? no → late;
    # seq 5: 26 < 28 → late; seq 3 is the newest
    assert arrived_late(times, watermark_delay_ms=D, total_events=100).tolist() == [
        False, False, True, False, True, True]


def test_records_of_the_same_millisecond_never_make_each_other_late() -> None:
    times = appended([(0, 100, 50), (1, 100, 10), (2, 100, 30)])
    assert not arrived_late(times, watermark_delay_ms=D, total_events=100).any()


def test_order_of_reading_does_not_matter_only_append_time() -> None:
    times = appended([(1, 101, 20), (2, 105, 17), (0, 100, 10)])
    assert arrived_late(times, watermark_delay_ms=D, total_events=100).tolist() == [False, True, False]


def test_end_of_run_records_and_deliberately_late_events_are_not_counted() -> None:
    times = appended([(0, 100, 50), (1, 101, 10), (2, 102, 10), (3, 103, 10)])
    deliberately = np.array([False, True, False, False])
    late = arrived_late(times, watermark_delay_ms=D, total_events=3, deliberately_late=deliberately)
    assert late.tolist() == [False, False, True, False]  # seq 3 is an end-of-run record


def test_without_event_times_nothing_is_late() -> None:
    times = InputAppendTimes(np.array([0, 1]), np.array([5, 1]))
    assert not arrived_late(times, watermark_delay_ms=D, total_events=10).any()


def test_an_engine_that_dropped_arrived_late_events_is_judged_exact_and_still_wrong_for_anything_else() -> None:
    expected = tumbling_case()  # u00000 has 2 on-time events in [0, 10)
    dropped_one = [("u00000", 0, 10, 1), *EXACT[1:]]
    assert judge(output(*dropped_one), expected, read_committed=False).correctness.wrong == 1
    allowed = expected.allowing_arrived_late(np.array(["u00000"], dtype=object), np.array([9]), TUMBLING)
    assert allowed.arrived_late == 1
    correctness = judge(output(*dropped_one), allowed, read_committed=False).correctness
    assert correctness.correct and correctness.wrong == 0
    assert judge(output(*EXACT), allowed, read_committed=False).correctness.correct  # counting it is exact too
    dropped_two = [("u00000", 0, 10, 0), *EXACT[1:]]
    assert judge(output(*dropped_two), allowed, read_committed=False).correctness.wrong == 1


def test_an_arrived_late_event_lowers_every_window_it_belongs_to_and_never_below_zero() -> None:
    from harness.analysis.oracle import expected_counts

    expected = expected_counts(np.array([0, 0]), np.array([7, 8]), np.array([False, False]), users=1,
                               windows=HOPPING)
    allowed = expected.allowing_arrived_late(np.array(["u00000"] * 3, dtype=object), np.array([7, 8, 8]), HOPPING)
    by_window = allowed.pairs.set_index("window_start")
    assert by_window.loc[0, "count_min"] == 0 and by_window.loc[5, "count_min"] == 0  # 2 − 3, clipped
    assert (by_window["count_max"] == 2).all()
