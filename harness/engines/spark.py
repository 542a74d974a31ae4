"""Spark Structured Streaming: the windowed count as a PySpark job (:mod:`harness.engines.jobs.spark_job`).

The job runs as its own process (the venv's python, which launches Spark's JVM as its child) under
:class:`~harness.engines.process.ProcessEngine`, so stopping the group stops the driver python *and* the JVM. By
default Spark runs in-process as ``local[N]`` (N = the scenario's parallelism); ``master`` points it at a cluster
instead. The Kafka connector jars come from the harness's JVM cache through ``spark.jars`` — never resolved at run
time.

The driver (its RPC endpoint, block manager and, with ``ui``, the web UI) listens on ``bind_address``, 127.0.0.1
by default. On a standalone cluster (``master: spark://host:port``) the job is submitted with pyspark's own
``spark-submit`` in client mode: the driver runs here, ``--jars`` ships the connector jars to the executors,
``--py-files`` the harness package, ``--files`` the executors' log configuration, and ``spark.cores.max`` holds the
application to the scenario's parallelism (a standalone application otherwise takes every core of the cluster).
Executors on other hosts must reach the driver: set ``bind_address`` to an address they can reach (or
``0.0.0.0``) and ``conf: {spark.driver.host: NAME}`` to the name they resolve this host by. The checkpoint
directory must be on storage that the driver and every executor see at the same path (one host, or a shared
volume as in docker-compose.yml).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import statistics
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from harness import versions

from harness.infra import jvm
from harness.infra.distributions import PROJECT_ROOT, spark_home
from harness.engines.base import EngineContext, EngineSettings, Setting
from harness.engines.jobs import LOOPBACK, WILDCARD_ADDRESSES
from harness.engines.jobs.spark_job import CHECKPOINT_DIR, LOG4J2, LOG4J_FILE, PROGRESS_FILE, READY_MARKER, spark_conf
from harness.engines.process import ProcessEngine
from harness.errors import EngineError
from harness.infra.proc import ManagedProcess
from harness.units import format_duration_ms, parse_duration_ms

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
    bind_address: str = LOOPBACK
    """Address the driver listens on (RPC, block manager, web UI); also what it advertises unless it is a
    wildcard (``0.0.0.0``) or ``conf`` sets ``spark.driver.host``."""
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

    @field_validator("bind_address")
    @classmethod
    def _bind_address(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9.:\-]+", value.strip()):
            raise ValueError(f"must be an IP address or host name such as 127.0.0.1 or 0.0.0.0 (got {value!r})")
        return value.strip()

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

    @model_validator(mode="after")
    def _remote_executors_reach_the_driver(self) -> SparkSettings:
        """A master on another host has executors there: a driver on loopback would leave them unable to connect
        (the job would hang waiting for executors), so the default loopback bind must be overridden."""
        if (
            "bind_address" not in self.model_fields_set
            and "spark.driver.bindAddress" not in self.conf
            and _remote_master(self.master)
        ):
            raise ValueError(
                f"master {self.master} is on another host, whose executors must reach the driver here, but the "
                "driver binds 127.0.0.1 by default; set bind_address to an address of this host they reach (or "
                "0.0.0.0) and conf spark.driver.host to the name they know this host by"
            )
        return self

    @property
    def effective_bind_address(self) -> str:
        """Where the driver listens: ``conf``'s ``spark.driver.bindAddress`` (applied last) or ``bind_address``."""
        return self.conf.get("spark.driver.bindAddress", self.bind_address)


class SparkEngine(ProcessEngine):
    """Spark Structured Streaming, micro-batch, Kafka in and out. The runner calls start → wait_ready → (load) →
    metrics → stop; stop is safe at any point, also after a failed start."""

    name: ClassVar[str] = "spark"
    description: ClassVar[str] = "Spark Structured Streaming (PySpark, micro-batch), Kafka source and sink"
    Settings: ClassVar[type[EngineSettings]] = SparkSettings
    log_name: ClassVar[str] = "spark.log"
    spec_name: ClassVar[str] = "spark-spec.json"
    stop_grace_s: ClassVar[float] = 20.0

    settings: SparkSettings

    def __init__(self, settings: EngineSettings, context: EngineContext) -> None:
        if not isinstance(settings, SparkSettings):
            settings = SparkSettings.model_validate(settings.model_dump() if settings else {})
        super().__init__(settings, context)

    # -------------------------------------------------------------------------------------------- locations
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
    def job_settings(self) -> dict[str, Any]:
        return {
            **self.settings.model_dump(mode="json"),
            "jars": [str(path) for path in jvm.classpath("spark-kafka")],
            "progress_file": str(self.progress_path),
        }

    def start(self) -> None:
        """Launch the job; refused when the checkpoint holds state, unless this is a :meth:`restart` after a
        ``kill-engine`` fault: the query then resumes from the checkpoint's last committed offsets and state."""
        if self.restarts == 0 and self.checkpoint_dir.exists() and any(self.checkpoint_dir.iterdir()):
            raise EngineError(
                f"spark: checkpoint {self.checkpoint_dir} holds state of an earlier run; Spark would resume from it "
                "instead of reading the fresh topic — hint: give each run its own state_dir"
            )
        super().start()

    def command(self) -> list[str]:
        if self.standalone:
            return self.submit_command()
        return [sys.executable, "-m", "harness.engines.jobs.spark_job", "--spec", str(self.spec_path)]

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.update(
            PYSPARK_PYTHON=sys.executable,
            PYSPARK_DRIVER_PYTHON=sys.executable,
            SPARK_LOCAL_DIRS=str(Path(self.context.spec.state_dir) / "spark-local"),  # shuffle files: run dir
        )
        bind = self.settings.effective_bind_address
        if bind in WILDCARD_ADDRESSES:
            env.pop("SPARK_LOCAL_IP", None)  # Spark picks the host's address to advertise
        else:
            env["SPARK_LOCAL_IP"] = bind  # also where the web UI binds (it ignores spark.driver.bindAddress)
        return env

    def submit_command(self) -> list[str]:
        """``spark-submit`` of the job file to the standalone master, with everything the executors need shipped
        along (see the module docstring). The job's own SparkSession settings repeat the same configuration."""
        log4j = self.run_dir / LOG4J_FILE
        log4j.write_text(LOG4J2)  # the driver JVM starts with it, before the job writes its own copy
        conf = spark_conf(self.job_spec(), log4j)
        owned = {"spark.master": "--master", "spark.jars": "--jars", "spark.driver.memory": "--driver-memory"}
        argv = [str(spark_home() / "bin" / "spark-submit")]
        argv += [item for key, flag in owned.items() for item in (flag, conf[key])]
        argv += ["--py-files", str(self.harness_zip()), "--files", str(log4j)]
        for key, value in conf.items():
            if key not in owned:
                argv += ["--conf", f"{key}={value}"]
        return [*argv, str(PROJECT_ROOT / "harness" / "engines" / "jobs" / "spark_job.py"),
                "--spec", str(self.spec_path)]

    def wait_for_job(self, process: ManagedProcess, timeout: float) -> None:
        process.wait_for_line(
            rf"^{READY_MARKER}$",
            timeout,
            hint="the Spark log above says why; a bad setting (master, conf) fails here, and a slow machine "
            "may need a longer engine start timeout",
        )

    def extra_log_files(self) -> list[Path]:
        return [self.progress_path]

    # ------------------------------------------------------------------------------------------- reporting
    def fairness(self) -> dict[str, Setting | str]:
        spec = self.context.spec
        settings = self.settings
        return {
            "output_mode": Setting(settings.output_mode, {
                "append": "each (window, user) once, in the first micro-batch after its window is final",
                "update": "a (window, user) again in every micro-batch that changed it; the last wins",
            }[settings.output_mode]),
            "trigger": self._trigger_setting(),
            "watermark": Setting(
                f"{spec.watermark_delay_ms} ms, global (max over partitions)",
                f"max event time over all partitions − {format_duration_ms(spec.watermark_delay_ms)}, advanced "
                "between micro-batches",
            ),
            "late_events": Setting("dropped", "a window closes when the watermark reaches its end"),
            "checkpointing": Setting(
                "every micro-batch",
                f"offsets and state to {'a shared' if self.standalone else 'the run'} directory "
                f"({settings.state_store} state store)",
            ),
            "delivery": Setting("at-least-once", "Kafka sink; a replayed micro-batch writes its results again"),
            "parallelism": self._parallelism_setting(),
            "partitions": Setting(str(spec.partitions), "Kafka input partitions"),
            "deployment": Setting(
                "cluster" if self.standalone or not self.deployment.startswith("local") else "local",
                f"{self.deployment} (client mode: the driver runs here)" if self.standalone else self.deployment,
            ),
        }

    def _trigger_setting(self) -> Setting:
        trigger_ms = parse_duration_ms(self.settings.trigger)
        if trigger_ms == 0:
            value, detail = "micro-batch, as fast as possible", "processingTime 0: next batch when the last ends"
        else:
            value, detail = f"micro-batch every {trigger_ms} ms", f"processingTime {self.settings.trigger}"
        if self.settings.max_offsets_per_trigger:
            value += f", at most {self.settings.max_offsets_per_trigger} records per batch"
            detail += " (maxOffsetsPerTrigger)"
        return Setting(value, detail)

    def _parallelism_setting(self) -> Setting:
        """Cores working on the query (local[N] or spark.cores.max) and the shuffle partitions of its state;
        both follow the scenario's parallelism unless ``master`` or ``conf`` say otherwise."""
        spec = self.context.spec
        conf = self.settings.conf
        cores = spec.parallelism
        if self.standalone:
            cores = int(conf.get("spark.cores.max", cores))
        elif (match := re.fullmatch(r"local\[(\d+)(?:,\s*\d+)?\]", self.deployment)) is not None:
            cores = int(match[1])
        shuffle = int(conf.get("spark.sql.shuffle.partitions", spec.parallelism))
        value = str(cores) if shuffle == cores else f"{cores}, {shuffle} shuffle partitions"
        where = "executor cores (spark.cores.max)" if self.standalone else "local cores"
        return Setting(value, f"{where} / shuffle partitions")

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

    def recovered_at(self, since_ms: int) -> int | None:
        """After a ``kill-worker`` fault (an executor killed at ``since_ms``; Spark re-runs its tasks on the
        executor the standalone worker launches anew): when the first micro-batch that started after the kill
        ended, i.e. the query was processing on a live executor again. None until then. The batch in flight at
        the kill may end earlier, once its lost tasks have run again; it is not taken, since one that only had to
        commit when the executor died would end at once and say nothing."""
        for row in self.progress():
            started = _epoch_ms(row.get("timestamp"))
            ended = _ended_ms(row)
            if started is not None and ended is not None and started >= since_ms and (
                row.get("numInputRows", 0) > 0 or _is_no_data_batch(row)
            ):
                return ended
        return None

    def metrics(self) -> dict[str, Any]:
        """Summaries of Spark's own progress reports: micro-batches run (with data, and no-data batches that close
        windows), rows read, batch durations (ms), per batch its processing rate (rows/s) and the watermark (ISO
        time, as Spark reports it), and ``input_rows`` (see :meth:`Engine.metrics`) from every progress report.
        ``job_exit_code`` is None while the job runs: a number during the run means the job died."""
        progress = self.progress()
        batches = [row for row in progress if row.get("numInputRows", 0) > 0 or _is_no_data_batch(row)]
        durations = [row["durationMs"].get("triggerExecution", 0) for row in batches if "durationMs" in row]
        return {
            "progress_file": str(self.progress_path),
            "job_exit_code": None if self.process is None else self.process.returncode,
            "batches": len(batches),
            "batches_with_data": sum(1 for row in batches if row.get("numInputRows", 0) > 0),
            "rows_in": sum(row.get("numInputRows", 0) for row in batches),
            "batch_duration_ms_mean": statistics.fmean(durations) if durations else None,
            "batch_duration_ms_max": max(durations) if durations else None,
            "input_rows": input_rows(progress),
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

    @classmethod
    def versions(cls) -> dict[str, str]:
        found = {"spark": metadata.version("pyspark"), "spark-sql-kafka": versions.SPARK}
        for path in jvm.bundle_dir("spark-kafka").glob("kafka-clients-*.jar"):
            found["kafka-clients"] = path.stem.removeprefix("kafka-clients-")
        return found


def input_rows(progress: list[dict[str, Any]]) -> list[dict[str, int]]:
    """The ``input_rows`` series of :meth:`Engine.metrics` from Spark's progress reports: after each report, the
    rows of every micro-batch so far, at the end of that batch (its start ``timestamp`` + ``triggerExecution``).
    Idle reports repeat the count, later. Reports without a readable time are counted but get no sample."""
    samples: list[dict[str, int]] = []
    rows = 0
    for row in progress:
        rows += int(row.get("numInputRows", 0) or 0)
        ended = _ended_ms(row)
        if ended is not None:
            samples.append({"t_ms": max(ended, samples[-1]["t_ms"]) if samples else ended, "rows": rows})
    return samples


def _remote_master(master: str | None) -> bool:
    """True for a standalone master (``spark://host:port``) on another host than this one's loopback. Local
    masters are not remote; other schemes are Spark's to accept or refuse."""
    if master is None or not master.startswith("spark://"):
        return False
    host = master.removeprefix("spark://").split(",")[0].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def _ended_ms(row: dict[str, Any]) -> int | None:
    """When a progress report's batch ended: its start ``timestamp`` + ``durationMs.triggerExecution``, epoch ms."""
    started = _epoch_ms(row.get("timestamp"))
    if started is None:
        return None
    return started + int(row.get("durationMs", {}).get("triggerExecution", 0) or 0)


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


__all__ = ["SparkEngine", "SparkSettings", "input_rows"]
