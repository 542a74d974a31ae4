"""Reading a whole topic back: result records with their broker timestamps, or raw input records for checks."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from harness.kafka.clientlog import client_logger


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    timestamp_ms: int
    """The record's timestamp: broker append time on result topics (``LogAppendTime``)."""
    timestamp_type: int
    """confluent_kafka.TIMESTAMP_LOG_APPEND_TIME (2) or TIMESTAMP_CREATE_TIME (1)."""
    key: bytes | None
    value: bytes


def consumer(bootstrap: str, *, read_committed: bool = False, quiet: bool = True) -> Consumer:
    """A consumer with its own throwaway group that commits nothing (readers assign partitions themselves)."""
    config = {
        "bootstrap.servers": bootstrap,
        "group.id": f"bench-reader-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        # The longest the broker holds a fetch that finds no data. It answers a held fetch as soon as data becomes
        # readable (an append, or for read_committed the commit marker), so this only bounds a missed wake-up.
        # Measured for the collector's receive time after a commit (3 x 40 commits each, see
        # harness.run.collector.VISIBILITY_ERROR_MS): 10 ms gave p50 2-9 ms and single commits 49-85 ms late; 50 ms and
        # 500 ms gave p50 1.4-7.6 ms, max 27 ms. A shorter wait only adds empty fetches.
        "fetch.wait.max.ms": 50,
        # Prefetch up to 1M records (still capped by queued.max.messages.kbytes, 64 MB): the default 100k made
        # the reader wait on fetches; reading 1M result records went from ~160k to ~490k records/s
        # (`bench perf collector`, docs/results.md).
        "queued.min.messages": 1_000_000,
        "logger": client_logger(),  # librdkafka's log lines to the run's log, not the terminal
    }
    if quiet:
        config["log_level"] = 3
    return Consumer(config)


def end_offsets(bootstrap: str, topic: str, *, read_committed: bool = False) -> dict[int, int]:
    """High watermark (or last stable offset, read_committed) of every partition."""
    client = consumer(bootstrap, read_committed=read_committed)
    try:
        partitions = client.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: client.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    finally:
        client.close()


def iter_batches(
    bootstrap: str,
    topic: str,
    *,
    read_committed: bool = False,
    until: Callable[[], bool] | None = None,
    idle_timeout: float = 2.0,
    poll_batch: int = 10_000,
) -> Iterator[list[Message]]:
    """Every record of ``topic`` from the beginning, as lists of confluent-kafka messages (errors removed: the
    end of a partition is skipped, any other error raises). Stops once every partition's position reached the
    end offset seen at the start (or nothing arrived for ``idle_timeout`` seconds: a transactional topic ends in a
    commit marker a read_committed consumer never receives), and ``until`` (if given) is true."""
    client = consumer(bootstrap, read_committed=read_committed)
    try:
        partitions = client.list_topics(topic, timeout=10).topics[topic].partitions
        client.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        targets = end_offsets(bootstrap, topic, read_committed=read_committed)
        position = {p: 0 for p in partitions}
        last_data = time.monotonic()
        while True:
            messages = client.consume(poll_batch, timeout=0.2)
            data = []
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise RuntimeError(f"reading {topic}: {error}")
                position[message.partition()] = message.offset() + 1  # markers are skipped: see idle below
                data.append(message)
            if data:
                yield data
            if messages:
                last_data = time.monotonic()
            idle = time.monotonic() - last_data > idle_timeout
            caught_up = all(position[p] >= targets[p] for p in targets) or idle
            done_waiting = until is None or until()
            if caught_up and done_waiting and (until is None or idle):
                return
    finally:
        client.close()


def iter_records(
    bootstrap: str,
    topic: str,
    *,
    read_committed: bool = False,
    until: Callable[[], bool] | None = None,
    idle_timeout: float = 2.0,
    poll_batch: int = 10_000,
) -> Iterator[Record]:
    """Every record of ``topic`` from the beginning, one :class:`Record` each; when it stops: :func:`iter_batches`."""
    for batch in iter_batches(bootstrap, topic, read_committed=read_committed, until=until,
                              idle_timeout=idle_timeout, poll_batch=poll_batch):
        for message in batch:
            ts_type, ts = message.timestamp()
            yield Record(message.partition(), message.offset(), ts, ts_type, message.key(), message.value())


def read_json_records(bootstrap: str, topic: str, *, read_committed: bool = False) -> list[dict]:
    """Every record of ``topic`` as its decoded JSON object plus ``_partition``, ``_offset``, ``_timestamp``."""
    rows = []
    for record in iter_records(bootstrap, topic, read_committed=read_committed):
        row = json.loads(record.value)
        row.update(_partition=record.partition, _offset=record.offset, _timestamp=record.timestamp_ms)
        rows.append(row)
    return rows
