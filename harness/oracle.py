"""The correctness oracle: the expected count of every (window, user), and the diff of an engine's output.

The expected counts come from the generated events themselves, regenerated from (scenario, seed, start time)
by the generator's own code path (:func:`harness.loadgen.generate_chunk`) without Kafka, so they are exact
whatever the number of producer workers. Window membership is :meth:`harness.workload.Windows.assign`.

Deliberately late events (``load.late``) may be counted or dropped by an engine — it depends on whether their
window was already final when they arrived, which is a matter of timing. So each pair has an allowed range
``[count_min, count_max]``: without and with its late events. Pairs only late events fall in
(``count_min == 0``) may be absent.

The diff, against output records (columns ``user, window_start, window_end, count``, optionally ``timestamp``
— the broker's LogAppendTime — by which records are ordered; row order otherwise):

- a pair's *final* record is its last one (engines in update mode write several; the last wins);
- **expected**: pairs with ``count_min > 0`` (they must appear); **exact**: expected pairs whose final count is
  in the allowed range; **missing**: expected pairs with no record; **wrong**: pairs whose final count is
  outside the range, with the signed difference to the nearest allowed count; **extra**: pairs no event
  belongs to (a wrong user, window or window end);
- **duplicated**: pairs with more than one record carrying the final count (in update mode a value is written
  once, when it changes; a repeat is a duplicate delivery), with the number of surplus records;
- **late_dropped**: late (event, window) memberships not counted, divided by windows per event — for tumbling
  windows exactly the number of late events dropped; compare with **late_made**;
- **correct**: nothing missing, wrong or extra. Duplicates of a correct final value are reported but do not
  make a run incorrect: the answer is right, the delivery was not exactly-once.

Records of ``workload.FLUSH_USER`` (the end-of-run records) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness import workload
from harness.loadgen.events import EventPlan, iter_chunks
from harness.scenario import Scenario

KEY = ["user", "window_start", "window_end"]

DENSE_LIMIT = 1 << 24
"""Largest (slide bucket × user) table counted with ``bincount``; beyond it, a sort (``np.unique``)."""


@dataclass(frozen=True, eq=False)
class Expected:
    """The expected result of one run; made once per run, after the load, by :func:`expected_for_run`."""

    pairs: pd.DataFrame
    """One row per (window, user) any event falls in: ``user, window_start, window_end, count_min,
    count_max``, sorted by window then user."""
    events: int
    late_events: int
    windows_per_event: int

    @property
    def required(self) -> int:
        """Pairs an engine must emit (``count_min > 0``)."""
        return int((self.pairs["count_min"] > 0).sum())


def expected_for_run(scenario: Scenario, start_epoch_ms: int) -> Expected:
    """Regenerate the run's events (the generator's code path, no Kafka) and count them."""
    plan = EventPlan.from_scenario(scenario, start_epoch_ms)
    users, times, lates = [], [], []
    for batch in iter_chunks(plan):
        users.append(batch.user)
        times.append(batch.ts)
        lates.append(batch.late)
    window = scenario.window
    return expected_counts(
        np.concatenate(users) if users else np.zeros(0, np.int64),
        np.concatenate(times) if times else np.zeros(0, np.int64),
        np.concatenate(lates) if lates else np.zeros(0, bool),
        users=scenario.load.users,
        windows=workload.Windows(window.size, window.slide_ms, window.watermark_delay),
    )


def expected_counts(
    user: np.ndarray, ts: np.ndarray, late: np.ndarray, *, users: int, windows: workload.Windows
) -> Expected:
    """Expected counts from event arrays (user index, event time in ms, deliberately-late flag). Pure.

    Events are first counted per (slide bucket, user); every event of a bucket ``[b, b+S)`` lies in the same
    windows as the bucket's start, so only the buckets go through ``Windows.assign`` — W/S rows per bucket
    instead of per event.
    """
    user = np.asarray(user, dtype=np.int64)
    ts = np.asarray(ts, dtype=np.int64)
    late = np.asarray(late, dtype=bool)
    slide = windows.slide_ms
    if ts.size == 0:
        columns = ("window_start", "window_end", "count_min", "count_max")
        empty = pd.DataFrame({"user": pd.Series(dtype=object), **{c: pd.Series(dtype="int64") for c in columns}})
        return Expected(empty, 0, 0, windows.per_event)
    bucket = np.floor_divide(ts, slide)
    first = int(bucket.min())
    keys = (bucket - first) * users + user
    bucket_keys, on_time, late_count = _count_by_key(keys, late, int(bucket.max() - first + 1) * users)
    bucket_start = (bucket_keys // users + first) * slide
    bucket_user = bucket_keys % users
    rows, starts = windows.assign(bucket_start)
    window_first = int(starts.min()) // slide
    window_keys = (starts // slide - window_first) * users + bucket_user[rows]
    unique, inverse = np.unique(window_keys, return_inverse=True)
    # float64 weights are exact for counts below 2^53
    count_min = np.bincount(inverse, weights=on_time[rows], minlength=unique.size).astype(np.int64)
    count_late = np.bincount(inverse, weights=late_count[rows], minlength=unique.size).astype(np.int64)
    window_start = (unique // users + window_first) * slide
    names = workload.user_id(np.arange(users), users)
    pairs = pd.DataFrame(
        {
            "user": names[unique % users],
            "window_start": window_start,
            "window_end": window_start + windows.size_ms,
            "count_min": count_min,
            "count_max": count_min + count_late,
        }
    )
    return Expected(pairs, int(ts.size), int(late.sum()), windows.per_event)


def _count_by_key(keys: np.ndarray, late: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct keys (sorted) with their on-time and late event counts."""
    if space <= DENSE_LIMIT:
        on_time = np.bincount(keys[~late], minlength=space)
        late_count = np.bincount(keys[late], minlength=space)
        present = np.flatnonzero(on_time + late_count)
        return present, on_time[present], late_count[present]
    unique, inverse = np.unique(keys, return_inverse=True)
    on_time = np.bincount(inverse[~late], minlength=unique.size)
    late_count = np.bincount(inverse[late], minlength=unique.size)
    return unique, on_time, late_count


# ------------------------------------------------------------------------------------------------------ diff
@dataclass(frozen=True, eq=False)
class Diff:
    """An engine's output compared with :class:`Expected`; see the module docstring for each category."""

    expected: int
    exact: int
    missing: int
    extra: int
    wrong: int
    duplicated: int
    """Pairs with more than one record carrying the final count."""
    duplicate_records: int
    """Surplus records of those pairs (records with the final count, minus one per pair)."""
    late_made: int
    late_dropped: float
    records: int
    """Output records compared (the end-of-run user excluded)."""
    correct: bool
    problems: pd.DataFrame
    """One row per missing, wrong or extra pair: ``kind, user, window_start, window_end, count_min,
    count_max, count, difference`` (difference = count − nearest allowed count; −count_min when missing)."""

    def summary(self, max_problems: int = 20) -> dict[str, Any]:
        """JSON-ready counts plus the first ``max_problems`` problem rows (for the result file)."""
        head = self.problems.head(max_problems)
        head = head.astype(object).where(head.notna(), None)
        return {
            "expected": self.expected,
            "exact": self.exact,
            "missing": self.missing,
            "extra": self.extra,
            "wrong": self.wrong,
            "wrong_difference_sum": int(self.problems.loc[self.problems["kind"] == "wrong", "difference"].sum()),
            "duplicated": self.duplicated,
            "duplicate_records": self.duplicate_records,
            "late_made": self.late_made,
            "late_dropped": self.late_dropped,
            "records": self.records,
            "correct": self.correct,
            "problems": head.to_dict(orient="records"),
        }


def diff_output(expected: Expected, output: pd.DataFrame) -> Diff:
    """Compare output records with the expected counts; called once per run after the collector has read the
    output topic. Pure; ``output`` is not modified."""
    columns = [*KEY, "count"] + (["timestamp"] if "timestamp" in output else [])
    records = output.loc[output["user"] != workload.FLUSH_USER, columns]
    records = records.astype({"window_start": "int64", "window_end": "int64", "count": "int64"})
    if "timestamp" in records:
        records = records.sort_values("timestamp", kind="stable")
    grouped = records.groupby(KEY, sort=False)
    final = grouped.tail(1)[[*KEY, "count"]]
    with_final = records.merge(final.rename(columns={"count": "final"}), on=KEY)
    repeats = with_final[with_final["count"] == with_final["final"]].groupby(KEY, sort=False).size()
    duplicated = repeats[repeats > 1]

    table = expected.pairs.merge(final, on=KEY, how="outer", indicator=True)
    present = table["_merge"] != "left_only"
    known = table["_merge"] != "right_only"
    required = known & (table["count_min"] > 0)
    low, high = table["count_min"], table["count_max"]
    count = table["count"]
    in_range = present & known & (count >= low) & (count <= high)
    missing = required & ~present
    wrong = present & known & ~in_range
    extra = present & ~known

    nearest = count.clip(lower=low, upper=high)
    difference = pd.Series(np.nan, index=table.index)
    difference[wrong] = (count - nearest)[wrong]
    difference[missing] = -low[missing]
    difference[extra] = count[extra]
    kind = pd.Series(None, index=table.index, dtype=object)
    kind[missing], kind[wrong], kind[extra] = "missing", "wrong", "extra"
    problems = table.assign(kind=kind, difference=difference)[kind.notna()]
    problems = problems[["kind", *KEY, "count_min", "count_max", "count", "difference"]].reset_index(drop=True)
    problems = problems.astype({c: "Int64" for c in ("count_min", "count_max", "count", "difference")})

    # Late memberships counted: how far into [count_min, count_max] the final count went (absent = none).
    late_rows = known & (high > low)
    counted = (count.fillna(low).clip(lower=low, upper=high) - low)[late_rows].sum()
    dropped = float((high - low)[late_rows].sum() - counted) / expected.windows_per_event

    n_missing, n_wrong, n_extra = int(missing.sum()), int(wrong.sum()), int(extra.sum())
    return Diff(
        expected=int(required.sum()),
        exact=int((required & in_range).sum()),
        missing=n_missing,
        extra=n_extra,
        wrong=n_wrong,
        duplicated=int(duplicated.size),
        duplicate_records=int((duplicated - 1).sum()),
        late_made=expected.late_events,
        late_dropped=dropped,
        records=int(len(records)),
        correct=n_missing == 0 and n_wrong == 0 and n_extra == 0,
        problems=problems,
    )
