"""Process guard: ``python -m harness.infra._guard PARENT_PID [--cpus LIST] -- ARGV...``.

Runs ARGV as a child in the guard's own process group (the harness starts the guard with a new session) and kills
that whole group when the harness goes away, however it goes: the kernel sends the guard SIGTERM when its parent
dies (``PR_SET_PDEATHSIG``), and the guard also polls its parent pid in case the signal was set too late.
On SIGTERM/SIGINT it terminates the group, waits briefly, then kills it. Its exit code is the child's.
With ``--cpus 0-1,3`` the guard pins itself to those CPUs before it starts ARGV, which inherits the affinity
(:mod:`harness.infra.isolation`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

_PR_SET_PDEATHSIG = 1
_GRACE_S = 10.0


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    group = os.getpgrp()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the group TERM below reaches the guard too
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + _GRACE_S
    while time.monotonic() < deadline:
        child.poll()  # reap the direct child so it does not count as alive
        if not [pid for pid in _group_members(group) if pid != os.getpid()]:
            return
        time.sleep(0.1)
    # SIGKILL for everything left in the group except the guard, which exits right after
    for pid in _group_members(group):
        if pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _group_members(group: int) -> list[int]:
    """Live (non-zombie) processes of ``group``."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
                if fields[0] != b"Z" and int(fields[2]) == group:
                    members.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return members


def main(argv: list[str]) -> int:
    if len(argv) >= 5 and argv[1] == "--cpus":
        os.sched_setaffinity(0, {int(cpu) for cpu in argv[2].split(",")})
        argv = [argv[0], *argv[3:]]
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m harness.infra._guard PARENT_PID [--cpus N,N...] -- ARGV...", file=sys.stderr)
        return 2
    parent = int(argv[0])
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the parent poll below still applies
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    child = subprocess.Popen(argv[2:], stdin=subprocess.DEVNULL)
    while True:
        code = child.poll()
        if code is not None:
            _kill_group(child)  # whatever the child left behind (a JVM gateway) must not outlive it
            return code if code >= 0 else 128 - code
        if stopping or os.getppid() != parent:
            _kill_group(child)
            code = child.poll()
            return 143 if code is None else (code if code >= 0 else 128 - code)
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
