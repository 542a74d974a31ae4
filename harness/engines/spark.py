"""Spark Structured Streaming: the windowed count as a PySpark job (:mod:`harness.engines.jobs.spark_job`).

The job runs as its own process (the venv's python, which launches Spark's JVM as its child) under
:class:`~harness.proc.ManagedProcess`, so stopping the group stops the driver python *and* the JVM. By default
Spark runs in-process as ``local[N]`` (N = the scenario's parallelism); ``master`` points it at a cluster instead.
The Kafka connector jars come from the harness's JVM cache through ``spark.jars`` — never resolved at run time.

On a standalone cluster (``master: spark://host:port``) the job is submitted with pyspark's own ``spark-submit``
in client mode: the driver runs here, ``--jars`` ships the connector jars to the executors, ``--py-files`` the
harness package, ``--files`` the executors' log configuration, and ``spark.cores.max`` holds the application to the
scenario's parallelism (a standalone application otherwise takes every core of the cluster). The checkpoint
directory must be on storage that the driver and every executor see at the same path (one host, or a shared
volume as in docker-compose.yml). Executors on other hosts must reach the driver: set ``conf:
{spark.driver.host: NAME}`` when this host's name does not resolve there.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import statistics
import sys
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Literal

import psutil
from pydantic import Field, field_validator

from harness import jvm, versions
from harness.engines.base import Engine, EngineContext, EngineSettings
from harness.engines.jobs.spark_job import CHECKPOINT_DIR, LOG4J2, LOG4J_FILE, PROGRESS_FILE, READY_MARKER, spark_conf
from harness.errors import EngineError
from harness.proc import ManagedProcess
from harness.units import format_duration_ms, parse_duration_ms

_PROJECT_ROOT = Path(__file__).resolve().parents[2]
_ERROR_LINE = re.compile(r'^Exception in thread|^(?:Caused by: )?[\w.$]+(?:Exception|Error): |^\d\d:\d\d:\d\d\.\d+ ERROR ')


class SparkSettings(EngineSettings):
    """Settings of the ``spark`` engine (``engines: [{engine: spark, settings: {...}}]`` in a scenario)."""

    output_mode: Literal["append", "update"] = "append"
    """append: each (window, user) once, when its window is final. update: re-emitted whenever it changes."""
    trigger: str = "0s"
    """Micro-batch interval; ``0s`` (Spark's own default) starts the next batch as soon as the last one ends."""
    max_offsets_per_trigger: int | None = Field(default=None, gt=0)
    """Cap on records per micro-batch (Kafka ``maxOffsetsPerTrigger``); none by default."""
    master: str | None = None
    """Spark master URL; default ``local[N]`` with N = the scenario's parallelism."""
    driver_memory: str = "2g"
    """Driver JVM heap (in local mode it also holds the executors and the state store)."""
    state_store: Literal["hdfs", "rocksdb"] = "hdfs"
    """State store provider: Spark's default in-memory map checkpointed to files, or RocksDB."""
    ui: bool = False
    """Run the Spark web UI (off by default: it costs CPU and a port while measuring)."""
    conf: dict[str, str] = Field(default_factory=dict)
    """Further Spark configuration, applied last (recorded with the result)."""

    @field_validator("trigger")
    @classmethod
    def _trigger(cls, value: str) -> str:
        if value.strip().lower() in ("realtime", "real-time", "continuous"):
            raise ValueError(
                f"{value!r} is not available: Spark 4.2's real-time mode and continuous processing reject stateful "
                "aggregations such as this windowed count (real-time mode gains them in Spark 4.3); give a "
                "micro-batch interval such as 0s or 500ms"
            )
        parse_duration_ms(value)
        return value.strip()

    @field_validator("driver_memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9]+[kmgtKMGT]", value.strip()):
            raise ValueError(f"must be a JVM memory size such as 512m or 2g (got {value!r})")
        return value.strip().lower()

    @field_validator("conf")
    @classmethod
    def _conf(cls, value: dict[str, str]) -> dict[str, str]:
        owned = {"spark.master", "spark.jars", "spark.jars.packages", "spark.driver.memory"}
        for key in value:
            if key in owned:
                raise ValueError(f"{key} is set by the engine; use the matching setting instead of conf")
            if not key.startswith("spark."):
                raise ValueError(f"{key!r} is not a Spark configuration key (they start with 'spark.')")
        return value


class SparkEngine(Engine):
    """Spark Structured Streaming, micro-batch, Kafka in and out. The runner calls start → wait_ready → (load) →
    metrics → stop; stop is safe at any point, also after a failed start."""

    name: ClassVar[str] = "spark"
    description: ClassVar[str] = "Spark Structured Streaming (PySpark, micro-batch), Kafka source and sink"
    Settings: ClassVar[type[EngineSettings]] = SparkSettings

    def __init__(self, settings: EngineSettings, context: EngineContext) -> None:
        if not isinstance(settings, SparkSettings):
            settings = SparkSettings.model_validate(settings.model_dump() if settings else {})
        super().__init__(settings, context)
        self.settings: SparkSettings = settings
        self._process: ManagedProcess | None = None

    # -------------------------------------------------------------------------------------------- locations
    @property
    def run_dir(self) -> Path:
        return Path(self.context.run_dir)

    @property
    def log_path(self) -> Path:
        return self.run_dir / "spark.log"

    @property
    def spec_path(self) -> Path:
        return self.run_dir / "spark-spec.json"

    @property
    def progress_path(self) -> Path:
        return self.run_dir / PROGRESS_FILE

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.context.spec.state_dir) / CHECKPOINT_DIR

    @property
    def standalone(self) -> bool:
        """True when the job is submitted to a standalone cluster (``master: spark://…``)."""
        return (self.settings.master or "").startswith("spark://")

    @property
    def deployment(self) -> str:
        """The master URL: ``local[N]``, or ``spark://…`` for a standalone cluster (client mode)."""
        return self.settings.master or f"local[{self.context.spec.parallelism}]"

    # -------------------------------------------------------------------------------------------- lifecycle
    def job_spec(self) -> dict[str, Any]:
        """The JobSpec the job is given: the run's spec with this engine's settings plus where things are."""
        settings = {
            **self.settings.model_dump(mode="json"),
            "jars": [str(path) for path in jvm.classpath("spark-kafka")],
            "progress_file": str(self.progress_path),
        }
        return dataclasses.replace(self.context.spec, settings=settings).to_json()

    def start(self) -> None:
        if self._process is not None:
            raise EngineError("spark: start() called twice")
        if self.checkpoint_dir.exists() and any(self.checkpoint_dir.iterdir()):
            raise EngineError(
                f"spark: checkpoint {self.checkpoint_dir} holds state of an earlier run; Spark would resume from it "
                "instead of reading the fresh topic — hint: give each run its own state_dir"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.spec_path.write_text(json.dumps(self.job_spec(), indent=2) + "\n")
        env = {**os.environ, **self.context.extra_env}
        env.update(
            PYSPARK_PYTHON=sys.executable,
            PYSPARK_DRIVER_PYTHON=sys.executable,
            PYTHONUNBUFFERED="1",
            SPARK_LOCAL_DIRS=str(Path(self.context.spec.state_dir) / "spark-local"),  # shuffle files: run dir
            JAVA_HOME=str(jvm.java_home()),
            PYTHONPATH=os.pathsep.join(p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p),
        )
        if _binds_loopback(self.settings.master):
            # else Spark resolves the host name and may bind an unreachable address; a driver serving executors
            # on other hosts must bind an address they can reach, so there Spark's own choice (or conf) decides
            env["SPARK_LOCAL_IP"] = "127.0.0.1"
        argv = self.submit_command() if self.standalone else [
            sys.executable, "-m", "harness.engines.jobs.spark_job", "--spec", str(self.spec_path)]
        self._process = ManagedProcess("spark job", argv, self.log_path, env=env, cwd=self.run_dir,
                                       error_class=EngineError)
        self._process.start()

    def submit_command(self) -> list[str]:
        """``spark-submit`` of the job file to the standalone master, with everything the executors need shipped
        along (see the module docstring). The job's own SparkSession settings repeat the same configuration."""
        spec = dataclasses.replace(self.context.spec, settings=self.job_spec()["settings"])
        log4j = self.run_dir / LOG4J_FILE
        log4j.write_text(LOG4J2)  # the driver JVM starts with it, before the job writes its own copy
        conf = spark_conf(spec, log4j)
        owned = {"spark.master": "--master", "spark.jars": "--jars", "spark.driver.memory": "--driver-memory"}
        argv = [str(_spark_home() / "bin" / "spark-submit")]
        argv += [item for key, flag in owned.items() for item in (flag, conf[key])]
        argv += ["--py-files", str(self._harness_zip()), "--files", str(log4j)]
        for key, value in conf.items():
            if key not in owned:
                argv += ["--conf", f"{key}={value}"]
        return [*argv, str(_PROJECT_ROOT / "harness" / "engines" / "jobs" / "spark_job.py"),
                "--spec", str(self.spec_path)]

    def _harness_zip(self) -> Path:
        """The harness package as a zip for ``--py-files``: Python that runs on executors (none in this
        JVM-only query, but a plug-in job's UDFs would) imports it from there."""
        path = self.run_dir / "harness.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for source in sorted((_PROJECT_ROOT / "harness").rglob("*.py")):
                archive.write(source, source.relative_to(_PROJECT_ROOT))
        return path

    def wait_ready(self, timeout: float) -> None:
        if self._process is None:
            raise EngineError("spark: wait_ready() before start()")
        try:
            self._process.wait_for_line(
                rf"^{READY_MARKER}$",
                timeout,
                hint="the Spark log above says why; a bad setting (master, conf) fails here, and a slow machine "
                "may need a longer engine start timeout",
            )
        except EngineError as exc:
            self.stop()  # nothing half-started survives a failed start
            cause = self.first_error()
            if cause:
                raise EngineError(f"{exc}\n  first error in the log: {cause}") from None
            raise

    def first_error(self) -> str | None:
        """The first exception line of the job's log: Spark's stack traces are long, so the log tail often shows
        only frames and the Python traceback of the failed gateway call, not what went wrong."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return None
        for line in lines:
            if _ERROR_LINE.search(line) and not line.lstrip().startswith("at "):
                return line.strip()[:500]
        return None

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(grace=20.0)

    def check(self) -> None:
        if self._process is not None and self._process.returncode is not None:
            cause = self.first_error()
            raise EngineError(self._process.failure_message(
                f"job exited with code {self._process.returncode} during the run"
                + (f"; first error in the log: {cause}" if cause else "")
            ))

    # ------------------------------------------------------------------------------------------- reporting
    def fairness(self) -> dict[str, str]:
        spec = self.context.spec
        trigger_ms = parse_duration_ms(self.settings.trigger)
        if trigger_ms == 0:
            trigger = "micro-batch, next batch as soon as the previous ends (processingTime 0)"
        else:
            trigger = f"micro-batch every {format_duration_ms(trigger_ms)} (processingTime)"
        if self.settings.max_offsets_per_trigger:
            trigger += f", at most {self.settings.max_offsets_per_trigger} records per batch"
        output_mode = {
            "append": "append: each (window, user) once, when the window is final",
            "update": "update: a (window, user) again in every micro-batch that changed it; the last wins",
        }[self.settings.output_mode]
        return {
            "output_mode": output_mode,
            "trigger": trigger,
            "watermark": f"max event time over all partitions − {format_duration_ms(spec.watermark_delay_ms)}, "
            "advanced between micro-batches",
            "late_events": "dropped when window closed (watermark ≥ end)",
            "checkpointing": f"micro-batch offsets/state to {'a shared' if self.standalone else 'local'} dir every "
            f"batch ({self.settings.state_store} state store)",
            "delivery": "at-least-once (Kafka sink)",
            "parallelism": f"{spec.parallelism} ({'executor cores (spark.cores.max)' if self.standalone else 'local cores'}"
            " / shuffle partitions)",
            "partitions": str(spec.partitions),
            "deployment": self.deployment,
        }

    def progress(self) -> list[dict[str, Any]]:
        """Every StreamingQueryProgress the job wrote so far, oldest first."""
        rows = []
        try:
            with open(self.progress_path, encoding="utf-8") as file:
                for line in file:
                    if line.endswith("\n"):  # a line being written is read next time
                        rows.append(json.loads(line))
        except FileNotFoundError:
            pass
        return rows

    def metrics(self) -> dict[str, Any]:
        """Summaries of Spark's own progress reports: micro-batches run (with data, and no-data batches that close
        windows), rows read, batch durations (ms), and per batch its processing rate (rows/s) and the watermark
        (ISO time, as Spark reports it). ``job_exit_code`` is None while the job runs: a number during the run
        means the job died (its log says why)."""
        batches = [row for row in self.progress() if row.get("numInputRows", 0) > 0 or _is_no_data_batch(row)]
        durations = [row["durationMs"].get("triggerExecution", 0) for row in batches if "durationMs" in row]
        return {
            "progress_file": str(self.progress_path),
            "job_exit_code": None if self._process is None else self._process.returncode,
            "batches": len(batches),
            "batches_with_data": sum(1 for row in batches if row.get("numInputRows", 0) > 0),
            "rows_in": sum(row.get("numInputRows", 0) for row in batches),
            "batch_duration_ms_mean": statistics.fmean(durations) if durations else None,
            "batch_duration_ms_max": max(durations) if durations else None,
            "processed_series": [
                {"t_ms": started + row["durationMs"].get("triggerExecution", 0),
                 "processed": row.get("processedRowsPerSecond") or 0.0}
                for row in batches
                if row.get("numInputRows", 0) > 0 and "durationMs" in row
                and (started := _epoch_ms(row.get("timestamp"))) is not None
            ],
            "series": [
                {
                    "timestamp": row.get("timestamp"),
                    "batch_id": row.get("batchId"),
                    "rows_in": row.get("numInputRows"),
                    "input_rows_per_s": row.get("inputRowsPerSecond"),
                    "processed_rows_per_s": row.get("processedRowsPerSecond"),
                    "duration_ms": row.get("durationMs", {}).get("triggerExecution"),
                    "watermark": row.get("eventTime", {}).get("watermark"),
                }
                for row in batches
            ],
        }

    def processes(self) -> list[psutil.Process]:
        return [] if self._process is None else self._process.processes()

    def log_files(self) -> list[Path]:
        return [path for path in (self.log_path, self.progress_path, self.spec_path) if path.exists()]

    def versions(self) -> dict[str, str]:
        found = {"spark": metadata.version("pyspark"), "spark-sql-kafka": versions.SPARK}
        for path in jvm.bundle_dir("spark-kafka").glob("kafka-clients-*.jar"):
            found["kafka-clients"] = path.stem.removeprefix("kafka-clients-")
        return found


def _spark_home() -> Path:
    """The Spark distribution inside the pyspark wheel (``bin/spark-submit``)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _binds_loopback(master: str | None) -> bool:
    """Local mode, or a standalone master on this host's loopback: everything talks over 127.0.0.1."""
    if master is None or not master.startswith("spark://"):
        return True
    host = master.removeprefix("spark://").split(",")[0].rsplit(":", 1)[0]
    return host in ("localhost", "::1") or host.startswith("127.")


def _epoch_ms(iso: Any) -> int | None:
    """Spark's progress timestamps (``2026-11-25T13:45:04.212Z``, UTC) as epoch milliseconds; None if unreadable."""
    try:
        return int(dt.datetime.fromisoformat(str(iso).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def _is_no_data_batch(row: dict[str, Any]) -> bool:
    """A batch Spark ran without input to move the watermark (it emits closed windows); idle reports that repeat
    the last batch id have no ``durationMs.addBatch``."""
    return "addBatch" in row.get("durationMs", {})
