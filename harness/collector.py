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

**Bad records.** Collection never stops on input. A genuine record is one UTF-8 JSON object with exactly the
fields ``user`` (a non-empty string), ``window_start``, ``window_end``, ``count`` (JSON integers, not floats such
as 17.0 or 17.9, not booleans, not strings, within 0 .. 2^53, and ``window_end > window_start``; whether the
window exists is judged later, where an unknown window is "extra"). Any other record is counted under the first
kind of :data:`BAD_KINDS` that applies, its raw value is kept when it is among the first :data:`BAD_SAMPLES` bad
records or the first of its kind (truncated to :data:`BAD_SAMPLE_BYTES`, non-printable characters escaped), and
the genuine records of the same batch are kept as usual. Duplicate keys in one object: the last one wins, as in
most JSON readers. If the reader thread dies anyway (a consumer error raised, a fatal consumer error, a bug),
``snapshot().failed`` says why.

The rest of the module is pure functions on that frame (unit tested on hand-made records):

* :func:`pair_outcomes` — per (window, user): the engine's answer is its *last* record (ordered by partition
  offset; a pair always lands on one partition because the key is the user, so offsets order its updates), the
  pair's status against the oracle, the first moment the final answer was visible, and both latencies:
  result latency = that moment − ``window_end``; event-time latency = that moment − the largest ``ts`` among
  the pair's on-time input events (Karimov et al.).
* :func:`latency_histogram` — HdrHistogram of milliseconds; negative values (clock trouble) cannot go into it
  and are counted apart, never clamped.
* :func:`measured_mask` — which windows count: ``warmup_end < window_end`` and ``window_end + D <= load_end``.
  Windows ending in the warm-up are excluded; a window the load's own events cannot close (its end + D lies
  after the last intended send time) is closed by the end-of-run flush records, whose event time jumps ahead,
  so its latency says nothing about the engine (its correctness is still checked).
* :func:`per_second_series` and :func:`sustained` — the run-time series and the trend check.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd
from hdrh.histogram import HdrHistogram

from harness.stats import trend
from harness.workload import FLUSH_USER, OUTPUT_FIELDS, Windows, user_id

RECORD_COLUMNS = ("user", "window_start", "window_end", "count", "append_ms", "receive_ms", "partition", "offset")
"""Columns of :meth:`LiveCollector.frame`; times in epoch milliseconds (``append_ms`` the broker's,
``receive_ms`` the collector's wall clock when the consumer handed the record over)."""

HISTOGRAM_LOWEST_MS = 1
HISTOGRAM_HIGHEST_MS = 7 * 24 * 3_600_000
"""Latency histograms cover 0 ms .. 7 days at 3 significant digits (values above are counted as overflow)."""
HISTOGRAM_DIGITS = 3

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


# ------------------------------------------------------------------------------------------------ record checks
MAX_RESULT_INT = 2**53
"""Largest window bound or count accepted: the largest integer every JSON reader holds exactly."""

BAD_KINDS: dict[str, str] = {
    "empty": "the record has no value (empty or a tombstone)",
    "not_json": "the value is not UTF-8 JSON (or is nested too deeply to read)",
    "several_values": "two or more JSON values in one record (apart by whitespace or a comma), e.g. two objects",
    "not_object": "the JSON value is not an object (an array, number, string, true/false or null)",
    "missing_field": "one of user, window_start, window_end, count is absent",
    "extra_field": "a field other than user, window_start, window_end, count is present",
    "bad_user": "user is not a non-empty string of valid Unicode",
    "window_not_integer": "window_start or window_end is not a JSON integer (float, string, boolean, null, ...)",
    "window_out_of_range": "window_start or window_end is below 0 or above 2^53",
    "window_not_ordered": "window_end is not after window_start",
    "count_not_integer": "count is not a JSON integer (17.9 and 17.0 are floats; true, \"17\" and null are not numbers)",
    "count_out_of_range": "count is below 0 or above 2^53",
}
"""Kinds of bad record, in the order they are checked (a record is counted under the first that applies)."""

BAD_SAMPLES = 5
"""Raw values kept: the first this many bad records, plus the first of every other kind."""
BAD_SAMPLE_BYTES = 200
"""Bytes of a bad record's value kept in its sample."""

Columns = tuple[list[str], np.ndarray, np.ndarray, np.ndarray]
"""Parsed genuine records: users, window_start, window_end, count (int64 arrays)."""

_FIELDS = itemgetter(*OUTPUT_FIELDS)
_FIRST_BYTE = itemgetter(0)
_OPEN_BRACE = ord("{")
_DECODER = json.JSONDecoder()
_JSON_WHITESPACE = " \t\n\r"
_SEPARATOR = re.compile(r"[ \t\n\r]*(?:,[ \t\n\r]*)?")


def visible_ms(append_ms: np.ndarray, receive_ms: np.ndarray, *, read_committed: bool) -> np.ndarray:
    """When a result record became visible to a consumer of the result topic, epoch ms: its broker append time,
    or for transactional output read ``read_committed`` the later of append and the collector's receive time
    (the commit made it readable; see the module docstring for the error bound)."""
    return np.maximum(append_ms, receive_ms) if read_committed else np.asarray(append_ms)


def parse_batch(values: list[bytes]) -> Columns | None:
    """Fast path for a batch in which every value is a genuine result record spelled as engines write it
    (starting with ``{``): one ``json.loads`` for all and column-wise checks. None when any value is not genuine
    or starts otherwise (then :func:`classify_record` judges each); columns it returns are exactly what
    :func:`classify_record` gives record by record."""
    # Values are joined by "\n,". A raw newline cannot stand inside a JSON string, so no value can leak into the
    # next through an open string; every value must start with "{", and an accepted row is a flat object, so
    # each joining comma is followed by an object and sits between two array elements, never inside an object.
    # N values then give N rows only if each value holds exactly one object: success means one record each.
    if set(map(_FIRST_BYTE, values)) != {_OPEN_BRACE}:
        return None
    try:
        rows = json.loads(b"[" + b"\n,".join(values) + b"]")
    except (ValueError, RecursionError):
        return None
    if len(rows) != len(values) or set(map(type, rows)) != {dict} or set(map(len, rows)) != {len(OUTPUT_FIELDS)}:
        return None
    try:
        users = [row["user"] for row in rows]
        starts = [row["window_start"] for row in rows]
        ends = [row["window_end"] for row in rows]
        counts = [row["count"] for row in rows]
    except KeyError:
        return None
    if set(map(type, users)) != {str} or set(map(type, starts + ends + counts)) != {int} or not all(users):
        return None
    try:
        "".join(users).encode("utf-8")  # a lone surrogate ("\ud800") is valid JSON but not text
        start, end, count = (np.array(column, dtype=np.int64) for column in (starts, ends, counts))
    except (UnicodeEncodeError, OverflowError):
        return None
    if not (_in_range(start) and _in_range(end) and _in_range(count) and bool((end > start).all())):
        return None
    return users, start, end, count


def classify_record(value: bytes | None) -> tuple[str, None] | tuple[None, tuple[str, int, int, int]]:
    """``(kind, None)`` for a bad record (a key of :data:`BAD_KINDS`), ``(None, (user, window_start,
    window_end, count))`` for a genuine one (the slow path: one record at a time)."""
    if not value:
        return "empty", None
    try:
        text = value.decode("utf-8", "surrogatepass").strip(_JSON_WHITESPACE)
        obj, end = _DECODER.raw_decode(text)
    except (ValueError, RecursionError):
        return "not_json", None
    if end != len(text):
        return ("several_values" if _more_values(text, end) else "not_json"), None
    if type(obj) is not dict:
        return "not_object", None
    if any(name not in obj for name in OUTPUT_FIELDS):
        return "missing_field", None
    if len(obj) != len(OUTPUT_FIELDS):
        return "extra_field", None
    user, start, stop, count = _FIELDS(obj)
    if type(user) is not str or not user or not _is_text(user):
        return "bad_user", None
    if type(start) is not int or type(stop) is not int:
        return "window_not_integer", None
    if not (0 <= start <= MAX_RESULT_INT and 0 <= stop <= MAX_RESULT_INT):
        return "window_out_of_range", None
    if stop <= start:
        return "window_not_ordered", None
    if type(count) is not int:
        return "count_not_integer", None
    if not 0 <= count <= MAX_RESULT_INT:
        return "count_out_of_range", None
    return None, (user, start, stop, count)


def _more_values(text: str, position: int) -> bool:
    """Whether ``text[position:]`` is one or more further JSON values, each after whitespace or one comma."""
    while True:
        position = _SEPARATOR.match(text, position).end()  # type: ignore[union-attr]  # matches the empty string
        try:
            _, position = _DECODER.raw_decode(text, position)
        except (ValueError, RecursionError):
            return False
        if position == len(text):
            return True


def _in_range(values: np.ndarray) -> bool:
    return bool((values >= 0).all() and (values <= MAX_RESULT_INT).all())


def _is_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _classify_each(values: list[bytes]) -> tuple[Columns, list[int], list[tuple[int, str]]]:
    """Slow path: every value judged on its own; the genuine ones as columns with their indices, the bad ones
    as (index, kind)."""
    rows: list[tuple[str, int, int, int]] = []
    keep: list[int] = []
    bad: list[tuple[int, str]] = []
    for index, value in enumerate(values):
        kind, row = classify_record(value)
        if row is None:
            bad.append((index, kind))  # type: ignore[arg-type]
        else:
            rows.append(row)
            keep.append(index)
    users = [row[0] for row in rows]
    start, end, count = (np.array([row[i] for row in rows], dtype=np.int64) for i in (1, 2, 3))
    return (users, start, end, count), keep, bad


def sample_value(value: bytes | None) -> str:
    """A bad record's value for the report: its first :data:`BAD_SAMPLE_BYTES` bytes as text, invalid UTF-8
    as ``\\xNN`` and non-printable characters escaped, so it is safe in JSON, Markdown and a terminal."""
    text = (value or b"")[:BAD_SAMPLE_BYTES].decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


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
    """Records that are not a genuine result record (see :data:`BAD_KINDS`); they are counted and skipped."""
    bad_by_kind: dict[str, int]
    """``bad_records`` split by kind (only kinds seen)."""
    bad_samples: list[dict[str, Any]]
    """Raw values of some bad records, in arrival order: ``kind``, ``value`` (see :func:`sample_value`),
    ``bytes`` (the value's full length), ``partition``, ``offset``."""
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
            columns, keep, bad = _classify_each(values)
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
        self._remember((visible - chunk["window_end"])[~flush].astype(np.float64))

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

        ``expected`` is the oracle's :class:`~harness.oracle.Expected` (or its ``pairs`` frame: columns
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


# ------------------------------------------------------------------------------------------------ max ts
def max_ts_per_pair(
    user: np.ndarray, ts: np.ndarray, late: np.ndarray, *, users: int, windows: Windows
) -> pd.DataFrame:
    """The largest on-time ``ts`` of every (window, user), vectorised: columns ``user, window_start,
    window_end, max_ts`` (user as its id string, like the oracle's pairs). ``user`` is the user index, ``late``
    the deliberately-late flag of each event (late events arrive after their window is final, so they do not
    move the moment a result can be final; pairs with only late events get no row)."""
    keys, top = _bucket_max(np.asarray(user, np.int64), np.asarray(ts, np.int64), np.asarray(late, bool), users, windows)
    return _windows_max(keys, top, users, windows)


def max_ts_for_run(scenario: Any, start_epoch_ms: int) -> pd.DataFrame:
    """:func:`max_ts_per_pair` over a run's events, regenerated the way the generator and the oracle make them
    (slice by slice, so memory stays at one slice's events plus one row per (slide bucket, user))."""
    from harness.loadgen.events import EventPlan, iter_chunks

    window = scenario.window
    windows = Windows(window.size, window.slide_ms, window.watermark_delay)
    users = scenario.load.users
    keys_parts, top_parts = [], []
    for batch in iter_chunks(EventPlan.from_scenario(scenario, start_epoch_ms)):
        keys, top = _bucket_max(batch.user, batch.ts, batch.late, users, windows)
        keys_parts.append(keys)
        top_parts.append(top)
    if not keys_parts:
        return _windows_max(np.zeros(0, np.int64), np.zeros(0, np.int64), users, windows)
    keys, top = _reduce_max(np.concatenate(keys_parts), np.concatenate(top_parts))
    return _windows_max(keys, top, users, windows)


def _reduce_max(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys (sorted) and the largest value of each."""
    if keys.size == 0:
        return keys, values
    order = np.lexsort((values, keys))
    keys, values = keys[order], values[order]
    last = np.flatnonzero(np.append(keys[1:] != keys[:-1], True))
    return keys[last], values[last]


def _bucket_max(
    user: np.ndarray, ts: np.ndarray, late: np.ndarray, users: int, windows: Windows
) -> tuple[np.ndarray, np.ndarray]:
    # Every event of a slide bucket [b, b+S) lies in the same windows, so the maximum is taken per
    # (bucket, user) first and only buckets go through the window assignment (as the oracle counts).
    on_time = ~late
    bucket = np.floor_divide(ts[on_time], windows.slide_ms)
    return _reduce_max(bucket * users + user[on_time], ts[on_time])


def _windows_max(keys: np.ndarray, top: np.ndarray, users: int, windows: Windows) -> pd.DataFrame:
    bucket_start = (keys // users) * windows.slide_ms
    rows, starts = windows.assign(bucket_start)
    window_keys, window_top = _reduce_max((starts // windows.slide_ms) * users + (keys % users)[rows], top[rows])
    window_start = (window_keys // users) * windows.slide_ms
    names = user_id(np.arange(users), users) if users else np.zeros(0, dtype=object)
    return pd.DataFrame(
        {
            "user": np.asarray(names, dtype=object)[window_keys % users] if window_keys.size else np.zeros(0, object),
            "window_start": window_start,
            "window_end": window_start + windows.size_ms,
            "max_ts": window_top,
        }
    )


# ------------------------------------------------------------------------------------------------ per pair
PAIR_COLUMNS = (
    "window_start",
    "window_end",
    "user",
    "count_min",
    "count_max",
    "got",
    "records",
    "final_records",
    "visible_ms",
    "result_latency_ms",
    "event_time_latency_ms",
    "status",
)
"""pairs.csv.gz: one row per (window, user) expected or answered; see :func:`pair_outcomes`."""

PAIR_KEY = ["user", "window_start", "window_end"]


def pair_outcomes(records: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per (window, user) that was expected or answered (columns :data:`PAIR_COLUMNS`).

    ``pairs`` is the oracle's table (:attr:`harness.oracle.Expected.pairs`: ``user, window_start, window_end,
    count_min, count_max``) with, for event-time latency, ``max_ts`` (:func:`max_ts_per_pair`).

    * ``got`` — the engine's answer: its last record for the pair by partition offset (NaN: none written);
    * ``records`` — records written for the pair; ``final_records`` — those carrying the final answer
      (more than one is a duplicate delivery);
    * ``visible_ms`` — broker time of the first record carrying the final answer (epoch ms);
    * ``result_latency_ms`` = ``visible_ms − window_end``; ``event_time_latency_ms`` = ``visible_ms − max_ts``;
      given for exact answered pairs only (a wrong answer has no "correct final count" to time);
    * ``status`` — as the oracle's diff defines them: ``exact`` (answer within ``[count_min, count_max]``, or
      nothing written where only late events fell), ``wrong``, ``missing``, ``extra`` (a pair no event
      belongs to).

    Records of :data:`~harness.workload.FLUSH_USER` are ignored.
    """
    recs = records[records["user"] != FLUSH_USER]
    recs = recs.astype({"window_start": np.int64, "window_end": np.int64, "count": np.int64})
    recs = recs.sort_values(["partition", "offset"], kind="stable")
    grouped = recs.groupby(PAIR_KEY, sort=False)
    answers = grouped.agg(got=("count", "last"), records=("count", "size")).reset_index()
    with_final = recs.merge(answers[PAIR_KEY + ["got"]], on=PAIR_KEY, how="left")
    final = with_final[with_final["count"] == with_final["got"]]
    firsts = (
        final.groupby(PAIR_KEY, sort=False)
        .agg(visible_ms=("append_ms", "first"), final_records=("count", "size"))
        .reset_index()
    )
    answers = answers.merge(firsts, on=PAIR_KEY, how="left")

    columns = PAIR_KEY + ["count_min", "count_max"] + (["max_ts"] if "max_ts" in pairs.columns else [])
    out = pairs[columns].merge(answers, on=PAIR_KEY, how="outer", indicator=True)
    if "max_ts" not in out.columns:
        out["max_ts"] = np.nan
    known = (out["_merge"] != "right_only").to_numpy()
    answered = (out["_merge"] != "left_only").to_numpy()
    low = out["count_min"].fillna(0).astype(np.int64)
    high = out["count_max"].fillna(0).astype(np.int64)
    got = out["got"]
    in_range = ((got >= low) & (got <= high)).to_numpy()
    out["status"] = np.select(
        [~known, ~answered & (low.to_numpy() == 0), ~answered, in_range],
        ["extra", "exact", "missing", "exact"],
        default="wrong",
    )
    timed = (out["status"] == "exact").to_numpy() & answered
    out["count_min"], out["count_max"] = low, high
    out["records"] = out["records"].fillna(0).astype(np.int64)
    out["final_records"] = out["final_records"].fillna(0).astype(np.int64)
    out["result_latency_ms"] = (out["visible_ms"] - out["window_end"]).where(timed)
    out["event_time_latency_ms"] = (out["visible_ms"] - out["max_ts"]).where(timed)
    out = out.sort_values(["window_start", "user"], kind="stable").reset_index(drop=True)
    return out[list(PAIR_COLUMNS)]


def correctness_from_pairs(pairs: pd.DataFrame, *, late_made: int, windows_per_event: int) -> dict[str, Any]:
    """The oracle's diff counts (:meth:`harness.oracle.Diff.summary` keys) recomputed from
    :func:`pair_outcomes`, for when no diff is at hand (the runner passes the oracle's own)."""
    status = pairs["status"]
    required = pairs["count_min"] > 0
    late_rows = (pairs["count_max"] > pairs["count_min"]) & (status != "extra")
    counted = (pairs["got"].fillna(pairs["count_min"]).clip(pairs["count_min"], pairs["count_max"]) - pairs["count_min"])
    dropped = float(((pairs["count_max"] - pairs["count_min"]) - counted)[late_rows].sum()) / windows_per_event
    wrong = status == "wrong"
    nearest = pairs["got"].clip(pairs["count_min"], pairs["count_max"])
    duplicated = pairs["final_records"] > 1
    counts = {kind: int((status == kind).sum()) for kind in ("missing", "extra", "wrong")}
    return {
        "expected": int(required.sum()),
        "exact": int((required & (status == "exact")).sum()),
        **counts,
        "wrong_difference_sum": int((pairs["got"] - nearest)[wrong].sum()),
        "duplicated": int(duplicated.sum()),
        "duplicate_records": int((pairs["final_records"] - 1)[duplicated].sum()),
        "late_made": int(late_made),
        "late_dropped": dropped,
        "records": int(pairs["records"].sum()),
        "correct": counts["missing"] == 0 and counts["wrong"] == 0 and counts["extra"] == 0,
        "problems": [],
    }


def measured_mask(
    window_end: pd.Series | np.ndarray, warmup_end_ms: int, load_end_ms: int, watermark_delay_ms: int = 0
) -> np.ndarray:
    """Windows whose latency counts: ending after the warm-up, and closed by the load's own events (end + D no
    later than the end of the load), not by the end-of-run flush records."""
    ends = np.asarray(window_end, dtype=np.int64)
    return (ends > warmup_end_ms) & (ends + watermark_delay_ms <= load_end_ms)


# ------------------------------------------------------------------------------------------------ histograms
@dataclass(frozen=True)
class HistogramResult:
    histogram: HdrHistogram
    """Non-negative values, ms."""
    negative: int
    """Values below 0 (not recorded: they mean the clocks disagree)."""
    overflow: int
    """Values above :data:`HISTOGRAM_HIGHEST_MS` (not recorded)."""


def new_histogram() -> HdrHistogram:
    return HdrHistogram(HISTOGRAM_LOWEST_MS, HISTOGRAM_HIGHEST_MS, HISTOGRAM_DIGITS)


def latency_histogram(values: np.ndarray | pd.Series) -> HistogramResult:
    """Record integer-millisecond latencies (NaN skipped); negatives and overflow are counted apart."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    ints = np.rint(arr).astype(np.int64)
    negative = int((ints < 0).sum())
    overflow = int((ints > HISTOGRAM_HIGHEST_MS).sum())
    histogram = new_histogram()
    fine = ints[(ints >= 0) & (ints <= HISTOGRAM_HIGHEST_MS)]
    uniques, counts = np.unique(fine, return_counts=True)
    for value, count in zip(uniques.tolist(), counts.tolist()):
        histogram.record_value(value, count)
    return HistogramResult(histogram, negative, overflow)


PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def histogram_percentiles(histogram: HdrHistogram) -> dict[str, float | None]:
    """``p50, p90, p99, p99_9, max, mean`` in ms; None for an empty histogram."""
    keys = ("p50", "p90", "p99", "p99_9")
    if histogram.get_total_count() == 0:
        return {key: None for key in (*keys, "max", "mean")}
    out: dict[str, float | None] = {
        key: float(histogram.get_value_at_percentile(p)) for key, p in zip(keys, PERCENTILES)
    }
    out["max"] = float(histogram.get_max_value())
    out["mean"] = float(histogram.get_mean_value())
    return out


# ------------------------------------------------------------------------------------------------ series
SERIES_COLUMNS = (
    "second",
    "target_rate",
    "achieved_rate",
    "results_per_s",
    "processed_rate_output",
    "processed_rate_engine",
    "latency_p50_ms",
    "latency_p99_ms",
)
"""series.csv: one row per wall second since the load started (``second`` 0 = first second of load)."""


def per_second_series(
    load_start_ms: int,
    records: pd.DataFrame,
    pairs: pd.DataFrame,
    *,
    measured: np.ndarray,
    per_event: int,
    generator_series: pd.DataFrame | None = None,
    engine_series: pd.DataFrame | None = None,
    min_seconds: int = 0,
) -> pd.DataFrame:
    """The per-second series (columns :data:`SERIES_COLUMNS`).

    * ``target_rate``, ``achieved_rate`` (events/s) — from the generator (columns ``second, target, achieved``).
    * ``results_per_s`` — result records that became visible in that second.
    * ``processed_rate_output`` (events/s) — how far the output advanced: the increase of each pair's count
      (its first record counts in full) summed over records visible in that second, divided by the windows
      per event. Equals the input rate when the engine keeps up; lower when it falls behind.
    * ``processed_rate_engine`` — the engine's own metric (columns ``second, processed``), if it has one.
    * ``latency_p50_ms``, ``latency_p99_ms`` — result latency of the measured exact pairs whose final answer
      became visible in that second (exact percentiles, not a histogram: a second holds few pairs).
    """
    recs = records[records["user"] != FLUSH_USER].sort_values(["partition", "offset"], kind="stable")
    second = np.floor_divide(recs["append_ms"].to_numpy() - load_start_ms, 1000)
    increments = recs.groupby(["window_start", "user"], sort=False)["count"].diff()
    increments = increments.fillna(recs["count"]).to_numpy()
    frame = pd.DataFrame({"second": second, "inc": increments})
    by_second = frame.groupby("second").agg(results_per_s=("inc", "size"), inc=("inc", "sum"))
    by_second["processed_rate_output"] = by_second.pop("inc") / per_event

    timed = pairs.loc[measured & pairs["result_latency_ms"].notna().to_numpy()]
    lat_second = np.floor_divide(timed["visible_ms"].to_numpy() - load_start_ms, 1000)
    lat = pd.DataFrame({"second": lat_second, "lat": timed["result_latency_ms"].to_numpy()})
    lat_stats = lat.groupby("second")["lat"].quantile([0.5, 0.99]).unstack()
    lat_stats.columns = ["latency_p50_ms", "latency_p99_ms"] if len(lat_stats.columns) == 2 else lat_stats.columns

    last = [min_seconds - 1]
    for part in (by_second.index, lat_stats.index):
        if len(part):
            last.append(int(max(part)))
    if generator_series is not None and len(generator_series):
        last.append(int(generator_series["second"].max()))
    seconds = pd.RangeIndex(0, max(last) + 1, name="second")
    out = pd.DataFrame(index=seconds)
    if generator_series is not None and len(generator_series):
        gen = generator_series.set_index("second")
        out["target_rate"] = gen["target"].reindex(seconds)
        out["achieved_rate"] = gen["achieved"].reindex(seconds)
    else:
        out["target_rate"] = np.nan
        out["achieved_rate"] = np.nan
    by_second = by_second[by_second.index >= 0]
    out["results_per_s"] = by_second["results_per_s"].reindex(seconds).fillna(0).astype(np.int64)
    out["processed_rate_output"] = by_second["processed_rate_output"].reindex(seconds).fillna(0.0)
    if engine_series is not None and len(engine_series):
        out["processed_rate_engine"] = engine_series.set_index("second")["processed"].reindex(seconds)
    else:
        out["processed_rate_engine"] = np.nan
    for column in ("latency_p50_ms", "latency_p99_ms"):
        out[column] = lat_stats[column].reindex(seconds) if column in lat_stats else np.nan
    return out.reset_index()[list(SERIES_COLUMNS)]


# ------------------------------------------------------------------------------------------------ sustained
@dataclass(frozen=True)
class SustainedCheck:
    """Whether the engine kept up: the trend of result latency over the measured windows.

    The median result latency of each measured window is fitted with a least-squares line against
    ``window_end``. The run is **not sustained** when the fitted latency grows, from the first measured
    window to the last, by more than ``max(window size, 50 % of the fitted latency at the first window)``:
    an engine that keeps up has flat latency whatever its level; one that processes slower than the input
    falls behind linearly and its latency grows with the run. With fewer than 3 measured windows the check
    cannot be made (``sustained`` is None).
    """

    sustained: bool | None
    slope_ms_per_s: float | None
    """Fitted latency growth per second of event time (ms/s)."""
    start_ms: float | None
    """Fitted latency at the first measured window, ms."""
    growth_ms: float | None
    """Fitted latency at the last measured window minus at the first, ms."""
    threshold_ms: float | None
    """Growth above which the run is not sustained, ms."""
    windows: int
    """Measured windows with at least one timed pair."""


def sustained(window_end: np.ndarray, latency_ms: np.ndarray, window_size_ms: int) -> SustainedCheck:
    """Apply the :class:`SustainedCheck` rule to per-pair (window_end, result latency) of measured pairs."""
    frame = pd.DataFrame({"end": np.asarray(window_end, dtype=np.int64), "lat": np.asarray(latency_ms, float)})
    frame = frame[np.isfinite(frame["lat"])]
    per_window = frame.groupby("end")["lat"].median()
    fit = trend(per_window.index.to_numpy() / 1000.0, per_window.to_numpy())
    if fit is None:
        return SustainedCheck(None, None, None, None, None, int(per_window.size))
    threshold = max(float(window_size_ms), 0.5 * max(fit.start, 0.0))
    return SustainedCheck(
        sustained=not fit.growth > threshold,
        slope_ms_per_s=fit.slope,
        start_ms=fit.start,
        growth_ms=fit.growth,
        threshold_ms=threshold,
        windows=fit.points,
    )


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def mean_over(series: pd.Series | None, mask: Mapping[int, bool] | np.ndarray | None = None) -> float | None:
    """Mean of the finite values of ``series`` (optionally where ``mask``), None when there is none."""
    if series is None:
        return None
    values = series.to_numpy(dtype=np.float64)
    if mask is not None:
        values = values[np.asarray(mask, dtype=bool)]
    values = values[np.isfinite(values)]
    return _finite_or_none(values.mean()) if values.size else None
