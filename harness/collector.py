"""Reading the result topic while the engine runs, and turning result records into latencies.

:class:`LiveCollector` is a background thread that reads the result topic from the beginning and keeps every
record as columns (``user, window_start, window_end, count, append_ms, partition, offset``). ``append_ms`` is the
record's broker timestamp; result topics are created with ``message.timestamp.type=LogAppendTime``, so it is the
moment the result became visible to any consumer. The runner calls, per engine × repetition::

    collector = LiveCollector(bootstrap, output_topic, read_committed=engine.read_committed)
    collector.start()                        # before the load starts
    collector.snapshot()                     # live display, any time
    collector.received_final(expected)       # drain phase: (pairs done, pairs expected), until done or deadline
    collector.stop()
    frame = collector.frame()                # every record, for build_repetition_result

Everything done with that frame afterwards (judging pairs, latencies, series, the keep-up verdict) is
:mod:`harness.analysis` and the modules it names; this module only reads.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from hdrh.histogram import HdrHistogram

from harness.workload import FLUSH_USER
from harness.workload import PAIR_KEY as PAIR_KEY_TUPLE

RECORD_COLUMNS = ("user", "window_start", "window_end", "count", "append_ms", "partition", "offset")
"""Columns of :meth:`LiveCollector.frame`; times in epoch milliseconds."""

HISTOGRAM_LOWEST_MS = 1
HISTOGRAM_HIGHEST_MS = 7 * 24 * 3_600_000
"""Latency histograms cover 0 ms .. 7 days at 3 significant digits (values above are counted as overflow)."""
HISTOGRAM_DIGITS = 3

TIMESTAMP_LOG_APPEND_TIME = 2
"""confluent_kafka.TIMESTAMP_LOG_APPEND_TIME."""


# ------------------------------------------------------------------------------------------------ live collector
@dataclass(frozen=True)
class CollectorSnapshot:
    """What the live display shows; taken by :meth:`LiveCollector.snapshot`."""

    records: int
    """Result records received, flush records excluded."""
    flush_records: int
    """Records for the end-of-run flush user (bookkeeping, ignored)."""
    recent_p50_ms: float | None
    """Median of (append time − window_end) over the most recent records, ms; None before the first result."""
    recent_p99_ms: float | None
    last_append_ms: int | None
    """Broker time of the newest record, epoch ms."""
    not_append_time: int
    """Records whose timestamp is not LogAppendTime (the result topic is misconfigured: latency uses the
    engine's clock then)."""
    bad_records: int
    """Records that are not a result JSON object; they are skipped."""
    error: str | None
    """The last consumer error, if any."""


class LiveCollector:
    """Background reader of the result topic. Not restartable: one instance per engine × repetition.

    ``start()`` before the load starts (it reads from the beginning, so nothing is missed either way);
    ``stop()`` after the drain; ``frame()`` any time, usually after ``stop()``.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        read_committed: bool,
        poll_batch: int = 10_000,
        recent: int = 4_096,
        consumer_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.read_committed = read_committed
        self._poll_batch = poll_batch
        self._consumer_factory = consumer_factory
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._chunks: list[dict[str, np.ndarray]] = []
        self._records = 0
        self._flush_records = 0
        self._not_append_time = 0
        self._bad_records = 0
        self._last_append_ms: int | None = None
        self._error: str | None = None
        self._recent = np.zeros(recent, dtype=np.float64)
        self._recent_filled = 0
        self._recent_next = 0
        # received_final: chunks already folded into the per-pair maximum count
        self._folded = 0
        self._max_count: pd.Series | None = None

    # -------------------------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Subscribe from the beginning of every partition and start the reader thread."""
        if self._thread is not None:
            raise RuntimeError("LiveCollector.start() called twice")
        client = self._make_consumer()
        self._thread = threading.Thread(target=self._run, args=(client,), name=f"collector-{self.topic}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reading (idempotent). Records already received stay available."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _make_consumer(self) -> Any:
        if self._consumer_factory is not None:
            return self._consumer_factory()
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        from harness.kafka.consume import consumer

        client = consumer(self.bootstrap, read_committed=self.read_committed)
        partitions = client.list_topics(self.topic, timeout=10).topics[self.topic].partitions
        client.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
        return client

    def _run(self, client: Any) -> None:
        try:
            while not self._stop.is_set():
                messages = client.consume(self._poll_batch, timeout=0.1)
                if messages:
                    self.ingest(messages)
        except Exception as exc:  # a dead reader must show up in the snapshot, not vanish with the thread
            with self._lock:
                self._error = f"collector stopped: {exc!r}"
        finally:
            client.close()

    # -------------------------------------------------------------------------------------------- ingestion
    def ingest(self, messages: list[Any]) -> None:
        """Parse a batch of consumer messages into columns. Called by the reader thread (public for the
        benchmark and tests, which feed fake messages)."""
        values: list[bytes] = []
        partitions: list[int] = []
        offsets: list[int] = []
        stamps: list[int] = []
        not_append = 0
        error = None
        for message in messages:
            if message.error() is not None:
                error = str(message.error())
                continue
            value = message.value()
            if not value:
                continue
            ts_type, ts = message.timestamp()
            if ts_type != TIMESTAMP_LOG_APPEND_TIME:
                not_append += 1
            values.append(value)
            partitions.append(message.partition())
            offsets.append(message.offset())
            stamps.append(ts)
        if not values:
            if error is not None:
                with self._lock:
                    self._error = error
            return
        # One json.loads over the whole batch is ~2.5x faster than one call per record (measured: see
        # tests/benchmarks/test_collector_bench.py); a malformed record makes us fall back to per-record parsing.
        bad = 0
        try:
            rows = json.loads(b"[" + b",".join(values) + b"]")
            keep = None
        except ValueError:
            rows, keep = [], []
            for index, value in enumerate(values):
                try:
                    rows.append(json.loads(value))
                    keep.append(index)
                except ValueError:
                    bad += 1
        try:
            users = [row["user"] for row in rows]
            starts = [row["window_start"] for row in rows]
            ends = [row["window_end"] for row in rows]
            counts = [row["count"] for row in rows]
        except (KeyError, TypeError):
            users, starts, ends, counts, keep2 = [], [], [], [], []
            for index, row in enumerate(rows):
                try:
                    fields = (row["user"], row["window_start"], row["window_end"], row["count"])
                except (KeyError, TypeError):
                    bad += 1
                    continue
                users.append(fields[0])
                starts.append(fields[1])
                ends.append(fields[2])
                counts.append(fields[3])
                keep2.append(index if keep is None else keep[index])
            keep = keep2
        part_arr = np.array(partitions, dtype=np.int32)
        off_arr = np.array(offsets, dtype=np.int64)
        stamp_arr = np.array(stamps, dtype=np.int64)
        if keep is not None:
            index_arr = np.array(keep, dtype=np.int64)
            part_arr, off_arr, stamp_arr = part_arr[index_arr], off_arr[index_arr], stamp_arr[index_arr]
        user_arr = np.array(users, dtype=object)
        chunk = {
            "user": user_arr,
            "window_start": np.array(starts, dtype=np.int64),
            "window_end": np.array(ends, dtype=np.int64),
            "count": np.array(counts, dtype=np.int64),
            "append_ms": stamp_arr,
            "partition": part_arr,
            "offset": off_arr,
        }
        flush = user_arr == FLUSH_USER
        n_flush = int(flush.sum())
        latencies = (stamp_arr - chunk["window_end"])[~flush].astype(np.float64)
        with self._lock:
            self._chunks.append(chunk)
            self._records += len(user_arr) - n_flush
            self._flush_records += n_flush
            self._not_append_time += not_append
            self._bad_records += bad
            if stamp_arr.size:
                newest = int(stamp_arr.max())
                self._last_append_ms = newest if self._last_append_ms is None else max(newest, self._last_append_ms)
            if error is not None:
                self._error = error
            self._remember(latencies)

    def _remember(self, latencies: np.ndarray) -> None:
        size = self._recent.size
        if latencies.size >= size:
            self._recent[:] = latencies[-size:]
            self._recent_next, self._recent_filled = 0, size
            return
        end = self._recent_next + latencies.size
        if end <= size:
            self._recent[self._recent_next : end] = latencies
        else:
            split = size - self._recent_next
            self._recent[self._recent_next :] = latencies[:split]
            self._recent[: end - size] = latencies[split:]
        self._recent_next = end % size
        self._recent_filled = min(size, self._recent_filled + latencies.size)

    # -------------------------------------------------------------------------------------------- reading
    def snapshot(self) -> CollectorSnapshot:
        """Counts and the latency of the most recent results (append time − window_end, not yet checked for
        correctness: the final figures come from :func:`pair_outcomes`)."""
        with self._lock:
            recent = self._recent[: self._recent_filled].copy()
            p50 = p99 = None
            if recent.size:
                p50, p99 = (float(v) for v in np.percentile(recent, [50, 99]))
            return CollectorSnapshot(
                records=self._records,
                flush_records=self._flush_records,
                recent_p50_ms=p50,
                recent_p99_ms=p99,
                last_append_ms=self._last_append_ms,
                not_append_time=self._not_append_time,
                bad_records=self._bad_records,
                error=self._error,
            )

    def frame(self) -> pd.DataFrame:
        """Every record received so far (flush records included), in arrival order."""
        with self._lock:
            chunks = list(self._chunks)
        return _concat(chunks)

    def received_final(self, expected: Any) -> tuple[int, int]:
        """``(pairs done, pairs expected)`` for the drain phase; the runner polls it until done or deadline.

        ``expected`` is the oracle's :class:`~harness.oracle.Expected` (or its ``pairs`` frame). Only pairs
        with ``count_min > 0`` are expected (the rest hold only late events and may be absent). A pair is done
        when some record carries at least ``count_min``: counts only grow in update mode, late events can only
        add to it, and an engine that overcounts will not correct itself by waiting longer. Incremental: each
        call folds in only the records received since the previous one.
        """
        table = expected.pairs if hasattr(expected, "pairs") else expected
        with self._lock:
            new = self._chunks[self._folded :]
            self._folded = len(self._chunks)
        if new:
            batch = _concat(new)
            batch = batch[batch["user"] != FLUSH_USER]
            maxima = batch.groupby(PAIR_KEY, sort=False)["count"].max()
            if self._max_count is not None:
                maxima = pd.concat([self._max_count, maxima]).groupby(level=[0, 1, 2], sort=False).max()
            self._max_count = maxima
        required = table[table["count_min"] > 0]
        wanted = required.set_index(PAIR_KEY)["count_min"]
        if self._max_count is None:
            return 0, int(wanted.size)
        got = self._max_count.reindex(wanted.index, fill_value=0)
        return int((got.to_numpy() >= wanted.to_numpy()).sum()), int(wanted.size)


def _concat(chunks: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    if not chunks:
        return empty_records()
    return pd.DataFrame({column: np.concatenate([c[column] for c in chunks]) for column in RECORD_COLUMNS})


def empty_records() -> pd.DataFrame:
    """A record frame with no rows and the right dtypes."""
    dtypes = {"user": object, "partition": np.int32}
    return pd.DataFrame(
        {column: np.array([], dtype=dtypes.get(column, np.int64)) for column in RECORD_COLUMNS}
    )


PAIR_KEY = list(PAIR_KEY_TUPLE)
