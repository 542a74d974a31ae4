"""Spark engine settings, fairness report, metrics and job configuration: no broker, no JVM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.engines.base import FAIRNESS_KEYS, EngineContext, Setting
from harness.engines.jobs.spark_job import spark_conf
from harness.engines.registry import resolve_engine
from harness.engines.spark import SparkEngine, SparkSettings, input_rows
from harness.errors import EngineError
from harness.workload import JobSpec


def make_spec(tmp_path: Path, *, parallelism: int = 2, settings: dict | None = None) -> JobSpec:
    return JobSpec("127.0.0.1:9092", "events", "results", 10_000, 5_000, 2_000, parallelism, 4,
                   str(tmp_path / "state"), settings or {})


def engine(tmp_path: Path, **settings: object) -> SparkEngine:
    return SparkEngine(SparkSettings(**settings), EngineContext(make_spec(tmp_path), tmp_path))


def errors(**settings: object) -> list[str]:
    with pytest.raises(ValidationError) as failure:
        SparkSettings(**settings)
    return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in failure.value.errors()]


def test_defaults() -> None:
    settings = SparkSettings()
    assert settings.output_mode == "append"
    assert settings.trigger == "0s"
    assert settings.max_offsets_per_trigger is None
    assert settings.master is None
    assert settings.driver_memory == "2g"


def test_registered_as_spark() -> None:
    assert resolve_engine("spark") is SparkEngine
    assert SparkEngine.Settings is SparkSettings


def test_unknown_setting_is_an_error() -> None:
    assert errors(outputmode="update") == ["outputmode: Extra inputs are not permitted"]


def test_output_mode_is_append_or_update() -> None:
    assert errors(output_mode="complete") == ["output_mode: Input should be 'append' or 'update'"]


def test_realtime_trigger_is_refused_with_the_reason() -> None:
    [line] = errors(trigger="realtime")
    assert "real-time mode and continuous processing reject stateful aggregations" in line
    assert "give a micro-batch interval such as 0s or 500ms" in line


def test_trigger_needs_a_unit() -> None:
    [line] = errors(trigger="500")
    assert line.startswith("trigger: Value error, must be a duration with a unit")
    assert SparkSettings(trigger="500ms").trigger == "500ms"


@pytest.mark.parametrize("value", ["2", "2 GB", "lots"])
def test_driver_memory_is_a_jvm_size(value: str) -> None:
    [line] = errors(driver_memory=value)
    assert "must be a JVM memory size such as 512m or 2g" in line


def test_conf_may_not_override_what_the_engine_owns() -> None:
    [line] = errors(conf={"spark.jars.packages": "org.apache.spark:spark-sql-kafka-0-10_2.13:4.2.0"})
    assert "spark.jars.packages is set by the engine" in line
    [line] = errors(conf={"shuffle.partitions": "8"})
    assert "is not a Spark configuration key" in line


def test_max_offsets_per_trigger_is_positive() -> None:
    [line] = errors(max_offsets_per_trigger=0)
    assert line.startswith("max_offsets_per_trigger: Input should be greater than 0")


def test_fairness_reports_every_key(tmp_path: Path) -> None:
    fairness = engine(tmp_path).fairness()
    assert list(fairness) == list(FAIRNESS_KEYS)
    assert all(isinstance(value, Setting) for value in fairness.values())
    assert fairness["output_mode"].value == "append"
    assert fairness["output_mode"].detail.startswith("each (window, user) once")
    assert fairness["trigger"] == Setting("micro-batch, as fast as possible",
                                          "processingTime 0: next batch when the last ends")
    assert fairness["watermark"].value == "2000 ms, global (max over partitions)"
    assert fairness["late_events"].value == "dropped"
    assert fairness["checkpointing"].value == "every micro-batch"
    assert fairness["checkpointing"].detail == "offsets and state to the run directory (hdfs state store)"
    assert fairness["delivery"].value == "at-least-once"
    assert fairness["parallelism"] == Setting("2", "local cores / shuffle partitions")
    assert fairness["partitions"].value == "4"
    assert fairness["deployment"] == Setting("local", "local[2]")


def test_fairness_follows_the_settings(tmp_path: Path) -> None:
    fairness = engine(tmp_path, output_mode="update", trigger="500ms", max_offsets_per_trigger=1000,
                      master="spark://head:7077", bind_address="0.0.0.0").fairness()
    assert fairness["output_mode"].value == "update"
    assert fairness["trigger"].value == "micro-batch every 500 ms, at most 1000 records per batch"
    assert fairness["deployment"] == Setting("cluster", "spark://head:7077 (client mode: the driver runs here)")
    assert fairness["parallelism"] == Setting("2", "executor cores (spark.cores.max) / shuffle partitions")


def test_fairness_parallelism_names_overrides(tmp_path: Path) -> None:
    assert engine(tmp_path, master="local[3]").fairness()["parallelism"].value == "3, 2 shuffle partitions"
    shuffled = engine(tmp_path, conf={"spark.sql.shuffle.partitions": "8"}).fairness()
    assert shuffled["parallelism"].value == "2, 8 shuffle partitions"


def test_driver_listens_on_loopback_by_default(tmp_path: Path) -> None:
    spark = engine(tmp_path)
    assert spark.environment()["SPARK_LOCAL_IP"] == "127.0.0.1"
    conf = spark_conf(spark.job_spec(), tmp_path / "log4j2.properties")
    assert conf["spark.driver.bindAddress"] == conf["spark.driver.host"] == "127.0.0.1"


def test_bind_address_every_interface_lets_spark_choose_the_advertised_host(tmp_path: Path) -> None:
    spark = engine(tmp_path, bind_address="0.0.0.0", conf={"spark.driver.host": "bench-host"})
    assert "SPARK_LOCAL_IP" not in spark.environment()
    conf = spark_conf(spark.job_spec(), tmp_path / "log4j2.properties")
    assert conf["spark.driver.bindAddress"] == "0.0.0.0" and conf["spark.driver.host"] == "bench-host"


def test_conf_bind_address_wins(tmp_path: Path) -> None:
    spark = engine(tmp_path, master="spark://spark-master:7077",
                   conf={"spark.driver.host": "harness", "spark.driver.bindAddress": "0.0.0.0"})  # cluster-example
    assert "SPARK_LOCAL_IP" not in spark.environment()
    assert spark_conf(spark.job_spec(), tmp_path / "x")["spark.driver.bindAddress"] == "0.0.0.0"


def test_remote_master_needs_a_reachable_driver() -> None:
    [line] = errors(master="spark://head:7077")
    assert "executors must reach the driver here, but the driver binds 127.0.0.1 by default" in line
    assert SparkSettings(master="spark://127.0.0.1:7077").bind_address == "127.0.0.1"
    assert SparkSettings(master="spark://localhost:7077").bind_address == "127.0.0.1"
    assert SparkSettings(master="spark://head:7077", bind_address="10.0.0.5").bind_address == "10.0.0.5"


@pytest.mark.parametrize("value", ["", "http://x", "a b"])
def test_bind_address_must_be_an_address(value: str) -> None:
    [line] = errors(bind_address=value)
    assert "must be an IP address or host name" in line


def test_input_rows_are_cumulative_at_each_batch_end() -> None:
    progress = [
        {"timestamp": "2025-11-25T12:00:00.000Z", "numInputRows": 0, "durationMs": {"triggerExecution": 500}},
        {"timestamp": "2025-11-25T12:00:00.500Z", "numInputRows": 300, "durationMs": {"triggerExecution": 700}},
        {"timestamp": "unreadable", "numInputRows": 50, "durationMs": {"triggerExecution": 10}},
        {"timestamp": "2025-11-25T12:00:01.200Z", "numInputRows": 200, "durationMs": {"triggerExecution": 800}},
        {"timestamp": "2025-11-25T12:00:12.000Z", "numInputRows": 0, "durationMs": {"triggerExecution": 3}},
    ]
    t0 = 1_764_072_000_000  # 2025-11-25T12:00:00Z
    assert input_rows(progress) == [
        {"t_ms": t0 + 500, "rows": 0},
        {"t_ms": t0 + 1_200, "rows": 300},
        {"t_ms": t0 + 2_000, "rows": 550},  # the unreadable report's rows count, at the next readable time
        {"t_ms": t0 + 12_003, "rows": 550},
    ]


def test_metrics_summarise_the_progress_file(tmp_path: Path) -> None:
    spark = engine(tmp_path)
    progress = [
        {"batchId": 0, "timestamp": "t0", "numInputRows": 0, "durationMs": {"addBatch": 900, "triggerExecution": 1000},
         "eventTime": {"watermark": "1970-01-01T00:00:00.000Z"}},
        {"batchId": 1, "timestamp": "t1", "numInputRows": 30, "inputRowsPerSecond": 60.0,
         "processedRowsPerSecond": 100.0, "durationMs": {"addBatch": 250, "triggerExecution": 300}},
        {"batchId": 1, "timestamp": "t2", "numInputRows": 0, "durationMs": {"latestOffset": 2, "triggerExecution": 2}},
    ]
    spark.progress_path.write_text("".join(json.dumps(row) + "\n" for row in progress) + '{"batchId": 2')
    metrics = spark.metrics()
    assert metrics["batches"] == 2  # the idle report (no addBatch) and the half-written line are not batches
    assert metrics["batches_with_data"] == 1
    assert metrics["rows_in"] == 30
    assert metrics["batch_duration_ms_mean"] == 650
    assert metrics["batch_duration_ms_max"] == 1000
    assert [point["processed_rows_per_s"] for point in metrics["series"]] == [None, 100.0]
    assert [sample["rows"] for sample in metrics["input_rows"]] == []  # "t0" … are no times: no samples


def test_metrics_before_the_first_batch(tmp_path: Path) -> None:
    metrics = engine(tmp_path).metrics()
    assert metrics["batches"] == 0 and metrics["rows_in"] == 0 and metrics["series"] == []
    assert metrics["input_rows"] == []


def test_leftover_checkpoint_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state" / "spark-checkpoint" / "offsets").mkdir(parents=True)
    spark = engine(tmp_path)
    with pytest.raises(EngineError, match="holds state of an earlier run"):
        spark.start()
    spark.stop()  # idempotent, also when nothing started


def test_job_conf(tmp_path: Path) -> None:
    settings = {**SparkSettings(conf={"spark.sql.shuffle.partitions": "8"}).model_dump(), "jars": ["/a.jar", "/b.jar"]}
    conf = spark_conf(make_spec(tmp_path, parallelism=3, settings=settings), tmp_path / "log4j2.properties")
    assert conf["spark.master"] == "local[3]"
    assert conf["spark.jars"] == "/a.jar,/b.jar"
    assert "spark.jars.packages" not in conf
    assert conf["spark.sql.shuffle.partitions"] == "8"  # conf is applied last
    assert conf["spark.driver.memory"] == "2g"
    assert "-Xss32m" in conf["spark.driver.extraJavaOptions"]


def test_job_conf_shuffle_partitions_follow_parallelism(tmp_path: Path) -> None:
    conf = spark_conf(make_spec(tmp_path, parallelism=3, settings=SparkSettings().model_dump()), tmp_path / "x")
    assert conf["spark.sql.shuffle.partitions"] == "3"


def test_only_standalone_masters_elsewhere_need_a_bind_address() -> None:
    assert SparkSettings(master="local[2]").master == "local[2]"
    assert SparkSettings(master="bogus://nowhere:1").master == "bogus://nowhere:1"  # Spark refuses it at start
    assert errors(master="spark://10.0.0.7:7077,10.0.0.8:7077")
