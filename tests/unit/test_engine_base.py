"""The engine interface (fairness settings, context, versions) and the shared base of process engines, driven with
a tiny Python job instead of an engine: no broker, no JVM."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import pytest

from harness.infra.distributions import PROJECT_ROOT
from harness.engines.base import (
    FAIRNESS_KEYS,
    Engine,
    EngineContext,
    EngineSettings,
    Setting,
    engine_versions,
    normalise_fairness,
)
from harness.engines.flink import FlinkEngine, FlinkPythonEngine, FlinkSettings
from harness.engines.process import ProcessEngine
from harness.engines.spark import SparkEngine, SparkSettings
from harness.errors import EngineError
from harness.infra.proc import ManagedProcess
from harness.workload import JobSpec


def make_spec(tmp_path: Path, parallelism: int = 4, partitions: int = 4) -> JobSpec:
    return JobSpec("127.0.0.1:9092", "in", "out", 10_000, 10_000, 2_000, parallelism, partitions,
                   str(tmp_path / "state"), {})


# ------------------------------------------------------------------------------------------- fairness values
def test_setting_shows_value_and_detail() -> None:
    assert str(Setting("4", "local cores / shuffle partitions")) == "4 (local cores / shuffle partitions)"
    assert str(Setting("off")) == "off"


def test_plain_strings_and_stored_json_normalise_to_settings() -> None:
    stored = dataclasses.asdict(Setting("append", "once"))
    assert normalise_fairness({"a": "at-least-once", "b": Setting("x", "y"), "c": stored}) == {
        "a": Setting("at-least-once"), "b": Setting("x", "y"), "c": Setting("append", "once")}


def fairness_of(engine_class: type[Engine], settings: EngineSettings, tmp_path: Path, **spec: int) -> dict[str, Setting]:
    engine = engine_class(settings, EngineContext(make_spec(tmp_path, **spec), tmp_path))
    return normalise_fairness(engine.fairness())


def differing(a: dict[str, Setting], b: dict[str, Setting]) -> set[str]:
    return {key for key in FAIRNESS_KEYS if a[key].value != b[key].value}


def test_defaults_differ_only_where_the_semantics_differ(tmp_path: Path) -> None:
    """Spark and Flink word their settings differently; equal semantics compare equal, real differences differ."""
    spark = fairness_of(SparkEngine, SparkSettings(), tmp_path)
    flink = fairness_of(FlinkEngine, FlinkSettings(), tmp_path)
    assert differing(spark, flink) == {"trigger", "watermark", "checkpointing"}
    assert spark["parallelism"].detail != flink["parallelism"].detail  # shown, not compared
    assert spark["delivery"].detail != flink["delivery"].detail


def test_true_differences_are_flagged(tmp_path: Path) -> None:
    spark = fairness_of(SparkEngine, SparkSettings(output_mode="update"), tmp_path)
    flink = fairness_of(FlinkEngine, FlinkSettings(delivery="exactly-once", config={"parallelism.default": "2"}),
                        tmp_path)
    assert {"output_mode", "delivery", "parallelism"} <= differing(spark, flink)
    on_cluster = fairness_of(FlinkEngine, FlinkSettings(jobmanager="jm:8081"), tmp_path)
    assert differing(flink, on_cluster) >= {"deployment"}


def test_flink_engines_agree_except_on_the_python_bundles(tmp_path: Path) -> None:
    sql = fairness_of(FlinkEngine, FlinkSettings(), tmp_path)
    python = fairness_of(FlinkPythonEngine, FlinkPythonEngine.Settings(), tmp_path)
    assert differing(sql, python) == {"trigger"}
    assert differing(sql, fairness_of(FlinkPythonEngine, FlinkPythonEngine.Settings(), tmp_path, parallelism=2)) == {
        "trigger", "watermark", "parallelism"}


def test_every_builtin_value_is_in_the_documented_vocabulary(tmp_path: Path) -> None:
    vocabulary = Setting.__doc__ or ""
    for engine_class, settings in ((SparkEngine, SparkSettings()), (FlinkEngine, FlinkSettings())):
        fairness = fairness_of(engine_class, settings, tmp_path)
        for key in ("output_mode", "late_events", "delivery", "deployment"):
            assert f"``{fairness[key].value}``" in vocabulary, (engine_class.name, key)


# ---------------------------------------------------------------------------------------- context, versions
def test_extra_env_is_deprecated_but_accepted(tmp_path: Path) -> None:
    with pytest.warns(DeprecationWarning, match="extra_env"):
        context = EngineContext(make_spec(tmp_path), tmp_path, extra_env={"A": "1"})
    with pytest.warns(DeprecationWarning, match="always empty"):
        assert context.extra_env == {}
    with pytest.raises(TypeError, match="unexpected keyword arguments: colour"):
        EngineContext(make_spec(tmp_path), tmp_path, colour="red")


def test_context_is_frozen_and_takes_a_string_path(tmp_path: Path) -> None:
    context = EngineContext(spec=make_spec(tmp_path), run_dir=str(tmp_path))
    assert context.run_dir == tmp_path
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.run_dir = Path("/elsewhere")  # type: ignore[misc]
    assert dataclasses.replace(context, run_dir=tmp_path / "x").run_dir == tmp_path / "x"


class _OldStyle(Engine):
    """A third-party engine written against the old interface: versions() as an instance method."""

    name = "old-style"

    def start(self) -> None: ...
    def wait_ready(self, timeout: float) -> None: ...
    def stop(self) -> None: ...
    def fairness(self) -> dict[str, Any]:
        return {}

    def versions(self) -> dict[str, str]:  # type: ignore[override]
        return {"old": "1.0"}


def test_engine_versions_for_the_fingerprint() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # built-in engines need no shim
        found = engine_versions({"spark": SparkEngine, "flink-sql": FlinkEngine})
    assert found["spark"]["spark"] == "4.2.0"
    assert found["flink-sql"]["flink_api"] == "Table API / SQL (JVM operators)"
    with pytest.warns(DeprecationWarning, match="should be a classmethod"):
        assert engine_versions([_OldStyle]) == {"old-style": {"old": "1.0"}}


# ---------------------------------------------------------------------------------------- the process base
class _ScriptEngine(ProcessEngine):
    """A process engine whose "job" is a few lines of Python: prints READY, then runs until told otherwise."""

    name: ClassVar[str] = "script"
    log_name: ClassVar[str] = "script.log"
    stop_grace_s: ClassVar[float] = 5.0
    script: ClassVar[str] = "import sys, time; print('READY', flush=True); time.sleep(300)"

    def command(self) -> list[str]:
        return [sys.executable, "-c", self.script, str(self.spec_path)]

    def wait_for_job(self, process: ManagedProcess, timeout: float) -> None:
        process.wait_for_line(r"^READY$", timeout)

    def fairness(self) -> dict[str, Any]:
        return {key: "n/a" for key in FAIRNESS_KEYS}


class _FailingEngine(_ScriptEngine):
    script: ClassVar[str] = (
        "print('12:00:00.000 WARN all fine'); print('java.lang.IllegalStateException: no broker'); "
        "print('    at Foo.bar(Foo.java:1)'); raise SystemExit(3)"
    )


def test_process_engine_lifecycle(tmp_path: Path) -> None:
    engine = _ScriptEngine(EngineSettings(), EngineContext(make_spec(tmp_path), tmp_path / "run"))
    engine.stop()  # before start: harmless
    engine.start()
    try:
        engine.wait_ready(60)
        assert engine.ready_after_s is not None and engine.ready_after_s > 0
        engine.check()  # alive: no error
        [proc] = [p for p in engine.processes() if "READY" in " ".join(p.cmdline())]
        assert json.loads(engine.spec_path.read_text())["input_topic"] == "in"
        assert engine.log_tail() == ["READY"]
        assert (tmp_path / "state").is_dir()
        with pytest.raises(EngineError, match="start\\(\\) called twice"):
            engine.start()
    finally:
        engine.stop()
    assert not proc.is_running() or proc.status() == "zombie"
    assert engine.processes() == []
    assert {path.name for path in engine.log_files()} == {"script.log", "job-spec.json"}
    engine.stop()  # idempotent
    engine.check()  # stopped: no error


def test_a_job_that_dies_before_ready_is_reported_with_its_first_error(tmp_path: Path) -> None:
    engine = _FailingEngine(EngineSettings(), EngineContext(make_spec(tmp_path), tmp_path))
    engine.start()
    with pytest.raises(EngineError) as failure:
        engine.wait_ready(60)
    message = str(failure.value)
    assert message.startswith("script job: exited with code 3 before log line /^READY$/")
    assert message.endswith("first error in the log: java.lang.IllegalStateException: no broker")
    assert engine.processes() == []


def test_check_reports_a_job_that_died_during_the_run(tmp_path: Path) -> None:
    engine = _ScriptEngine(EngineSettings(), EngineContext(make_spec(tmp_path), tmp_path))
    engine.start()
    try:
        engine.wait_ready(60)
        for proc in engine.processes():
            proc.kill()
        _wait_dead(engine)
        with pytest.raises(EngineError, match="script job: job exited with code -?\\d+ during the run"):
            engine.check()
    finally:
        engine.stop()


def _wait_dead(engine: ProcessEngine) -> None:
    assert engine.process is not None
    for _ in range(300):
        if engine.process.returncode is not None:
            return
        time.sleep(0.1)
    raise AssertionError("the killed job did not exit")


def test_environment_puts_this_harness_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    env = _ScriptEngine(EngineSettings(), EngineContext(make_spec(tmp_path), tmp_path)).environment()
    assert env["PYTHONPATH"].split(":") == [str(PROJECT_ROOT), "/somewhere/else"]
    assert env["PYTHONUNBUFFERED"] == "1" and Path(env["JAVA_HOME"], "bin", "java").exists()


def test_harness_zip_holds_the_package(tmp_path: Path) -> None:
    engine = _ScriptEngine(EngineSettings(), EngineContext(make_spec(tmp_path), tmp_path))
    tmp_path.mkdir(exist_ok=True)
    with zipfile.ZipFile(engine.harness_zip()) as archive:
        names = set(archive.namelist())
    assert {"harness/__init__.py", "harness/engines/process.py", "harness/engines/jobs/spark_job.py"} <= names
    assert all(name.startswith("harness/") and name.endswith(".py") for name in names)
