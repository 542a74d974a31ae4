"""The input path's own delay on the real broker (issue 11 item 9): the real generator drives a load into an input
topic created as the runner creates it (LogAppendTime), the topic is read back, and every load event is found
once, timed against its intended send time on the broker's clock. Broker only, no engine."""

from __future__ import annotations

import math

import numpy as np
import pytest
from confluent_kafka import Producer

from harness.input_delay import read_append_times, summarize_input_delay
from harness.kafka import create_topics, topic_config
from harness.loadgen import run_generator
from harness.loadgen.schedule import RateSchedule
from harness.scenario import parse_scenario

pytestmark = pytest.mark.integration

PARTITIONS = 2


def small_scenario(bootstrap: str):  # noqa: ANN201 - a Scenario
    """8 s at 2k/s (2 s warm-up) over 50 users, 1 s windows: 16,000 events."""
    return parse_scenario({
        "name": "input-delay",
        "duration": "8s",
        "warmup": "2s",
        "load": {"rate": "2k", "users": 50},
        "window": {"size": "1s", "watermark_delay": "200ms"},
        "kafka": {"bootstrap": bootstrap, "partitions": PARTITIONS},
        "engines": ["calibration"],
    }, source="test_input_delay_kafka")


def test_every_load_event_is_timed_from_its_intended_send_to_its_append(kafka_broker: str) -> None:
    scenario = small_scenario(kafka_broker)
    topic = "input-delay-in"
    create_topics(kafka_broker, {topic: PARTITIONS}, log_append_time=True)  # as the runner creates input topics
    assert topic_config(kafka_broker, topic)["message.timestamp.type"] == "LogAppendTime"
    generator = run_generator(scenario, kafka_broker, topic)

    times = read_append_times(kafka_broker, topic)
    schedule = RateSchedule.from_load(scenario.load, scenario.duration)
    assert times.not_append_time == 0 and times.unreadable == 0
    # every load event once, plus one end-of-run record per partition
    assert np.array_equal(np.sort(times.seq), np.arange(schedule.total_events + PARTITIONS))
    summary = summarize_input_delay(times, schedule, load_start_ms=generator.start_epoch_ms,
                                    warmup_ms=scenario.warmup)
    measured = schedule.total_events - math.ceil(float(schedule.cumulative(scenario.warmup)) - 1e-9)
    assert summary.events + summary.negative == measured
    assert summary.negative == 0  # one host: the broker's clock is the generator's
    delay = summary.delay_ms
    assert 0 <= delay["p50"] <= delay["p99"] <= delay["max"]
    # an append follows its send: the input path's worst delay includes the worst publish delay (whole ms)
    assert delay["max"] >= math.floor(generator.publish_delay_ms["max"]) * 0.99


def test_records_without_append_time_are_counted_not_timed(kafka_broker: str) -> None:
    topic = "input-delay-create-time"
    create_topics(kafka_broker, {topic: 1})  # CreateTime: not a topic the runner made
    producer = Producer({"bootstrap.servers": kafka_broker})
    for seq in range(10):
        producer.produce(topic, f'{{"user": "u1", "action": "click", "ts": 1, "seq": {seq}}}'.encode())
    assert producer.flush(10) == 0
    times = read_append_times(kafka_broker, topic)
    assert times.not_append_time == 10 and times.seq.size == 0
