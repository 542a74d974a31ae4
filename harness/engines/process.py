"""What every engine whose job runs as a child process on this host does, in one place.

:class:`ProcessEngine` writes the job's spec file, builds the child's environment, starts the job under
:class:`~harness.infra.proc.ManagedProcess` (its own process group, output to a log file in the run directory), waits for
readiness (stopping everything if that fails), notices a job that died, stops it (TERM, then KILL) and lists its
processes and logs. It also builds the harness package as a zip for jobs submitted to a cluster. A subclass says
only what differs: the command, extra environment, how readiness is probed, the last words before a stop::

    class MyEngine(ProcessEngine):
        name = "my-engine"
        log_name = "my.log"

        def command(self) -> list[str]:
            return [sys.executable, "-m", "mypkg.my_job", "--spec", str(self.spec_path)]

        def wait_for_job(self, process: ManagedProcess, timeout: float) -> None:
            process.wait_for_line(r"^READY$", timeout)

        def fairness(self) -> dict[str, Setting | str]: ...
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
import zipfile
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import psutil

from harness.infra import jvm
from harness.infra.distributions import PROJECT_ROOT
from harness.engines.base import Engine, EngineContext, EngineSettings
from harness.errors import EngineError
from harness.infra.proc import ManagedProcess
from harness.workload import JobSpec

_ERROR_LINE = re.compile(
    r"^Exception in thread|^(?:Caused by: )?[\w.$]+(?:Exception|Error): |^\d\d:\d\d:\d\d\.\d+ ERROR "
)


class ProcessEngine(Engine):
    """An engine whose job (or the client that submits it to a cluster) is one child process group here.

    Lifecycle, as the runner calls it: :meth:`start` (spec written, process launched) → :meth:`wait_ready`
    (:meth:`wait_for_job` of the subclass; on failure everything is stopped and the first error of the log is
    added to the message) → :meth:`check` while the load runs → :meth:`stop` (:meth:`before_stop`, then TERM the
    group and KILL after :attr:`stop_grace_s`). ``stop`` is idempotent and safe before ``start``."""

    log_name: ClassVar[str] = "job.log"
    """The job's stdout and stderr, in the run directory."""
    spec_name: ClassVar[str] = "job-spec.json"
    """The JobSpec the job reads (``--spec``), in the run directory."""
    stop_grace_s: ClassVar[float] = 15.0
    """Seconds between TERM and KILL on stop."""
    needs_java: ClassVar[bool] = True
    """The job runs a JVM: its environment names the Java to use (``JAVA_HOME``)."""

    def __init__(self, settings: EngineSettings, context: EngineContext) -> None:
        super().__init__(settings, context)
        self.process: ManagedProcess | None = None
        """The job's process group, from :meth:`start` on."""
        self.started_at: float | None = None
        """``time.monotonic()`` at :meth:`start`."""
        self.ready_after_s: float | None = None
        """Seconds from :meth:`start` until :meth:`wait_ready` returned."""
        self._stopped = False
        self.restarts = 0
        """How often :meth:`restart` started the job again (after a ``kill-engine`` fault)."""

    # ------------------------------------------------------------------------------------------ locations
    @property
    def run_dir(self) -> Path:
        return Path(self.context.run_dir)

    @property
    def log_path(self) -> Path:
        return self.run_dir / self.log_name

    @property
    def spec_path(self) -> Path:
        return self.run_dir / self.spec_name

    # ------------------------------------------------------------------------------------ subclass hooks
    @abstractmethod
    def command(self) -> list[str]:
        """The job's argv. Called by :meth:`start` once the spec file is written."""

    @abstractmethod
    def wait_for_job(self, process: ManagedProcess, timeout: float) -> None:
        """Block until the job reads the input topic; raise :class:`EngineError` if it fails or ``timeout``
        seconds pass (``process.wait_for_line`` / ``process.wait_until`` do both)."""

    def job_settings(self) -> dict[str, Any]:
        """``spec.settings`` as the job reads it: the validated settings, plus whatever else the job needs."""
        return self.settings.model_dump(mode="json")

    def environment(self) -> dict[str, str]:
        """The job's environment: this one, plus Java (if :attr:`needs_java`), unbuffered Python and the harness
        first on PYTHONPATH. Called by :meth:`start` after :meth:`command`."""
        env = dict(os.environ)
        path = [str(PROJECT_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        if self.needs_java:
            env["JAVA_HOME"] = str(jvm.java_home())
        env.update(PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join(path))
        return env

    def before_stop(self) -> None:
        """Last words with the job (a final metrics snapshot, a cancel on a cluster). Called once by :meth:`stop`
        before the process group is terminated, whether or not the process still runs (check
        ``self.process.alive()``); errors are ignored."""

    def extra_log_files(self) -> list[Path]:
        """Files besides the log and the spec to keep with the result (only those that exist are kept)."""
        return []

    # ------------------------------------------------------------------------------------------ lifecycle
    def job_spec(self) -> JobSpec:
        """The run's spec with :meth:`job_settings` as its settings."""
        return dataclasses.replace(self.context.spec, settings=self.job_settings())

    def start(self) -> None:
        if self.process is not None:
            raise EngineError(f"{self.name}: start() called twice")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        Path(self.context.spec.state_dir).mkdir(parents=True, exist_ok=True)
        self.spec_path.write_text(json.dumps(self.job_spec().to_json(), indent=2) + "\n")
        argv = self.command()
        self.process = ManagedProcess(f"{self.name} job", argv, self.log_path, env=self.environment(),
                                      cwd=self.run_dir, error_class=EngineError)
        self.started_at = time.monotonic()
        self.process.start()

    def wait_ready(self, timeout: float) -> None:
        if self.process is None:
            raise EngineError(f"{self.name}: wait_ready() before start()")
        try:
            self.wait_for_job(self.process, timeout)
        except EngineError as exc:
            self.stop()  # nothing half-started survives a failed start
            cause = self.first_error()
            if cause:
                raise EngineError(f"{exc}\n  first error in the log: {cause}") from None
            raise
        assert self.started_at is not None
        self.ready_after_s = time.monotonic() - self.started_at

    def check(self) -> None:
        if self.process is None or self._stopped or self.process.returncode is None:
            return
        cause = self.first_error()
        raise EngineError(self.process.failure_message(
            f"job exited with code {self.process.returncode} during the run"
            + (f"; first error in the log: {cause}" if cause else "")
        ))

    def stop(self) -> None:
        if self.process is None or self._stopped:
            return
        try:
            self.before_stop()
        except Exception:  # noqa: BLE001 - last words are a bonus; stopping is not
            pass
        finally:
            self._stopped = True
        self.process.stop(grace=self.stop_grace_s)

    def kill(self) -> None:
        """SIGKILL the job's whole process group (a ``kill-engine`` fault); :meth:`restart` follows."""
        if self.process is not None:
            self.process.kill()

    def restart(self, timeout: float) -> None:
        """Launch the job again after :meth:`kill` (a new process group, the same spec, log appended) and wait
        until it is ready. Subclasses make the job resume from its checkpoint (see :attr:`restarts`)."""
        if self._stopped:
            raise EngineError(f"{self.name}: restart() after stop()")
        self.process = None
        self.ready_after_s = None
        self.restarts += 1
        self.start()
        self.wait_ready(timeout)

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopped

    # ------------------------------------------------------------------------------------------ reporting
    def processes(self) -> list[psutil.Process]:
        return [] if self.process is None else self.process.processes()

    def log_files(self) -> list[Path]:
        return [path for path in (self.log_path, self.spec_path, *self.extra_log_files()) if path.exists()]

    def log_tail(self, lines: int = 30) -> list[str]:
        """The last ``lines`` lines of the job's log (empty before start)."""
        return [] if self.process is None else self.process.tail(lines)

    def first_error(self) -> str | None:
        """The first exception line of the job's log: JVM stack traces are long, so the log tail often shows
        only frames (or a Python traceback of the failed gateway call), not what went wrong."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return None
        for line in lines:
            if _ERROR_LINE.search(line) and not line.lstrip().startswith("at "):
                return line.strip()[:500]
        return None

    def harness_zip(self) -> Path:
        """The harness package as ``harness.zip`` in the run directory, for jobs on a cluster: Python that runs
        on executors or TaskManagers imports it from there."""
        path = self.run_dir / "harness.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for source in sorted((PROJECT_ROOT / "harness").rglob("*.py")):
                archive.write(source, source.relative_to(PROJECT_ROOT))
        return path
