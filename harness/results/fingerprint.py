"""The environment fingerprint stored in run.json: what a result depends on besides the scenario (hardware, OS,
software versions, code version, which clocks the latencies compare). ``bench compare`` refuses to judge a
regression across different CPUs, core counts or engine versions unless told to."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

from harness import versions


def environment_fingerprint(
    *,
    engine_versions: Mapping[str, Mapping[str, str]] | None = None,
    deployment: str = "local: broker, engines and generator on this host",
    kafka_mode: str = "embedded",
) -> dict[str, Any]:
    """What the result depends on besides the scenario: hardware, OS, software versions, code version, clocks.
    Called once per run, at the start."""
    memory = psutil.virtual_memory().total
    git = _git_state()
    same_host = kafka_mode == "embedded"
    return {
        "hostname": socket.gethostname(),
        "cpu_model": _cpu_model(),
        "cpu_logical": os.cpu_count(),
        "cpu_physical": psutil.cpu_count(logical=False),
        "memory_bytes": memory,
        "os": platform.platform(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "java": _java_version(),
        "versions": {
            "kafka": versions.KAFKA,
            "spark": versions.SPARK,
            "flink": versions.FLINK,
            "flink_kafka_connector": versions.FLINK_KAFKA_CONNECTOR,
            "scala_binary": versions.SCALA_BINARY,
            **{f"{name}:{k}": v for name, vs in (engine_versions or {}).items() for k, v in vs.items()},
        },
        "git_commit": git[0],
        "git_dirty": git[1],
        "deployment": deployment,
        "clock": (
            "one host clock: the broker's LogAppendTime and the generator's event times come from the same machine"
            if same_host
            else "two clocks: LogAppendTime is the broker host's clock, event times the generator host's; their "
            "offset (NTP) is part of every latency"
        ),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _java_version() -> str | None:
    java = shutil.which("java")
    if os.environ.get("JAVA_HOME"):
        candidate = Path(os.environ["JAVA_HOME"]) / "bin" / "java"
        if candidate.exists():
            java = str(candidate)
    if java is None:
        return None
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (out.stderr or out.stdout).strip().splitlines()
    return lines[0] if lines else None


def _git_state() -> tuple[str | None, bool | None]:
    root = Path(__file__).resolve().parent.parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, bool(dirty)
