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

This module holds the consume loop, the ``capacity`` throttle and the side channels; the counting state is
:mod:`harness.engines.jobs.python_count_state`, the output side (result records, the malformed ones, the writer
with the ``delay_ms``, ``wrong_every`` and ``transactional`` knobs) :mod:`harness.engines.jobs.python_count_output`.

Knobs (``spec.settings``), all off by default and read only by the test engines (the calibration engine's
settings expose none): ``delay_ms`` holds every result that long after its window became final;
``capacity`` caps consumption at that many records/s (token bucket); ``wrong_every`` adds 1 to every Nth
result's count; ``malformed`` writes, with each final window, one bad record of each listed kind
(:data:`~harness.engines.jobs.python_count_output.MALFORMED_KINDS`) for a genuine pair, before the pair's
genuine record; ``transactional`` writes each window's results in one Kafka transaction, committed
``commit_delay_ms`` after the writes.

Side channels: the line :data:`READY_MARKER` once every input partition is assigned and a first poll returned;
``settings.metrics_file`` gets ``{"t_ms", "rows", "late_dropped", "results", "watermark_ms"}`` about once a
second (rows = input records consumed so far); with ``transactional``, ``settings.transactions_file`` gets one
``{"window_start", "window_end", "records", "final_ms", "write_ms", "commit_ms"}`` line per window (epoch ms).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from harness.engines.jobs.python_count_output import ResultWriter
from harness.engines.jobs.python_count_state import WindowCounter, parse_batch
from harness.workload import JobSpec

READY_MARKER = "BENCH_READY"
"""Printed on a line of its own once the job reads the input topic; the engine waits for it."""
BATCH = 10_000
"""Most records taken from the consumer at once."""
POLL_TIMEOUT_S = 0.02
"""Longest wait for a batch: at low rates this bounds the delay a record waits in the consumer."""
METRICS_EVERY_S = 1.0


# ------------------------------------------------------------------------------------------------ throttle
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
