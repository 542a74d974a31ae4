"""Apache Flink engines: the windowed count in SQL (``flink``) and with Python functions (``flink-python``).

Both run their job (``harness/engines/jobs/flink_sql_job.py`` / ``flink_python_job.py``) in a process of its own
(:class:`~harness.engines.process.ProcessEngine`) with the venv's PyFlink:

- **Local (default)**: the job's JVM hosts a MiniCluster with ``spec.parallelism`` slots. Everything it and the
  job's Python process listen on (REST endpoint, blob server, PyFlink's Python worker pool) binds
  ``bind_address``, 127.0.0.1 by default; the REST port is a free one chosen here.
- **Session cluster** (``jobmanager: host:port``): the job is submitted with PyFlink's ``bin/flink run -t remote``
  attached with shutdown-on-attached-exit (``-sae``: the client cancels the job when it is terminated, e.g. when
  ``bench`` dies), ``-py`` with the harness package shipped as a zip via ``-pyfs``. The REST endpoint is the
  JobManager's; :meth:`FlinkEngine.stop` cancels the job there (by id, or by its unique name when the id is not
  known yet), and :meth:`FlinkEngine.start` first cancels leftovers of earlier runs whose ``bench`` is gone.

Ready means: the job is RUNNING, every task is RUNNING, and the Kafka source reader has registered every input
partition (its ``KafkaSourceReader.topic.T.partition.P.currentOffset`` metrics exist), so no record sent after
``wait_ready`` returns can be missed or read late because the source was still starting. From then until stop a
background thread samples the source's ``numRecordsIn`` once a second (:mod:`harness.engines.flink_metrics`): the
``input_rows`` metric. The settings are in :mod:`harness.engines.flink_settings`; job names, leftovers of earlier
runs and retained checkpoints in :mod:`harness.engines.flink_jobs`.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import yaml

from harness import versions

from harness.infra import jvm
from harness.workload import WatermarkRule
from harness.infra.distributions import PROJECT_ROOT, flink_home, flink_shipped_config
from harness.engines.base import EngineContext, EngineSettings, Setting
from harness.engines.flink_jobs import cancel_leftovers, job_name_for, latest_checkpoint
from harness.engines.flink_metrics import CounterSampler
from harness.engines.flink_rest import TERMINAL_STATES, FlinkRest
from harness.engines.flink_settings import FlinkPythonSettings, FlinkSettings
from harness.engines.jobs.flink_sql_job import CHECKPOINT_DIR
from harness.engines.jobs import LOOPBACK
from harness.engines.process import ProcessEngine
from harness.errors import EngineError
from harness.infra.ports import free_port
from harness.infra.proc import ManagedProcess
from harness.units import format_duration_ms

METRICS_FILE = "flink-metrics.json"
"""Every metrics snapshot of the run, in the run directory."""
JOB_LOG = "flink-job.log"
SAMPLE_EVERY_S = 1.0
"""Interval of the ``input_rows`` samples."""

_LOG4J = """\
# Written by harness.engines.flink: {level} and above on the console (into the run's {log}).
rootLogger.level = {level}
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{{HH:mm:ss.SSS}} %p %c{{1}}: %m%n%ex
# harmless on every start or every checkpoint
logger.metricgroup.name = org.apache.flink.metrics.MetricGroup
logger.metricgroup.level = ERROR
logger.tokens.name = org.apache.flink.runtime.security.token
logger.tokens.level = ERROR
logger.appinfo.name = org.apache.kafka.common.utils.AppInfoParser
logger.appinfo.level = ERROR
logger.appinfoshaded.name = org.apache.flink.kafka.shaded.org.apache.kafka.common.utils.AppInfoParser
logger.appinfoshaded.level = ERROR
# PyFlink's own operator names (Source: … -> _stream_key_by_map_operator) exceed the metric name limit
logger.metricutils.name = org.apache.flink.runtime.metrics.util.MetricUtils
logger.metricutils.level = ERROR
logger.netty.name = org.jboss.netty.channel.DefaultChannelPipeline
logger.netty.level = OFF
"""


class FlinkEngine(ProcessEngine):
    """Flink Table API / SQL: the windowed count with window TVFs, every operator in the JVM.

    :meth:`start` writes the spec, a Flink conf directory (logging, JVM options) and launches the job;
    :meth:`wait_ready` polls the REST endpoint; :meth:`metrics` takes a snapshot each time it is called (and
    :meth:`stop` one last time), appending it to ``flink-metrics.json`` in the run directory.
    """

    name: ClassVar[str] = "flink"
    description: ClassVar[str] = "Apache Flink Table API/SQL (window TVFs, operators in the JVM)"
    Settings: ClassVar[type[EngineSettings]] = FlinkSettings
    log_name: ClassVar[str] = JOB_LOG
    spec_name: ClassVar[str] = "flink-spec.json"
    job_module: ClassVar[str] = "harness.engines.jobs.flink_sql_job"
    api: ClassVar[str] = "Table API / SQL (JVM operators)"

    settings: FlinkSettings

    def __init__(self, settings: EngineSettings, context: EngineContext) -> None:
        super().__init__(settings, context)
        self.job_name = job_name_for(context.spec)
        """Unique per run: the Flink job name, the consumer group and the transactional id prefix."""
        self.job_id: str | None = None
        self.rest: FlinkRest | None = None
        self.leftovers_cancelled: list[str] = []
        """Names of jobs of earlier runs this engine cancelled on the session cluster at start."""
        self._rest_port = 0
        """The local MiniCluster's REST port (0 on a cluster)."""
        self._snapshots: list[dict[str, Any]] = []
        self._input_rows = CounterSampler(self._read_input_rows, SAMPLE_EVERY_S, self._restarted_by_flink)
        self._failures_seen = 0
        """Entries of the job's exception history seen so far (:meth:`_restarted_by_flink`)."""
        self.recovery_path: Path | None = None
        """The retained checkpoint the job was last restarted from (``kill-engine`` fault), if any."""

    # ------------------------------------------------------------------------------------------ properties
    @property
    def read_committed(self) -> bool:
        return self.settings.delivery == "exactly-once"

    @property
    def local(self) -> bool:
        return self.settings.jobmanager is None

    @property
    def rest_url(self) -> str | None:
        return None if self.rest is None else self.rest.base_url

    # ------------------------------------------------------------------------------------------- lifecycle
    def job_settings(self) -> dict[str, Any]:
        """The validated settings plus what the job needs beyond them (none for SQL). Python mode: durations
        stay milliseconds (the JSON mode would write them as text)."""
        settings = self.settings.model_dump()
        if self.recovery_path is not None:
            settings["recovery_path"] = str(self.recovery_path)
        return settings

    @property
    def checkpoint_dir(self) -> Path:
        """Where the job's checkpoints go (``<job id>/chk-N`` directories)."""
        return Path(self.context.spec.state_dir) / CHECKPOINT_DIR

    def restart(self, timeout: float) -> None:
        """After a ``kill-engine`` fault: resubmit the same job (same name, consumer group and transactional id
        prefix) from its latest completed checkpoint (:func:`latest_checkpoint`; from the topic's beginning if none
        completed yet), on a new local MiniCluster. The ``input_rows`` count goes on from where it was."""
        if not self.local:
            raise EngineError(f"{self.name}: kill-engine restart is implemented for the local MiniCluster only")
        self.recovery_path = latest_checkpoint(self.checkpoint_dir)
        self.job_id = None
        self._input_rows.rebase()
        self._failures_seen = 0
        super().restart(timeout)

    def start(self) -> None:
        if self.process is not None:
            raise EngineError(f"{self.name}: start() called twice")
        if self.local:
            self._rest_port = free_port()
            self.rest = FlinkRest(f"http://{LOOPBACK}:{self._rest_port}")
        else:
            self.rest = FlinkRest(f"http://{self.settings.jobmanager}")
            try:
                self.leftovers_cancelled = cancel_leftovers(self.rest)
            except (OSError, ValueError) as exc:
                raise EngineError(f"{self.name}: the JobManager at {self.settings.jobmanager} does not answer "
                                  f"({type(exc).__name__}: {exc}); hint: is the session cluster up, and is "
                                  "jobmanager its REST address?") from None
        super().start()

    def command(self) -> list[str]:
        job_args = ["--spec", str(self.spec_path), "--connector-jar", str(self._connector_jar()),
                    "--job-name", self.job_name]
        if self.local:
            return [sys.executable, "-m", self.job_module, *job_args, "--rest-port", str(self._rest_port)]
        return self.cluster_command(job_args)

    def cluster_command(self, job_args: list[str]) -> list[str]:
        """``flink run`` against the session cluster in ``jobmanager``: attached, so the client lives as long
        as the job and its exit shows a failure, and ``-sae``, so terminating the client cancels the job; the
        harness package goes along as a zip for Python workers."""
        assert self.settings.jobmanager is not None
        host, _, port = self.settings.jobmanager.rpartition(":")
        job_file = PROJECT_ROOT / "harness" / "engines" / "jobs" / f"{self.job_module.rsplit('.', 1)[1]}.py"
        return [
            str(flink_home() / "bin" / "flink"), "run", "-sae",
            "-t", "remote", f"-Drest.address={host}", f"-Drest.port={port}",
            "-pyclientexec", sys.executable, "-pyexec", sys.executable,
            "-pyfs", str(self.harness_zip()),
            "-py", str(job_file),
            *job_args,
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        """The base environment plus a Flink conf directory of this run (logging, JVM options)."""
        conf_dir = self.run_dir / "flink-conf"
        conf_dir.mkdir(exist_ok=True)
        java_opts = str(flink_shipped_config().get("env.java.opts.all", ""))
        if self.local:
            java_opts += f" -Xmx{self.settings.heap}"
        (conf_dir / "config.yaml").write_text(yaml.safe_dump({"env": {"java": {"opts": {"all": java_opts}}}}))
        log4j = _LOG4J.format(level=self.settings.log_level, log=JOB_LOG)
        for name in ("log4j-cli.properties", "log4j-console.properties", "log4j.properties"):
            (conf_dir / name).write_text(log4j)
        env = super().environment()
        env.update(FLINK_CONF_DIR=str(conf_dir), FLINK_LOG_DIR=str(self.run_dir),
                   PYFLINK_CLIENT_EXECUTABLE=sys.executable)
        return env

    def wait_for_job(self, process: ManagedProcess, timeout: float) -> None:
        process.wait_until(
            self._ready,
            timeout,
            what=f"Flink job {self.job_name} RUNNING with all {self.context.spec.partitions} input partitions assigned",
            hint="the job log above says why; on a slow machine raise the engine start timeout",
            interval=0.5,
        )

    def wait_ready(self, timeout: float) -> None:
        super().wait_ready(timeout)
        self._input_rows.start()

    def recovered_at(self, since_ms: int) -> int | None:
        """After a ``kill-worker`` fault on a session cluster: now, once the job has failed since ``since_ms`` (its
        exception history shows the lost TaskManager) and is ready again (every task RUNNING, every input
        partition assigned); restored by its restart strategy from the latest checkpoint. None until then."""
        if self.rest is None or self.job_id is None:
            return None
        if not any(at >= since_ms for at in self.rest.failure_times(self.job_id)):
            return None
        try:
            self._ready()
        except EngineError:
            return None
        return int(time.time() * 1000)

    def before_stop(self) -> None:
        """Stop sampling; take a last snapshot while the job runs; on a cluster cancel the job (by id, or by its
        name if the id is not known yet), since it would outlive its client there."""
        self._input_rows.stop()
        if self.process is not None and self.process.alive() and self.job_id is not None:
            self.metrics()
        if not self.local and self.rest is not None:
            if self.job_id is not None:
                self.rest.cancel(self.job_id)
            else:
                self.rest.cancel_named(self.job_name)

    # ---------------------------------------------------------------------------------------------- report
    def fairness(self) -> dict[str, Setting | str]:
        spec = self.context.spec
        settings = self.settings
        interval = settings.checkpoint_interval
        mode = "exactly-once" if settings.delivery == "exactly-once" else "at-least-once"
        parallelism = settings.config.get("parallelism.default", str(spec.parallelism))
        return {
            "output_mode": Setting("append", "each (window, user) once, when the window fires"),
            "trigger": self._trigger_setting(),
            "watermark": self._watermark_setting(),
            "late_events": Setting("dropped", "a window closes when the watermark reaches its end − 1 ms"),
            "checkpointing": Setting("off") if interval is None else Setting(
                f"{interval} ms", f"{mode} barriers, to the run directory"),
            "delivery": Setting(settings.delivery, "Kafka transactions committed on checkpoint: results visible up "
                                "to one interval later" if mode == "exactly-once" else "Kafka sink"),
            "parallelism": Setting(parallelism, "task slots / operator parallelism"),
            "partitions": Setting(str(spec.partitions), "Kafka input partitions"),
            "deployment": Setting("local", f"MiniCluster in one JVM, -Xmx{settings.heap}") if self.local else Setting(
                "cluster", f"session cluster at {settings.jobmanager}; restarts {_restart_strategy(settings)}"),
        }

    def _trigger_setting(self) -> Setting:
        return Setting("per record", "each record updates its windows as it arrives; windows fire on watermarks, "
                       f"emitted every {format_duration_ms(self.settings.watermark_interval)}")

    def watermark_rule(self) -> WatermarkRule:
        """Per partition, min over partitions (the Python API's per-subtask watermark is global when a subtask
        reads several partitions), and a partition idle for ``idle_timeout`` stops holding it back."""
        value = self._watermark_setting().value
        return WatermarkRule.from_watermark_setting(value, idle_timeout_ms=self.settings.idle_timeout)

    def _watermark_setting(self) -> Setting:
        spec = self.context.spec
        idle = format_duration_ms(self.settings.idle_timeout)
        return Setting(
            f"{spec.watermark_delay_ms} ms, per partition (min over partitions)",
            f"max event time per partition − {format_duration_ms(spec.watermark_delay_ms)}; the job's watermark is "
            f"the minimum; a partition idle for {idle} stops holding it back",
        )

    @classmethod
    def versions(cls) -> dict[str, str]:
        return {
            "flink": _package_version("apache-flink"),
            "flink_kafka_connector": versions.FLINK_KAFKA_CONNECTOR,
            "flink_api": cls.api,
        }

    def extra_log_files(self) -> list[Path]:
        return [self.run_dir / METRICS_FILE]

    def metrics(self) -> dict[str, Any]:
        """One more snapshot from the REST endpoint (if the job answers), all snapshots so far, and the
        ``input_rows`` samples (see :meth:`Engine.metrics`)."""
        if self.rest is not None and self.process is not None and self.process.alive() and not self.stopped:
            try:
                if self.job_id is None and self._find_job() is None:
                    raise ValueError(f"no job named {self.job_name} at {self.rest_url} yet")
                assert self.job_id is not None
                snapshot = self.rest.snapshot(self.job_id)
            except (OSError, ValueError, KeyError) as exc:
                snapshot = {"time": time.time(), "error": f"{type(exc).__name__}: {exc}"}
            self._snapshots.append(snapshot)
            (self.run_dir / METRICS_FILE).write_text(json.dumps(self._snapshots, indent=1))
        return {
            "job_id": self.job_id,
            "job_name": self.job_name,
            "rest_url": self.rest_url,
            "ready_after_s": self.ready_after_s,
            "leftovers_cancelled": list(self.leftovers_cancelled),
            "input_rows": self._input_rows.samples(),
            "snapshots": list(self._snapshots),
        }

    # ------------------------------------------------------------------------------------------- internals
    def _connector_jar(self) -> Path:
        if self.settings.connector_jar is None:
            return jvm.jar("flink-kafka", "flink-sql-connector-kafka")
        jar = Path(self.settings.connector_jar).expanduser().resolve()
        if not jar.is_file():
            raise EngineError(f"{self.name}: connector_jar {jar} does not exist; hint: leave it unset to use the "
                              "jar `bench setup` fetched")
        return jar

    def _find_job(self) -> dict[str, Any] | None:
        assert self.rest is not None
        job = self.rest.find_job(self.job_name)
        if job is not None:
            self.job_id = job["jid"]
        return job

    def _ready(self) -> bool:
        """The readiness probe: raises (meaning "not yet", with the reason) until the job runs and reads every
        input partition."""
        job = self._find_job()
        if job is None:
            raise EngineError("job not submitted yet")
        if job["state"] in TERMINAL_STATES:
            raise EngineError(f"job is {job['state']}")
        tasks = job["tasks"]
        if job["state"] != "RUNNING" or tasks["running"] != tasks["total"] or not tasks["total"]:
            raise EngineError(f"job {job['state']}, {tasks['running']} of {tasks['total']} tasks running")
        assert self.rest is not None and self.job_id is not None
        assigned = self.rest.assigned_partitions(self.job_id, self.context.spec.input_topic)
        if len(assigned) < self.context.spec.partitions:
            raise EngineError(f"source reads {len(assigned)} of {self.context.spec.partitions} partitions")
        return True

    def _read_input_rows(self) -> int | None:
        if self.rest is None or self.job_id is None:
            return None
        return self.rest.source_records_in(self.job_id)

    def _restarted_by_flink(self) -> bool:
        """True if the job's exception history has grown since the last call: it failed and was restarted by its
        restart strategy (on a cluster, e.g. a TaskManager lost), so its counters started again at 0."""
        if self.rest is None or self.job_id is None:
            return False
        try:
            failures = len(self.rest.failure_times(self.job_id))
        except (OSError, ValueError, KeyError):
            return False
        grown, self._failures_seen = failures > self._failures_seen, failures
        return grown


class FlinkPythonEngine(FlinkEngine):
    """Flink DataStream API with Python functions on the hot path (JSON parsing, timestamps, the window
    aggregate), to show what Python costs next to :class:`FlinkEngine`'s JVM-only plan."""

    name: ClassVar[str] = "flink-python"
    description: ClassVar[str] = "Apache Flink DataStream API with Python functions (JSON parse, aggregate)"
    Settings: ClassVar[type[EngineSettings]] = FlinkPythonSettings
    job_module: ClassVar[str] = "harness.engines.jobs.flink_python_job"
    api: ClassVar[str] = "DataStream API, Python functions"

    settings: FlinkPythonSettings

    def job_settings(self) -> dict[str, Any]:
        return {**super().job_settings(), "python_executable": sys.executable}

    def _trigger_setting(self) -> Setting:
        size, wait = self.settings.python_bundle_size, self.settings.python_bundle_time
        return Setting(
            f"per bundle (at most {size} records or {wait} ms)",
            "records reach the Python functions in bundles; windows fire on watermarks, emitted every "
            f"{format_duration_ms(self.settings.watermark_interval)}",
        )

    def _watermark_setting(self) -> Setting:
        """Generated per source subtask (PyFlink applies a Python timestamp assigner after the source): the same
        as per partition when every subtask reads one partition."""
        spec = self.context.spec
        delay = format_duration_ms(spec.watermark_delay_ms)
        idle = format_duration_ms(self.settings.idle_timeout)
        scope = ("per partition (min over partitions)" if spec.parallelism >= spec.partitions
                 else "per source subtask (min over subtasks)")
        return Setting(
            f"{spec.watermark_delay_ms} ms, {scope}",
            f"max event time per source subtask − {delay} − 1 ms; the job's watermark is the minimum; a subtask idle "
            f"for {idle} stops holding it back",
        )


def _restart_strategy(settings: FlinkSettings) -> str:
    """The restart strategy of a job on a session cluster, in words (``config`` may override the default)."""
    merged = {"restart-strategy.type": "none", **settings.config}
    kind = merged.get("restart-strategy.type", "")
    if kind in ("fixed-delay", "fixeddelay"):
        return (f"from the latest checkpoint, at most {merged.get('restart-strategy.fixed-delay.attempts')} times, "
                f"{merged.get('restart-strategy.fixed-delay.delay')} apart")
    if kind == "none":
        return "never (a failure ends the job)"
    return f"as restart-strategy.type {kind!r} says"


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
