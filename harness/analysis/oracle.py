"""The correctness oracle: the expected count and the largest on-time event time of every (window, user).

The expected counts come from the generated events themselves, regenerated from (scenario, seed, start time)
by the generator's own code path (:func:`harness.loadgen.generate_chunk`) without Kafka, so they are exact
whatever the number of producer workers. Window membership is :meth:`harness.workload.Windows.assign`.

Deliberately late events (``load.late``) may be counted or dropped by an engine — it depends on whether their
window was already final when they arrived, which is a matter of timing. So each pair has an allowed range
``[count_min, count_max]``: without and with its late events. Pairs only late events fall in
(``count_min == 0``) may be absent. ``max_ts`` is the largest on-time event time of the pair (event-time
latency is measured from it; NaN for a pair of late events only).

One pass over the events yields all of it. Event times are the start time plus offsets that depend only on the
scenario and seed, and the start is aligned to the window slide, so the runner computes the table once per run
for start 0, before any engine starts, and shifts it to each repetition's start (:meth:`Expected.shifted`):
the oracle's CPU never falls inside a measured period.

Judging an engine's output against this table is :mod:`harness.analysis.judge`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from harness import workload
from harness.loadgen.events import EventPlan, iter_chunks
from harness.scenario import Scenario

KEY = list(workload.PAIR_KEY)

DENSE_LIMIT = 1 << 24
"""Largest (slide bucket × user) table counted with ``bincount``; beyond it, a sort (``np.unique``)."""

EXPECTED_COLUMNS = ("user", "window_start", "window_end", "count_min", "count_max", "max_ts")


@dataclass(frozen=True, eq=False)
class Expected:
    """The expected result of one run, by :func:`expected_for_run` (or :func:`expected_counts`)."""

    pairs: pd.DataFrame
    """One row per (window, user) any event falls in: :data:`EXPECTED_COLUMNS`, sorted by window then user;
    ``max_ts`` is float (NaN where the pair holds only late events)."""
    events: int
    late_events: int
    windows_per_event: int
    arrived_late: int = 0
    """On-time events that arrived late in the input topic (:func:`harness.analysis.input_delay.arrived_late`) and are
    allowed for by :meth:`allowing_arrived_late`."""

    @property
    def required(self) -> int:
        """Pairs an engine must emit (``count_min > 0``)."""
        return int((self.pairs["count_min"] > 0).sum())

    def allowing_arrived_late(self, users: np.ndarray, ts: np.ndarray, windows: workload.Windows) -> Expected:
        """The same table where each given event (its user id and ``ts``) — an on-time event that arrived below
        the watermark — may be dropped: ``count_min`` of every pair it belongs to is one lower, never below 0."""
        users, ts = np.asarray(users, dtype=object), np.asarray(ts, dtype=np.int64)
        if not ts.size:
            return self
        rows, starts = windows.assign(ts)
        dropped = (pd.DataFrame({"user": users[rows], "window_start": starts})
                   .groupby(["user", "window_start"]).size().rename("dropped"))
        pairs = self.pairs.join(dropped, on=["user", "window_start"])
        pairs["count_min"] = (pairs["count_min"] - pairs["dropped"].fillna(0).astype(np.int64)).clip(lower=0)
        return replace(self, pairs=pairs.drop(columns="dropped"), arrived_late=self.arrived_late + int(ts.size))

    def shifted(self, offset_ms: int) -> Expected:
        """The same table for a load started ``offset_ms`` later (a multiple of the slide: windows shift whole)."""
        pairs = self.pairs.copy()
        for column in ("window_start", "window_end", "max_ts"):
            pairs[column] = pairs[column] + offset_ms
        return replace(self, pairs=pairs)


def expected_for_run(scenario: Scenario, start_epoch_ms: int) -> Expected:
    """Regenerate the run's events (the generator's code path, no Kafka) and count them, slice by slice, so
    memory stays at one slice's events plus one row per (slide bucket, user)."""
    window = scenario.window
    windows = workload.Windows(window.size, window.slide_ms, window.watermark_delay)
    users = scenario.load.users
    parts: list[_Buckets] = []
    events = late_events = 0
    for batch in iter_chunks(EventPlan.from_scenario(scenario, start_epoch_ms)):
        parts.append(_bucket_counts(batch.user, batch.ts, batch.late, users=users, slide_ms=windows.slide_ms))
        events += int(batch.ts.size)
        late_events += int(np.count_nonzero(batch.late))
    return _expected(_merge_buckets(parts), users, windows, events, late_events)


def expected_counts(
    user: np.ndarray, ts: np.ndarray, late: np.ndarray, *, users: int, windows: workload.Windows
) -> Expected:
    """Expected counts from event arrays (user index, event time in ms, deliberately-late flag). Pure.

    Events are first counted per (slide bucket, user); every event of a bucket ``[b, b+S)`` lies in the same
    windows as the bucket's start, so only the buckets go through ``Windows.assign`` — W/S rows per bucket
    instead of per event.
    """
    late = np.asarray(late, dtype=bool)
    buckets = _bucket_counts(user, ts, late, users=users, slide_ms=windows.slide_ms)
    return _expected(buckets, users, windows, int(np.asarray(ts).size), int(late.sum()))


@dataclass(frozen=True)
class _Buckets:
    """Per (slide bucket, user) key (``bucket * users + user``, sorted): on-time count, late count, largest
    on-time ts (``MISSING_TS`` when none)."""

    keys: np.ndarray
    on_time: np.ndarray
    late: np.ndarray
    max_ts: np.ndarray


MISSING_TS = np.iinfo(np.int64).min


def _bucket_counts(user: np.ndarray, ts: np.ndarray, late: np.ndarray, *, users: int, slide_ms: int) -> _Buckets:
    user = np.asarray(user, dtype=np.int64)
    ts = np.asarray(ts, dtype=np.int64)
    late = np.asarray(late, dtype=bool)
    keys = np.floor_divide(ts, slide_ms) * users + user
    if keys.size == 0:
        empty = np.zeros(0, np.int64)
        return _Buckets(empty, empty, empty, empty)
    first = int(keys.min())
    space = int(keys.max()) - first + 1
    if space <= DENSE_LIMIT:
        local = keys - first
        on_time = np.bincount(local[~late], minlength=space)
        late_count = np.bincount(local[late], minlength=space)
        top = np.full(space, MISSING_TS, dtype=np.int64)
        np.maximum.at(top, local[~late], ts[~late])
        present = np.flatnonzero(on_time + late_count)
        return _Buckets(present + first, on_time[present], late_count[present], top[present])
    unique, inverse = np.unique(keys, return_inverse=True)
    top = np.full(unique.size, MISSING_TS, dtype=np.int64)
    np.maximum.at(top, inverse[~late], ts[~late])
    return _Buckets(
        unique,
        np.bincount(inverse[~late], minlength=unique.size),
        np.bincount(inverse[late], minlength=unique.size),
        top,
    )


def _merge_buckets(parts: list[_Buckets]) -> _Buckets:
    """Slices can share a bucket at their border: sum the counts and take the largest ts per key."""
    if not parts:
        empty = np.zeros(0, np.int64)
        return _Buckets(empty, empty, empty, empty)
    keys = np.concatenate([p.keys for p in parts])
    unique, inverse = np.unique(keys, return_inverse=True)
    top = np.full(unique.size, MISSING_TS, dtype=np.int64)
    np.maximum.at(top, inverse, np.concatenate([p.max_ts for p in parts]))
    return _Buckets(
        unique,
        np.bincount(inverse, weights=np.concatenate([p.on_time for p in parts]), minlength=unique.size).astype(np.int64),
        np.bincount(inverse, weights=np.concatenate([p.late for p in parts]), minlength=unique.size).astype(np.int64),
        top,
    )


def _expected(buckets: _Buckets, users: int, windows: workload.Windows, events: int, late_events: int) -> Expected:
    """From per-bucket counts to per-window counts (each bucket lies in the same W/S windows)."""
    if buckets.keys.size == 0:
        columns = {c: pd.Series(dtype="int64") for c in ("window_start", "window_end", "count_min", "count_max")}
        empty = pd.DataFrame({"user": pd.Series(dtype=object), **columns, "max_ts": pd.Series(dtype="float64")})
        return Expected(empty[list(EXPECTED_COLUMNS)], events, late_events, windows.per_event)
    slide = windows.slide_ms
    bucket_start = np.floor_divide(buckets.keys, users) * slide
    bucket_user = buckets.keys - np.floor_divide(buckets.keys, users) * users
    rows, starts = windows.assign(bucket_start)
    window_keys = np.floor_divide(starts, slide) * users + bucket_user[rows]
    unique, inverse = np.unique(window_keys, return_inverse=True)
    # float64 weights are exact for counts below 2^53
    count_min = np.bincount(inverse, weights=buckets.on_time[rows], minlength=unique.size).astype(np.int64)
    count_late = np.bincount(inverse, weights=buckets.late[rows], minlength=unique.size).astype(np.int64)
    top = np.full(unique.size, MISSING_TS, dtype=np.int64)
    np.maximum.at(top, inverse, buckets.max_ts[rows])
    window_start = np.floor_divide(unique, users) * slide
    pairs = pd.DataFrame(
        {
            "user": workload.user_id(unique - np.floor_divide(unique, users) * users, users),
            "window_start": window_start,
            "window_end": window_start + windows.size_ms,
            "count_min": count_min,
            "count_max": count_min + count_late,
            "max_ts": np.where(top == MISSING_TS, np.nan, top.astype(np.float64)),
        }
    )
    return Expected(pairs, events, late_events, windows.per_event)
