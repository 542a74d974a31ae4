"""The load generator against the real embedded broker: every planned record arrives once, byte for byte, at the
planned rate, the end-of-run records close every partition, and the oracle agrees with what is in the topic."""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from typing import Any

import pandas as pd
import pytest
from confluent_kafka import Consumer, TopicPartition
from kafka.partitioner.default import murmur2

from harness import workload
from harness.errors import ServiceError
from harness.kafka import create_topics
from harness.loadgen import EventPlan, GeneratorResult, iter_chunks, run_generator
from harness.loadgen.events import Encoder
from harness.analysis.judge import judge
from harness.analysis.oracle import expected_for_run
from harness.scenario import Scenario, parse_scenario
from tests.priority import lowest_nice_allowed

pytestmark = pytest.mark.integration

PARTITIONS = 4


def scenario(rate: str, duration: str, **producer: Any) -> Scenario:
    return parse_scenario(
        {
            "name": "gen-it",
            "duration": duration,
            "warmup": "1s",
            "load": {"rate": rate, "users": 500, "distribution": "zipf",
                     "disorder": {"fraction": 0.1, "max_delay": "900ms"}, "late": {"fraction": 0.001, "by": "10s"},
                     "payload_size": 120, "producer": producer},
            # hopping, 2 windows per event; small enough that a 3 s load measures the 3 windows a scenario needs
            "window": {"size": "500ms", "slide": "250ms", "watermark_delay": "1s"},
            "engines": ["x"],
        },
        check_engines=False,
    )


def read_topic(bootstrap: str, topic: str, expected: int) -> list[tuple[int, bytes, bytes]]:
    """Every record of ``topic`` as ``(partition, key, value)`` in offset order per partition."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"it-{uuid.uuid4()}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    records: list[tuple[int, bytes, bytes]] = []
    idle = 0
    try:
        while len(records) < expected and idle < 20:
            batch = consumer.consume(10_000, timeout=1.0)
            idle = 0 if batch else idle + 1
            for message in batch:
                assert message.error() is None, message.error()
                records.append((message.partition(), message.key(), message.value()))
    finally:
        consumer.close()
    return records


def check_run(bootstrap: str, sc: Scenario, topic: str, result: GeneratorResult) -> None:
    planned = EventPlan.from_scenario(sc, result.start_epoch_ms)
    assert result.events_sent == result.events_planned == planned.total_events
    records = read_topic(bootstrap, topic, planned.total_events + PARTITIONS)
    load = [(p, k, v) for p, k, v in records if k != workload.FLUSH_USER.encode()]
    flushes = [(p, json.loads(v)) for p, k, v in records if k == workload.FLUSH_USER.encode()]

    # every planned record exactly once, byte-identical to the regenerated events
    encoder = Encoder(sc.load.users, sc.load.payload_size)
    wanted: Counter[tuple[bytes, bytes]] = Counter()
    for batch in iter_chunks(planned):
        wanted.update(zip(*reversed(encoder.encode(batch.user, batch.ts, batch.seq))))
    assert Counter((k, v) for _, k, v in load) == wanted

    # a user always lands where the Java client (murmur2) puts it, whichever backend sent it
    assert all(p == (murmur2(k) & 0x7FFFFFFF) % PARTITIONS for p, k, _ in load)

    # one end-of-run record per partition, after all of that partition's load
    assert sorted(p for p, _ in flushes) == list(range(PARTITIONS))
    assert {f["ts"] for _, f in flushes} == {result.flush_ts}
    assert all(f["user"] == workload.FLUSH_USER and f["action"] == workload.FLUSH_ACTION for _, f in flushes)
    last_per_partition = {p: k for p, k, _ in records}
    assert set(last_per_partition.values()) == {workload.FLUSH_USER.encode()}

    # the oracle's counts are those of the records actually in the topic
    expected = expected_for_run(sc, result.start_epoch_ms)
    assert expected.events == len(load) and expected.late_events == result.late_events
    windows = workload.Windows(sc.window.size, sc.window.slide_ms, sc.window.watermark_delay)
    counts: Counter[tuple[str, int]] = Counter()
    for _, _, value in load:
        event = json.loads(value)
        for start in windows.starts_of(event["ts"]):
            counts[(event["user"], start)] += 1
    output = pd.DataFrame(
        [(user, start, start + windows.size_ms, n) for (user, start), n in counts.items()],
        columns=["user", "window_start", "window_end", "count"],
    )
    output = output.assign(append_ms=0, partition=0, offset=range(len(output)))
    diff = judge(output, expected, read_committed=False).correctness
    assert diff.correct and diff.exact == diff.expected and diff.late_dropped == 0
    assert int(expected.pairs["count_max"].sum()) == windows.per_event * len(load)


def test_20k_per_second_for_10_seconds_arrives_complete_and_on_rate(kafka_broker: str) -> None:
    sc = scenario("20k", "10s", backend="confluent", workers=1)
    topic = f"gen-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_broker, {topic: PARTITIONS})
    seen: list[int] = []
    result = run_generator(sc, kafka_broker, topic, progress=lambda p: seen.append(p.sent))

    assert result.events_planned == 200_000
    assert result.target_rate == pytest.approx(20_000)
    assert abs(result.achieved_rate / result.target_rate - 1) <= 0.01
    assert result.valid, result.reason  # the self-check passes when nothing else competes for the cores
    # load.producer.nice (-10 by default) is applied where the OS allows it, else left alone
    assert result.nice == (-10 if lowest_nice_allowed() <= -10 else os.getpriority(os.PRIO_PROCESS, 0))
    assert [s.target for s in result.seconds[:10]] == [20_000] * 10
    assert seen and seen == sorted(seen)
    check_run(kafka_broker, sc, topic, result)


def test_kafka_python_backend_with_two_workers(kafka_broker: str) -> None:
    sc = scenario("4k", "3s", backend="kafka-python", workers=2)
    topic = f"gen-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_broker, {topic: PARTITIONS})
    result = run_generator(sc, kafka_broker, topic)
    assert (result.backend, result.workers, result.events_planned) == ("kafka-python", 2, 12_000)
    check_run(kafka_broker, sc, topic, result)


def test_missing_topic_fails_before_the_load_with_a_hint(kafka_broker: str) -> None:
    with pytest.raises(ServiceError, match=r"topic 'no-such-topic' does not exist .* hint: create it"):
        run_generator(scenario("1k", "3s", backend="confluent", workers=2), kafka_broker, "no-such-topic")
