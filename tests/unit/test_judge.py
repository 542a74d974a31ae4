"""The judge: every category provoked on purpose, latencies timed by the first final record, one order for
everything, and visible time for transactional output."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness import workload
from harness.analysis.judge import judge
from harness.analysis.oracle import Expected, expected_counts
from harness.results import Correctness

TUMBLING = workload.Windows(size_ms=10, slide_ms=10, watermark_delay_ms=2)
HOPPING = workload.Windows(size_ms=10, slide_ms=5, watermark_delay_ms=2)


def tumbling_case() -> Expected:
    #           user  ts   late
    events = [(0, 0, False), (0, 9, False), (1, 5, False), (0, 10, False), (2, 19, False), (0, 25, False),
              (1, -3, True), (0, 3, True)]
    user, ts, late = (np.array(column) for column in zip(*events))
    return expected_counts(user, ts, late, users=3, windows=TUMBLING)


def output(*rows: tuple[Any, ...], timestamps: list[int] | None = None) -> pd.DataFrame:
    """Result records in row order (append time = row index unless given), all on partition 0."""
    frame = pd.DataFrame(rows, columns=["user", "window_start", "window_end", "count"])
    frame["append_ms"] = timestamps if timestamps is not None else list(range(len(frame)))
    frame["partition"] = 0
    frame["offset"] = list(range(len(frame)))
    return frame.astype({"window_start": "int64", "window_end": "int64", "count": "int64", "append_ms": "int64"})


def judged(expected: Expected, records: pd.DataFrame) -> Correctness:
    return judge(records, expected, read_committed=False).correctness


EXACT = [("u00000", 0, 10, 2), ("u00001", 0, 10, 1), ("u00000", 10, 20, 1), ("u00002", 10, 20, 1),
         ("u00000", 20, 30, 1)]


# ------------------------------------------------------------------------------------- counts, as the oracle defined them
def test_exact_output_is_correct() -> None:
    diff = judged(tumbling_case(), output(*EXACT))
    assert (diff.expected, diff.exact, diff.missing, diff.wrong, diff.extra, diff.duplicated) == (5, 5, 0, 0, 0, 0)
    assert diff.correct and diff.problems == []
    assert (diff.late_made, diff.late_dropped, diff.records) == (2, 2.0, 5)


def test_late_events_may_be_counted() -> None:
    counted = [("u00000", 0, 10, 3), *EXACT[1:], ("u00001", -10, 0, 1)]
    diff = judged(tumbling_case(), output(*counted))
    assert diff.correct and diff.exact == 5 and diff.late_dropped == 0.0


def test_missing_pair() -> None:
    diff = judged(tumbling_case(), output(*EXACT[:3], EXACT[4]))
    assert (diff.missing, diff.exact, diff.correct) == (1, 4, False)
    row = diff.problems[0]
    assert (row["kind"], row["user"], row["window_start"], row["difference"]) == ("missing", "u00002", 10, -1)


def test_wrong_counts_carry_signed_differences_to_the_allowed_range() -> None:
    rows = [("u00000", 0, 10, 5), ("u00001", 0, 10, 0), *EXACT[2:]]
    diff = judged(tumbling_case(), output(*rows))
    assert (diff.wrong, diff.exact, diff.correct) == (2, 3, False)
    by_user = {r["user"]: r["difference"] for r in diff.problems}
    assert by_user == {"u00000": 2, "u00001": -1}  # 5 vs at most 3; 0 vs exactly 1
    assert diff.wrong_difference_sum == 1


def test_late_only_pair_with_too_high_a_count_is_wrong() -> None:
    diff = judged(tumbling_case(), output(*EXACT, ("u00001", -10, 0, 2)))
    assert diff.wrong == 1 and diff.exact == 5 and not diff.correct


def test_extra_pairs_unknown_user_or_wrong_window_end() -> None:
    rows = [*EXACT, ("u00009", 0, 10, 1), ("u00000", 20, 25, 1)]
    diff = judged(tumbling_case(), output(*rows))
    assert (diff.extra, diff.exact, diff.correct) == (2, 5, False)
    assert {r["kind"] for r in diff.problems} == {"extra"} and [r["difference"] for r in diff.problems] == [1, 1]


def test_updates_last_record_wins() -> None:
    rows = [("u00000", 10, 20, 5), *EXACT]  # an early wrong update, corrected later
    assert judged(tumbling_case(), output(*rows)).correct
    rows = [*EXACT, ("u00000", 10, 20, 5)]  # the last word is wrong
    assert judged(tumbling_case(), output(*rows)).wrong == 1


def test_broker_timestamps_order_the_records() -> None:
    rows = [*EXACT, ("u00000", 10, 20, 5)]
    stamps = [10, 10, 10, 10, 10, 5]  # the wrong value was written first, despite its row position
    diff = judged(tumbling_case(), output(*rows, timestamps=stamps))
    assert diff.correct and diff.duplicated == 0


def test_duplicated_final_records() -> None:
    rows = [("u00000", 0, 10, 1), ("u00000", 0, 10, 2), ("u00000", 0, 10, 2), ("u00000", 0, 10, 2), *EXACT[1:],
            ("u00001", 0, 10, 1)]
    diff = judged(tumbling_case(), output(*rows))
    assert (diff.duplicated, diff.duplicate_records) == (2, 3)
    assert diff.correct  # the values are right; the duplicates are reported, not held against correctness


def test_a_repeated_earlier_value_is_not_a_duplicate_of_the_final_one() -> None:
    rows = [("u00000", 0, 10, 1), ("u00000", 0, 10, 1), *EXACT]
    assert judged(tumbling_case(), output(*rows)).duplicated == 0


def test_flush_user_records_are_ignored() -> None:
    rows = [*EXACT, (workload.FLUSH_USER, 30, 40, 4)]
    diff = judged(tumbling_case(), output(*rows))
    assert diff.correct and diff.records == 5 and diff.extra == 0


def test_no_output_at_all() -> None:
    diff = judged(tumbling_case(), output())
    assert (diff.missing, diff.exact, diff.records, diff.correct) == (5, 0, 0, False)


def test_late_dropped_counts_events_across_hopping_windows() -> None:
    # one late event at ts 7 in windows [0,10) and [5,15); the engine counted it in one of them only
    expected = expected_counts(np.array([0, 0]), np.array([2, 7]), np.array([False, True]), users=1,
                               windows=HOPPING)
    rows = [("u00000", -5, 5, 1), ("u00000", 0, 10, 2)]
    diff = judged(expected, output(*rows))
    assert diff.correct and diff.late_dropped == 0.5 and diff.late_made == 1


def test_summary_is_json_ready() -> None:
    summary = dataclasses.asdict(judged(tumbling_case(), output(*EXACT[:4], ("u00000", 20, 30, 3))))
    json.dumps(summary)
    assert summary["problems"] == [
        {"kind": "wrong", "user": "u00000", "window_start": 20, "window_end": 30, "count_min": 1, "count_max": 1,
         "count": 3, "difference": 2}
    ]
    assert summary["correct"] is False


# ------------------------------------------------------------------------------------------- pairs and latency
def records(rows: list[tuple[str, int, int, int, int, int]], *, receive: list[int] | None = None) -> pd.DataFrame:
    """(user, window_start, count, append_ms, partition, offset) → a collector frame (10 s windows)."""
    frame = pd.DataFrame(rows, columns=["user", "window_start", "count", "append_ms", "partition", "offset"])
    frame["window_end"] = frame["window_start"] + 10_000
    if receive is not None:
        frame["receive_ms"] = receive
    return frame


def expected_of(rows: list[tuple[str, int, int, int, float]]) -> Expected:
    """(user, window_start, count_min, count_max, max_ts) → an oracle table."""
    frame = pd.DataFrame(rows, columns=["user", "window_start", "count_min", "count_max", "max_ts"])
    frame["window_end"] = frame["window_start"] + 10_000
    return Expected(frame, int(frame["count_max"].sum()), 0, 1)


def test_update_mode_last_record_wins_and_latency_times_the_first_final_record() -> None:
    recs = records([
        ("u1", 0, 3, 9_000, 0, 0),  # early update, not final
        ("u1", 0, 5, 12_100, 0, 1),  # first record with the final count
        ("u1", 0, 5, 12_400, 0, 2),  # the same count again: a duplicate
        ("u2", 0, 2, 12_300, 1, 0),
        (workload.FLUSH_USER, 0, 1, 99_000, 1, 1),
    ])
    result = judge(recs, expected_of([("u1", 0, 5, 5, 9_500), ("u2", 0, 2, 2, 8_000)]), read_committed=False)
    u1, u2 = result.pairs.iloc[0], result.pairs.iloc[1]
    assert (u1["got"], u1["records"], u1["final_records"], u1["status"]) == (5, 3, 2, "exact")
    assert u1["result_latency_ms"] == 2_100 and u1["event_time_latency_ms"] == 2_600
    assert u2["result_latency_ms"] == 2_300 and u2["event_time_latency_ms"] == 4_300
    assert workload.FLUSH_USER not in set(result.pairs["user"])
    assert (result.correctness.duplicated, result.correctness.duplicate_records, result.correctness.records) == (1, 1, 4)


def test_one_order_everywhere_append_time_then_partition_then_offset() -> None:
    # rows arrive out of order; the answer and the latency both follow append time
    recs = records([("u1", 0, 5, 12_500, 0, 7), ("u1", 0, 4, 12_000, 0, 3)])
    result = judge(recs, expected_of([("u1", 0, 5, 5, 9_000)]), read_committed=False)
    assert result.pairs.iloc[0]["got"] == 5 and result.pairs.iloc[0]["result_latency_ms"] == 2_500
    assert result.correctness.correct


def test_summary_counts_and_pairs_come_from_the_same_frame() -> None:
    recs = records([("u1", 0, 6, 12_000, 0, 0), ("u2", 0, 9, 12_000, 0, 1), ("u2", 0, 9, 12_100, 0, 2),
                    ("u9", 0, 1, 12_000, 0, 3)])
    result = judge(recs, expected_of([("u1", 0, 5, 7, 9_000), ("u2", 0, 3, 3, 9_000), ("u3", 0, 4, 4, 9_000),
                                      ("u4", 0, 0, 2, 0)]), read_committed=False)
    status = result.pairs.set_index("user")["status"].to_dict()
    assert status == {"u1": "exact", "u2": "wrong", "u3": "missing", "u4": "exact", "u9": "extra"}
    c = result.correctness
    for kind in ("missing", "wrong", "extra"):
        assert getattr(c, kind) == int((result.pairs["status"] == kind).sum()) == 1
    assert c.duplicated == int((result.pairs["final_records"] > 1).sum()) == 1
    assert result.pairs.set_index("user")["result_latency_ms"].notna().to_dict() == {
        "u1": True, "u2": False, "u3": False, "u4": False, "u9": False}
    assert (c.expected, c.exact, c.wrong_difference_sum, c.late_dropped, c.correct) == (3, 1, 6, 3.0, False)


def test_transactional_output_is_timed_when_it_became_readable() -> None:
    # appended at 12 000 but committed (received read_committed) at 14 000: visible at 14 000
    recs = records([("u1", 0, 5, 12_000, 0, 0)], receive=[14_000])
    expected = expected_of([("u1", 0, 5, 5, 9_000)])
    committed = judge(recs, expected, read_committed=True).pairs.iloc[0]
    plain = judge(recs, expected, read_committed=False).pairs.iloc[0]
    assert committed["result_latency_ms"] == 4_000 and committed["visible_ms"] == 14_000
    assert plain["result_latency_ms"] == 2_000
    # a record received before its append time (clock noise) is visible at its append time
    early = records([("u1", 0, 5, 12_000, 0, 0)], receive=[11_990])
    assert judge(early, expected, read_committed=True).pairs.iloc[0]["result_latency_ms"] == 2_000


@pytest.mark.parametrize("seed", range(5))
def test_judging_random_update_streams_agrees_with_a_per_pair_replay(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    recs = records([(f"u{rng.integers(5)}", int(rng.integers(3)) * 10_000, int(rng.integers(1, 6)),
                     int(rng.integers(10_000, 40_000)), 0, i) for i in range(n)])
    recs["partition"] = recs["user"].str[1:].astype(int) % 2
    exp_rows = [(f"u{u}", w * 10_000, c, c, w * 10_000 + 9_000.0) for u in range(5) for w in range(3)
                for c in [int(rng.integers(1, 6))]]
    result = judge(recs, expected_of(exp_rows), read_committed=False)
    by_key = recs.sort_values(["append_ms", "partition", "offset"], kind="stable").groupby(["user", "window_start"])
    for (user, start), group in by_key:
        last = int(group["count"].iloc[-1])
        row = result.pairs[(result.pairs["user"] == user) & (result.pairs["window_start"] == start)].iloc[0]
        assert row["got"] == last
        assert row["final_records"] == int((group["count"] == last).sum())
