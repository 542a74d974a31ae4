"""The input path's own delay on the real broker (issue 11 item 9): the real generator drives a load into an input
topic created as the runner creates it (LogAppendTime), the topic is read back, and every load event is found
once, timed against its intended send time on the broker's clock. Broker only, no engine."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from confluent_kafka import Producer

from harness.analysis.input_delay import arrived_late, read_append_times, summarize_input_delay
from harness.kafka import create_topics, topic_config
from harness.loadgen import run_generator
from harness.loadgen.events import EventPlan, iter_chunks
from harness.loadgen.schedule import RateSchedule
from harness.scenario import parse_scenario
from harness.workload import user_id

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
    # each record's user and event time are read back as the generator made them (the arrival check needs both)
    batches = list(iter_chunks(EventPlan.from_scenario(scenario, generator.start_epoch_ms)))
    made_ts = np.concatenate([b.ts for b in batches])
    made_user = np.concatenate([user_id(b.user, scenario.load.users) for b in batches])
    load = times.seq < schedule.total_events
    assert np.array_equal(times.ts[load], made_ts[times.seq[load]])
    assert np.array_equal(times.user[load].astype(str), made_user[times.seq[load]])
    # a healthy load path delivers nothing below the watermark
    assert not arrived_late(times, watermark_delay_ms=scenario.window.watermark_delay,
                            total_events=schedule.total_events).any()


def test_an_event_appended_behind_a_much_newer_one_arrived_late(kafka_broker: str) -> None:
    topic = "input-delay-arrival-order"
    create_topics(kafka_broker, {topic: 1}, log_append_time=True)
    producer = Producer({"bootstrap.servers": kafka_broker})
    t0 = 1_700_000_000_000
    # seq 0 is 5 s newer than seq 1, which is appended after it (a backlog behind newer events)
    for seq, ts in ((0, t0 + 5_000), (1, t0), (2, t0 + 4_900)):
        producer.produce(topic, f'{{"user": "u00007", "action": "click", "ts": {ts}, "seq": {seq}}}'.encode())
        assert producer.flush(10) == 0
        time.sleep(0.01)  # a later append millisecond for each
    times = read_append_times(kafka_broker, topic)
    late = arrived_late(times, watermark_delay_ms=200, total_events=3)
    assert dict(zip(times.seq.tolist(), late.tolist())) == {0: False, 1: True, 2: False}
    assert times.user.tolist() == ["u00007"] * 3


def test_records_without_append_time_are_counted_not_timed(kafka_broker: str) -> None:
    topic = "input-delay-create-time"
    create_topics(kafka_broker, {topic: 1})  # CreateTime: not a topic the runner made
    producer = Producer({"bootstrap.servers": kafka_broker})
    for seq in range(10):
        producer.produce(topic, f'{{"user": "u1", "action": "click", "ts": 1, "seq": {seq}}}'.encode())
    assert producer.flush(10) == 0
    times = read_append_times(kafka_broker, topic)
    assert times.not_append_time == 10 and times.seq.size == 0
