"""The collector's latency math on hand-made records (the live reader: tests/unit/test_live_collector.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness import collector
from harness.collector import pair_outcomes
from harness.oracle import expected_counts
from harness.workload import FLUSH_USER, Windows

W = Windows(10_000, 10_000, 2_000)


def records(rows: list[tuple[str, int, int, int, int, int]]) -> pd.DataFrame:
    """(user, window_start, count, append_ms, partition, offset) → a collector frame."""
    frame = pd.DataFrame(rows, columns=["user", "window_start", "count", "append_ms", "partition", "offset"])
    frame["window_end"] = frame["window_start"] + 10_000
    frame["receive_ms"] = frame["append_ms"]
    return frame[list(collector.RECORD_COLUMNS)]


def oracle_pairs(rows: list[tuple[str, int, int, int, int]]) -> pd.DataFrame:
    """(user, window_start, count_min, count_max, max_ts) → the oracle's pairs with max_ts."""
    frame = pd.DataFrame(rows, columns=["user", "window_start", "count_min", "count_max", "max_ts"])
    frame["window_end"] = frame["window_start"] + 10_000
    return frame


# ------------------------------------------------------------------------------------------------ pair math
def test_update_mode_last_record_wins_and_latency_times_the_first_final_record() -> None:
    recs = records(
        [
            ("u1", 0, 3, 9_000, 0, 0),  # early update, not final
            ("u1", 0, 5, 12_100, 0, 1),  # first record with the final count
            ("u1", 0, 5, 12_400, 0, 2),  # the same count again: a duplicate
            ("u2", 0, 2, 12_300, 1, 0),
            (FLUSH_USER, 0, 1, 99_000, 1, 1),
        ]
    )
    pairs = pair_outcomes(recs, oracle_pairs([("u1", 0, 5, 5, 9_500), ("u2", 0, 2, 2, 8_000)]))
    u1, u2 = pairs.iloc[0], pairs.iloc[1]
    assert (u1["got"], u1["records"], u1["final_records"], u1["status"]) == (5, 3, 2, "exact")
    assert u1["result_latency_ms"] == 2_100 and u1["event_time_latency_ms"] == 2_600
    assert u2["result_latency_ms"] == 2_300 and u2["event_time_latency_ms"] == 4_300
    assert FLUSH_USER not in set(pairs["user"])


def test_order_is_by_offset_not_by_row_order() -> None:
    recs = records([("u1", 0, 5, 12_500, 0, 7), ("u1", 0, 4, 12_000, 0, 3)])
    pairs = pair_outcomes(recs, oracle_pairs([("u1", 0, 5, 5, 9_000)]))
    assert pairs.iloc[0]["got"] == 5 and pairs.iloc[0]["result_latency_ms"] == 2_500


def test_statuses_and_late_allowance() -> None:
    recs = records(
        [
            ("u1", 0, 6, 12_000, 0, 0),  # within [5, 7]: exact (one late event counted)
            ("u2", 0, 9, 12_000, 0, 1),  # outside [3, 3]: wrong
            ("u9", 0, 1, 12_000, 0, 2),  # nobody expected it: extra
        ]
    )
    expected = oracle_pairs(
        [("u1", 0, 5, 7, 9_000), ("u2", 0, 3, 3, 9_000), ("u3", 0, 4, 4, 9_000), ("u4", 0, 0, 2, 0)]
    )
    status = pair_outcomes(recs, expected).set_index("user")["status"].to_dict()
    # u3 missing; u4 had only late events and may be absent
    assert status == {"u1": "exact", "u2": "wrong", "u3": "missing", "u4": "exact", "u9": "extra"}
    pairs = pair_outcomes(recs, expected).set_index("user")
    assert pairs["result_latency_ms"].notna().to_dict() == {
        "u1": True, "u2": False, "u3": False, "u4": False, "u9": False
    }


def test_correctness_from_pairs_agrees_with_the_oracle_categories() -> None:
    recs = records([("u1", 0, 6, 12_000, 0, 0), ("u2", 0, 9, 12_000, 0, 1), ("u2", 0, 9, 12_100, 0, 2)])
    expected = oracle_pairs([("u1", 0, 5, 7, 9_000), ("u2", 0, 3, 3, 9_000), ("u3", 0, 4, 4, 9_000)])
    summary = collector.correctness_from_pairs(pair_outcomes(recs, expected), late_made=2, windows_per_event=1)
    assert {k: summary[k] for k in ("expected", "exact", "missing", "wrong", "extra", "duplicated")} == {
        "expected": 3, "exact": 1, "missing": 1, "wrong": 1, "extra": 0, "duplicated": 1
    }
    assert summary["wrong_difference_sum"] == 6 and summary["late_dropped"] == 1.0
    assert summary["correct"] is False


def test_max_ts_per_pair_ignores_late_events_and_covers_hopping_windows() -> None:
    hopping = Windows(10_000, 5_000, 2_000)
    user = np.array([0, 0, 1, 0])
    ts = np.array([1_000, 7_000, 3_000, 8_000])
    late = np.array([False, False, False, True])
    frame = collector.max_ts_per_pair(user, ts, late, users=2, windows=hopping)
    got = {(r.user, r.window_start): r.max_ts for r in frame.itertuples()}
    assert got == {
        ("u00000", -5_000): 1_000,
        ("u00000", 0): 7_000,
        ("u00000", 5_000): 7_000,
        ("u00001", -5_000): 3_000,
        ("u00001", 0): 3_000,
    }
    # and it lines up with the oracle's pairs
    pairs = expected_counts(user, ts, late, users=2, windows=hopping).pairs
    merged = pairs.merge(frame, on=collector.PAIR_KEY, how="left")
    assert merged["max_ts"].notna().all()


def test_measured_mask_excludes_warmup_and_partial_windows() -> None:
    ends = np.array([10_000, 20_000, 60_000, 70_000])
    assert collector.measured_mask(ends, warmup_end_ms=10_000, load_end_ms=60_000).tolist() == [
        False, True, True, False
    ]


def test_negative_latencies_are_counted_apart_never_clamped() -> None:
    result = collector.latency_histogram(np.array([-5.0, -1.0, 0.0, 10.0, 20.0, np.nan]))
    assert result.negative == 2
    assert result.histogram.get_total_count() == 3
    assert result.histogram.get_min_value() == 0
    p = collector.histogram_percentiles(result.histogram)
    assert p["p50"] == 10 and p["max"] == 20


def test_percentiles_from_histogram() -> None:
    result = collector.latency_histogram(np.arange(1, 1001, dtype=float))
    p = collector.histogram_percentiles(result.histogram)
    assert (p["p50"], p["p90"], p["p99"], p["p99_9"], p["max"]) == (500, 900, 990, 999, 1000)


def test_per_second_series_counts_results_and_output_progress() -> None:
    recs = records(
        [
            ("u1", 0, 3, 10_500, 0, 0),
            ("u1", 0, 5, 12_100, 0, 1),  # +2
            ("u2", 0, 4, 12_300, 1, 0),
        ]
    )
    pairs = pair_outcomes(recs, oracle_pairs([("u1", 0, 5, 5, 9_000), ("u2", 0, 4, 4, 9_000)]))
    measured = collector.measured_mask(pairs["window_end"], 0, 10_000)
    series = collector.per_second_series(0, recs, pairs, measured=measured, per_event=1, min_seconds=14)
    row = series.set_index("second")
    assert len(series) == 14
    assert row.loc[10, "results_per_s"] == 1 and row.loc[10, "processed_rate_output"] == 3
    assert row.loc[12, "results_per_s"] == 2 and row.loc[12, "processed_rate_output"] == 6
    assert row.loc[12, "latency_p50_ms"] == pytest.approx(2_200)


# ------------------------------------------------------------------------------------------------ sustained
def test_flat_latency_is_sustained() -> None:
    rng = np.random.default_rng(3)
    ends = np.repeat(np.arange(1, 31) * 10_000, 50)
    latency = 3_000 + rng.normal(0, 400, ends.size)
    check = collector.sustained(ends, latency, 10_000)
    assert check.sustained is True and abs(check.growth_ms) < 1_000


def test_rising_latency_is_not_sustained() -> None:
    ends = np.repeat(np.arange(1, 31) * 10_000, 50)
    latency = 3_000 + (ends / 1000.0) * 100.0  # falls 100 ms further behind per second: +29 s over the run
    check = collector.sustained(ends, latency, 10_000)
    assert check.sustained is False
    assert check.slope_ms_per_s == pytest.approx(100.0)
    assert check.growth_ms == pytest.approx(29_000.0)


def test_growth_below_one_window_is_sustained() -> None:
    ends = np.repeat(np.arange(1, 31) * 10_000, 10)
    latency = 3_000 + (ends / 1000.0) * 20.0  # +5.8 s: below one window (10 s)
    assert collector.sustained(ends, latency, 10_000).sustained is True


def test_too_few_windows_cannot_be_judged() -> None:
    check = collector.sustained(np.array([10_000, 20_000]), np.array([1.0, 2.0]), 10_000)
    assert check.sustained is None and check.windows == 2
