"""The windowed click count in plain Python: ``python -m harness.engines.jobs.python_count_job --spec FILE``.

The job of the ``calibration`` engine (:mod:`harness.engines.python_count`) and of the test engines whose truth
is known (``tests/engines.py``). One process, no JVM: a confluent-kafka consumer, dictionaries, a producer. Its
capacity is the load path's own ceiling (generator + broker + collector) and its result latency − D the
harness's own latency floor.

How it realises the contract of :mod:`harness.workload`
    - Source: every partition of the input topic, assigned (no consumer group) from the beginning; the harness
      creates the topic fresh and empty. Records are consumed in batches of up to :data:`BATCH`; a batch's
      values are parsed with one ``json.loads`` of ``[v1,v2,...]`` (per record only if that fails).
    - Windows: :class:`~harness.workload.Windows`, epoch-aligned. Events are counted per (slide bucket, user):
      every event of the bucket ``[b, b + S)`` lies in the same windows, and a window's count is the sum of its
      W/S buckets when it becomes final.
    - Watermark: **per partition, the smallest wins** (as Flink's): the smallest, over the input partitions that
      have delivered a record, of the largest ``ts`` read from each, − D; advanced after each consumed batch (a
      batch is counted against the watermark as it stood before it, as Spark's micro-batches are). Not Spark's
      one watermark over all partitions: a job that falls behind reads its backlog partition by partition, and
      with the largest ``ts`` of any partition the others' events turned late (46,676 events dropped in an 80k/s
      run that lagged 24 s); with the smallest, falling behind shows as latency only. The end-of-run records
      reach every partition, so the last windows close too.
    - A window is final when ``watermark >= end``; its (window, user) counts are then written once (append).
      An event is counted in those of its windows that are not final yet; an event all of whose windows are
      final is dropped (late).
    - Records of :data:`~harness.workload.FLUSH_USER` are not counted (their ``ts`` still moves the watermark),
      so no result is written for them; Spark and Flink count them, but their windows never close either.
    - Output: key = user, value = :func:`~harness.workload.result_record` as compact JSON.

Deviations from the contract: none in what is counted. Parallelism is 1 whatever the scenario says.

Knobs (``spec.settings``), all off by default and read only by the test engines (the calibration engine's
settings expose none): ``delay_ms`` holds every result that long after its window became final;
``capacity`` caps consumption at that many records/s (token bucket); ``wrong_every`` adds 1 to every Nth
result's count; ``malformed`` writes, with each final window, one bad record of each listed kind
(:data:`MALFORMED_KINDS`) for a genuine pair, before the pair's genuine record; ``transactional`` writes each
window's results in one Kafka transaction, committed ``commit_delay_ms`` after the writes.

Side channels: the line :data:`READY_MARKER` once every input partition is assigned and a first poll returned;
``settings.metrics_file`` gets ``{"t_ms", "rows", "late_dropped", "results", "watermark_ms"}`` about once a
second (rows = input records consumed so far); with ``transactional``, ``settings.transactions_file`` gets one
``{"window_start", "window_end", "records", "final_ms", "write_ms", "commit_ms"}`` line per window (epoch ms).
"""

from __future__ import annotations

import argparse
import heapq
import json
import signal
import sys
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from harness.workload import FLUSH_USER, JobSpec, Windows, result_record

READY_MARKER = "BENCH_READY"
"""Printed on a line of its own once the job reads the input topic; the engine waits for it."""
BATCH = 10_000
"""Most records taken from the consumer at once."""
POLL_TIMEOUT_S = 0.02
"""Longest wait for a batch: at low rates this bounds the delay a record waits in the consumer."""
METRICS_EVERY_S = 1.0

MALFORMED_KINDS = (
    "not-json",
    "empty",
    "user-object",
    "window-start-string",
    "count-null",
    "count-float",
    "missing-field",
    "extra-field",
    "two-objects",
)
"""Bad result records the ``malformed`` knob can write. ``two-objects`` is ``{...},{...}``: one Kafka record
holding two JSON objects separated by a comma (a reader that joins values with commas sees two records)."""


# ------------------------------------------------------------------------------------------------ counting
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


# ------------------------------------------------------------------------------------------------ output
_quote = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]  # json.dumps' own string encoder


def encode_result(user: str, start: int, end: int, count: int) -> bytes:
    """One result record value: :func:`~harness.workload.result_record` as compact JSON, byte for byte what
    ``json.dumps(result_record(...), separators=(",", ":"))`` writes (a unit test holds them equal) at a fraction
    of its cost: json.dumps took ~11 µs per record on the 2-core development machine, this ~1 µs."""
    return f'{{"user":{_quote(user)},"window_start":{start},"window_end":{end},"count":{count}}}'.encode()


def malformed_value(kind: str, user: str, start: int, end: int, count: int) -> bytes:
    """A bad result record of ``kind`` (:data:`MALFORMED_KINDS`) about the pair (``user``, window)."""
    record: dict[str, Any] = result_record(user, start, end, count)
    if kind == "not-json":
        return b"not json {"
    if kind == "empty":
        return b""
    if kind == "two-objects":
        one = json.dumps(record, separators=(",", ":")).encode()
        return one + b"," + one
    changes: dict[str, Callable[[dict[str, Any]], None]] = {
        "user-object": lambda r: r.update(user={"id": user}),
        "window-start-string": lambda r: r.update(window_start=str(start)),
        "count-null": lambda r: r.update(count=None),
        "count-float": lambda r: r.update(count=count + 0.5),
        "missing-field": lambda r: r.pop("count"),
        "extra-field": lambda r: r.update(extra="not a result field"),
    }
    if kind not in changes:
        raise ValueError(f"unknown malformed kind {kind!r}; one of {', '.join(MALFORMED_KINDS)}")
    changes[kind](record)
    return json.dumps(record, separators=(",", ":")).encode()


@dataclass
class _Due:
    window: FinalWindow
    final_ms: int
    due_ms: int


class ResultWriter:
    """Writes final windows to the output topic. With the default knobs it writes at once; ``delay_ms`` holds a
    window until ``final_ms + delay_ms``; ``transactional`` writes each window in a transaction committed
    ``commit_delay_ms`` later (one transaction open at a time: later windows wait for the commit).

    :meth:`submit` is called for each window that became final, :meth:`pump` on every turn of the job's loop,
    :meth:`close` on stop. ``producer`` is a confluent-kafka Producer (a fake in unit tests)."""

    def __init__(
        self,
        producer: Any,
        topic: str,
        *,
        delay_ms: int = 0,
        wrong_every: int | None = None,
        malformed: Iterable[str] = (),
        transactional: bool = False,
        commit_delay_ms: int = 0,
        transactions_log: TextIO | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.delay_ms = delay_ms
        self.wrong_every = wrong_every
        self.malformed = tuple(malformed)
        self.transactional = transactional
        self.commit_delay_ms = commit_delay_ms
        self.transactions_log = transactions_log
        self.clock_ms = clock_ms
        self.results = 0
        """Genuine result records written."""
        self._queue: deque[_Due] = deque()
        self._open: dict[str, Any] | None = None
        """The transaction written but not committed yet (its log line, with ``commit_due_ms``)."""
        self._direct = delay_ms == 0 and not transactional

    def submit(self, windows: list[FinalWindow], final_ms: int) -> None:
        """Windows that became final at ``final_ms`` (epoch ms): write now, or queue them."""
        if self._direct:
            for window in windows:
                self._write(window)
            self.producer.flush()
            return
        self._queue.extend(_Due(window, final_ms, final_ms + self.delay_ms) for window in windows)
        self.pump()

    def pump(self) -> None:
        """Commit an open transaction whose delay has passed; write the queued windows that are due."""
        now = self.clock_ms()
        if self._open is not None and now >= self._open["commit_due_ms"]:
            self._commit()
        while self._queue and self._queue[0].due_ms <= now and self._open is None:
            due = self._queue.popleft()
            if not self.transactional:
                self._write(due.window)
                self.producer.flush()
                continue
            self.producer.begin_transaction()
            records = self._write(due.window)
            self.producer.flush()
            write_ms = self.clock_ms()
            self._open = {"window_start": due.window.start, "window_end": due.window.end, "records": records,
                          "final_ms": due.final_ms, "write_ms": write_ms,
                          "commit_due_ms": write_ms + self.commit_delay_ms}
            if self.commit_delay_ms == 0:
                self._commit()
        self.producer.poll(0)

    def close(self, timeout: float = 5.0) -> None:
        """Flush what was written; an uncommitted transaction is aborted (the run is over)."""
        if self._open is not None:
            self.producer.abort_transaction(timeout)
            self._open = None
        self.producer.flush(timeout)

    def _commit(self) -> None:
        assert self._open is not None
        self.producer.commit_transaction()
        line = {key: value for key, value in self._open.items() if key != "commit_due_ms"}
        line["commit_ms"] = self.clock_ms()
        self._open = None
        if self.transactions_log is not None:
            self.transactions_log.write(json.dumps(line) + "\n")
            self.transactions_log.flush()

    def _write(self, window: FinalWindow) -> int:
        """Produce one window's records (malformed ones first, then the genuine ones); returns genuine records."""
        start, end = window.start, window.end
        if self.malformed and window.counts:
            user, count = next(iter(window.counts.items()))
            for kind in self.malformed:
                self._produce(user.encode(), malformed_value(kind, user, start, end, count))
        every = self.wrong_every
        for user, count in window.counts.items():
            self.results += 1
            if every is not None and self.results % every == 0:
                count += 1
            self._produce(user.encode(), encode_result(user, start, end, count))
        return len(window.counts)

    def _produce(self, key: bytes, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(self.topic, value=value, key=key)
                return
            except BufferError:  # the local queue is full: send it now (linger would hold it), then retry
                self.producer.flush()


class TokenBucket:
    """At most ``rate`` records per second on average, in bursts of at most ``burst``: the ``capacity`` knob.
    :meth:`allowance` is asked before each consume, :meth:`take` told what was consumed."""

    def __init__(self, rate: float, *, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.burst = max(1.0, burst if burst is not None else self.rate / 20)
        self.clock = clock
        self._tokens = self.burst
        self._last = clock()

    def allowance(self) -> int:
        """Records that may be consumed now (0: wait :meth:`wait_s` first)."""
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        return int(self._tokens)

    def take(self, count: int) -> None:
        self._tokens -= count

    def wait_s(self) -> float:
        """Seconds until one more record may be consumed."""
        return max(0.0, (1.0 - self._tokens) / self.rate)


# ------------------------------------------------------------------------------------------------ the loop
class CountJob:
    """The running job: consume a batch, count, hand final windows to the writer, write metrics. ``run`` loops
    until :meth:`stop` (called from the TERM handler)."""

    def __init__(self, spec: JobSpec, consumer: Any, writer: ResultWriter, metrics: TextIO | None) -> None:
        self.spec = spec
        self.consumer = consumer
        self.writer = writer
        self.metrics = metrics
        self.counter = WindowCounter(spec.windows)
        capacity = spec.settings.get("capacity")
        self.bucket = TokenBucket(capacity) if capacity else None
        self.rows = 0
        """Input records consumed so far."""
        self.bad_input = 0
        self._stopping = False
        self._next_metrics = 0.0

    def stop(self) -> None:
        self._stopping = True

    def run(self) -> None:
        while not self._stopping:
            self.step()
        self.write_metrics()

    def step(self) -> None:
        """One turn: consume up to :data:`BATCH` records (fewer under ``capacity``), count them, write."""
        want = BATCH
        if self.bucket is not None:
            want = min(BATCH, self.bucket.allowance())
            if want < 1:
                time.sleep(min(self.bucket.wait_s(), POLL_TIMEOUT_S))
                self.writer.pump()
                return
        messages = self._take(want)
        if self.bucket is not None:
            self.bucket.take(len(messages))
        records = [m for m in messages if m.error() is None and m.value() is not None]
        if records:
            self.rows += len(records)
            users, ts, kept = parse_batch([m.value() for m in records])
            if kept is not None:
                self.bad_input += len(records) - len(kept)
                records = [records[i] for i in kept]
            final = self.counter.process(users, ts, [m.partition() for m in records])
            if final:
                self.writer.submit(final, int(time.time() * 1000))
        self.writer.pump()
        if time.monotonic() >= self._next_metrics:
            self._next_metrics = time.monotonic() + METRICS_EVERY_S
            self.write_metrics()

    def _take(self, want: int) -> list[Any]:
        """Up to ``want`` records: wait for the first (``poll`` returns as soon as one is there, where
        ``consume(n)`` would wait for n or the timeout), then take what else is already fetched."""
        first = self.consumer.poll(POLL_TIMEOUT_S)
        if first is None:
            return []
        if want == 1:
            return [first]
        return [first, *self.consumer.consume(want - 1, timeout=0)]

    def write_metrics(self) -> None:
        if self.metrics is None:
            return
        sample = {"t_ms": int(time.time() * 1000), "rows": self.rows, "late_dropped": self.counter.late_dropped,
                  "results": self.writer.results, "watermark_ms": self.counter.watermark,
                  "bad_input": self.bad_input}
        self.metrics.write(json.dumps(sample) + "\n")
        self.metrics.flush()


def _consumer(spec: JobSpec) -> Any:
    """A consumer assigned to every input partition from the beginning (no group: nothing is committed)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": spec.bootstrap,
        "group.id": f"bench-python-count-{uuid.uuid4().hex[:8]}",  # required by the client; never joined
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 10,
        "queued.min.messages": 1_000_000,
        "log_level": 3,
    })
    topic = consumer.list_topics(spec.input_topic, timeout=30).topics[spec.input_topic]
    if topic.error is not None or not topic.partitions:
        raise RuntimeError(f"input topic {spec.input_topic}: {topic.error or 'no partitions'}")
    consumer.assign([TopicPartition(spec.input_topic, p, OFFSET_BEGINNING) for p in sorted(topic.partitions)])
    return consumer


def _producer(spec: JobSpec) -> Any:
    from confluent_kafka import Producer

    # A window's results are produced in one burst and sent by the flush() after it (flush ignores linger.ms):
    # a few large requests. A short linger instead sent a 10,000-record window in many small requests that the
    # loaded broker appended over 0.4-2 s (linger 5 ms / 1 ms); with the flush they land within ~50 ms.
    config = {"bootstrap.servers": spec.bootstrap, "linger.ms": 1000, "log_level": 3}
    if spec.settings.get("transactional"):
        config["transactional.id"] = spec.settings["transactional_id"]
    producer = Producer(config)
    if spec.settings.get("transactional"):
        producer.init_transactions(30)
    return producer


def run(spec_path: Path) -> int:
    spec = JobSpec.from_json(json.loads(spec_path.read_text()))
    settings = spec.settings
    consumer = _consumer(spec)
    producer = _producer(spec)
    metrics_file = settings.get("metrics_file")
    transactions_file = settings.get("transactions_file") if settings.get("transactional") else None
    with (open(metrics_file, "a", encoding="utf-8") if metrics_file else _Null()) as metrics, \
         (open(transactions_file, "a", encoding="utf-8") if transactions_file else _Null()) as transactions:
        writer = ResultWriter(
            producer, spec.output_topic,
            delay_ms=int(settings.get("delay_ms") or 0),
            wrong_every=settings.get("wrong_every"),
            malformed=settings.get("malformed") or (),
            transactional=bool(settings.get("transactional")),
            commit_delay_ms=int(settings.get("commit_delay_ms") or 0),
            transactions_log=transactions,
        )
        job = CountJob(spec, consumer, writer, metrics)
        signal.signal(signal.SIGTERM, lambda signum, frame: job.stop())
        signal.signal(signal.SIGINT, lambda signum, frame: job.stop())
        job.step()  # a first poll: the assignment is active
        print(READY_MARKER, flush=True)
        job.run()
        print(f"stopping: {job.rows} records consumed, {writer.results} results written, "
              f"{job.counter.late_dropped} late events dropped", flush=True)
        writer.close()
    consumer.close()
    return 0


class _Null:
    """Stands in for an absent side-channel file in ``with``."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, required=True, help="JobSpec JSON written by the engine")
    args = parser.parse_args(argv)
    return run(args.spec)


if __name__ == "__main__":
    sys.exit(main())
