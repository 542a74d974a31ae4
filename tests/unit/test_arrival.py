"""The arrived-late rules (harness.analysis.arrival): each engine's watermark rule allows exactly the events it can make
late from the input as the broker holds it (each partition in offset order, partitions related by append time)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis.arrival import NO_TS, WatermarkRule, may_drop

D = 1_000


def marks(rows: list[tuple[int, int, int]], rule: WatermarkRule) -> list[bool]:
    """``rows`` of (partition, append ms, ts), offsets in the order given per partition."""
    partition = np.array([r[0] for r in rows], dtype=np.int32)
    offset = np.zeros(len(rows), dtype=np.int64)
    for p in set(partition.tolist()):
        offset[partition == p] = np.arange(int((partition == p).sum()))
    append = np.array([r[1] for r in rows], dtype=np.int64)
    ts = np.array([r[2] for r in rows], dtype=np.int64)
    return may_drop(partition, offset, append, ts, rule=rule, watermark_delay_ms=D).tolist()


# partition 0 runs ahead to 13 s; partition 1's 11.5 s event is appended after it (late only against another
# partition), partition 0's 11 s event after its own 13 s one (late against its own partition)
ROWS = [(0, 100, 10_000), (0, 101, 13_000), (1, 102, 10_200), (0, 103, 11_000), (1, 104, 11_500),
        (1, 105, 12_500)]


def test_global_rule_compares_with_every_partition_appended_earlier() -> None:
    assert marks(ROWS, WatermarkRule("global")) == [False, False, True, True, True, False]


def test_per_partition_rule_compares_with_the_events_own_partition_only() -> None:
    assert marks(ROWS, WatermarkRule("per-partition")) == [False, False, False, True, False, False]


def test_records_of_the_same_millisecond_do_not_count_against_each_other_globally() -> None:
    rows = [(0, 100, 13_000), (1, 100, 10_000)]
    assert marks(rows, WatermarkRule("global")) == [False, False]


def test_after_an_idle_gap_a_partition_may_be_judged_against_every_partition_up_to_the_horizon() -> None:
    """Partition 1 is silent for 6 s (an outage) and resumes with a backlog; partition 0's backlog, appended
    in the same moment, runs 3 s ahead: with a 5 s idle timeout the engine may have read partition 0's first and
    let it move the watermark alone."""
    rows = [(0, 0, 1_000), (1, 0, 1_000), (0, 6_000, 2_000), (0, 6_001, 5_000), (1, 6_002, 2_100),
            (1, 6_003, 2_200), (1, 8_000, 8_000), (0, 8_000, 8_000), (1, 8_100, 7_500)]
    idle = WatermarkRule("per-partition", idle_timeout_ms=5_000)
    assert marks(rows, idle) == [False, False, False, False, True, True, False, False, False]
    assert not any(marks(rows, WatermarkRule("per-partition")))  # never idle: partition 1 holds it back
    assert marks(rows, WatermarkRule("per-partition", idle_timeout_ms=10_000)) == [False] * 9  # gap too short


def test_the_idle_horizon_is_bounded_and_the_mark_it_allows_stays() -> None:
    """Only what the other partitions appended up to ``resume_within_ms`` after the gap can have moved the
    watermark (partition 0's 9 s event came later); the mark it reached never goes back, so partition 1's
    backlog appended after the horizon is still below it."""
    rows = [(0, 0, 1_000), (1, 0, 1_000), (0, 6_000, 5_000), (1, 6_000, 2_000), (1, 7_500, 2_100),
            (0, 7_600, 9_000), (1, 7_700, 4_500)]
    idle = WatermarkRule("per-partition", idle_timeout_ms=5_000, resume_within_ms=1_000)
    assert marks(rows, idle) == [False, False, False, True, True, False, False]


def test_unreadable_records_are_never_marked() -> None:
    rows = [(0, 100, 13_000), (0, 101, NO_TS)]
    assert marks(rows, WatermarkRule("global")) == [False, False]


@pytest.mark.parametrize(("value", "scope"), [
    ("1000 ms, global (max over partitions)", "global"),
    ("1000 ms, per partition (min over partitions)", "per-partition"),
    ("1000 ms, per source subtask (min over subtasks)", "global"),
    (None, "global"),
])
def test_the_rule_follows_the_engines_stated_watermark(value: str | None, scope: str) -> None:
    assert WatermarkRule.from_watermark_setting(value).scope == scope
