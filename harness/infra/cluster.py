"""Local engine clusters on 127.0.0.1: a Spark standalone master + worker and a Flink session cluster.

They run the distributions shipped inside the pyspark and apache-flink wheels (``spark-class``, PyFlink's ``bin/``),
so the cluster is exactly the version the harness submits with. Every daemon runs under
:class:`~harness.infra.proc.ManagedProcess` in the foreground, with its own configuration and log directory under a work
directory and free ports on 127.0.0.1 — never a default port: Spark's worker web UI and Flink's REST endpoint both
default to 8081, and a second benchmark (or a developer's own cluster) may hold it.

Used by the cluster integration tests and for trying a scenario's cluster mode without Docker::

    with SparkStandalone(work_dir, cores=2) as spark, FlinkSession(work_dir, slots=2) as flink:
        ...  # engines: [{engine: spark, settings: {master: spark.master_url}},
             #            {engine: flink, settings: {jobmanager: flink.rest_address}}]

Readiness is a probe of the cluster's own REST view (Spark master ``/json`` lists the worker ALIVE with its cores;
Flink ``/overview`` counts the TaskManager's slots), never a sleep. A failed start stops what was started before
the error propagates; :meth:`stop` is idempotent, and also ends every other process whose command line holds the
cluster's work directory (a TaskManager started again by a ``kill-worker`` fault's restart command).

For ``kill-worker`` faults each cluster gives the shell commands for a scenario's ``kill_worker`` block, matching
only its own processes (by the worker's port, or the conf directory): :attr:`SparkStandalone.kill_executor_command`
(the worker launches a new executor by itself) and :attr:`FlinkSession.kill_taskmanager_command` with
:attr:`FlinkSession.restart_taskmanager_command` (nothing restarts a standalone TaskManager otherwise).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil
import yaml

from harness.infra import jvm
from harness.infra.distributions import flink_home, flink_shipped_config, spark_home
from harness.infra.ports import free_port
from harness.infra.proc import ManagedProcess, kill_processes

HOST = "127.0.0.1"


def _get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - a local http URL we built
        return json.load(response)


def pkill_command(class_name: str, tail: str) -> str:
    """``pkill -KILL -f`` for JVMs of ``class_name`` whose command line goes on (anywhere after it) with the
    literal ``tail`` followed by a space or its end. The class name's first letter is written as ``[X]`` so the
    pattern does not match the shell that runs pkill (whose command line holds the pattern, not the name)."""
    pattern = f"[{class_name[0]}]{_ere_literal(class_name[1:])}.*{_ere_literal(tail)}( |$)"
    return f"pkill -KILL -f {shlex.quote(pattern)}"


def _ere_literal(text: str) -> str:
    """``text`` as a POSIX extended regular expression matching it literally."""
    return re.sub(r"([.\[\]()*+?{}|^$\\])", r"\\\1", text)


class _Cluster:
    """Shared lifecycle: a list of daemons started in order and stopped in reverse."""

    name = "cluster"

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = Path(work_dir)
        self.daemons: list[ManagedProcess] = []

    def start(self, timeout: float = 120.0) -> _Cluster:
        try:
            self._start(timeout)
        except BaseException:
            self.stop()  # nothing half-started survives a failed start
            raise
        return self

    def _start(self, timeout: float) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop every daemon, the last started first (TERM, then KILL), then every other process of the cluster
        (:meth:`strays`). Idempotent."""
        for daemon in reversed(self.daemons):
            daemon.stop(grace=15.0)
        strays = self.strays()
        for proc in strays:
            try:
                proc.terminate()
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(strays, timeout=15.0)
        kill_processes(alive, wait_s=10.0)

    def strays(self) -> list[psutil.Process]:
        """Live processes that are not a daemon's but hold the cluster's work directory in their command line: a
        worker started again by a fault's restart command, or a daemon's child left behind."""
        own = {proc.pid for daemon in self.daemons for proc in daemon.processes()}
        marker = str(self.work_dir)
        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                if proc.pid not in own and proc.pid != os.getpid() and marker in " ".join(proc.info["cmdline"] or []):
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def pids(self) -> list[int]:
        """Every live process of the cluster: its daemons' and :meth:`strays` (for the no-survivors check)."""
        return [proc.pid for daemon in self.daemons for proc in daemon.processes()] + [p.pid for p in self.strays()]

    def __enter__(self) -> _Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------------- Spark
class SparkStandalone(_Cluster):
    """A Spark standalone master and one worker (``cores`` slots, ``memory`` for executors) on 127.0.0.1.

    ``master_url`` (``spark://127.0.0.1:PORT``) is what a scenario gives the ``spark`` engine as ``master``."""

    name = "spark standalone"

    def __init__(self, work_dir: Path, *, cores: int = 2, memory: str = "2g") -> None:
        super().__init__(Path(work_dir) / "spark-cluster")
        self.cores = cores
        self.memory = memory
        self.master_port = free_port()
        self.master_ui_port = free_port()
        self.worker_port = free_port()
        self.worker_ui_port = free_port()

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.master_port}"

    @property
    def master_ui(self) -> str:
        return f"http://{HOST}:{self.master_ui_port}"

    def _env(self) -> dict[str, str]:
        conf_dir = self.work_dir / "conf"
        conf_dir.mkdir(parents=True, exist_ok=True)
        # WARN on the console: the daemons' stdout is their log file (ManagedProcess)
        (conf_dir / "log4j2.properties").write_text(
            "rootLogger.level = warn\n"
            "rootLogger.appenderRef.console.ref = console\n"
            "appender.console.type = Console\n"
            "appender.console.name = console\n"
            "appender.console.layout.type = PatternLayout\n"
            "appender.console.layout.pattern = %d{HH:mm:ss.SSS} %p %c{1}: %m%n%ex\n"
            "logger.master.name = org.apache.spark.deploy\n"
            "logger.master.level = info\n"
        )
        env = dict(os.environ)
        env.update(
            SPARK_HOME=str(spark_home()),
            SPARK_CONF_DIR=str(conf_dir),
            SPARK_LOG_DIR=str(self.work_dir / "logs"),
            SPARK_LOCAL_IP=HOST,
            SPARK_WORKER_DIR=str(self.work_dir / "worker"),
            SPARK_LOCAL_DIRS=str(self.work_dir / "local"),
            JAVA_HOME=str(jvm.java_home()),
        )
        return env

    def _start(self, timeout: float) -> None:
        env = self._env()
        spark_class = str(spark_home() / "bin" / "spark-class")
        master = ManagedProcess(
            "spark master",
            [spark_class, "org.apache.spark.deploy.master.Master",
             "--host", HOST, "--port", self.master_port, "--webui-port", self.master_ui_port],
            self.work_dir / "master.log", env=env, cwd=self.work_dir,
        )  # fmt: skip
        self.daemons.append(master)
        master.start()
        master.wait_until(
            lambda: _get_json(f"{self.master_ui}/json")["status"] == "ALIVE",
            timeout,
            what=f"Spark master ALIVE at {self.master_ui}/json",
            hint="the master log above says why (a port taken between choosing it and binding it?)",
        )
        worker = ManagedProcess(
            "spark worker",
            [spark_class, "org.apache.spark.deploy.worker.Worker",
             "--host", HOST, "--port", self.worker_port, "--webui-port", self.worker_ui_port,
             "--cores", self.cores, "--memory", self.memory, "--work-dir", self.work_dir / "worker",
             self.master_url],
            self.work_dir / "worker.log", env=env, cwd=self.work_dir,
        )  # fmt: skip
        self.daemons.append(worker)
        worker.start()
        worker.wait_until(
            self._worker_alive,
            timeout,
            what=f"a Spark worker ALIVE with {self.cores} cores at the master {self.master_url}",
            hint="the worker log above says why it did not register",
        )

    def _worker_alive(self) -> bool:
        workers = _get_json(f"{self.master_ui}/json").get("workers", [])
        return any(w.get("state") == "ALIVE" and w.get("cores", 0) >= self.cores for w in workers)

    def applications(self) -> list[dict[str, Any]]:
        """The master's view of running and completed applications (to check a job really ran here)."""
        state = _get_json(f"{self.master_ui}/json")
        return [*state.get("activeapps", []), *state.get("completedapps", [])]

    def executors(self) -> list[dict[str, Any]]:
        """The worker's executors, running and finished (id, appid, state...): a killed executor shows up finished,
        its replacement under a new id."""
        state = _get_json(f"http://{HOST}:{self.worker_ui_port}/json")
        return [*state.get("executors", []), *state.get("finishedexecutors", [])]

    @property
    def kill_executor_command(self) -> str:
        """A ``kill_worker.command`` that SIGKILLs this worker's executors (one per application): the JVMs that
        name this worker in ``--worker-url``. The worker notices, the master has it launch a new executor, and
        the driver runs the lost tasks again there; no restart command is needed."""
        return pkill_command("org.apache.spark.executor.CoarseGrainedExecutorBackend",
                             f"--worker-url spark://Worker@{HOST}:{self.worker_port}")


# ---------------------------------------------------------------------------------------------------- Flink
class FlinkSession(_Cluster):
    """A Flink session cluster: one JobManager and one TaskManager with ``slots`` slots, on 127.0.0.1.

    ``rest_address`` (``127.0.0.1:PORT``) is what a scenario gives the ``flink`` engine as ``jobmanager``."""

    name = "flink session"

    def __init__(
        self, work_dir: Path, *, slots: int = 2, taskmanager_memory: str = "1728m",
        config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(Path(work_dir) / "flink-cluster")
        self.slots = slots
        self.taskmanager_memory = taskmanager_memory
        self.extra_config = dict(config or {})
        self.rest_port = free_port()
        self.rpc_port = free_port()

    @property
    def rest_address(self) -> str:
        return f"{HOST}:{self.rest_port}"

    @property
    def conf_dir(self) -> Path:
        """The cluster's configuration directory; every daemon has it on its command line (``--configDir``)."""
        return self.work_dir / "conf"

    @property
    def kill_taskmanager_command(self) -> str:
        """A ``kill_worker.command`` that SIGKILLs this cluster's TaskManager (by its ``--configDir``)."""
        return pkill_command("org.apache.flink.runtime.taskexecutor.TaskManagerRunner", f"--configDir {self.conf_dir}")

    @property
    def restart_taskmanager_command(self) -> str:
        """A ``kill_worker.restart`` that starts a TaskManager of this cluster again, as a daemon (Flink's own
        ``taskmanager.sh start``: it returns once the JVM is launched; the new TaskManager registers by itself).
        :meth:`stop` ends it with the rest of the cluster."""
        env = {**self._daemon_env(), "FLINK_PID_DIR": str(self.work_dir)}
        assignments = [f"{key}={value}" for key, value in env.items()]
        return shlex.join(["env", *assignments, "bash", str(flink_home() / "bin" / "taskmanager.sh"), "start"])

    @property
    def rest_url(self) -> str:
        return f"http://{self.rest_address}"

    def config(self) -> dict[str, Any]:
        """The cluster's configuration: PyFlink's shipped ``config.yaml`` (JVM options Java 17 needs) with every
        address on 127.0.0.1, free ports, and our slots and memory."""
        config = flink_shipped_config()
        config.update({
            "jobmanager.rpc.address": HOST,
            "jobmanager.rpc.port": self.rpc_port,
            "jobmanager.bind-host": HOST,
            "jobmanager.memory.process.size": "1024m",
            "taskmanager.host": HOST,
            "taskmanager.bind-host": HOST,
            "taskmanager.rpc.port": "0",
            "taskmanager.numberOfTaskSlots": self.slots,
            "taskmanager.memory.process.size": self.taskmanager_memory,
            "rest.address": HOST,
            "rest.bind-address": HOST,
            "rest.port": self.rest_port,
            "blob.server.port": "0",
            "parallelism.default": self.slots,
            # the REST API serves metrics cached this long (default 10 s); engines sample once a second
            "metrics.fetcher.update-interval": "1000",
            # a killed TaskManager is declared lost after heartbeat.rpc-failure-threshold (2) heartbeat RPCs in a
            # row failed: 2 x 1 s instead of 2 x the default 10 s (kill-worker faults); heartbeat.timeout (50 s,
            # for a TaskManager that is alive but silent) stays as it is
            "heartbeat.interval": "1000",
            "io.tmp.dirs": str(self.work_dir / "tmp"),
            "web.tmpdir": str(self.work_dir / "web"),
        })  # fmt: skip
        config.update(self.extra_config)
        return config

    def _env(self) -> dict[str, str]:
        conf_dir = self.conf_dir
        conf_dir.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "tmp").mkdir(exist_ok=True)
        (conf_dir / "config.yaml").write_text(yaml.safe_dump(self.config(), sort_keys=True))
        for name in ("log4j-console.properties", "log4j.properties", "log4j-cli.properties"):
            shutil.copy(flink_home() / "conf" / name, conf_dir / name)
        return {**os.environ, **self._daemon_env()}

    def _daemon_env(self) -> dict[str, str]:
        """What the daemons need beyond the inherited environment: the distribution, this cluster's conf and log
        directories, Java."""
        return {
            "FLINK_HOME": str(flink_home()),
            "FLINK_CONF_DIR": str(self.conf_dir),
            "FLINK_LOG_DIR": str(self.work_dir / "logs"),
            "JAVA_HOME": str(jvm.java_home()),
        }

    def _start(self, timeout: float) -> None:
        env = self._env()
        bin_dir = flink_home() / "bin"
        jobmanager = ManagedProcess(
            "flink jobmanager", ["bash", bin_dir / "jobmanager.sh", "start-foreground"],
            self.work_dir / "jobmanager.log", env=env, cwd=self.work_dir,
        )
        self.daemons.append(jobmanager)
        jobmanager.start()
        jobmanager.wait_until(
            lambda: "flink-version" in _get_json(f"{self.rest_url}/config"),
            timeout,
            what=f"the Flink REST endpoint at {self.rest_url}",
            hint="the JobManager log above says why",
        )
        taskmanager = ManagedProcess(
            "flink taskmanager", ["bash", bin_dir / "taskmanager.sh", "start-foreground"],
            self.work_dir / "taskmanager.log", env=env, cwd=self.work_dir,
        )
        self.daemons.append(taskmanager)
        taskmanager.start()
        taskmanager.wait_until(
            lambda: _get_json(f"{self.rest_url}/overview").get("slots-total", 0) >= self.slots,
            timeout,
            what=f"a TaskManager with {self.slots} slots registered at {self.rest_url}",
            hint="the TaskManager log above says why it did not register",
        )

    def jobs(self) -> list[dict[str, Any]]:
        """The cluster's jobs (id, name, state), to check a job really ran here."""
        return list(_get_json(f"{self.rest_url}/jobs/overview").get("jobs", []))
