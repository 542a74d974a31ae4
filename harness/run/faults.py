"""Fault injection (a scenario's ``faults:``); the figures measured around each fault are
:mod:`harness.analysis.fault_figures`.

:class:`FaultInjector` runs the scenario's faults against one engine × repetition, from a background thread
started with the load, at ``start_epoch_ms + fault.at`` (the generator keeps its open-loop schedule all along):

- ``kill-engine``: SIGKILL the engine's whole process group (:meth:`Engine.kill`), wait ``downtime``, then
  :meth:`Engine.restart` — the same job from its last checkpoint (Spark: the same checkpoint location; Flink: the
  latest retained checkpoint; the calibration engine has none and reads its input again from the beginning).
- ``restart-broker``: stop the embedded broker (its data kept), start it again after ``downtime`` on the same port.
- ``kill-worker`` (engines on a cluster): run the engine entry's ``kill_worker.command`` (a shell command that
  kills one Spark executor or Flink TaskManager: only the scenario knows how to reach the cluster), wait
  ``downtime``, run ``kill_worker.restart`` if given, and leave the recovery to the engine itself (Spark re-runs
  the lost tasks on an executor the standalone worker launches anew; Flink's restart strategy restores the job
  from its latest checkpoint once slots are back). The harness only watches: :meth:`Engine.recovered_at` says
  when the job was processing again. Each command's exit status, duration and last output lines go into the
  record, its whole output into ``faults.log``; a command that fails (non-zero exit, timeout) is the fault's error.

While a ``kill-engine`` or ``restart-broker`` fault is in progress the engine's liveness check is suspended
(:meth:`FaultInjector.check`); a ``kill-worker`` leaves the engine's own processes alone, so the check goes on (a
job that gives up recovering fails the run as any dead job does). A fault whose restart or command fails makes
the next check raise. Each fault leaves a :class:`FaultRecord` (when it was injected, when the engine or broker
was back, errors, commands run), which goes into the repetition's result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import EngineError
from harness.infra.isolation import children_on
from harness.infra.proc import kill_group

if TYPE_CHECKING:
    from harness.engines.base import Engine
    from harness.run.kafka_service import KafkaEndpoint
    from harness.scenario import Fault, KillWorker

RECOVERY_POLL_S = 0.5
"""How often the injector asks the engine whether it has recovered from a ``kill-worker`` fault."""
OUTPUT_LINES = 20
"""Last lines of a fault command's output kept in its record (all of it goes to ``faults.log``)."""


# --------------------------------------------------------------------------------------------- injection
@dataclass
class FaultRecord:
    """What happened to one fault of the scenario in one engine × repetition (epoch ms unless noted)."""

    kind: str
    at_ms: int
    """Offset from the load start, as in the scenario."""
    downtime_ms: int
    """As in the scenario: how long the engine or broker stays down before it is started again."""
    injected_at_ms: int | None = None
    """When the kill (or the broker stop) was issued; None if the fault was never injected."""
    restarted_at_ms: int | None = None
    """When the restart began (injected_at_ms + downtime, plus the time the stop took)."""
    recovered_at_ms: int | None = None
    """When the engine was ready again (or the broker answered); after a ``kill-worker``: when the engine says its
    job was processing again (:meth:`Engine.recovered_at`). None if it never was, or the engine cannot tell."""
    error: str | None = None
    commands: list[dict[str, Any]] = field(default_factory=list)
    """``kill-worker``: one :class:`CommandRun` (as JSON) per command run, the kill first."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CommandRun:
    """One fault command (``kill_worker.command`` or ``.restart``) as it ran."""

    role: str
    """``kill`` or ``restart``."""
    command: str
    started_at_ms: int
    """Epoch ms."""
    seconds: float
    """How long it ran (to its exit, or to the timeout)."""
    exit_code: int | None
    """Its exit status (negative: killed by that signal); None when it was stopped at the timeout."""
    output: list[str]
    """The last :data:`OUTPUT_LINES` lines of its stdout and stderr."""

    @property
    def error(self) -> str | None:
        """Why the command failed, or None if it exited 0."""
        if self.exit_code == 0:
            return None
        what = f"timed out after {self.seconds:.0f} s" if self.exit_code is None else f"exited {self.exit_code}"
        tail = " | ".join(self.output[-3:])
        return f"kill_worker.{'command' if self.role == 'kill' else 'restart'} {what}: {self.command}" + (
            f" — output: {tail}" if tail else "")


def run_command(role: str, command: str, *, timeout_s: float, log_path: Path | None = None,
                cwd: Path | None = None) -> CommandRun:
    """Run ``command`` with ``sh -c`` in a session of its own, its output appended to ``log_path`` (a file, not a
    pipe: a daemon it starts may keep its output open for good), and wait for it at most ``timeout_s``; at the
    timeout its whole process group is killed. Never raises for the command's own failure: see
    :attr:`CommandRun.error`."""
    started_ms = _now_ms()
    started = time.monotonic()
    log = Path(log_path) if log_path is not None else Path(os.devnull)
    with open(log, "ab") as out:
        out.write(f"\n--- {role} at {started_ms} ms: {command}\n".encode())
        out.flush()
        start = out.tell()
        process = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
        try:
            exit_code: int | None = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            exit_code = None
            kill_group(process.pid)
            process.wait()
        seconds = time.monotonic() - started
        out.write(f"--- {role} {'timed out' if exit_code is None else f'exited {exit_code}'} "
                  f"after {seconds:.2f} s\n".encode())
    output = _read_from(log, start) if log_path is not None else []
    return CommandRun(role, command, started_ms, round(seconds, 3), exit_code, output[-OUTPUT_LINES:])


def _read_from(path: Path, offset: int) -> list[str]:
    """The lines of ``path`` from byte ``offset`` up to the command's closing line."""
    with open(path, "rb") as file:
        file.seek(offset)
        lines = file.read().decode(errors="replace").splitlines()
    return [line for line in lines if not line.startswith("--- ")]


class FaultInjector:
    """Injects ``faults`` into one engine run. Lifecycle, as the runner calls it: :meth:`start` once when the load's
    start time is known → :meth:`check` instead of ``engine.check()`` while the load runs and drains →
    :meth:`stop` before the engine is stopped → :meth:`records` into the result. Without faults it only forwards
    :meth:`check`."""

    def __init__(self, faults: Sequence[Fault], engine: Engine, kafka: KafkaEndpoint, *, restart_timeout_s: float,
                 message: Callable[[str], None] = lambda text: None, kill_worker: KillWorker | None = None,
                 log_path: Path | None = None, engine_cpus: frozenset[int] | None = None) -> None:
        self.faults = list(faults)
        self.engine_cpus = engine_cpus
        """``isolation.engine``: a restarted job runs where the first one ran."""
        self.engine = engine
        self.kafka = kafka
        self.restart_timeout_s = restart_timeout_s
        """Longest wait for the engine to be back after a fault."""
        self.message = message
        self.kill_worker = kill_worker
        """The engine entry's ``kill_worker`` commands (``kill-worker`` faults)."""
        self.log_path = log_path
        """Where fault commands' output goes (``faults.log`` in the repetition's work directory)."""
        self._records = [FaultRecord(f.kind, int(f.at), int(f.downtime)) for f in self.faults]
        self._busy = threading.Lock()
        """Held while a fault is in progress: the engine's liveness check is skipped meanwhile."""
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: str | None = None

    def start(self, start_epoch_ms: int) -> None:
        """Schedule every fault at ``start_epoch_ms + at``. Called once, as soon as the load's start is known."""
        if self._thread is not None or not self.faults:
            return
        self._thread = threading.Thread(target=self._run, args=(start_epoch_ms,), name="fault-injector", daemon=True)
        self._thread.start()

    def check(self) -> None:
        """``engine.check()`` unless a fault is in progress; raise :class:`EngineError` if a restart failed."""
        if self._failure is not None:
            raise EngineError(self._failure)
        if self._busy.acquire(blocking=False):
            try:
                self.engine.check()
            finally:
                self._busy.release()

    def stop(self, timeout_s: float | None = None) -> None:
        """Cancel faults not injected yet and wait for the one in progress (at most ``timeout_s``, default the
        restart timeout + the longest downtime)."""
        self._cancel.set()
        if self._thread is not None:
            longest = max((f.downtime for f in self.faults), default=0) / 1000
            self._thread.join(timeout_s if timeout_s is not None else self.restart_timeout_s + longest + 30)

    def records(self) -> list[dict[str, Any]]:
        """One :class:`FaultRecord` per scenario fault, as JSON."""
        return [record.to_json() for record in self._records]

    # ------------------------------------------------------------------------------------------- internals
    def _run(self, start_epoch_ms: int) -> None:
        for fault, record in zip(self.faults, self._records):
            wait_s = (start_epoch_ms + fault.at) / 1000 - time.time()
            if self._cancel.wait(max(wait_s, 0)):
                return
            # a kill-worker leaves the engine's own processes alone: its liveness check goes on meanwhile
            with self._busy if fault.kind != "kill-worker" else contextlib.nullcontext():
                try:
                    self._inject(fault, record)
                except Exception as exc:  # noqa: BLE001 - recorded; the run goes on and says so
                    record.error = f"{type(exc).__name__}: {exc}"
                    self._failure = f"fault {fault.kind} at {fault.at} ms: recovery failed: {record.error}"
                    self.message(self._failure)
                    if not isinstance(exc, EngineError):
                        self.message(traceback.format_exc())
            if record.recovered_at_ms is not None and record.injected_at_ms is not None:
                self.message(f"fault {fault.kind} at {fault.at / 1000:g} s: back after "
                             f"{(record.recovered_at_ms - record.injected_at_ms) / 1000:.1f} s")

    def _inject(self, fault: Fault, record: FaultRecord) -> None:
        if fault.kind == "kill-engine":
            record.injected_at_ms = _now_ms()
            self.engine.kill()
            self._sleep_until(record.injected_at_ms + fault.downtime)
            if self._cancel.is_set():
                return
            record.restarted_at_ms = _now_ms()
            with children_on(self.engine_cpus):
                self.engine.restart(self.restart_timeout_s)
            record.recovered_at_ms = _now_ms()
        elif fault.kind == "restart-broker":
            broker = self.kafka.broker
            if broker is None:
                raise EngineError("restart-broker needs the embedded broker (kafka.mode: embedded)")
            record.injected_at_ms = _now_ms()
            broker.stop()
            self._sleep_until(record.injected_at_ms + fault.downtime)
            record.restarted_at_ms = _now_ms()
            broker.restart()
            record.recovered_at_ms = _now_ms()
        elif fault.kind == "kill-worker":
            self._kill_worker(fault, record)
        else:
            record.error = f"{fault.kind} is not implemented: nothing was injected"

    def _kill_worker(self, fault: Fault, record: FaultRecord) -> None:
        """Kill one worker with the scenario's command, restart it after the downtime if a command says how, then
        wait (at most the restart timeout) for the engine to say it has recovered."""
        commands = self.kill_worker
        if commands is None:
            raise EngineError("kill-worker needs the engine entry's kill_worker.command (bench validate checks it)")
        kill = self._command("kill", commands.command, commands.timeout, record)
        record.injected_at_ms = kill.started_at_ms
        if kill.error is not None:
            raise EngineError(f"{kill.error}; nothing may have been killed")
        self._sleep_until(record.injected_at_ms + fault.downtime)
        if commands.restart is not None:  # even when the run is ending: the cluster is left with its workers
            record.restarted_at_ms = _now_ms()
            restart = self._command("restart", commands.restart, commands.timeout, record)
            if restart.error is not None:
                raise EngineError(restart.error)
        record.recovered_at_ms = self._await_recovery(record.injected_at_ms)

    def _command(self, role: str, command: str, timeout_ms: int, record: FaultRecord) -> CommandRun:
        run = run_command(role, command, timeout_s=timeout_ms / 1000, log_path=self.log_path,
                          cwd=None if self.log_path is None else self.log_path.parent)
        record.commands.append(dataclasses.asdict(run))
        self.message(f"kill-worker: {role} command {'ok' if run.error is None else 'FAILED'} "
                     f"after {run.seconds:.1f} s: {command}")
        return run

    def _await_recovery(self, since_ms: int) -> int | None:
        """Poll :meth:`Engine.recovered_at` until it answers, the restart timeout passes or the run ends; None if
        the engine cannot tell or did not recover in time (the results show what the fault cost either way)."""
        deadline = time.monotonic() + self.restart_timeout_s
        while not self._cancel.is_set() and time.monotonic() < deadline:
            try:
                recovered = self.engine.recovered_at(since_ms)
            except NotImplementedError:
                return None
            except (OSError, ValueError, KeyError):  # an engine's REST endpoint busy restarting: ask again
                recovered = None
            if recovered is not None:
                return recovered
            self._cancel.wait(RECOVERY_POLL_S)
        if not self._cancel.is_set():
            self.message(f"kill-worker: the engine did not report recovery within {self.restart_timeout_s:.0f} s")
        return None

    def _sleep_until(self, epoch_ms: int) -> None:
        time.sleep(max(epoch_ms / 1000 - time.time(), 0))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


__all__ = ["CommandRun", "FaultInjector", "FaultRecord", "run_command"]
