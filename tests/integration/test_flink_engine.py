"""Both Flink engines end to end: real broker, real Flink, a small hand-built event set, exact counts.

One job per (engine, windows) runs once per module (fixtures) and the tests look at its output from several sides.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import pytest
from confluent_kafka import OFFSET_BEGINNING, Producer, TopicPartition

from harness import workload
from harness.engines.base import FAIRNESS_KEYS, EngineContext, Setting, normalise_fairness
from harness.engines.flink import FlinkEngine, FlinkPythonEngine
from harness.errors import EngineError
from harness.kafka import create_topics
from harness.kafka.consume import consumer
from harness.analysis.judge import judge
from harness.analysis.oracle import expected_counts
from tests.integration.listening import Listener, ListenerSampler, assert_loopback_only

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 2
USERS = 4
T0 = 1_764_072_000_000  # a multiple of every window size below
DELAY_MS = 2_000
TUMBLING = workload.Windows(10_000, 10_000, DELAY_MS)
HOPPING = workload.Windows(10_000, 5_000, DELAY_MS)
READY_TIMEOUT = 240.0
RESULT_TIMEOUT = 90.0
SAMPLE_FOR_S = 12.0
"""Listening sockets are sampled at least this long after the events are sent: Python workers and late-opened
servers show up in this time."""


def events() -> list[dict[str, Any]]:
    """42 events over 4+ tumbling windows, in send order; every third is sent 1.5 s late (< D: on time)."""
    out = []
    for seq in range(42):
        intended = T0 + seq * 900
        disorder = 1_500 if seq % 3 == 2 else 0
        user = workload.user_id((seq * 7) % USERS, USERS)
        out.append({"user": user, "action": workload.ACTION, "ts": intended - disorder, "seq": seq})
    return out


def expected(windows: workload.Windows) -> dict[tuple[str, int, int], int]:
    """Exact counts from :meth:`Windows.starts_of`, independent of the oracle."""
    counts: Counter[tuple[str, int, int]] = Counter()
    for event in events():
        for start in windows.starts_of(event["ts"]):
            counts[(event["user"], start, start + windows.size_ms)] += 1
    return dict(counts)


def produce(bootstrap: str, topic: str, windows: workload.Windows) -> None:
    """The events keyed by user, then one end-of-run record per partition past the last window end + D."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    batch = events()
    for event in batch:
        producer.produce(topic, key=event["user"], value=json.dumps(event))
    flush_ts = windows.flush_ts(max(event["ts"] for event in batch))
    for partition in range(PARTITIONS):
        record = {"user": workload.FLUSH_USER, "action": workload.FLUSH_ACTION, "ts": flush_ts, "seq": len(batch)}
        producer.produce(topic, key=workload.FLUSH_USER, value=json.dumps(record), partition=partition)
    assert producer.flush(30) == 0


@dataclass
class Run:
    engine: FlinkEngine
    windows: workload.Windows
    records: list[dict[str, Any]]
    fairness: dict[str, Setting]
    metrics: dict[str, Any]
    commands: dict[int, str]
    """pid → command line of the job's processes while it ran."""
    group: int
    group_alive_after_stop: list[int] = field(default_factory=list)
    listeners: set[Listener] = field(default_factory=set)
    """Listening sockets of the job's process tree while events flowed (tests.integration.listening)."""

    def results(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["user"] != workload.FLUSH_USER]


def wait_for_results(engine: FlinkEngine, bootstrap: str, topic: str, want: int) -> list[dict[str, Any]]:
    """Read the result topic until ``want`` non-flush records arrived, then 3 s more (to catch duplicates).

    A consumer of its own rather than :func:`harness.kafka.read_json_records`: that stops at the end offsets,
    which ``read_committed`` never reaches on a transactional topic (the last offset is a commit marker)."""
    reader = consumer(bootstrap, read_committed=engine.read_committed)
    found: list[dict[str, Any]] = []
    try:
        partitions = reader.list_topics(topic, timeout=10).topics[topic].partitions
        reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        deadline = time.monotonic() + RESULT_TIMEOUT
        drain_until = None
        while drain_until is None or time.monotonic() < drain_until:
            for message in reader.consume(1000, timeout=0.5):
                if message.error() is None:
                    row = json.loads(message.value())
                    row.update(_offset=message.offset(), _timestamp=message.timestamp()[1])
                    found.append(row)
            if drain_until is None and sum(1 for r in found if r["user"] != workload.FLUSH_USER) >= want:
                drain_until = time.monotonic() + 3.0
            assert engine.process is not None
            if drain_until is None and (time.monotonic() > deadline or not engine.process.alive()):
                raise AssertionError(
                    engine.process.failure_message(f"{len(found)} of {want} results on {topic} in {RESULT_TIMEOUT:g} s")
                )
    finally:
        reader.close()
    return found


def run_engine(
    engine_class: type[FlinkEngine], settings: dict[str, Any], windows: workload.Windows, bootstrap: str, tmp: Path
) -> Run:
    suffix = uuid.uuid4().hex[:8]
    input_topic, output_topic = f"flink-in-{suffix}", f"flink-out-{suffix}"
    create_topics(bootstrap, {input_topic: PARTITIONS})
    create_topics(bootstrap, {output_topic: 1}, log_append_time=True)
    spec = workload.JobSpec(
        bootstrap=bootstrap,
        input_topic=input_topic,
        output_topic=output_topic,
        window_size_ms=windows.size_ms,
        window_slide_ms=windows.slide_ms,
        watermark_delay_ms=windows.watermark_delay_ms,
        parallelism=PARTITIONS,
        partitions=PARTITIONS,
        state_dir=str(tmp / "state"),
        settings={},
    )
    engine = engine_class(engine_class.Settings.model_validate(settings), EngineContext(spec, tmp))
    engine.start()
    try:
        engine.wait_ready(READY_TIMEOUT)
        commands = {proc.pid: " ".join(proc.cmdline()) for proc in engine.processes()}
        sampler = ListenerSampler(engine.processes).start()
        sent = time.monotonic()
        produce(bootstrap, input_topic, windows)
        records = wait_for_results(engine, bootstrap, output_topic, len(expected(windows)))
        metrics = engine.metrics()
        group = engine.process.pid if engine.process else -1
        time.sleep(max(0.0, SAMPLE_FOR_S - (time.monotonic() - sent)))  # late-opened servers and Python workers
        seen = sampler.stop()
    finally:
        engine.stop()
    fairness = normalise_fairness(engine.fairness())
    return Run(engine, windows, records, fairness, metrics, commands, group, _group_members(group), seen)


def _group_members(group: int) -> list[int]:
    members = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == group and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


CASES = {
    "sql-tumbling": (FlinkEngine, {"checkpoint_interval": "off"}, TUMBLING),
    "sql-hopping-exactly-once": (
        FlinkEngine, {"checkpoint_interval": "2s", "delivery": "exactly-once"}, HOPPING,
    ),
    "python-tumbling": (FlinkPythonEngine, {"checkpoint_interval": "off"}, TUMBLING),
    "python-hopping": (FlinkPythonEngine, {"checkpoint_interval": "5s"}, HOPPING),
}  # fmt: skip


@pytest.fixture(scope="module", params=sorted(CASES))
def run(request: pytest.FixtureRequest, kafka_broker: str, tmp_path_factory: pytest.TempPathFactory) -> Run:
    engine_class, settings, windows = CASES[request.param]
    return run_engine(engine_class, settings, windows, kafka_broker, tmp_path_factory.mktemp(request.param))


def test_counts_are_exact(run: Run) -> None:
    got = {(r["user"], r["window_start"], r["window_end"]): r["count"] for r in run.results()}
    assert got == expected(run.windows)


def test_oracle_agrees(run: Run) -> None:
    batch = events()
    oracle = expected_counts(
        np.array([int(e["user"][1:]) for e in batch]),
        np.array([e["ts"] for e in batch]),
        np.zeros(len(batch), bool),
        users=USERS,
        windows=run.windows,
    )
    records = pd.DataFrame(run.records).rename(columns={"_timestamp": "append_ms"})
    records = records.assign(partition=0, offset=range(len(records)))
    diff = judge(records, oracle, read_committed=False).correctness
    assert diff.correct, diff
    assert diff.duplicated == 0 and diff.exact == len(expected(run.windows))


def test_output_format_and_one_record_per_pair(run: Run) -> None:
    results = run.results()
    assert all(list(r)[:4] == list(workload.OUTPUT_FIELDS) for r in results)
    assert all(isinstance(r["window_start"], int) and isinstance(r["count"], int) for r in results)
    pairs = Counter((r["user"], r["window_start"]) for r in results)
    assert max(pairs.values()) == 1, "a pair was written twice"


def test_exactly_once_reads_committed(run: Run) -> None:
    assert run.engine.read_committed is (run.engine.settings.delivery == "exactly-once")
    if run.engine.read_committed:
        assert run.fairness["delivery"].value == "exactly-once"
        assert "checkpoint" in run.fairness["delivery"].detail


def test_fairness_names_every_key(run: Run) -> None:
    assert set(run.fairness) == set(FAIRNESS_KEYS)
    assert run.fairness["parallelism"].value == str(PARTITIONS)
    assert run.fairness["deployment"].value == "local"
    assert run.fairness["output_mode"].value == "append"
    assert run.fairness["watermark"].value == "2000 ms, per partition (min over partitions)"


def test_metrics_come_from_the_rest_endpoint(run: Run) -> None:
    snapshot = run.metrics["snapshots"][-1]
    assert "error" not in snapshot, snapshot
    assert snapshot["job_state"] == "RUNNING"
    assert snapshot["late_records_dropped"] == 0
    assert run.metrics["ready_after_s"] > 0
    assert {v["parallelism"] for v in snapshot["vertices"]} == {PARTITIONS}
    saved = json.loads((run.engine.run_dir / "flink-metrics.json").read_text())
    assert len(saved) >= 1


def test_input_rows_count_every_record_read(run: Run) -> None:
    samples = run.metrics["input_rows"]
    assert samples[0]["rows"] == 0  # sampling starts when the job is ready, before any load
    assert samples[-1]["rows"] == len(events()) + PARTITIONS  # the events and one flush record per partition
    assert [s["rows"] for s in samples] == sorted(s["rows"] for s in samples)
    assert len(samples) >= 3 and all(b["t_ms"] > a["t_ms"] for a, b in zip(samples, samples[1:]))


def test_stop_leaves_no_process(run: Run) -> None:
    assert any("java" in command for command in run.commands.values()), run.commands
    assert run.group_alive_after_stop == []
    assert not [pid for pid in run.commands if psutil.pid_exists(pid) and _status(pid) != psutil.STATUS_ZOMBIE]


def _status(pid: int) -> str:
    try:
        return psutil.Process(pid).status()
    except psutil.Error:
        return psutil.STATUS_ZOMBIE


def test_every_listening_socket_is_loopback(run: Run, request: pytest.FixtureRequest) -> None:
    """Local mode listens on loopback only, the Python side included (tests.integration.listening)."""
    assert_loopback_only(request.node.callspec.params["run"], run.listeners)


def test_bad_connector_jar_fails_with_log_tail(kafka_broker: str, tmp_path: Path) -> None:
    bad_jar = tmp_path / "not-a-connector.jar"
    bad_jar.write_bytes(b"this is not a jar")
    spec = workload.JobSpec(
        kafka_broker, "flink-bad-in", "flink-bad-out", 10_000, 10_000, DELAY_MS, 1, 1, str(tmp_path / "state"), {}
    )
    engine = FlinkEngine(FlinkEngine.Settings(connector_jar=str(bad_jar)), EngineContext(spec, tmp_path))
    engine.start()
    assert engine.process is not None
    group = engine.process.pid
    try:
        with pytest.raises(EngineError) as failure:
            engine.wait_ready(READY_TIMEOUT)
    finally:
        engine.stop()
    message = str(failure.value)
    assert "flink job: exited with code" in message
    assert "last log lines" in message and "kafka" in message.lower()
    assert _group_members(group) == []
