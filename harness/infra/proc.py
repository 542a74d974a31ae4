"""Managed child processes: every service and engine job the harness starts goes through :class:`ManagedProcess`.

- Each child runs under a small guard (``python -m harness.infra._guard``) that leads its own process group. The guard
  dies with ``bench`` (``PR_SET_PDEATHSIG`` plus a parent poll) and then kills the whole group, so no JVM outlives a
  crash, a ``kill -9`` or a Ctrl-C of ``bench``.
- Output goes straight to a log file in the run directory (a pipe could fill and stall a chatty JVM while the
  harness is busy generating load); readiness waits tail that file.
- :meth:`stop` sends TERM to the group, waits, then KILL. Error messages carry the last log lines.
- :func:`kill_group` and :func:`kill_processes` are the one way to SIGKILL a process group or a set of processes
  (a fault's crash, a timed-out command, stragglers).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from harness.errors import ServiceError
from harness.infra.isolation import children_cpus

TAIL_LINES = 30

_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="process-spawner")
"""Starts children for threads other than the main one. The guard's ``PR_SET_PDEATHSIG`` fires when the *thread*
that started it ends, not the process: a job restarted by the fault injector's thread would be terminated as soon
as that thread finished. This executor's one thread lives as long as the harness."""


def _spawn(argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **kwargs)`` from the main thread, or from :data:`_SPAWNER` for any other thread."""
    if threading.current_thread() is threading.main_thread():
        return subprocess.Popen(argv, **kwargs)  # type: ignore[call-overload,no-any-return]
    return _SPAWNER.submit(subprocess.Popen, argv, **kwargs).result()  # type: ignore[arg-type]


class ManagedProcess:
    """A child process group with a log file, readiness waits and a clean stop.

    ``start()`` is called once; ``wait_for_line``/``wait_until`` then block until ready or raise
    :class:`ServiceError` (``error_class`` may narrow it) with the log tail; ``stop()`` is idempotent.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        error_class: type[ServiceError] | type[Exception] = ServiceError,
        cpus: Iterable[int] | None = None,
    ) -> None:
        self.name = name
        self.cpus = frozenset(cpus) if cpus is not None else None
        """CPUs the process group runs on; None: those :func:`harness.infra.isolation.children_on` gave the starting
        thread, else the harness's own."""
        self.argv = [str(arg) for arg in argv]
        self.log_path = Path(log_path)
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.error_class = error_class
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # ------------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> ManagedProcess:
        if self._popen is not None:
            raise RuntimeError(f"{self.name} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # readiness waits read only what this process writes: a restarted job appends to its predecessor's log
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        cpus = self.cpus if self.cpus is not None else children_cpus()
        pin = ["--cpus", ",".join(str(cpu) for cpu in sorted(cpus))] if cpus is not None else []
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self._popen = _spawn(
                [sys.executable, "-m", "harness.infra._guard", str(os.getpid()), *pin, "--", *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise self.error_class(f"{self.name}: cannot start {self.argv[0]}: {exc}") from None
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise RuntimeError(f"{self.name} not started")
        return self._popen.pid

    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def processes(self) -> list[psutil.Process]:
        """Every live process of the group (guard excluded): for resource sampling."""
        if self._popen is None:
            return []
        found = []
        for proc in psutil.process_iter(["pid"]):
            try:
                if proc.pid != self._popen.pid and os.getpgid(proc.pid) == self._popen.pid:
                    found.append(proc)
            except (ProcessLookupError, psutil.Error):
                continue
        return found

    def stop(self, grace: float = 15.0) -> int | None:
        """TERM the whole group, wait up to ``grace`` seconds, then KILL. Safe to call twice."""
        if self._popen is None:
            return None
        group = self._popen.pid
        if self._popen.poll() is None:
            signal_group(group, signal.SIGTERM)
            try:
                self._popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        self._kill_group()  # stragglers the guard left, or the guard itself
        return self._popen.returncode

    def kill(self) -> None:
        """SIGKILL the whole group at once (guard included), no grace: a crash, as a fault injects it. Returns
        when every process of the group is gone."""
        if self._popen is None:
            return
        self._kill_group()

    def _kill_group(self) -> None:
        """SIGKILL the whole group, reap the guard and wait (10 s at most) until no process of the group is left."""
        assert self._popen is not None
        kill_group(self._popen.pid)
        try:
            self._popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        _wait_group_gone(self._popen.pid, timeout=10)

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------------------------------------- readiness
    def wait_for_line(self, pattern: str, timeout: float, *, hint: str = "") -> re.Match[str]:
        """Block until a log line matches ``pattern`` (a regex), the process exits, or ``timeout`` passes."""
        regex = re.compile(pattern)
        found: list[re.Match[str]] = []

        def probe() -> bool:
            for line in self._new_lines():
                match = regex.search(line)
                if match:
                    found.append(match)
                    return True
            return False

        self.wait_until(probe, timeout, what=f"log line /{pattern}/", hint=hint)
        return found[0]

    def wait_until(
        self, probe: Callable[[], bool], timeout: float, *, what: str, hint: str = "", interval: float = 0.2
    ) -> None:
        """Call ``probe`` until it returns true; fail early if the process dies. A probe may raise to mean
        'not yet'; the last such error is shown if the deadline passes."""
        deadline = time.monotonic() + timeout
        last_error = ""
        while True:
            try:
                if probe():
                    return
            except Exception as exc:  # noqa: BLE001 - a probe failing means "not ready yet"
                last_error = f"{type(exc).__name__}: {exc}"
            if not self.alive():
                raise self.error_class(
                    self._failure(f"exited with code {self.returncode} before {what}", last_error, hint)
                )
            if time.monotonic() >= deadline:
                raise self.error_class(self._failure(f"not ready ({what}) within {timeout:g} s", last_error, hint))
            time.sleep(interval)

    def tail(self, lines: int = TAIL_LINES) -> list[str]:
        """The last ``lines`` lines of the log."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                size = log.tell()
                log.seek(max(0, size - 64 * 1024))
                text = log.read().decode("utf-8", "replace")
        except OSError:
            return []
        return text.splitlines()[-lines:]

    def failure_message(self, summary: str, hint: str = "") -> str:
        """``NAME: SUMMARY — log LOG — last lines: … — hint: …``, for errors raised by callers."""
        return self._failure(summary, "", hint)

    def _failure(self, summary: str, last_error: str, hint: str) -> str:
        parts = [f"{self.name}: {summary}"]
        if last_error:
            parts.append(f"last probe error: {last_error}")
        parts.append(f"log: {self.log_path}")
        tail = self.tail(15)
        if tail:
            parts.append("last log lines:\n    " + "\n    ".join(tail))
        if hint:
            parts.append(f"hint: {hint}")
        return "\n  ".join(parts)

    def _new_lines(self) -> list[str]:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                chunk = log.read()
        except OSError:
            return []
        end = chunk.rfind(b"\n") + 1  # only complete lines; the rest is read next time
        self._log_offset += end
        return chunk[:end].decode("utf-8", "replace").splitlines()


# ------------------------------------------------------------------------------------------------- killing
def signal_group(group: int, sig: signal.Signals) -> None:
    """Send ``sig`` to every process of process group ``group``; a group that is gone (or not ours) is no error."""
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_group(group: int) -> None:
    """SIGKILL every process of process group ``group`` at once (a group that is gone is no error); returns
    without waiting for them to end."""
    signal_group(group, signal.SIGKILL)


def kill_processes(processes: Iterable[psutil.Process], *, wait_s: float = 0.0) -> None:
    """SIGKILL each of ``processes`` (one already gone is skipped) and, with ``wait_s``, wait up to that long
    for them to end."""
    victims = list(processes)
    for proc in victims:
        try:
            proc.kill()
        except psutil.Error:
            pass
    if wait_s:
        psutil.wait_procs(victims, timeout=wait_s)


def _wait_group_gone(group: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        members = []
        for proc in psutil.process_iter(["pid", "status"]):
            try:
                if os.getpgid(proc.pid) == group and proc.info["status"] != psutil.STATUS_ZOMBIE:
                    members.append(proc)
            except (ProcessLookupError, psutil.Error):
                continue
        if not members:
            return
        kill_processes(members)
        time.sleep(0.1)
