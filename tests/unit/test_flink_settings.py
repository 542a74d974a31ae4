"""Flink engine settings, the SQL the job builds, its Flink configuration and the cluster command: pure, no JVM."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.engines.base import FAIRNESS_KEYS, EngineContext
from harness.engines.flink import FlinkEngine, FlinkPythonEngine, FlinkPythonSettings, FlinkSettings
from harness.engines.jobs.flink_sql_job import job_configuration, sql_epoch_ms, sql_interval, statements
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


def test_job_configuration_on_a_cluster_without_checkpoints() -> None:
    settings = FlinkSettings(checkpoint_interval="off")
    config = job_configuration(spec(settings), rest_port=0, connector_jar="/x/c.jar", job_name="j")
    assert "rest.port" not in config
    assert not any(key.startswith("execution.checkpointing") for key in config)


def engine(tmp_path: Path, engine_class: type[FlinkEngine] = FlinkEngine, **settings: object) -> FlinkEngine:
    validated = engine_class.Settings.model_validate(settings)
    return engine_class(validated, EngineContext(spec(validated, tmp=tmp_path), tmp_path))


def test_fairness_local(tmp_path: Path) -> None:
    fairness = engine(tmp_path).fairness()
    assert set(fairness) == set(FAIRNESS_KEYS)
    assert fairness["checkpointing"].startswith("every 10s")
    assert fairness["delivery"] == "at-least-once"
    assert fairness["deployment"] == "local MiniCluster (one JVM, -Xmx2g)"
    assert fairness["parallelism"] == "2" and fairness["partitions"] == "4"
    assert fairness["watermark"].startswith("bounded out-of-orderness 2s (max ts − D)")


def test_fairness_exactly_once_on_a_cluster(tmp_path: Path) -> None:
    flink = engine(tmp_path, delivery="exactly-once", jobmanager="flink-jm:8081", checkpoint_interval="5s")
    assert flink.read_committed
    fairness = flink.fairness()
    assert fairness["delivery"].startswith("exactly-once (Kafka transactions committed on checkpoint")
    assert fairness["deployment"] == "session cluster at flink-jm:8081"


def test_fairness_python(tmp_path: Path) -> None:
    fairness = engine(tmp_path, FlinkPythonEngine, checkpoint_interval="off").fairness()
    assert fairness["checkpointing"] == "off"
    assert "Python bundles" in fairness["trigger"]
    assert "(max ts − D − 1 ms)" in fairness["watermark"]
    assert not engine(tmp_path, FlinkPythonEngine).read_committed


def test_cluster_command(tmp_path: Path) -> None:
    flink = engine(tmp_path, FlinkPythonEngine, jobmanager="flink-jm:8081")
    argv = flink.cluster_command(["--spec", "s.json"])
    assert Path(argv[0]).name == "flink" and argv[1] == "run"
    assert argv[2:6] == ["-t", "remote", "-Drest.address=flink-jm", "-Drest.port=8081"]
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
