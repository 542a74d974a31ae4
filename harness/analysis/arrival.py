"""Which on-time events an engine may drop because of the order they **arrived** in, given its watermark rule.

The contract's watermark is "max event time seen − D" and an event below it when it arrives "is late and may be
dropped". The oracle assumes the intended order; the load path may append events out of that order (a broker
that was down, producers that fell behind: each generator worker keeps its own backlog and flushes it when it
can). After the drain the harness reads the input topic back (:func:`harness.analysis.input_delay.read_append_times`:
partition, offset, broker append time, ``user``, ``ts`` of every record), and :func:`may_drop` marks the on-time
events the engine's **own** watermark rule can have made late, given the input *as the broker holds it*: each
partition in offset order, partitions related only through their append times. The judge lowers the allowed
count of every pair such an event belongs to (:meth:`harness.analysis.oracle.Expected.allowing_arrived_late`), so an
engine is never blamed for what the load path did, and never excused for more than its rule allows.

The rules (:class:`harness.workload.WatermarkRule`, taken from the engine: :meth:`harness.engines.base.Engine.watermark_rule`):

``global`` (Spark: the largest event time of *any* partition − D)
    An event may be dropped when its ``ts`` is below the largest ``ts`` of every record appended in an earlier
    millisecond, on any partition, − D. Records of the same millisecond do not count against each other (their
    order is unknown). Spark plans each micro-batch's offsets at once, so no record appended after an event can
    be in an earlier batch than it: this is the most its watermark can have been.

``per-partition`` (Flink, the calibration engine: the smallest over partitions of each one's largest ts − D)
    An event may be dropped when its ``ts`` is below the largest ``ts`` of the records **before it in its own
    partition** − D: the job's watermark is never above its own partition's. Tighter than ``global``: a record of
    another partition, however new, cannot make it late while its own partition holds the watermark back.

``idle_timeout_ms`` (Flink: ``table.exec.source.idle-timeout``, 5 s by default)
    A partition that delivered nothing for that long is left out of the minimum, so the others move the
    watermark alone. After a gap of at least the idle timeout between two appends on a partition (a broker
    outage, a stalled producer), the engine may read the other partitions' backlogs first and move the watermark
    to the largest ``ts`` appended on any *other* partition up to ``resume_within_ms`` after the gap's end − D;
    a watermark never goes back, so every later record of the partition (until its next gap) below that mark may
    be dropped too. The horizon is a stated bound (a resumed partition's first records are read within
    ``resume_within_ms`` of their append: 1 s by default; the consumer fetches every partition of a broker in one
    request), not a measurement. The first record of each partition counts as the end of a gap (every partition
    is idle before the load begins).

``None`` (an engine that states no rule): ``global``, the widest rule that still follows append order.

Deliberately late events (made late by the generator, beyond D) are allowed for separately and never counted
here. End-of-run records (``seq`` ≥ the load's event count) are not load.
"""

from __future__ import annotations

import numpy as np

from harness.workload import WatermarkRule

NO_TS = np.iinfo(np.int64).min // 4
"""``ts`` of a record whose user and time could not be read, and the "nothing appended before" mark: below
every real time, with room to subtract D."""


def may_drop(partition: np.ndarray, offset: np.ndarray, append_ms: np.ndarray, ts: np.ndarray, *,
             rule: WatermarkRule, watermark_delay_ms: int) -> np.ndarray:
    """Boolean mask over the records: those ``rule`` lets the engine drop as late (see the module docstring).
    Records are parallel arrays in any order; ``ts`` of :data:`NO_TS` is never marked. Pure."""
    n = len(ts)
    if not n:
        return np.zeros(0, dtype=bool)
    d = watermark_delay_ms
    if rule.scope == "global":
        late = ts < _earlier_ms_max(append_ms, ts) - d
    else:
        late = ts < _earlier_in_partition_max(partition, offset, ts) - d
    if rule.idle_timeout_ms is not None:
        late |= ts < _horizon_max(partition, offset, append_ms, ts, rule) - d
    return late & (ts != NO_TS)


def _earlier_ms_max(append_ms: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Per record: the largest ts of every record appended in an earlier millisecond (:data:`NO_TS`: none)."""
    order = np.argsort(append_ms, kind="stable")
    append, stamps = append_ms[order], ts[order]
    first_of_ms = np.r_[True, append[1:] != append[:-1]]
    group = np.cumsum(first_of_ms) - 1
    group_max = np.full(int(group[-1]) + 1, NO_TS, dtype=np.int64)
    np.maximum.at(group_max, group, stamps)
    before = np.r_[NO_TS, np.maximum.accumulate(group_max)[:-1]]
    out = np.empty(len(ts), dtype=np.int64)
    out[order] = before[group]
    return out


def _partition_order(partition: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order sorting the records by partition then offset, True where a partition begins in that order)."""
    order = np.lexsort((offset, partition))
    part = partition[order]
    return order, np.r_[True, part[1:] != part[:-1]]


def _earlier_in_partition_max(partition: np.ndarray, offset: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Per record: the largest ts of the records before it in its own partition (:data:`NO_TS`: none)."""
    order, starts = _partition_order(partition, offset)
    stamps = ts[order]
    out_sorted = np.empty(len(ts), dtype=np.int64)
    bounds = np.r_[np.flatnonzero(starts), len(ts)]
    for lo, hi in zip(bounds[:-1], bounds[1:]):  # one pass per partition: a handful
        running = np.maximum.accumulate(stamps[lo:hi])
        out_sorted[lo:hi] = np.r_[NO_TS, running[:-1]]
    out = np.empty(len(ts), dtype=np.int64)
    out[order] = out_sorted
    return out


def _gap_ends(partition: np.ndarray, offset: np.ndarray, append_ms: np.ndarray,
              rule: WatermarkRule) -> np.ndarray:
    """Per record: the append time of the end of the latest idle gap of its partition at or before it (the
    first record of a partition ends one), as the horizon's start."""
    order, starts = _partition_order(partition, offset)
    append = append_ms[order]
    gap = starts | (np.r_[0, np.diff(append)] >= (rule.idle_timeout_ms or 0))
    gap_start = np.where(gap, append, np.iinfo(np.int64).min)
    latest = np.empty(len(append), dtype=np.int64)
    bounds = np.r_[np.flatnonzero(starts), len(append)]
    for lo, hi in zip(bounds[:-1], bounds[1:]):  # per partition: append times of two partitions are unrelated
        latest[lo:hi] = np.maximum.accumulate(gap_start[lo:hi])
    out = np.empty(len(append), dtype=np.int64)
    out[order] = latest
    return out


def _horizon_max(partition: np.ndarray, offset: np.ndarray, append_ms: np.ndarray, ts: np.ndarray,
                 rule: WatermarkRule) -> np.ndarray:
    """Per record: the largest ts appended on any *other* partition up to (its gap's end +
    ``resume_within_ms``): what the others can have moved the watermark to while its partition was idle (its own
    partition's records count through the per-partition rule, in offset order)."""
    horizon = _gap_ends(partition, offset, append_ms, rule) + rule.resume_within_ms
    out = np.full(len(ts), NO_TS, dtype=np.int64)
    for p in np.unique(partition):  # a handful of partitions
        mine, others = partition == p, partition != p
        if not others.any():
            continue
        order = np.argsort(append_ms[others], kind="stable")
        running = np.maximum.accumulate(ts[others][order])
        idx = np.searchsorted(append_ms[others][order], horizon[mine], side="right") - 1
        out[mine] = np.where(idx >= 0, running[np.clip(idx, 0, None)], NO_TS)
    return out
