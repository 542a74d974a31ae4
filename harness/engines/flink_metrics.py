"""Sampling a Flink counter over time: :class:`CounterSampler` reads a cumulative count (the Kafka source's
``numRecordsIn`` from the REST endpoint, for the Flink engines' ``input_rows``) once an interval in a background
thread and keeps a non-decreasing series of ``{"t_ms", "rows"}`` samples, going on across restarts of the job.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CounterSampler:
    """Calls ``read`` every ``interval`` seconds in a daemon thread, from :meth:`start` until :meth:`stop`, and keeps
    ``{"t_ms": epoch ms of the call, "rows": value}`` for every answer (a failed or empty read is skipped). Values
    are held non-decreasing: a counter read from a restarted subtask must not make the series go back. A read
    below the previous one after the job restarted by itself (``restarted``; its counters start at 0 again) makes
    the count go on from the last sample, as after :meth:`rebase`."""

    def __init__(self, read: Callable[[], int | None], interval: float,
                 restarted: Callable[[], bool] = lambda: False) -> None:
        self._read = read
        self._interval = interval
        self._restarted = restarted
        """Asked when a read is lower than the one before: True if the job restarted since it was last asked (a
        lower sum can also be a subtask's counter missing from one answer, which must not add it twice)."""
        self._samples: list[dict[str, int]] = []
        self._base = 0
        """Added to every read: the count before the job was last restarted (its counters start at 0 again)."""
        self._last_read = 0
        """The last value read: a lower one means the job restarted by itself (a lost TaskManager) meanwhile."""
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="flink-input-rows", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def samples(self) -> list[dict[str, int]]:
        return list(self._samples)

    def rebase(self) -> None:
        """The job is being restarted: later reads count on from the last sample. (Records the killed job read
        after its last sample and the restarted one reads again are counted twice: an overestimate of at most
        one sampling interval plus one checkpoint interval of input.)"""
        self._base = self._samples[-1]["rows"] if self._samples else 0
        self._last_read = 0

    def sample(self) -> None:
        """One read now."""
        t_ms = int(time.time() * 1000)
        try:
            rows = self._read()
        except (OSError, ValueError, KeyError):
            return
        if rows is not None:
            last = self._samples[-1]["rows"] if self._samples else 0
            if int(rows) < self._last_read and self._restarted():  # by Flink itself: count on from the last sample
                self._base = last
            self._last_read = int(rows)
            self._samples.append({"t_ms": t_ms, "rows": max(self._base + int(rows), last)})

    def _run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self._interval)
