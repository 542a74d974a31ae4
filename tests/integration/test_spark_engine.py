"""The Spark engine end to end: a real broker, a real Spark job, exact counts from a hand-built event set.

Each (window kind × output mode) is one Spark run, shared by the tests of its module-scoped fixture (a Spark start
costs 15–25 s on two cores). The events reach Spark in chunks, and each chunk is waited for in Spark's own
progress reports, so the watermark moves between chunks and the disorder within D crosses batch boundaries.
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
import psutil
import pytest
from confluent_kafka import Producer

from harness.analysis import oracle
from harness.engines.base import FAIRNESS_KEYS, EngineContext, Setting
from harness.engines.registry import resolve_engine
from harness.engines.spark import SparkEngine, SparkSettings
from harness.errors import EngineError
from harness.kafka import create_topics, read_json_records
from harness.workload import ACTION, FLUSH_ACTION, FLUSH_USER, JobSpec, Windows, user_id
from tests.integration.listening import Listener, ListenerSampler, assert_loopback_only

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BASE_MS = 1_764_072_000_000
"""Start of the event time range: a multiple of every window size used here."""
SIZE_MS, SLIDE_MS, DELAY_MS = 10_000, 5_000, 2_000
PARTITIONS, USERS = 2, 4
EVENTS, CHUNKS, STEP_MS = 120, 4, 300
"""120 events 300 ms apart (36 s of event time: 4 tumbling windows, 8 hopping ones), sent in 4 chunks."""
READY_TIMEOUT, RESULT_TIMEOUT = 180.0, 90.0
ROOT = Path(__file__).resolve().parents[2]
SAMPLE_FOR_S = 12.0
"""Listening sockets are sampled at least this long after the first events are sent."""


def make_events() -> list[dict[str, Any]]:
    """Deterministic input in send order: 4 users with uneven shares; every 5th event is up to D − 1 ms older
    than its send time (disorder within the watermark delay, so nothing is late)."""
    events = []
    for seq in range(EVENTS):
        send_ms = BASE_MS + seq * STEP_MS
        delay = (seq * 37) % DELAY_MS if seq % 5 == 0 else 0
        user = user_id((seq * 7 + seq // 11) % USERS if seq % 3 else 0, USERS)
        events.append({"user": user, "action": ACTION, "ts": send_ms - delay, "seq": seq})
    return events


def expected_counts(events: list[dict[str, Any]], windows: Windows) -> dict[tuple[str, int, int], int]:
    """(user, window_start, window_end) → count, from the harness's oracle (nothing here is late)."""
    expected = oracle.expected_counts(
        np.array([int(event["user"][1:]) for event in events]),
        np.array([event["ts"] for event in events]),
        np.zeros(len(events), dtype=bool),
        users=USERS,
        windows=windows,
    )
    assert expected.late_events == 0
    return {
        (row.user, int(row.window_start), int(row.window_end)): int(row.count_min)
        for row in expected.pairs.itertuples()
    }


@dataclass
class SparkRun:
    engine: SparkEngine
    windows: Windows
    expected: dict[tuple[str, int, int], int]
    records: list[dict[str, Any]]
    """Result records in topic order (one partition), bookkeeping records of FLUSH_USER removed."""
    processes: list[psutil.Process]
    """The job's processes while it ran."""
    process_names: list[str]
    ready_s: float
    metrics: dict[str, Any]
    listeners: set[Listener] = field(default_factory=set)
    """Listening sockets of the job's process tree while events flowed (tests.integration.listening)."""


def _produce(bootstrap: str, topic: str, records: list[tuple[dict[str, Any], int | None]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for value, partition in records:
        kwargs = {} if partition is None else {"partition": partition}
        producer.produce(topic, key=value["user"].encode(), value=json.dumps(value).encode(), **kwargs)
    assert producer.flush(30) == 0


def _rows_in(engine: SparkEngine) -> int:
    return sum(row.get("numInputRows", 0) for row in engine.progress())


def _wait(what: str, probe: Any, timeout: float, engine: SparkEngine) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            tail = "\n".join(engine.log_path.read_text(errors="replace").splitlines()[-20:])
            pytest.fail(f"{what} not within {timeout:g} s; last Spark log lines:\n{tail}")
        time.sleep(0.3)


def run_spark(engine_class: type[SparkEngine], settings: SparkSettings, slide_ms: int, bootstrap: str,
              run_dir: Path) -> SparkRun:
    """Fresh topics → start → ready → events in chunks (each waited for in Spark's progress) → one flush record
    per partition → every expected pair in the result topic (append: present; update: last value exact)."""
    tag = uuid.uuid4().hex[:8]
    input_topic, output_topic = f"spark-in-{tag}", f"spark-out-{tag}"
    create_topics(bootstrap, {input_topic: PARTITIONS})
    create_topics(bootstrap, {output_topic: 1}, log_append_time=True)
    windows = Windows(SIZE_MS, slide_ms, DELAY_MS)
    spec = JobSpec(bootstrap, input_topic, output_topic, SIZE_MS, slide_ms, DELAY_MS, parallelism=2,
                   partitions=PARTITIONS, state_dir=str(run_dir / "state"), settings={})
    engine = engine_class(settings, EngineContext(spec, run_dir))
    events = make_events()
    expected = expected_counts(events, windows)
    try:
        started = time.monotonic()
        engine.start()
        engine.wait_ready(READY_TIMEOUT)
        ready_s = time.monotonic() - started
        processes = engine.processes()
        names = [proc.name() for proc in processes]
        sampler = ListenerSampler(engine.processes).start()
        sent = time.monotonic()
        per_chunk = EVENTS // CHUNKS
        for chunk in range(CHUNKS):
            _produce(bootstrap, input_topic, [(event, None) for event in events[chunk * per_chunk:(chunk + 1) * per_chunk]])
            sent = (chunk + 1) * per_chunk
            _wait(f"Spark reading {sent} events", lambda: _rows_in(engine) >= sent, RESULT_TIMEOUT, engine)
        flush_ts = windows.flush_ts(max(event["ts"] for event in events))
        _produce(bootstrap, input_topic, [
            ({"user": FLUSH_USER, "action": FLUSH_ACTION, "ts": flush_ts, "seq": EVENTS + p}, p) for p in range(PARTITIONS)
        ])

        records: list[dict[str, Any]] = []

        def complete() -> bool:
            records[:] = [r for r in read_json_records(bootstrap, output_topic) if r["user"] != FLUSH_USER]
            return _last_values(records) == expected

        _wait("every expected (window, user) count", complete, RESULT_TIMEOUT, engine)
        # Spark reports progress through its listener bus, a little after the batch
        _wait("the progress report of the flush batch", lambda: _rows_in(engine) >= EVENTS + PARTITIONS,
              RESULT_TIMEOUT, engine)
        metrics = engine.metrics()
        time.sleep(max(0.0, SAMPLE_FOR_S - (time.monotonic() - sent)))  # late-opened servers
        seen = sampler.stop()
    finally:
        engine.stop()
    return SparkRun(engine, windows, expected, records, processes, names, ready_s, metrics, seen)


def _last_values(records: list[dict[str, Any]]) -> dict[tuple[str, int, int], int]:
    """The engine's answer: the last record of every pair (update mode may write several)."""
    return {(r["user"], r["window_start"], r["window_end"]): r["count"] for r in records}


def _survivors(processes: list[psutil.Process], run_dir: Path) -> list[str]:
    """Processes of the job still alive, found by pid or by the run directory in their command line."""
    left = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{proc.pid} {proc.name()}")
        except psutil.NoSuchProcess:
            continue
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if str(run_dir) in " ".join(proc.info["cmdline"] or []) and proc.pid != os.getpid():
            left.append(f"{proc.pid} {' '.join(proc.info['cmdline'])[:200]}")
    return left


# ------------------------------------------------------------------------------------------------------ runs
RUNS = {
    "tumbling-append": ("append", SIZE_MS),
    "hopping-append": ("append", SLIDE_MS),
    "hopping-update": ("update", SLIDE_MS),
}
"""Three of the four (window × mode) runs; tumbling-update is the run of the module:Class plug-in test below."""


@pytest.fixture(scope="module", params=sorted(RUNS))
def spark_run(request: pytest.FixtureRequest, kafka_broker: str, tmp_path_factory: pytest.TempPathFactory) -> SparkRun:
    mode, slide = RUNS[request.param]
    run_dir = tmp_path_factory.mktemp(f"spark-{request.param}")
    return run_spark(SparkEngine, SparkSettings(output_mode=mode), slide, kafka_broker, run_dir)


def test_counts_are_exact(spark_run: SparkRun) -> None:
    assert len(spark_run.expected) >= (8 if spark_run.windows.slide_ms < SIZE_MS else 4) * 3
    assert _last_values(spark_run.records) == spark_run.expected


def test_records_have_the_contract_format(spark_run: SparkRun) -> None:
    for record in spark_run.records:
        assert list(record)[:4] == ["user", "window_start", "window_end", "count"]
        assert isinstance(record["window_start"], int) and isinstance(record["window_end"], int)
        assert record["window_end"] - record["window_start"] == SIZE_MS
        assert record["window_start"] % spark_run.windows.slide_ms == 0


def test_output_mode_decides_how_often_a_pair_is_written(spark_run: SparkRun) -> None:
    per_pair = Counter((r["user"], r["window_start"], r["window_end"]) for r in spark_run.records)
    if spark_run.engine.settings.output_mode == "append":
        assert set(per_pair.values()) == {1}, "append mode writes every pair exactly once"
    else:
        # events arrive in 4 chunks: pairs whose windows span a chunk boundary are updated more than once
        assert max(per_pair.values()) > 1
        assert len(spark_run.records) > len(spark_run.expected)


def test_metrics_come_from_spark_progress(spark_run: SparkRun) -> None:
    metrics = spark_run.metrics
    assert metrics["rows_in"] == EVENTS + PARTITIONS
    assert metrics["batches_with_data"] >= CHUNKS
    assert metrics["batch_duration_ms_max"] >= metrics["batch_duration_ms_mean"] > 0
    assert any(point["processed_rows_per_s"] for point in metrics["series"])
    samples = metrics["input_rows"]
    assert samples[-1]["rows"] == EVENTS + PARTITIONS
    assert [s["rows"] for s in samples] == sorted(s["rows"] for s in samples)
    assert [s["t_ms"] for s in samples] == sorted(s["t_ms"] for s in samples)
    assert abs(samples[-1]["t_ms"] - time.time() * 1000) < 3_600_000  # epoch milliseconds, not seconds


def test_fairness_names_every_key(spark_run: SparkRun) -> None:
    fairness = spark_run.engine.fairness()
    assert set(fairness) == set(FAIRNESS_KEYS)
    assert fairness["output_mode"] == Setting.of(fairness["output_mode"])  # structured, not prose
    assert fairness["output_mode"].value == spark_run.engine.settings.output_mode
    assert fairness["deployment"] == Setting("local", "local[2]")
    assert fairness["late_events"].value == "dropped"


def test_stop_leaves_no_process(spark_run: SparkRun) -> None:
    # the driver python and its JVM gateway (spark-submit's bash wrapper may still be there too)
    kinds = {"python" if name.startswith("python") else name for name in spark_run.process_names}  # python3.11…
    assert {"java", "python"} <= kinds, spark_run.process_names
    assert _survivors(spark_run.processes, spark_run.engine.run_dir) == []
    spark_run.engine.stop()  # idempotent


def test_logs_and_versions_are_kept(spark_run: SparkRun) -> None:
    names = {path.name for path in spark_run.engine.log_files()}
    assert {"spark.log", "spark-progress.jsonl", "spark-spec.json"} <= names
    assert spark_run.engine.versions()["spark"] == "4.2.0"


# ------------------------------------------------------------------------------------------- other paths
def test_every_listening_socket_is_loopback(spark_run: SparkRun) -> None:
    """Local mode listens on loopback only, the Python driver's py4j included (tests.integration.listening)."""
    assert_loopback_only("spark", spark_run.listeners)


def test_engine_by_module_class_path_runs(kafka_broker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    engine_class = resolve_engine("tests.integration.custom_engine:LabelledSparkEngine")
    assert issubclass(engine_class, SparkEngine) and engine_class.name == "spark-plugin"
    settings = engine_class.Settings.model_validate({"output_mode": "update"})
    run = run_spark(engine_class, settings, SIZE_MS, kafka_broker, tmp_path)
    assert _last_values(run.records) == run.expected
    assert len(run.records) > len(run.expected)  # update mode: some pairs written more than once
    assert run.engine.fairness()["deployment"] == "local[2] (plug-in LabelledSparkEngine)"
    assert _survivors(run.processes, tmp_path) == []


def test_bad_master_fails_with_log_tail_and_leaves_nothing(kafka_broker: str, tmp_path: Path) -> None:
    spec = JobSpec(kafka_broker, "never-read", "never-written", SIZE_MS, SIZE_MS, DELAY_MS, 1, 1,
                   str(tmp_path / "state"), {})
    engine = SparkEngine(SparkSettings(master="bogus://nowhere:1"), EngineContext(spec, tmp_path))
    engine.start()
    with pytest.raises(EngineError) as failure:
        engine.wait_ready(READY_TIMEOUT)
    message = str(failure.value)
    assert message.startswith("spark job: exited with code")
    assert "first error in the log: Exception in thread \"main\" org.apache.spark.SparkException: Master must " in message
    assert "last log lines:" in message
    assert _survivors([], tmp_path) == []
    engine.stop()
