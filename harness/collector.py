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
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from hdrh.histogram import HdrHistogram

from harness.stats import trend
from harness.workload import FLUSH_USER, Windows, user_id

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
