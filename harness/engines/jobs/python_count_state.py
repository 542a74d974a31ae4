"""The counting state of the calibration job (:mod:`harness.engines.jobs.python_count_job`): events counted per
(slide bucket, user), the per-partition watermark, the windows that became final; and the parsing of a batch of
input record values. Pure (no Kafka, no clock); the semantics are in the job's module docstring.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from dataclasses import dataclass

from harness.workload import FLUSH_USER, Windows


@dataclass(frozen=True)
class FinalWindow:
    """A window that became final: its counts per user (users with no event in it are absent)."""

    start: int
    end: int
    counts: dict[str, int]


class WindowCounter:
    """The counting state of the job: counts per (slide bucket, user), the watermark, final windows out.

    :meth:`process` is called once per consumed batch. Pure (no Kafka, no clock): unit tested on hand-made events.
    """

    def __init__(self, windows: Windows) -> None:
        self.windows = windows
        self.watermark: int | None = None
        """The smallest over partitions of the largest event time read from each, − D (epoch ms); None before
        the first event."""
        self._newest: dict[int, int] = {}
        """Largest event time read from each partition that delivered a record."""
        self.late_dropped = 0
        """Events dropped because every window they belong to was final when they arrived."""
        self._buckets: dict[int, Counter[str]] = {}
        self._pending: list[int] = []
        """Starts of windows that hold counts and are not final yet (a heap: the oldest closes first)."""
        self._pending_set: set[int] = set()

    def process(self, users: list[str], ts: list[int], partitions: list[int] | None = None) -> list[FinalWindow]:
        """Count one batch (parallel lists; ``partitions`` None: all from one partition) against the current
        watermark, then advance the watermark and return the windows that became final, oldest first."""
        if not ts:
            return []
        self.add(users, ts)
        newest = self._newest
        if partitions is None:
            newest[0] = max(newest.get(0, ts[0]), max(ts))
        else:
            for partition, stamp in zip(partitions, ts):
                if stamp > newest.get(partition, stamp - 1):
                    newest[partition] = stamp
        return self.advance(min(newest.values()))

    def add(self, users: list[str], ts: list[int]) -> None:
        """Count events without moving the watermark; flush records and late events are left out."""
        if FLUSH_USER in users:
            kept = [i for i, user in enumerate(users) if user != FLUSH_USER]
            users, ts = [users[i] for i in kept], [ts[i] for i in kept]
            if not ts:
                return
        slide = self.windows.slide_ms
        oldest = min(ts)
        if self._final(oldest - oldest % slide):
            users, ts = self._drop_late(users, ts)
            if not ts:
                return
            oldest = min(ts)
        newest = max(ts)
        first, last = oldest - oldest % slide, newest - newest % slide
        if first == last:  # the usual case: one bucket; Counter.update counts a list in C
            self._bucket(first).update(users)
            return
        buckets = [t - t % slide for t in ts]
        for bucket in set(buckets):
            self._bucket(bucket).update([u for u, b in zip(users, buckets) if b == bucket])

    def advance(self, event_time: int) -> list[FinalWindow]:
        """Raise the watermark to ``event_time − D`` (it never goes back) and pop the windows now final."""
        mark = event_time - self.windows.watermark_delay_ms
        if self.watermark is not None and mark <= self.watermark:
            return []
        self.watermark = mark
        size = self.windows.size_ms
        final = []
        while self._pending and self._pending[0] + size <= mark:
            start = heapq.heappop(self._pending)
            self._pending_set.discard(start)
            final.append(FinalWindow(start, start + size, self._window_counts(start)))
        for bucket in [b for b in self._buckets if self._final(b)]:  # no window of the bucket is open
            del self._buckets[bucket]
        return final

    def _final(self, start: int) -> bool:
        """The window starting at ``start`` is final. The newest window holding the slide bucket starting at
        ``b`` starts at ``b``, so ``_final(b)`` also says that every window of the bucket is final."""
        return self.watermark is not None and start + self.windows.size_ms <= self.watermark

    def _drop_late(self, users: list[str], ts: list[int]) -> tuple[list[str], list[int]]:
        slide = self.windows.slide_ms
        kept = [i for i, t in enumerate(ts) if not self._final(t - t % slide)]
        self.late_dropped += len(ts) - len(kept)
        return [users[i] for i in kept], [ts[i] for i in kept]

    def _bucket(self, bucket: int) -> Counter[str]:
        counts = self._buckets.get(bucket)
        if counts is None:
            counts = self._buckets[bucket] = Counter()
            for start in self.windows.starts_of(bucket):
                if start not in self._pending_set and not self._final(start):
                    self._pending_set.add(start)
                    heapq.heappush(self._pending, start)
        return counts

    def _window_counts(self, start: int) -> dict[str, int]:
        slide = self.windows.slide_ms
        parts = [self._buckets[b] for b in range(start, start + self.windows.size_ms, slide) if b in self._buckets]
        if len(parts) == 1:
            return dict(parts[0])
        total: Counter[str] = Counter()
        for part in parts:
            total.update(part)
        return dict(total)


def parse_batch(values: list[bytes]) -> tuple[list[str], list[int], list[int] | None]:
    """``(users, ts, kept)`` of a batch of input record values: ``kept`` is None when every value was an event,
    else the indexes of those that were (the others are skipped)."""
    try:
        rows = json.loads(b"[" + b",".join(values) + b"]")
        if len(rows) == len(values):
            return [row["user"] for row in rows], [row["ts"] for row in rows], None
    except (ValueError, KeyError, TypeError):
        pass
    users: list[str] = []
    ts: list[int] = []
    kept: list[int] = []
    for index, value in enumerate(values):
        try:
            row = json.loads(value)
            user, stamp = row["user"], row["ts"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(user, str) and isinstance(stamp, int):
            users.append(user)
            ts.append(stamp)
            kept.append(index)
    return users, ts, kept
