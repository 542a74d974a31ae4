"""Managed child processes: readiness waits, error text, and no orphans after stop, crash or Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from harness.errors import ServiceError
from harness.infra.proc import ManagedProcess

# A child that starts a grandchild (like pyspark's driver starting its JVM) and reports both pids.
TREE = textwrap.dedent(
    """
    import subprocess, sys, time
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print(f"tree child={__import__('os').getpid()} grandchild={grandchild.pid}", flush=True)
    print("READY", flush=True)
    time.sleep(600)
    """
)


def sigint_as_in_a_terminal() -> None:
    """In the child before exec: SIGINT back to its default, so the child's Python turns it into
    KeyboardInterrupt even when this test runs in a background job (where SIGINT is inherited as ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def tree_pids(log: Path, timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines() if log.exists() else []:
            if line.startswith("tree "):
                return [int(part.split("=")[1]) for part in line.split()[1:]]
        time.sleep(0.05)
    raise AssertionError(f"no pid line in {log}")


def gone(pids: list[int], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.1)
    return False


def test_wait_for_line_then_stop_kills_the_whole_tree(tmp_path: Path) -> None:
    proc = ManagedProcess("tree", [sys.executable, "-c", TREE], tmp_path / "tree.log").start()
    try:
        match = proc.wait_for_line(r"READY", timeout=30)
        assert match.group(0) == "READY"
        pids = tree_pids(proc.log_path)
        assert {p.pid for p in proc.processes()} >= set(pids)
    finally:
        proc.stop(grace=5)
    assert gone(pids)
    assert not proc.alive()


def test_timeout_error_names_what_was_awaited_with_log_tail_and_hint(tmp_path: Path) -> None:
    script = "print('starting up', flush=True); import time; time.sleep(600)"
    proc = ManagedProcess("slowpoke", [sys.executable, "-c", script], tmp_path / "slow.log").start()
    try:
        with pytest.raises(ServiceError) as caught:
            proc.wait_for_line(r"NEVER", timeout=1.0, hint="raise the timeout")
    finally:
        proc.stop(grace=2)
    message = str(caught.value)
    assert message.startswith("slowpoke: not ready (log line /NEVER/) within 1 s")
    assert "starting up" in message and "hint: raise the timeout" in message and str(proc.log_path) in message


def test_exit_before_ready_is_reported_with_exit_code(tmp_path: Path) -> None:
    script = "import sys; print('bad config: port missing', flush=True); sys.exit(3)"
    proc = ManagedProcess("broken", [sys.executable, "-c", script], tmp_path / "b.log").start()
    with pytest.raises(ServiceError) as caught:
        proc.wait_for_line(r"READY", timeout=30)
    assert "broken: exited with code 3 before log line /READY/" in str(caught.value)
    assert "bad config: port missing" in str(caught.value)
    proc.stop()


def test_error_class_is_configurable(tmp_path: Path) -> None:
    class JobFailed(ServiceError):
        pass

    proc = ManagedProcess("job", [sys.executable, "-c", "raise SystemExit(1)"], tmp_path / "j.log",
                          error_class=JobFailed).start()
    with pytest.raises(JobFailed):
        proc.wait_until(lambda: False, timeout=30, what="never")
    proc.stop()


def test_stop_is_idempotent_and_safe_before_start(tmp_path: Path) -> None:
    proc = ManagedProcess("idle", [sys.executable, "-c", "pass"], tmp_path / "i.log")
    assert proc.stop() is None
    proc.start()
    proc.stop()
    proc.stop()


HARNESS_STANDIN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from harness.infra.proc import ManagedProcess
    proc = ManagedProcess("tree", [sys.executable, "-c", {tree!r}], Path({log!r})).start()
    proc.wait_for_line("READY", timeout=30)
    print("STARTED", flush=True)
    {body}
    """
)


@pytest.mark.parametrize(
    "how, body",
    [
        ("kill -9", "time.sleep(600)"),
        ("Ctrl-C", "try:\n    time.sleep(600)\nfinally:\n    proc.stop(grace=5)"),
        ("crash", "raise RuntimeError('harness bug')"),
    ],
    ids=["kill-9", "ctrl-c", "crash"],
)
def test_no_orphans_when_the_harness_dies(tmp_path: Path, how: str, body: str) -> None:
    log = tmp_path / "tree.log"
    script = HARNESS_STANDIN.format(tree=TREE, log=str(log), body=body)
    harness = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                               preexec_fn=sigint_as_in_a_terminal, cwd=Path(__file__).resolve().parents[2])
    try:
        assert harness.stdout is not None and harness.stdout.readline().strip() == "STARTED"
        pids = tree_pids(log)
        if how == "kill -9":
            harness.kill()
        elif how == "Ctrl-C":
            harness.send_signal(signal.SIGINT)
        harness.wait(timeout=30)
        assert gone(pids), f"orphans survived {how}: {pids}"
    finally:
        if harness.poll() is None:
            harness.kill()
        for pid in tree_pids(log):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_kill_sigkills_the_whole_tree_at_once_and_a_restart_reads_only_its_own_log(tmp_path: Path) -> None:
    """A kill-engine fault: no TERM, no grace — the group is gone when kill() returns; the job started again
    appends to the same log, and its readiness wait does not match the first run's READY line."""
    log = tmp_path / "tree.log"
    first = ManagedProcess("tree", [sys.executable, "-c", TREE], log).start()
    first.wait_for_line(r"READY", timeout=30)
    pids = tree_pids(log)
    first.kill()
    assert gone(pids)
    slow = "import time; time.sleep(1.5); print('READY', flush=True); time.sleep(600)"
    second = ManagedProcess("tree", [sys.executable, "-c", slow], log).start()
    try:
        started = time.monotonic()
        second.wait_for_line(r"READY", timeout=30)
        assert time.monotonic() - started >= 1.0  # the first run's READY, earlier in the log, did not count
    finally:
        second.stop(grace=2)


def test_a_process_started_from_a_short_lived_thread_outlives_the_thread(tmp_path: Path) -> None:
    """The guard's parent-death signal follows the thread that started it: the fault injector's restarts go
    through the long-lived spawner thread, so a job restarted from a thread that then ends keeps running."""
    import threading

    started: list[ManagedProcess] = []
    thread = threading.Thread(target=lambda: started.append(
        ManagedProcess("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"], tmp_path / "s.log").start()))
    thread.start()
    thread.join()
    [proc] = started
    try:
        time.sleep(1.0)
        assert proc.alive()
    finally:
        proc.stop(grace=2)
    assert not proc.alive()
