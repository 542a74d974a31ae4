"""Flink engine settings, the SQL the job builds, its Flink configuration and the cluster command: pure, no JVM."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.engines.base import FAIRNESS_KEYS, EngineContext, Setting
from harness.engines.flink import FlinkEngine, FlinkPythonEngine
from harness.engines.flink_jobs import is_leftover, job_name_for
from harness.engines.flink_metrics import CounterSampler
from harness.engines.flink_settings import FlinkPythonSettings, FlinkSettings
from harness.engines.jobs.flink_sql_job import (
    CLUSTER_RESTART_STRATEGY,
    job_configuration,
    sql_epoch_ms,
    sql_interval,
    statements,
)
from harness.engines.registry import resolve_engine
from harness.workload import JobSpec


def spec(settings: FlinkSettings, *, slide_ms: int = 10_000, tmp: Path = Path("/tmp/run")) -> JobSpec:
    return JobSpec(
        "127.0.0.1:9092", "events", "results", 10_000, slide_ms, 2_000, 2, 4, str(tmp / "state"), settings.model_dump()
    )


def test_defaults() -> None:
    settings = FlinkSettings()
    assert settings.checkpoint_interval == 10_000
    assert settings.delivery == "at-least-once"
    assert settings.idle_timeout == 5_000
    assert settings.jobmanager is None


@pytest.mark.parametrize(("value", "millis"), [("off", None), (None, None), ("2s", 2_000), ("500ms", 500)])
def test_checkpoint_interval(value: object, millis: int | None) -> None:
    assert FlinkSettings(checkpoint_interval=value).checkpoint_interval == millis


def test_durations_need_a_unit() -> None:
    with pytest.raises(ValidationError, match="duration with a unit"):
        FlinkSettings(idle_timeout=5)


def test_exactly_once_needs_checkpoints() -> None:
    with pytest.raises(ValidationError, match="exactly-once needs checkpoint_interval"):
        FlinkSettings(delivery="exactly-once", checkpoint_interval="off")


def test_unknown_and_python_only_keys_are_rejected() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        FlinkSettings(checkpoint_intervall="10s")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        FlinkSettings(python_bundle_size=10)
    assert FlinkPythonSettings(python_bundle_size=10).python_bundle_size == 10


@pytest.mark.parametrize("value", ["localhost", "http://jm:8081", "jm:port", 8081])
def test_jobmanager_must_be_host_port(value: object) -> None:
    with pytest.raises(ValidationError, match="host:port"):
        FlinkSettings(jobmanager=value)


def test_registry_names() -> None:
    assert resolve_engine("flink") is FlinkEngine
    assert resolve_engine("flink-python") is FlinkPythonEngine
    assert FlinkPythonEngine.Settings is FlinkPythonSettings


@pytest.mark.parametrize(
    ("millis", "literal"),
    [
        (2_000, "INTERVAL '0 00:00:02.000' DAY(1) TO SECOND(3)"),
        (1_500, "INTERVAL '0 00:00:01.500' DAY(1) TO SECOND(3)"),
        (0, "INTERVAL '0 00:00:00.000' DAY(1) TO SECOND(3)"),
        (90_061_001, "INTERVAL '1 01:01:01.001' DAY(1) TO SECOND(3)"),
        (12 * 86_400_000, "INTERVAL '12 00:00:00.000' DAY(2) TO SECOND(3)"),
    ],
)
def test_sql_interval_is_exact(millis: int, literal: str) -> None:
    assert sql_interval(millis) == literal


def test_epoch_ms_keeps_milliseconds() -> None:
    expression = sql_epoch_ms("window_start")
    assert "AS BIGINT) * 60000" in expression and "EXTRACT(MILLISECOND FROM window_start)" in expression


def test_tumbling_statements() -> None:
    source, sink, insert = statements(spec(FlinkSettings()), "bench-flink-x")
    assert "WATERMARK FOR et AS et - INTERVAL '0 00:00:02.000' DAY(1) TO SECOND(3)" in source
    assert "TO_TIMESTAMP_LTZ(`ts`, 3)" in source
    assert "'scan.startup.mode' = 'earliest-offset'" in source
    assert "TUMBLE(TABLE events, DESCRIPTOR(et), INTERVAL '0 00:00:10.000' DAY(1) TO SECOND(3))" in insert
    assert "GROUP BY window_start, window_end, `user`" in insert
    assert "'key.fields' = 'user'" in sink and "'sink.delivery-guarantee' = 'at-least-once'" in sink
    assert "transactional-id-prefix" not in sink


def test_hopping_exactly_once_statements() -> None:
    settings = FlinkSettings(delivery="exactly-once")
    _, sink, insert = statements(spec(settings, slide_ms=5_000), "bench-flink-x")
    assert "HOP(TABLE events, DESCRIPTOR(et), INTERVAL '0 00:00:05.000' DAY(1) TO SECOND(3), " in insert
    assert "'sink.delivery-guarantee' = 'exactly-once'" in sink
    assert "'sink.transactional-id-prefix' = 'bench-flink-x'" in sink
    assert "'properties.transaction.timeout.ms' = '600000'" in sink


def test_job_configuration(tmp_path: Path) -> None:
    settings = FlinkSettings(checkpoint_interval="3s", config={"state.backend.type": "rocksdb"})
    config = job_configuration(spec(settings, tmp=tmp_path), rest_port=43210, connector_jar="/x/c.jar", job_name="j")
    assert config["parallelism.default"] == "2"
    assert config["pipeline.jars"] == "file:///x/c.jar"
    assert config["rest.port"] == "43210" and config["rest.bind-address"] == "127.0.0.1"
    assert config["execution.checkpointing.interval"] == "3000 ms"
    assert config["execution.checkpointing.dir"] == (tmp_path / "state" / "flink-checkpoints").as_uri()
    assert config["table.local-time-zone"] == "UTC"
    assert config["restart-strategy.type"] == "none"
    assert config["state.backend.type"] == "rocksdb"


def test_local_minicluster_listens_on_loopback_by_default() -> None:
    config = job_configuration(spec(FlinkSettings()), rest_port=43210, connector_jar="/x/c.jar", job_name="j")
    for key in ("rest.bind-address", "jobmanager.bind-host", "taskmanager.bind-host", "rest.address",
                "jobmanager.rpc.address", "taskmanager.host"):
        assert config[key] == "127.0.0.1", key


def test_bind_address_every_interface_still_advertises_loopback() -> None:
    settings = FlinkSettings(bind_address="0.0.0.0")
    config = job_configuration(spec(settings), rest_port=43210, connector_jar="/x/c.jar", job_name="j")
    assert config["rest.bind-address"] == config["jobmanager.bind-host"] == config["taskmanager.bind-host"] == "0.0.0.0"
    assert config["rest.address"] == config["taskmanager.host"] == "127.0.0.1"


@pytest.mark.parametrize("value", ["", "http://x", "a b", 5])
def test_bind_address_must_be_an_address(value: object) -> None:
    with pytest.raises(ValidationError, match="must be an IP address or host name"):
        FlinkSettings(bind_address=value)


def test_job_configuration_on_a_cluster_without_checkpoints() -> None:
    settings = FlinkSettings(checkpoint_interval="off")
    config = job_configuration(spec(settings), rest_port=0, connector_jar="/x/c.jar", job_name="j")
    assert "rest.port" not in config
    assert not any(key.endswith(("bind-host", "bind-address")) for key in config)  # the cluster's own business
    assert not any(key.startswith("execution.checkpointing") for key in config)


def engine(tmp_path: Path, engine_class: type[FlinkEngine] = FlinkEngine, **settings: object) -> FlinkEngine:
    validated = engine_class.Settings.model_validate(settings)
    return engine_class(validated, EngineContext(spec(validated, tmp=tmp_path), tmp_path))


def test_fairness_local(tmp_path: Path) -> None:
    fairness = engine(tmp_path).fairness()
    assert list(fairness) == list(FAIRNESS_KEYS)
    assert all(isinstance(value, Setting) for value in fairness.values())
    assert fairness["output_mode"].value == "append"
    assert fairness["trigger"] == Setting("per record", "each record updates its windows as it arrives; windows "
                                          "fire on watermarks, emitted every 200ms")
    assert fairness["watermark"].value == "2000 ms, per partition (min over partitions)"
    assert "a partition idle for 5s" in fairness["watermark"].detail
    assert fairness["late_events"].value == "dropped"
    assert fairness["checkpointing"] == Setting("10000 ms", "at-least-once barriers, to the run directory")
    assert fairness["delivery"] == Setting("at-least-once", "Kafka sink")
    assert fairness["parallelism"].value == "2" and fairness["partitions"].value == "4"
    assert fairness["deployment"] == Setting("local", "MiniCluster in one JVM, -Xmx2g")


def test_fairness_exactly_once_on_a_cluster(tmp_path: Path) -> None:
    flink = engine(tmp_path, delivery="exactly-once", jobmanager="flink-jm:8081", checkpoint_interval="5s")
    assert flink.read_committed
    fairness = flink.fairness()
    assert fairness["delivery"].value == "exactly-once"
    assert fairness["delivery"].detail.startswith("Kafka transactions committed on checkpoint")
    assert fairness["checkpointing"].value == "5000 ms"
    assert fairness["deployment"] == Setting(
        "cluster", "session cluster at flink-jm:8081; restarts never (a failure ends the job)")


def test_a_job_restarts_only_when_its_config_says_so(tmp_path: Path) -> None:
    """By default a failure ends the job, on a cluster too; a kill-worker scenario sets the restart strategy."""
    settings = FlinkSettings(jobmanager="flink-jm:8081")
    config = job_configuration(spec(settings, tmp=tmp_path), rest_port=0, connector_jar="/x/c.jar", job_name="j")
    assert config["restart-strategy.type"] == "none"
    restarting = FlinkSettings(jobmanager="flink-jm:8081", config=CLUSTER_RESTART_STRATEGY)
    config = job_configuration(spec(restarting, tmp=tmp_path), rest_port=0, connector_jar="/x/c.jar", job_name="j")
    assert {key: config[key] for key in config if key.startswith("restart-strategy")} == {
        "restart-strategy.type": "fixed-delay", "restart-strategy.fixed-delay.attempts": "10",
        "restart-strategy.fixed-delay.delay": "1 s"}
    detail = engine(tmp_path, jobmanager="flink-jm:8081", config=CLUSTER_RESTART_STRATEGY).fairness()
    assert detail["deployment"].detail == ("session cluster at flink-jm:8081; restarts from the latest checkpoint, "
                                           "at most 10 times, 1 s apart")


def test_input_rows_count_on_after_flink_restarted_the_job_but_not_after_a_short_read() -> None:
    """The source counters start at 0 when Flink restarts the job itself (a lost TaskManager): the series goes
    on from its last sample. A lower sum without a restart (a subtask missing from one answer) is held."""
    reads = iter([100, 250, 120, 300, 5, 40])
    restarts = iter([False, True])
    sampler = CounterSampler(lambda: next(reads), 1.0, lambda: next(restarts))
    for _ in range(6):
        sampler.sample()
    assert [row["rows"] for row in sampler.samples()] == [100, 250, 250, 300, 305, 340]


def test_fairness_parallelism_follows_a_config_override(tmp_path: Path) -> None:
    fairness = engine(tmp_path, config={"parallelism.default": "3"}).fairness()
    assert fairness["parallelism"].value == "3"


def test_fairness_python(tmp_path: Path) -> None:
    fairness = engine(tmp_path, FlinkPythonEngine, checkpoint_interval="off").fairness()
    assert fairness["checkpointing"] == Setting("off")
    assert fairness["trigger"].value == "per bundle (at most 100000 records or 1000 ms)"
    assert "− 1 ms" in fairness["watermark"].detail
    assert not engine(tmp_path, FlinkPythonEngine).read_committed


def test_python_watermark_scope_follows_subtasks_per_partition(tmp_path: Path) -> None:
    """One source subtask per partition: the same watermark as SQL's; fewer subtasks: a different one."""
    settings = FlinkPythonSettings()
    sql = engine(tmp_path).fairness()["watermark"].value
    one_per_partition = JobSpec("b:9092", "in", "out", 10_000, 10_000, 2_000, 4, 4, str(tmp_path), {})
    python = FlinkPythonEngine(settings, EngineContext(one_per_partition, tmp_path)).fairness()["watermark"].value
    assert python == sql
    shared = JobSpec("b:9092", "in", "out", 10_000, 10_000, 2_000, 2, 4, str(tmp_path), {})
    python = FlinkPythonEngine(settings, EngineContext(shared, tmp_path)).fairness()["watermark"].value
    assert python == "2000 ms, per source subtask (min over subtasks)"


def test_cluster_command(tmp_path: Path) -> None:
    flink = engine(tmp_path, FlinkPythonEngine, jobmanager="flink-jm:8081")
    argv = flink.cluster_command(["--spec", "s.json"])
    assert Path(argv[0]).name == "flink" and argv[1:3] == ["run", "-sae"]  # -sae: the client's end cancels the job
    assert argv[3:7] == ["-t", "remote", "-Drest.address=flink-jm", "-Drest.port=8081"]
    job_file = Path(argv[argv.index("-py") + 1])
    assert job_file.name == "flink_python_job.py" and job_file.exists()
    package = Path(argv[argv.index("-pyfs") + 1])
    assert package.suffix == ".zip" and package.exists()
    assert argv[-2:] == ["--spec", "s.json"]


def test_stop_before_start_is_harmless(tmp_path: Path) -> None:
    flink = engine(tmp_path)
    flink.stop()
    flink.stop()
    assert flink.metrics()["snapshots"] == []


def test_job_name_carries_host_pid_and_run_tag(tmp_path: Path) -> None:
    run_spec = JobSpec("b:9092", "bench-20261125T120000Z-smoke-flink-r2-in", "out", 10_000, 10_000, 2_000, 2, 2,
                       str(tmp_path), {})
    name = job_name_for(run_spec)
    match = re.fullmatch(r"streambench_([^_]+)_(\d+)_bench-20261125T120000Z-smoke-flink-r2_([0-9a-f]{6})", name)
    assert match is not None, name
    assert int(match[2]) == os.getpid()
    assert job_name_for(run_spec) != name  # a nonce: a repeated run never reuses a name


def test_leftovers_are_jobs_of_a_bench_that_is_gone() -> None:
    gone = _dead_pid()
    def job(name: str, state: str = "RUNNING") -> dict[str, str]:
        return {"name": name, "state": state}

    assert is_leftover(job(f"streambench_h1_{gone}_bench-x-flink-r1_0a1b2c"), host="h1")
    assert is_leftover(job(f"streambench_h1_{os.getpid()}_t_0a1b2c"), host="h1")  # this bench runs one job at a time
    assert not is_leftover(job(f"streambench_h1_{gone}_t_0a1b2c", "CANCELED"), host="h1")
    assert not is_leftover(job(f"streambench_h2_{gone}_t_0a1b2c"), host="h1")  # another host's: cannot tell
    assert not is_leftover(job(f"streambench_h1_{os.getppid()}_t_0a1b2c"), host="h1")  # a bench still alive
    assert not is_leftover(job("someone-elses-job"), host="h1")


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_sampler_keeps_a_non_decreasing_count_and_skips_failed_reads() -> None:
    answers: list[object] = [None, 10, OSError("refused"), 25, 20]

    def read() -> int | None:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    sampler = CounterSampler(read, interval=1.0)
    for _ in range(5):
        sampler.sample()
    assert [s["rows"] for s in sampler.samples()] == [10, 25, 25]
    times = [s["t_ms"] for s in sampler.samples()]
    assert times == sorted(times) and abs(times[0] - time.time() * 1000) < 60_000


def test_sampler_thread_samples_until_stopped() -> None:
    counter = iter(range(1_000_000))
    sampler = CounterSampler(lambda: next(counter), interval=0.01)
    sampler.start()
    deadline = time.monotonic() + 30
    while len(sampler.samples()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    sampler.stop()
    taken = len(sampler.samples())
    assert taken >= 3
    time.sleep(0.05)
    assert len(sampler.samples()) == taken


def test_metrics_before_start_hold_empty_series(tmp_path: Path) -> None:
    metrics = engine(tmp_path).metrics()
    assert metrics["input_rows"] == [] and metrics["job_id"] is None


def test_versions_without_an_instance() -> None:
    assert FlinkPythonEngine.versions()["flink_api"] == "DataStream API, Python functions"
    assert FlinkEngine.versions()["flink_kafka_connector"] == "5.0.0-2.2"


def test_job_settings_keep_durations_in_milliseconds(tmp_path: Path) -> None:
    settings = engine(tmp_path, FlinkPythonEngine, watermark_interval="1s").job_spec().settings
    assert settings["watermark_interval"] == 1_000 and settings["python_bundle_time"] == 1_000
    assert settings["python_executable"] == sys.executable
    config = job_configuration(spec(FlinkSettings(watermark_interval="1s")), rest_port=1, connector_jar="/c.jar",
                               job_name="j")
    assert config["pipeline.auto-watermark-interval"] == "1000 ms"
