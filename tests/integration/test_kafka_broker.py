"""The embedded broker for real: produce/consume round-trip, LogAppendTime result topics, external mode, and no
broker process left after stop or after the process that started it is killed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from harness.errors import ServiceError
from harness.kafka import EmbeddedKafka, create_topics, topic_config
from harness.run.kafka_service import kafka_service
from harness.kafka.admin import probe
from harness.scenario import KafkaConfig

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def sigint_as_in_a_terminal() -> None:
    """In the child before exec: SIGINT back to its default, so the child's Python turns it into
    KeyboardInterrupt even when this test runs in a background job (where SIGINT is inherited as ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 30) -> list:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=int(timeout_s * 1000))
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    records = []
    for record in consumer:
        records.append(record)
        if len(records) >= expected:
            break
    consumer.close()
    return records


def test_round_trip_with_kafka_python(kafka_broker: str) -> None:
    create_topics(kafka_broker, {"roundtrip": 3})
    producer = KafkaProducer(bootstrap_servers=kafka_broker)
    sent = [{"user": f"u{i % 7:05d}", "seq": i} for i in range(300)]
    for event in sent:
        producer.send("roundtrip", key=event["user"].encode(), value=json.dumps(event).encode())
    producer.flush()
    producer.close()
    records = consume_all(kafka_broker, "roundtrip", len(sent))
    assert sorted(json.loads(r.value)["seq"] for r in records) == list(range(300))
    by_user = {}
    for record in records:
        by_user.setdefault(record.key, set()).add(record.partition)
    assert all(len(partitions) == 1 for partitions in by_user.values())  # keyed: one partition per user


def test_result_topic_reports_log_append_time(kafka_broker: str) -> None:
    create_topics(kafka_broker, {"results": 2}, log_append_time=True)
    assert topic_config(kafka_broker, "results")["message.timestamp.type"] == "LogAppendTime"
    producer = KafkaProducer(bootstrap_servers=kafka_broker)
    a_day_ago_ms = int(time.time() * 1000) - 86_400_000
    before = int(time.time() * 1000)
    producer.send("results", value=b"{}", timestamp_ms=a_day_ago_ms)  # the broker must override it
    producer.flush()
    after = int(time.time() * 1000)
    producer.close()
    [record] = consume_all(kafka_broker, "results", 1)
    assert record.timestamp_type == 1  # 1 = LogAppendTime in kafka-python
    assert before - 1000 <= record.timestamp <= after + 1000


def test_create_topics_refuses_an_existing_topic_unless_told_to_recreate_it(kafka_broker: str) -> None:
    create_topics(kafka_broker, {"fresh": 1})
    producer = KafkaProducer(bootstrap_servers=kafka_broker)
    producer.send("fresh", value=b"old")
    producer.flush()
    producer.close()
    with pytest.raises(ServiceError, match="topic fresh already exists on .*does not delete a topic it did not create"):
        create_topics(kafka_broker, {"fresh": 4})
    consumer = KafkaConsumer(bootstrap_servers=kafka_broker)
    assert len(consumer.partitions_for_topic("fresh")) == 1  # left as found
    consumer.close()
    create_topics(kafka_broker, {"fresh": 4}, recreate=True)
    consumer = KafkaConsumer(bootstrap_servers=kafka_broker)
    assert len(consumer.partitions_for_topic("fresh")) == 4
    ends = consumer.end_offsets([TopicPartition("fresh", p) for p in range(4)])
    consumer.close()
    assert sum(ends.values()) == 0


def test_external_mode_uses_the_cluster_and_never_stops_it(kafka_broker: str, tmp_path: Path) -> None:
    with kafka_service(KafkaConfig(bootstrap=kafka_broker), tmp_path) as endpoint:
        assert endpoint.bootstrap == kafka_broker and endpoint.mode == "external"
        assert endpoint.processes() == []  # not ours
        create_topics(endpoint.bootstrap, {"external": 1})
    assert probe(kafka_broker) == 1  # still up after the context ends
    assert not (tmp_path / "broker.log").exists()  # nothing was started


def broker_processes(work_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "kafka.Kafka" in cmdline and str(work_dir) in cmdline:
            found.append(proc)
    return found


def test_stop_leaves_no_broker_process(tmp_path: Path) -> None:
    broker = EmbeddedKafka(tmp_path).start()
    assert broker_processes(tmp_path)
    broker.stop()
    assert broker_processes(tmp_path) == []
    assert "Kafka Server started" in (tmp_path / "broker.log").read_text()  # the log is kept with the run


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_no_broker_survives_its_harness(tmp_path: Path, sig: signal.Signals) -> None:
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from harness.kafka import EmbeddedKafka
        with EmbeddedKafka(Path({str(tmp_path)!r})) as broker:
            print("READY", broker.bootstrap, flush=True)
            time.sleep(600)
        """
    )
    harness = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                               preexec_fn=sigint_as_in_a_terminal, cwd=ROOT)
    try:
        assert harness.stdout is not None
        assert harness.stdout.readline().startswith("READY")
        assert broker_processes(tmp_path)
        harness.send_signal(sig)
        harness.wait(timeout=60)
        deadline = time.monotonic() + 30
        while broker_processes(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert broker_processes(tmp_path) == []
    finally:
        if harness.poll() is None:
            harness.kill()
        for proc in broker_processes(tmp_path):
            proc.kill()
