"""Benchmarks of the harness's own Kafka paths, against the embedded broker (``bench perf ...``).

- ``producer``: the generator's producer path against Kafka's own ``kafka-producer-perf-test``. Both run in one
  invocation against the same broker, on fresh topics with the same partition count, the same record size, the
  same acks/linger, one after the other (never concurrently on a 2-core machine), so the ratio says whether the
  generator could ever be the bottleneck of a run.
- ``collector``: how many result records per second the live collector takes in from a real result topic
  (consume + parse + store), and how long its end-of-run frame takes: it must keep up with the fastest engine.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness import workload

from harness.infra import jvm
from harness.run.collector import LiveCollector
from harness.errors import ServiceError
from harness.kafka import EmbeddedKafka, create_topics
from harness.loadgen import producer_perf
from harness.loadgen.producer import make_backend

_SUMMARY = re.compile(r"(\d+) records sent, ([0-9.]+) records/sec")


@dataclass(frozen=True)
class ProducerComparison:
    records: int
    record_size: int
    partitions: int
    linger_ms: int
    kafka_perf_rps: float
    """kafka-producer-perf-test (org.apache.kafka.tools.ProducerPerformance), Java client defaults, records/s."""
    kafka_perf_big_batch_rps: float
    """The same with ``batch.size`` = 1 MB, librdkafka's default batch size: like-for-like batching."""
    generator_rps: dict[str, float]
    """This generator's producer path per backend (pre-encoded records), records/s."""
    generator_encoding_rps: dict[str, float]
    """The same including event generation + JSON encoding per record, records/s."""

    def lines(self) -> list[str]:
        out = [
            f"records={self.records:,} record_size={self.record_size} B partitions={self.partitions} "
            f"acks=all linger={self.linger_ms} ms",
            f"{'kafka-producer-perf-test':40} {self.kafka_perf_rps:>12,.0f} records/s   1.00x",
            f"{'kafka-producer-perf-test batch.size=1MB':40} {self.kafka_perf_big_batch_rps:>12,.0f} records/s   "
            f"{self.kafka_perf_big_batch_rps / self.kafka_perf_rps:.2f}x",
        ]
        for backend, rps in self.generator_rps.items():
            out.append(f"{'generator ' + backend + ' (pre-encoded)':40} {rps:>12,.0f} records/s   "
                       f"{rps / self.kafka_perf_rps:.2f}x")
        for backend, rps in self.generator_encoding_rps.items():
            out.append(f"{'generator ' + backend + ' (encode + send)':40} {rps:>12,.0f} records/s   "
                       f"{rps / self.kafka_perf_rps:.2f}x")
        return out


def kafka_producer_perf(
    bootstrap: str, topic: str, records: int, record_size: int, linger_ms: int, *extra_props: str
) -> float:
    """Run ProducerPerformance from the cached kafka-tools jar; return its records/s."""
    java = jvm.find_java()
    classpath = ":".join(str(path) for path in jvm.classpath("kafka"))
    command = [
        str(java), "-Xmx512m", "-cp", classpath, "org.apache.kafka.tools.ProducerPerformance",
        "--topic", topic, "--num-records", str(records), "--record-size", str(record_size), "--throughput", "-1",
        "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all", f"linger.ms={linger_ms}",
        "enable.idempotence=true", "compression.type=none", *extra_props,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    summaries = [m for m in _SUMMARY.finditer(done.stdout)]
    if done.returncode != 0 or not summaries:
        raise ServiceError(f"ProducerPerformance failed (exit {done.returncode}): {(done.stdout + done.stderr)[-800:]}")
    return float(summaries[-1].group(2))


def compare_producers(
    records: int = 2_000_000,
    record_size: int = 100,
    partitions: int = 4,
    linger_ms: int = 5,
    backends: tuple[str, ...] = ("confluent", "kafka-python"),
    work_dir: Path | None = None,
) -> ProducerComparison:
    """Start an embedded broker, run ProducerPerformance and then the generator's backends on fresh topics."""
    work_dir = work_dir or Path(tempfile.mkdtemp(prefix="bench-perf-"))
    with EmbeddedKafka(work_dir) as broker:
        create_topics(broker.bootstrap, {"perf-kafka": partitions})
        kafka_rps = kafka_producer_perf(broker.bootstrap, "perf-kafka", records, record_size, linger_ms)
        create_topics(broker.bootstrap, {"perf-kafka": partitions}, recreate=True)  # our own embedded broker
        kafka_big_rps = kafka_producer_perf(broker.bootstrap, "perf-kafka", records, record_size, linger_ms,
                                            "batch.size=1048576")
        ours: dict[str, float] = {}
        ours_encoding: dict[str, float] = {}
        for backend in backends:
            # kafka-python is much slower: a tenth of the records keeps its run short without changing the rate
            count = records if backend == "confluent" else max(records // 10, 10_000)
            topic = f"perf-{backend}"
            create_topics(broker.bootstrap, {topic: partitions})
            ours[backend] = producer_perf(broker.bootstrap, topic, count, record_size, partitions,
                                          backend=backend, linger_ms=linger_ms)
            create_topics(broker.bootstrap, {topic: partitions}, recreate=True)
            ours_encoding[backend] = producer_perf(broker.bootstrap, topic, count, record_size, partitions,
                                                   backend=backend, linger_ms=linger_ms, include_encoding=True)
    return ProducerComparison(records, record_size, partitions, linger_ms, kafka_rps, kafka_big_rps, ours,
                              ours_encoding)


@dataclass(frozen=True)
class CollectorMeasurement:
    records: int
    partitions: int
    ingest_rps: float
    """Result records/s from the collector's start to the last record in its columns (consume + parse + store)."""
    frame_s: float
    """Seconds for :meth:`LiveCollector.frame` over all of them (done once, after the drain)."""
    produce_rps: float
    """Records/s the result records were written at beforehand (for scale; not the collector)."""
    not_append_time: int
    """Records read without a LogAppendTime timestamp (must be 0: the topic is created as a result topic)."""
    bad_records: int
    """Records the collector could not parse (must be 0)."""

    def lines(self) -> list[str]:
        return [
            f"records={self.records:,} partitions={self.partitions} (result topic, LogAppendTime)",
            f"{'collector ingest from the broker':40} {self.ingest_rps:>12,.0f} records/s",
            f"{'collector frame() after the drain':40} {self.frame_s:>12.2f} s",
            f"{'writing them (confluent producer)':40} {self.produce_rps:>12,.0f} records/s",
        ]


def result_records(records: int, users: int = 10_000, window_ms: int = 10_000) -> tuple[list[bytes], list[bytes]]:
    """``records`` result records in the engines' output format: ``users`` users per window, windows in order,
    keyed by user like the engines write them."""
    base = 1_764_072_000_000
    values, keys = [], []
    for i in range(records):
        user = workload.user_id(i % users, users)
        start = base + (i // users) * window_ms
        values.append(json.dumps(workload.result_record(user, start, start + window_ms, 1 + i % 97)).encode())
        keys.append(user.encode())
    return values, keys


def measure_collector(
    records: int = 1_000_000,
    partitions: int = 4,
    *,
    bootstrap: str | None = None,
    work_dir: Path | None = None,
    timeout_s: float = 600.0,
) -> CollectorMeasurement:
    """Fill a fresh LogAppendTime topic with ``records`` result records, then time a :class:`LiveCollector`
    reading them from the beginning: the same consumer settings and code path as in a run. Uses ``bootstrap`` when
    given, else an embedded broker."""
    if bootstrap is None:
        with EmbeddedKafka(work_dir or Path(tempfile.mkdtemp(prefix="bench-perf-"))) as broker:
            return measure_collector(records, partitions, bootstrap=broker.bootstrap, timeout_s=timeout_s)
    topic = "perf-results"
    create_topics(bootstrap, {topic: partitions}, log_append_time=True)
    values, keys = result_records(records)
    producer = make_backend("confluent", bootstrap, topic, linger_ms=5)
    try:
        started = time.perf_counter()
        for i in range(0, records, 10_000):
            producer.send(values[i : i + 10_000], keys[i : i + 10_000])
        producer.flush(300.0)
        produce_rps = records / (time.perf_counter() - started)
    finally:
        producer.close()

    live = LiveCollector(bootstrap, topic, read_committed=False)
    started = time.perf_counter()
    live.start()
    try:
        while True:
            snap = live.snapshot()
            if snap.error is not None:
                raise ServiceError(f"collector failed while measuring: {snap.error}")
            if snap.records >= records:
                break
            if time.perf_counter() - started > timeout_s:
                raise ServiceError(f"collector read {snap.records:,} of {records:,} records in {timeout_s:g} s")
            time.sleep(0.005)
        ingest_s = time.perf_counter() - started
    finally:
        live.stop()
    snap = live.snapshot()
    started = time.perf_counter()
    frame = live.frame()
    frame_s = time.perf_counter() - started
    if len(frame) != records:
        raise ServiceError(f"collector frame has {len(frame):,} rows, expected {records:,}")
    return CollectorMeasurement(records, partitions, records / ingest_s, frame_s, produce_rps, snap.not_append_time,
                                snap.bad_records)
