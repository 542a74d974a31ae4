"""Known truth for the arrived-late allowance (harness.analysis.arrival), through the real broker and collector: the test
forces an out-of-order arrival (it appends the input itself, partition by partition, in a chosen order), a test
engine (``arrival_dropper_job.py``, a real process reading and writing Kafka) drops exactly the events its
stated watermark rule makes late — or one more — and the harness's read-back, allowance and judge decide.

The forced input (2 s windows, D = 1 s; times relative to a window-aligned epoch):

    partition 0:  0.1 s, 0.5 s, then 4.0 s,            then 2.6 s (late behind its own partition's 4.0 s)
    partition 1:  0.2 s,                 then 2.5 s (late only against partition 0's 4.0 s), then 3.5 s
    end of run:   one record far ahead on each partition (closes every window)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Producer

from harness.analysis.arrival import WatermarkRule
from harness.run.collector import LiveCollector
from harness.analysis.input_delay import arrived_late, read_append_times
from harness.analysis.judge import judge
from harness.kafka import create_topics
from harness.analysis.oracle import expected_counts
from harness.workload import FLUSH_USER, Windows

pytestmark = pytest.mark.integration

JOB = Path(__file__).with_name("arrival_dropper_job.py")
WINDOW_MS, D_MS = 2_000, 1_000
T0 = 1_700_000_000_000  # a multiple of the window
USERS = ["u00000", "u00001", "u00002"]
PHASES = [  # one phase after another, each appended in a later millisecond: (partition, user index, ts − T0)
    [(0, 0, 100), (0, 0, 500), (1, 1, 200)],
    [(0, 0, 4_000)],
    [(1, 1, 2_500), (0, 2, 2_600)],
    [(1, 1, 3_500)],
]
EVENTS = [event for phase in PHASES for event in phase]


def force_input(bootstrap: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    seq = 0
    for phase in PHASES + [[(0, None, 20_000), (1, None, 20_000)]]:
        for partition, user, ts in phase:
            name = FLUSH_USER if user is None else USERS[user]
            number = seq if user is not None else len(EVENTS) + partition
            value = f'{{"user": "{name}", "action": "click", "ts": {T0 + ts}, "seq": {number}}}'
            producer.produce(topic, value.encode(), key=name.encode(), partition=partition)
            seq += user is not None
        assert producer.flush(10) == 0
        time.sleep(0.02)  # the next phase is appended in a later millisecond


@pytest.fixture(scope="module")
def forced_topic(kafka_broker: str) -> str:
    topic = "arrival-order-input"
    create_topics(kafka_broker, {topic: 2}, log_append_time=True, recreate=True)
    force_input(kafka_broker, topic)
    return topic


def judged(bootstrap: str, topic: str, *, engine_rule: str, judge_rule: str, one_more: bool = False) -> dict:
    """Run the dropper with ``engine_rule`` and judge its output with the harness under ``judge_rule``."""
    output = f"arrival-order-out-{engine_rule}-{judge_rule}-{int(one_more)}"
    create_topics(bootstrap, {output: 2}, log_append_time=True, recreate=True)
    command = [sys.executable, str(JOB), bootstrap, topic, output, "--rule", engine_rule,
               "--window-ms", str(WINDOW_MS), "--delay-ms", str(D_MS)] + (["--one-more"] if one_more else [])
    job = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert job.returncode == 0, job.stderr[-2_000:]
    collector = LiveCollector(bootstrap, output, read_committed=False)
    collector.start()
    seen, deadline = -1, time.monotonic() + 30
    while time.monotonic() < deadline:  # the job flushed before it exited: read until the count stops growing
        time.sleep(1.0)
        now = collector.snapshot().records
        if now == seen and now > 0:
            break
        seen = now
    collector.stop()

    windows = Windows(WINDOW_MS, WINDOW_MS, D_MS)
    user = np.array([u for _, u, _ in EVENTS])
    ts = np.array([T0 + t for _, _, t in EVENTS], dtype=np.int64)
    expected = expected_counts(user, ts, np.zeros(len(EVENTS), dtype=bool), users=len(USERS), windows=windows)
    times = read_append_times(bootstrap, topic)
    late = arrived_late(times, watermark_delay_ms=D_MS, total_events=len(EVENTS),
                        rule=WatermarkRule(judge_rule))  # type: ignore[arg-type]
    allowing = expected.allowing_arrived_late(times.user[late], times.ts[late], windows)
    correctness = judge(collector.frame(), allowing, read_committed=False).correctness
    return {"late": sorted((int(p), int(t) - T0) for p, t in zip(times.partition[late], times.ts[late])),
            "correct": correctness.correct, "wrong": correctness.wrong, "problems": correctness.problems}


def test_the_read_back_sees_the_forced_order(kafka_broker: str, forced_topic: str) -> None:
    times = read_append_times(kafka_broker, forced_topic)
    assert sorted(times.partition.tolist()) == [0] * 5 + [1] * 4  # 7 events and one end-of-run record each
    per_rule = {}
    for rule in ("global", "per-partition"):
        late = arrived_late(times, watermark_delay_ms=D_MS, total_events=len(EVENTS),
                            rule=WatermarkRule(rule))  # type: ignore[arg-type]
        per_rule[rule] = sorted((int(p), int(t) - T0) for p, t in zip(times.partition[late], times.ts[late]))
    assert per_rule == {"global": [(0, 2_600), (1, 2_500)], "per-partition": [(0, 2_600)]}


@pytest.mark.parametrize("rule", ["global", "per-partition"])
def test_an_engine_dropping_exactly_what_its_rule_makes_late_is_exact(kafka_broker: str, forced_topic: str,
                                                                      rule: str) -> None:
    result = judged(kafka_broker, forced_topic, engine_rule=rule, judge_rule=rule)
    assert result["correct"] is True, result["problems"]


@pytest.mark.parametrize("rule", ["global", "per-partition"])
def test_an_engine_dropping_one_event_more_is_wrong(kafka_broker: str, forced_topic: str, rule: str) -> None:
    result = judged(kafka_broker, forced_topic, engine_rule=rule, judge_rule=rule, one_more=True)
    assert result["correct"] is False and result["wrong"] + len(result["problems"]) >= 1, result


def test_a_per_partition_engine_is_not_excused_by_the_global_rule(kafka_broker: str, forced_topic: str) -> None:
    """The global rule's extra event (partition 1's 2.5 s, late only against partition 0) is not one a
    per-partition engine may drop: judged by its own rule, dropping it is wrong."""
    result = judged(kafka_broker, forced_topic, engine_rule="global", judge_rule="per-partition")
    assert result["correct"] is False, result
    assert [(p["user"], p["window_start"] - T0, p["count"], p["count_min"]) for p in result["problems"]] == [
        ("u00001", 2_000, 1, 2)]
