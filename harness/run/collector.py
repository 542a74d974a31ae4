"""Reading the result topic while the engine runs, and turning result records into latencies.

:class:`LiveCollector` is a background thread that reads the result topic from the beginning and keeps every
genuine result record as columns (:data:`RECORD_COLUMNS`): ``user, window_start, window_end, count`` from the
record; ``append_ms``, the record's broker timestamp (result topics are created with
``message.timestamp.type=LogAppendTime``, so it is when the broker appended the record); ``receive_ms``, the
collector's wall clock (epoch ms, ``time.time``) when the consumer handed the record over; ``partition, offset``.
The runner calls, per engine × repetition::

    collector = LiveCollector(bootstrap, output_topic, read_committed=engine.read_committed)
    collector.start()                        # before the load starts
    collector.snapshot()                     # live display, any time; ``failed`` says when the reader died
    collector.settle_state(expected)         # drain phase: pairs answered / final, seconds since the last record
    collector.stop()
    frame = collector.frame()                # every record, for build_repetition_result

**Visible time** (:func:`visible_ms`). A record read ``read_uncommitted`` is visible once appended: its
``append_ms``. A transactional record read ``read_committed`` becomes visible only when its transaction commits,
and its LogAppendTime stays the time of the append, before the commit (observed on the embedded broker: records
appended 400 ms before their commit carry the append time). For those readers the visible time is
``max(append_ms, receive_ms)``. Bounded error (:data:`VISIBILITY_ERROR_MS`, measured on the real broker by
``tests/integration/test_collector_kafka.py``): never before the producer's ``commit_transaction()`` call, and
for most records at most 20 ms after it returned, because the reader never sits on data: it blocks in ``poll``,
which returns as soon as one record is readable (the broker answers a held fetch when the commit marker makes
data readable), then takes what is already queued without waiting. A batch ``consume(n, timeout)`` would hold a
partial batch for its whole timeout: with ``consume(10000, 0.1)`` records arrived 55–63 ms after the commit at
p50, up to 100 ms. The error grows when the reader is busy: while it parses a batch (about 20 ms per 10,000
records) newer records wait, and a loaded CPU delays the thread; the snapshot's recent latency shows a backlog.

**Bad records** (:mod:`harness.run.records`). Collection never stops on input: a record that is not a genuine
result record is counted under its kind and some raw values are kept as samples, and the genuine records of the
same batch are kept as usual. If the reader thread dies anyway (a consumer error raised, a fatal consumer error,
a bug), ``snapshot().failed`` says why.

Everything done with that frame afterwards (judging pairs, latencies, series, the keep-up verdict) is
:mod:`harness.analysis.repetition` and the modules it names; this module only reads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

from harness.run.records import BAD_SAMPLES, classify_each, parse_batch, sample_value
from harness.workload import FLUSH_USER, visible_ms
from harness.workload import PAIR_KEY as PAIR_KEY_TUPLE

RECORD_COLUMNS = ("user", "window_start", "window_end", "count", "append_ms", "receive_ms", "partition", "offset")
"""Columns of :meth:`LiveCollector.frame`; times in epoch milliseconds (``append_ms`` the broker's,
``receive_ms`` the collector's wall clock when the consumer handed the record over)."""

TIMESTAMP_LOG_APPEND_TIME = 2
"""confluent_kafka.TIMESTAMP_LOG_APPEND_TIME."""

VISIBILITY_ERROR_MS = (0, 20)
"""Error bounds of ``receive_ms`` as the visible time of transactional results read ``read_committed``, in ms.
The commit takes effect somewhere between the producer's ``commit_transaction()`` call and its return (the call
took 5–8 ms at p50). Lower bound: no record is received before the call (0 ms, every record). Upper bound:
``receive_ms`` − the call's return is at most 20 ms for :data:`VISIBILITY_SHARE` of the records. Measured on the
shared 2-core test machine (12 runs of 25–40 commits): p50 1.4–12 ms, p90 4–18 ms with the CPUs not overloaded;
with a load average of 8–12 single commits came 20–93 ms late (p90 up to 29 ms), so the upper bound is stated
for a share of the records and for a machine that is not overloaded."""
VISIBILITY_SHARE = 0.9
"""Share of transactional records received within the upper bound of :data:`VISIBILITY_ERROR_MS`."""


# ------------------------------------------------------------------------------------------------ live collector
@dataclass(frozen=True)
class CollectorSnapshot:
    """What the live display and the result show; taken by :meth:`LiveCollector.snapshot`."""

    records: int
    """Genuine result records received, flush records excluded."""
    flush_records: int
    """Records for the end-of-run flush user (bookkeeping, ignored)."""
    recent_p50_ms: float | None
    """Median of (visible time − window_end) over the most recent records, ms; None before the first result."""
    recent_p99_ms: float | None
    last_append_ms: int | None
    """Broker time of the newest record, epoch ms."""
    not_append_time: int
    """Records whose timestamp is not LogAppendTime (the result topic is misconfigured: latency uses the
    engine's clock then)."""
    bad_records: int
    """Records that are not a genuine result record (see :data:`harness.run.records.BAD_KINDS`); they are
    counted and skipped."""
    bad_by_kind: dict[str, int]
    """``bad_records`` split by kind (only kinds seen)."""
    bad_samples: list[dict[str, Any]]
    """Raw values of some bad records, in arrival order: ``kind``, ``value`` (see
    :func:`harness.run.records.sample_value`), ``bytes`` (the value's full length), ``partition``, ``offset``."""
    error: str | None
    """The last consumer error reported for a record, if any (the reader goes on)."""
    failed: str | None
    """Why the reader thread died, or None while it runs or after a normal stop: results after that moment are
    missing, so the repetition is invalid ("collector failed")."""


@dataclass(frozen=True)
class DrainState:
    """How settled the output is, for the drain's stop test; taken by :meth:`LiveCollector.settle_state`."""

    expected: int
    """Expected pairs: rows of the oracle's pairs with ``count_min > 0`` (the rest hold only late events and
    may be absent)."""
    answered: int
    """Expected pairs with at least one genuine record."""
    final: int
    """Expected pairs with a record carrying at least ``count_min`` (counts only grow in update mode, and an
    engine that overcounts will not correct itself by waiting longer)."""
    idle_s: float
    """Seconds (monotonic) since the last record of any kind arrived (genuine, flush or bad), or since
    ``start()`` when none has."""


class LiveCollector:
    """Background reader of the result topic. Not restartable: one instance per engine × repetition.

    ``start()`` before the load starts (it reads from the beginning, so nothing is missed either way);
    ``snapshot()`` and ``settle_state()`` any time from the runner's thread; ``stop()`` after the drain;
    ``frame()`` any time, usually after ``stop()``. ``monotonic`` is the clock of ``idle_s`` (a fake in tests).
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        read_committed: bool,
        poll_batch: int = 10_000,
        poll_timeout_s: float = 0.1,
        recent: int = 4_096,
        consumer_factory: Callable[[], Any] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.read_committed = read_committed
        self._poll_batch = poll_batch
        self._poll_timeout_s = poll_timeout_s
        self._consumer_factory = consumer_factory
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._chunks: list[dict[str, np.ndarray]] = []
        self._records = 0
        self._flush_records = 0
        self._not_append_time = 0
        self._bad_by_kind: dict[str, int] = {}
        self._bad_samples: list[dict[str, Any]] = []
        self._last_append_ms: int | None = None
        self._last_record_at = monotonic()
        self._error: str | None = None
        self._failed: str | None = None
        self._recent = np.zeros(recent, dtype=np.float64)
        self._recent_filled = 0
        self._recent_next = 0
        self._settle = _SettleFold()

    # -------------------------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Assign every partition from the beginning and start the reader thread."""
        if self._thread is not None:
            raise RuntimeError("LiveCollector.start() called twice")
        client = self._make_consumer()
        with self._lock:
            self._last_record_at = self._monotonic()
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
            while not self._stop.is_set() and self._failed is None:
                messages, receive_ms = self._next_batch(client)
                if messages:
                    self.ingest(messages, receive_ms)
        except Exception as exc:  # a dead reader must show up in the snapshot, not vanish with the thread
            self._fail(f"collector reader died: {exc!r}")
        finally:
            try:
                client.close()
            except Exception as exc:  # closing after a failure may fail too; the first cause stays in `failed`
                with self._lock:
                    self._error = f"closing the consumer: {exc!r}"

    def _next_batch(self, client: Any) -> tuple[list[Any], int]:
        """Wait (up to ``poll_timeout_s``) for one record, stamp the time, then take what is queued already.

        ``poll`` returns as soon as a record is there; ``consume(n, timeout)`` would wait for n records or
        the whole timeout, holding records back and making ``receive_ms`` late by up to that timeout."""
        first = client.poll(self._poll_timeout_s)
        if first is None:
            return [], 0
        receive_ms = time.time_ns() // 1_000_000
        rest = client.consume(self._poll_batch - 1, timeout=0) if self._poll_batch > 1 else []
        return [first, *rest], receive_ms

    def _fail(self, reason: str) -> None:
        with self._lock:
            if self._failed is None:
                self._failed = reason

    # -------------------------------------------------------------------------------------------- ingestion
    def ingest(self, messages: list[Any], receive_ms: int | None = None) -> None:
        """Judge a batch of consumer messages and keep the genuine records as columns. Called by the reader
        thread with the wall-clock ms at which the consumer returned the batch (``None``: now); public for
        the benchmark and tests, which feed fake messages. Never raises on a record's content."""
        if receive_ms is None:
            receive_ms = time.time_ns() // 1_000_000
        values: list[bytes] = []
        partitions: list[int] = []
        offsets: list[int] = []
        stamps: list[int] = []
        position: list[int] = []  # index in the batch of each value, so bad records stay in arrival order
        bad: list[tuple[int, str, bytes | None, int, int]] = []
        not_append = 0
        errors: list[Any] = []
        for index, message in enumerate(messages):
            error = message.error()
            if error is not None:
                errors.append(error)
                continue
            value = message.value()
            if not value:
                bad.append((index, "empty", value, message.partition(), message.offset()))
                continue
            ts_type, ts = message.timestamp()
            not_append += ts_type != TIMESTAMP_LOG_APPEND_TIME
            values.append(value)
            partitions.append(message.partition())
            offsets.append(message.offset())
            stamps.append(ts)
            position.append(index)
        chunk, bad_values = self._judge(values, (partitions, offsets, stamps), receive_ms) if values else (None, [])
        bad += [(position[i], kind, values[i], partitions[i], offsets[i]) for i, kind in bad_values]
        with self._lock:
            if values or bad:
                self._last_record_at = self._monotonic()
            self._not_append_time += not_append
            self._count_bad(sorted(bad, key=itemgetter(0)))
            if chunk is not None:
                self._keep(chunk)
            self._note_errors(errors)

    def _judge(
        self, values: list[bytes], meta: tuple[list[int], list[int], list[int]], receive_ms: int
    ) -> tuple[dict[str, np.ndarray] | None, list[tuple[int, str]]]:
        """The batch's genuine records as a chunk of columns (None if there are none), and its bad records as
        (index in ``values``, kind). ``meta``: the partition, offset and broker timestamp of every value."""
        columns = parse_batch(values)
        bad: list[tuple[int, str]] = []
        partition, offset, append = (np.array(column, dtype=np.int64) for column in meta)
        if columns is None:
            columns, keep, bad = classify_each(values)
            if not keep:
                return None, bad
            index = np.array(keep, dtype=np.int64)
            partition, offset, append = partition[index], offset[index], append[index]
        users, start, end, count = columns
        chunk = {
            "user": np.array(users, dtype=object),
            "window_start": start,
            "window_end": end,
            "count": count,
            "append_ms": append,
            "receive_ms": np.full(len(users), receive_ms, dtype=np.int64),
            "partition": partition.astype(np.int32),
            "offset": offset,
        }
        return chunk, bad

    def _keep(self, chunk: dict[str, np.ndarray]) -> None:
        """Store a chunk and update the live counters (lock held)."""
        flush = chunk["user"] == FLUSH_USER
        n_flush = int(flush.sum())
        self._chunks.append(chunk)
        self._records += len(flush) - n_flush
        self._flush_records += n_flush
        newest = int(chunk["append_ms"].max())
        self._last_append_ms = newest if self._last_append_ms is None else max(newest, self._last_append_ms)
        visible = visible_ms(chunk["append_ms"], chunk["receive_ms"], read_committed=self.read_committed)
        latency = (visible - chunk["window_end"])[~flush].astype(np.float64)
        # a window answered before its end was closed by the end-of-run records (or written early in update mode):
        # not a latency of the live run (the final figures count those apart, as negative)
        self._remember(latency[latency >= 0])

    def _count_bad(self, bad: list[tuple[int, str, bytes | None, int, int]]) -> None:
        """Count bad records (index in the batch, kind, value, partition, offset) by kind and keep the first
        samples (lock held)."""
        for _, kind, value, partition, offset in bad:
            seen = self._bad_by_kind.get(kind, 0)
            self._bad_by_kind[kind] = seen + 1
            if len(self._bad_samples) < BAD_SAMPLES or seen == 0:
                self._bad_samples.append(
                    {"kind": kind, "value": sample_value(value), "bytes": len(value or b""),
                     "partition": partition, "offset": offset}
                )

    def _note_errors(self, errors: list[Any]) -> None:
        """Remember the last consumer error; a fatal one ends the reader (lock held)."""
        for error in errors:
            self._error = str(error)
            fatal = getattr(error, "fatal", None)
            if callable(fatal) and fatal() and self._failed is None:
                self._failed = f"fatal consumer error: {error}"

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
        """Counts and the latency of the most recent results (visible time − window_end, not yet checked for
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
                bad_records=sum(self._bad_by_kind.values()),
                bad_by_kind=dict(self._bad_by_kind),
                bad_samples=[dict(sample) for sample in self._bad_samples],
                error=self._error,
                failed=self._failed,
            )

    def frame(self) -> pd.DataFrame:
        """Every genuine record received so far (flush records included), in arrival order."""
        with self._lock:
            chunks = list(self._chunks)
        return _concat(chunks)

    def settle_state(self, expected: Any) -> DrainState:
        """How far the output has settled, for the drain phase; the runner polls it until its stop test holds
        or the deadline passes.

        ``expected`` is the oracle's :class:`~harness.analysis.oracle.Expected` (or its ``pairs`` frame: columns
        ``user, window_start, window_end, count_min, count_max``). Incremental: each call folds in only the
        records received since the previous one (all of them again only when ``expected`` is another object).
        """
        table = expected.pairs if hasattr(expected, "pairs") else expected
        with self._lock:
            chunks = list(self._chunks)
            idle_s = max(0.0, self._monotonic() - self._last_record_at)
        expected_n, answered, final = self._settle.update(table, chunks)
        return DrainState(expected=expected_n, answered=answered, final=final, idle_s=idle_s)

    def received_final(self, expected: Any) -> tuple[int, int]:
        """``(pairs final, pairs expected)``: :meth:`settle_state`'s ``final`` and ``expected``."""
        state = self.settle_state(expected)
        return state.final, state.expected


class _SettleFold:
    """The largest count received for every expected pair, folded in chunk by chunk (for
    :meth:`LiveCollector.settle_state`). Thread-safe; one per collector."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table: pd.DataFrame | None = None
        self._index: pd.MultiIndex | None = None
        self._need = np.zeros(0, dtype=np.int64)
        self._got = np.zeros(0, dtype=np.int64)
        self._folded = 0

    def update(self, table: pd.DataFrame, chunks: list[dict[str, np.ndarray]]) -> tuple[int, int, int]:
        """``(expected, answered, final)`` after folding the chunks not folded yet."""
        with self._lock:
            if table is not self._table:
                required = table[table["count_min"] > 0]
                self._table = table
                self._index = pd.MultiIndex.from_frame(required[PAIR_KEY])
                self._need = required["count_min"].to_numpy(dtype=np.int64)
                self._got = np.full(len(required), -1, dtype=np.int64)  # -1: no answer yet
                self._folded = 0
            for chunk in chunks[self._folded :]:
                self._fold(chunk)
            self._folded = len(chunks)
            return int(self._need.size), int((self._got >= 0).sum()), int((self._got >= self._need).sum())

    def _fold(self, chunk: dict[str, np.ndarray]) -> None:
        assert self._index is not None
        keys = pd.MultiIndex.from_arrays([chunk["user"], chunk["window_start"], chunk["window_end"]])
        position = self._index.get_indexer(keys)
        found = position >= 0  # flush records and pairs nobody expected are not looked for
        np.maximum.at(self._got, position[found], chunk["count"][found])


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
