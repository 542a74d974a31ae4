"""The Flink jobs the harness submits, as it finds them again: each has a unique name (:func:`job_name_for`) that
says which host and which ``bench`` process submitted it, so jobs of an earlier ``bench`` that died can be told
apart and cancelled on a session cluster (:func:`is_leftover`, :func:`cancel_leftovers`); a job killed by a
``kill-engine`` fault is restarted from its latest retained checkpoint (:func:`latest_checkpoint`).
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from pathlib import Path
from typing import Any

import psutil

from harness.engines.flink_rest import TERMINAL_STATES, FlinkRest
from harness.workload import JobSpec

JOB_NAME_PREFIX = "streambench_"
"""Every Flink job the harness submits is named ``streambench_<host>_<bench pid>_<run tag>_<nonce>``."""
_JOB_NAME = re.compile(rf"^{JOB_NAME_PREFIX}(?P<host>[^_]+)_(?P<pid>\d+)_(?P<tag>.*)_(?P<nonce>[0-9a-f]{{6}})$")


def job_name_for(spec: JobSpec) -> str:
    """``streambench_<host>_<pid>_<tag>_<nonce>``: this host, this ``bench`` process, the run tag (the input topic
    without ``-in``, which the runner names after the run, engine and repetition) and a random nonce."""
    tag = spec.input_topic.removesuffix("-in")
    return f"{JOB_NAME_PREFIX}{_this_host()}_{os.getpid()}_{tag}_{uuid.uuid4().hex[:6]}"


def is_leftover(job: dict[str, Any], *, host: str | None = None, pid: int | None = None) -> bool:
    """True for a job of the harness that still runs although the ``bench`` that submitted it from this host is
    gone (or is this very process, which runs one job at a time). Jobs of other hosts, of a ``bench`` still alive
    here, or not named by the harness are never leftovers."""
    match = _JOB_NAME.match(str(job.get("name", "")))
    if match is None or job.get("state") in TERMINAL_STATES or match["host"] != (host or _this_host()):
        return False
    owner = int(match["pid"])
    return owner == (pid or os.getpid()) or not _alive(owner)


def cancel_leftovers(rest: FlinkRest) -> list[str]:
    """Cancel every leftover job (:func:`is_leftover`) on the cluster; their names. Called at start, before the
    new job is submitted: a leftover would compete for the slots and read the same broker."""
    cancelled = []
    for job in rest.jobs():
        if is_leftover(job):
            rest.cancel(job["jid"])
            cancelled.append(job["name"])
    return cancelled


def _this_host() -> str:
    return re.sub(r"[^A-Za-z0-9.\-]", "-", socket.gethostname()) or "localhost"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The most recent completed checkpoint under ``checkpoint_dir`` (``<job id>/chk-N`` with a ``_metadata``
    file: one being written when the job was killed has none), by the time its metadata was written; None if no
    checkpoint completed."""
    completed = [meta for meta in checkpoint_dir.glob("*/chk-*/_metadata") if meta.is_file()]
    if not completed:
        return None
    return max(completed, key=lambda meta: (meta.stat().st_mtime_ns, int(meta.parent.name.removeprefix("chk-")))).parent
