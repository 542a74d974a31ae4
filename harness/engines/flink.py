"""Apache Flink engines: the windowed count in SQL (``flink``) and with Python functions (``flink-python``).

Both run their job (``harness/engines/jobs/flink_sql_job.py`` / ``flink_python_job.py``) in a process of its own,
started through :class:`~harness.proc.ManagedProcess`, with the venv's PyFlink:

- **Local (default)**: the job's JVM hosts a MiniCluster with ``spec.parallelism`` slots. Its REST endpoint binds
  127.0.0.1 on a free port chosen here; readiness, metrics and the job id come from there.
- **Session cluster** (``jobmanager: host:port``): the job is submitted with PyFlink's ``bin/flink run -t remote``
  (attached; ``-py``, with the harness package shipped as a zip via ``-pyfs``), the REST endpoint is the
  JobManager's, and :meth:`FlinkEngine.stop` cancels the job there before stopping the client.

Ready means: the job is RUNNING, every task is RUNNING, and the Kafka source reader has registered every input
partition (its ``KafkaSourceReader.topic.T.partition.P.currentOffset`` metrics exist), so no record sent after
``wait_ready`` returns can be missed or read late because the source was still starting.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import sys
import time
import urllib.parse
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import psutil
import yaml
from pydantic import BeforeValidator, Field, model_validator

from harness import jvm, versions
from harness.engines.base import Engine, EngineContext, EngineSettings
from harness.errors import EngineError
from harness.kafka.embedded import free_port
from harness.proc import ManagedProcess
from harness.scenario import Millis
from harness.units import format_duration_ms

_REPO_ROOT = Path(__file__).resolve().parent.parent.parent
_HARNESS_DIR = Path(__file__).resolve().parent.parent

METRICS_FILE = "flink-metrics.json"
"""Every metrics snapshot of the run, in the run directory."""
JOB_LOG = "flink-job.log"

_SOURCE_PARTITION = re.compile(
    r"\.KafkaSourceReader\.topic\.(?P<topic>.+)\.partition\.(?P<partition>\d+)\.currentOffset$"
)
_TASK_METRICS = (
    "numRecordsInPerSecond",
    "numRecordsOutPerSecond",
    "busyTimeMsPerSecond",
    "backPressuredTimeMsPerSecond",
    "idleTimeMsPerSecond",
    "currentInputWatermark",
)
_NO_WATERMARK = -9.2e18  # Long.MIN_VALUE as the REST API's double: no watermark yet


def _off_or_duration(value: object) -> object:
    return None if value in (None, "off", False) else value


def _host_port(value: object) -> object:
    if value is not None and (not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9.\-]+:\d{1,5}", value)):
        raise ValueError(f"must be host:port of the JobManager's REST endpoint, e.g. flink-jm:8081 (got {value!r})")
    return value


class FlinkSettings(EngineSettings):
    """Settings of the ``flink`` engine (``engines[].settings`` in a scenario)."""

    checkpoint_interval: Annotated[Millis | None, BeforeValidator(_off_or_duration)] = Field(default=10_000, gt=0)
    """Checkpoint every this often, or ``off``. Spark checkpoints every micro-batch, so it is on by default."""
    delivery: Literal["at-least-once", "exactly-once"] = "at-least-once"
    """Kafka sink guarantee. ``exactly-once`` writes in transactions committed on checkpoint completion."""
    idle_timeout: Millis = Field(default=5_000, gt=0)
    """A partition without records for this long is idle and stops holding the watermark back."""
    watermark_interval: Millis = Field(default=200, gt=0)
    """How often sources emit watermarks (``pipeline.auto-watermark-interval``): windows close on these ticks."""
    heap: str = Field(default="2g", pattern=r"^\d+[mMgG]$")
    """Max heap of the local MiniCluster JVM (``-Xmx``); not used with ``jobmanager``."""
    jobmanager: Annotated[str | None, BeforeValidator(_host_port)] = None
    """``host:port`` of a session cluster's REST endpoint; unset: a local MiniCluster in the job's JVM."""
    connector_jar: str | None = None
    """Path of the Kafka SQL connector jar; default: the one ``bench setup`` fetched."""
    log_level: Literal["ERROR", "WARN", "INFO"] = "WARN"
    config: dict[str, str] = Field(default_factory=dict)
    """Extra Flink configuration (``key: value``), applied last; recorded with the result."""

    @model_validator(mode="after")
    def _exactly_once_needs_checkpoints(self) -> FlinkSettings:
        if self.delivery == "exactly-once" and self.checkpoint_interval is None:
            raise ValueError(
                "delivery: exactly-once needs checkpoint_interval (Kafka transactions commit on checkpoints; "
                "with checkpointing off no result would ever become visible)"
            )
        return self


class FlinkPythonSettings(FlinkSettings):
    """Settings of the ``flink-python`` engine: those of ``flink`` plus the Python worker's."""

    python_execution_mode: Literal["process", "thread"] = "process"
    """``process``: Python functions in separate worker processes (Beam); ``thread``: embedded in the JVM."""
    python_bundle_size: int = Field(default=100_000, gt=0)
    """Records per bundle sent to the Python worker (``python.fn-execution.bundle.size``)."""
    python_bundle_time: Millis = Field(default=1_000, gt=0)
    """Longest wait before a bundle is flushed (``python.fn-execution.bundle.time``)."""


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


class FlinkEngine(Engine):
    """Flink Table API / SQL: the windowed count with window TVFs, every operator in the JVM.

    :meth:`start` writes the spec, a Flink conf directory (logging, JVM options) and launches the job;
    :meth:`wait_ready` polls the REST endpoint; :meth:`metrics` takes a snapshot each time it is called (and
    :meth:`stop` one last time), appending it to ``flink-metrics.json`` in the run directory.
    """

    name: ClassVar[str] = "flink"
    description: ClassVar[str] = "Apache Flink Table API/SQL (window TVFs, operators in the JVM)"
    Settings: ClassVar[type[EngineSettings]] = FlinkSettings
    job_module: ClassVar[str] = "harness.engines.jobs.flink_sql_job"
    api: ClassVar[str] = "Table API / SQL (JVM operators)"

    settings: FlinkSettings

    def __init__(self, settings: EngineSettings, context: EngineContext) -> None:
        super().__init__(settings, context)
        self.job_name = f"bench-{self.name}-{uuid.uuid4().hex[:10]}"
        """Unique per run: the Flink job name, the consumer group and the transactional id prefix."""
        self.process: ManagedProcess | None = None
        self.job_id: str | None = None
        self.rest_url: str | None = None
        self.started_at: float | None = None
        self.ready_after_s: float | None = None
        self._snapshots: list[dict[str, Any]] = []
        self._metric_ids: dict[str, list[str]] = {}
        self._stopped = False

    # ------------------------------------------------------------------------------------------ properties
    @property
    def read_committed(self) -> bool:
        return self.settings.delivery == "exactly-once"

    @property
    def run_dir(self) -> Path:
        return self.context.run_dir

    @property
    def local(self) -> bool:
        return self.settings.jobmanager is None

    # ------------------------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        if self.process is not None:
            raise RuntimeError(f"{self.name} already started")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        Path(self.context.spec.state_dir).mkdir(parents=True, exist_ok=True)
        jar = self._connector_jar()
        spec_path = self.run_dir / "flink-spec.json"
        spec = self.context.spec.to_json()
        spec["settings"] = {**self.settings.model_dump(), **self._job_settings()}
        spec_path.write_text(json.dumps(spec, indent=2))
        job_args = ["--spec", str(spec_path), "--connector-jar", str(jar), "--job-name", self.job_name]
        if self.local:
            port = free_port()
            self.rest_url = f"http://127.0.0.1:{port}"
            argv = [sys.executable, "-m", self.job_module, *job_args, "--rest-port", str(port)]
        else:
            self.rest_url = f"http://{self.settings.jobmanager}"
            argv = self.cluster_command(job_args)
        self.process = ManagedProcess(
            f"{self.name} job", argv, self.run_dir / JOB_LOG, env=self._env(), cwd=_REPO_ROOT, error_class=EngineError
        )
        self.started_at = time.monotonic()
        self.process.start()

    def cluster_command(self, job_args: list[str]) -> list[str]:
        """``flink run`` against the session cluster in ``jobmanager``: attached, so the client lives as long
        as the job and its exit shows a failure; the harness package goes along as a zip for Python workers."""
        assert self.settings.jobmanager is not None
        host, _, port = self.settings.jobmanager.rpartition(":")
        package = self._harness_zip()
        job_file = _HARNESS_DIR / "engines" / "jobs" / f"{self.job_module.rsplit('.', 1)[1]}.py"
        return [
            str(flink_home() / "bin" / "flink"), "run",
            "-t", "remote", f"-Drest.address={host}", f"-Drest.port={port}",
            "-pyclientexec", sys.executable, "-pyexec", sys.executable,
            "-pyfs", str(package),
            "-py", str(job_file),
            *job_args,
        ]  # fmt: skip

    def wait_ready(self, timeout: float) -> None:
        if self.process is None:
            raise EngineError(f"{self.name}: wait_ready() before start()")
        self.process.wait_until(
            self._ready,
            timeout,
            what=f"Flink job {self.job_name} RUNNING with all {self.context.spec.partitions} input partitions assigned",
            hint="the job log above says why; on a slow machine raise the engine start timeout",
            interval=0.5,
        )
        assert self.started_at is not None
        self.ready_after_s = time.monotonic() - self.started_at

    def stop(self) -> None:
        if self.process is None or self._stopped:
            return
        self._stopped = True
        if self.process.alive() and self.job_id is not None:
            try:
                self.metrics()
            except Exception:  # noqa: BLE001 - a last snapshot is a bonus, stopping is not
                pass
            if not self.local:  # the job outlives its client on a cluster: cancel it there
                try:
                    self._rest(f"/jobs/{self.job_id}?mode=cancel", method="PATCH")
                except (OSError, ValueError):
                    pass
        self.process.stop(grace=15)

    def check(self) -> None:
        if self.process is not None and not self._stopped and self.process.returncode is not None:
            raise EngineError(self.process.failure_message(
                f"job exited with code {self.process.returncode} during the run"
            ))

    # ---------------------------------------------------------------------------------------------- report
    def fairness(self) -> dict[str, str]:
        spec = self.context.spec
        settings = self.settings
        interval = settings.checkpoint_interval
        if interval is None:
            checkpointing = "off"
        else:
            mode = "exactly-once" if settings.delivery == "exactly-once" else "at-least-once"
            checkpointing = f"every {format_duration_ms(interval)} ({mode} barriers, to the run directory)"
        delivery = settings.delivery
        if delivery == "exactly-once":
            delivery += " (Kafka transactions committed on checkpoint: results visible up to one interval later)"
        return {
            "output_mode": "append (window emitted once when final)",
            "trigger": f"per watermark (sources emit one every {format_duration_ms(settings.watermark_interval)})",
            "watermark": (
                f"bounded out-of-orderness {format_duration_ms(spec.watermark_delay_ms)}{self._watermark_detail}, "
                f"min over partitions; partition idle after {format_duration_ms(settings.idle_timeout)}"
            ),
            "late_events": "dropped when window closed (watermark ≥ end − 1 ms)",
            "checkpointing": checkpointing,
            "delivery": delivery,
            "parallelism": str(spec.parallelism),
            "partitions": str(spec.partitions),
            "deployment": (
                f"local MiniCluster (one JVM, -Xmx{settings.heap})"
                if self.local
                else f"session cluster at {settings.jobmanager}"
            ),
        }

    _watermark_detail: ClassVar[str] = " (max ts − D)"

    def versions(self) -> dict[str, str]:
        return {
            "flink": _package_version("apache-flink"),
            "flink_kafka_connector": versions.FLINK_KAFKA_CONNECTOR,
            "flink_api": self.api,
        }

    def processes(self) -> list[psutil.Process]:
        return [] if self.process is None else self.process.processes()

    def log_files(self) -> list[Path]:
        return [path for path in (self.run_dir / JOB_LOG, self.run_dir / METRICS_FILE) if path.exists()]

    def metrics(self) -> dict[str, Any]:
        """One more snapshot from the REST endpoint (if the job answers), and all snapshots so far."""
        if self.rest_url is not None and self.process is not None and self.process.alive() and not self._stopped:
            try:
                if self.job_id is None and self._find_job() is None:
                    raise ValueError(f"no job named {self.job_name} at {self.rest_url} yet")
                snapshot = self._snapshot()
            except (OSError, ValueError, KeyError) as exc:
                snapshot = {"time": time.time(), "error": f"{type(exc).__name__}: {exc}"}
            self._snapshots.append(snapshot)
            (self.run_dir / METRICS_FILE).write_text(json.dumps(self._snapshots, indent=1))
        return {
            "job_id": self.job_id,
            "rest_url": self.rest_url,
            "ready_after_s": self.ready_after_s,
            "processed_series": _processed_series(self._snapshots),
            "snapshots": list(self._snapshots),
        }

    # ------------------------------------------------------------------------------------------- internals
    def _job_settings(self) -> dict[str, Any]:
        """Settings the job needs beyond the validated ones (none for SQL)."""
        return {}

    def _connector_jar(self) -> Path:
        if self.settings.connector_jar is None:
            return jvm.jar("flink-kafka", "flink-sql-connector-kafka")
        jar = Path(self.settings.connector_jar).expanduser().resolve()
        if not jar.is_file():
            raise EngineError(f"{self.name}: connector_jar {jar} does not exist; hint: leave it unset to use the "
                              "jar `bench setup` fetched")
        return jar

    def _env(self) -> dict[str, str]:
        import os

        conf_dir = self.run_dir / "flink-conf"
        conf_dir.mkdir(exist_ok=True)
        java_opts = _pyflink_java_opts()
        if self.local:
            java_opts += f" -Xmx{self.settings.heap}"
        (conf_dir / "config.yaml").write_text(yaml.safe_dump({"env": {"java": {"opts": {"all": java_opts}}}}))
        log4j = _LOG4J.format(level=self.settings.log_level, log=JOB_LOG)
        for name in ("log4j-cli.properties", "log4j-console.properties", "log4j.properties"):
            (conf_dir / name).write_text(log4j)
        pythonpath = [str(_REPO_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        env = dict(os.environ)
        env.update(
            {
                "FLINK_CONF_DIR": str(conf_dir),
                "FLINK_LOG_DIR": str(self.run_dir),
                "JAVA_HOME": str(jvm.java_home()),
                "PYTHONPATH": os.pathsep.join(pythonpath),
                "PYTHONUNBUFFERED": "1",
                "PYFLINK_CLIENT_EXECUTABLE": sys.executable,
            }
        )
        env.update(self.context.extra_env)
        return env

    def _harness_zip(self) -> Path:
        package = self.run_dir / "harness.zip"
        with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(_HARNESS_DIR.rglob("*.py")):
                archive.write(path, path.relative_to(_HARNESS_DIR.parent))
        return package

    def _rest(self, path: str, *, method: str = "GET", timeout: float = 3.0) -> Any:
        assert self.rest_url is not None
        request = urllib.request.Request(self.rest_url + path, method=method)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def _find_job(self) -> dict[str, Any] | None:
        for job in self._rest("/jobs/overview")["jobs"]:
            if job["name"] == self.job_name:
                self.job_id = job["jid"]
                return job
        return None

    def _ready(self) -> bool:
        job = self._find_job()
        if job is None:
            raise EngineError("job not submitted yet")
        if job["state"] in ("FAILED", "CANCELED", "FINISHED"):
            raise EngineError(f"job is {job['state']}")
        tasks = job["tasks"]
        if job["state"] != "RUNNING" or tasks["running"] != tasks["total"] or not tasks["total"]:
            raise EngineError(f"job {job['state']}, {tasks['running']} of {tasks['total']} tasks running")
        assigned = self._assigned_partitions()
        if len(assigned) < self.context.spec.partitions:
            raise EngineError(f"source reads {len(assigned)} of {self.context.spec.partitions} partitions")
        return True

    def _vertices(self) -> list[dict[str, Any]]:
        return self._rest(f"/jobs/{self.job_id}")["vertices"]

    def _assigned_partitions(self) -> set[int]:
        assigned: set[int] = set()
        for vertex in self._vertices():
            if not vertex["name"].startswith("Source"):
                continue
            for metric in self._rest(f"/jobs/{self.job_id}/vertices/{vertex['id']}/metrics"):
                match = _SOURCE_PARTITION.search(metric["id"])
                if match and match["topic"] == self.context.spec.input_topic:
                    assigned.add(int(match["partition"]))
        return assigned

    def _wanted_metrics(self, vertex_id: str) -> list[str]:
        """Metrics to fetch for a vertex: the task metrics it has (the REST API answers nothing at all if one
        asked for is missing, e.g. ``currentInputWatermark`` of a source), records read by the source operator
        and late records dropped by a window operator."""
        if vertex_id not in self._metric_ids:
            names = {
                metric["id"].split(".", 1)[1]
                for metric in self._rest(f"/jobs/{self.job_id}/vertices/{vertex_id}/metrics")
                if "." in metric["id"]
            }
            operator = sorted(
                name
                for name in names
                if (name.startswith("Source__") and name.endswith((".numRecordsInPerSecond", ".numRecordsIn")))
                or name.endswith(".numLateRecordsDropped")
            )
            if names:
                self._metric_ids[vertex_id] = [name for name in _TASK_METRICS if name in names] + operator
            else:
                return []
        return self._metric_ids[vertex_id]

    def _snapshot(self) -> dict[str, Any]:
        job = self._rest(f"/jobs/{self.job_id}")
        vertices = []
        source_rate = 0.0
        source_total: float | None = None
        late = 0.0
        for vertex in job["vertices"]:
            names = self._wanted_metrics(vertex["id"])
            wanted = urllib.parse.quote(",".join(names), safe=",")
            path = f"/jobs/{self.job_id}/vertices/{vertex['id']}/subtasks/metrics?get={wanted}"
            values = {item["id"]: item for item in self._rest(path)} if names else {}

            def agg(metric: str, how: str, values: dict[str, Any] = values) -> float | None:
                return values[metric][how] if metric in values else None

            watermark = agg("currentInputWatermark", "min")
            vertices.append(
                {
                    "name": vertex["name"],
                    "parallelism": vertex["parallelism"],
                    "status": vertex["status"],
                    "records_in_per_s": agg("numRecordsInPerSecond", "sum"),
                    "records_out_per_s": agg("numRecordsOutPerSecond", "sum"),
                    "busy_ms_per_s_max": agg("busyTimeMsPerSecond", "max"),
                    "backpressured_ms_per_s_max": agg("backPressuredTimeMsPerSecond", "max"),
                    "idle_ms_per_s_max": agg("idleTimeMsPerSecond", "max"),
                    "input_watermark_ms": None if watermark is None or watermark < _NO_WATERMARK else int(watermark),
                    "records_read_total": vertex["metrics"].get("read-records"),
                    "records_written_total": vertex["metrics"].get("write-records"),
                }
            )
            for name in names:
                if name.startswith("Source__") and name.endswith(".numRecordsInPerSecond"):
                    source_rate += agg(name, "sum") or 0.0
                elif name.startswith("Source__") and name.endswith(".numRecordsIn"):
                    source_total = (source_total or 0.0) + (agg(name, "sum") or 0.0)
                elif name.endswith(".numLateRecordsDropped"):
                    late += agg(name, "sum") or 0.0
        checkpoints = self._rest(f"/jobs/{self.job_id}/checkpoints")
        latest = (checkpoints.get("latest") or {}).get("completed") or {}
        summary = checkpoints.get("summary") or {}
        return {
            "time": time.time(),
            "job_state": job["state"],
            "source_records_per_s": source_rate,
            "source_records_total": source_total,
            "late_records_dropped": late,
            "backpressured": any((v["backpressured_ms_per_s_max"] or 0) > 100 for v in vertices),
            "vertices": vertices,
            "checkpoints": {
                "counts": checkpoints.get("counts"),
                "latest_duration_ms": latest.get("end_to_end_duration"),
                "latest_size_bytes": latest.get("checkpointed_size"),
                "duration_ms": summary.get("end_to_end_duration"),
            },
        }


class FlinkPythonEngine(FlinkEngine):
    """Flink DataStream API with Python functions on the hot path (JSON parsing, timestamps, the window
    aggregate), to show what Python costs next to :class:`FlinkEngine`'s JVM-only plan."""

    name: ClassVar[str] = "flink-python"
    description: ClassVar[str] = "Apache Flink DataStream API with Python functions (JSON parse, aggregate)"
    Settings: ClassVar[type[EngineSettings]] = FlinkPythonSettings
    job_module: ClassVar[str] = "harness.engines.jobs.flink_python_job"
    api: ClassVar[str] = "DataStream API, Python functions"
    _watermark_detail: ClassVar[str] = " (max ts − D − 1 ms)"

    settings: FlinkPythonSettings

    def _job_settings(self) -> dict[str, Any]:
        return {"python_executable": sys.executable}

    def fairness(self) -> dict[str, str]:
        values = super().fairness()
        values["trigger"] += (
            f"; Python bundles of ≤ {self.settings.python_bundle_size} records or "
            f"{format_duration_ms(self.settings.python_bundle_time)}"
        )
        return values


def _processed_series(snapshots: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Source records read per second between consecutive snapshots, from the source operators' ``numRecordsIn``
    counters. Flink's own ``numRecordsInPerSecond`` is a meter averaged over the last 60 s, which lags a changing
    rate by up to a minute; counter deltas do not."""
    points = [
        (snap["time"], float(snap["source_records_total"]))
        for snap in snapshots
        if isinstance(snap.get("source_records_total"), (int, float))
    ]
    return [
        {"t_ms": int(t1 * 1000), "processed": (n1 - n0) / (t1 - t0)}
        for (t0, n0), (t1, n1) in zip(points, points[1:])
        if t1 > t0 and n1 >= n0
    ]


def flink_home() -> Path:
    """PyFlink's own Flink distribution (``bin/flink``, ``lib/``) inside the venv."""
    import importlib.util

    spec = importlib.util.find_spec("pyflink")
    if spec is None or spec.origin is None:
        raise EngineError("pyflink is not installed in this Python: pip install apache-flink")
    return Path(spec.origin).parent


def _pyflink_java_opts() -> str:
    """The JVM options PyFlink's own config.yaml gives (``--add-opens`` … Flink needs on Java 17)."""
    try:
        config = yaml.safe_load((flink_home() / "conf" / "config.yaml").read_text()) or {}
        return str(config["env"]["java"]["opts"]["all"])
    except (OSError, KeyError, TypeError):
        return ""


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
