"""CPU isolation of the load path and the engine (a scenario's optional ``isolation:``), by Linux CPU affinity.

On a small machine the broker, the generator, the collector and the engine take turns on the same cores, and which
of them waits is up to the scheduler: a run-to-run spread that is not the engine's. ``isolation`` gives the load
path (the harness process with its collector and generator workers, and the embedded broker) and the engine job
disjoint CPU sets::

    isolation: {load_path: "0", engine: "1"}     # Linux CPU lists: "0-1,4", or a list of numbers

How it is applied (Linux affinity is per thread, and a new thread or process inherits its creator's):

- the harness pins every thread of its own process to ``load_path`` for the run (:func:`harness_pinned`), so the
  generator workers, the broker and the collector's client threads, all started afterwards, inherit it; the
  original affinity is restored when the run ends;
- an engine's processes are started inside :func:`children_on` (``engine``): :class:`~harness.infra.proc.ManagedProcess`
  hands the set to its guard, which pins itself before it starts the job, so the JVM and every thread and process
  it starts live on the engine's CPUs from the first instruction (a JVM then also *sizes* itself for them: GC and
  compiler threads, ``availableProcessors``);
- after the engine is ready, :func:`pin_processes` moves any thread of the engine's processes that is still
  outside its set (an engine that starts its processes without ``ManagedProcess``) and says how many it moved.

The sets are checked against the CPUs this process may use before anything starts (:meth:`Isolation.check`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import psutil
from pydantic import BaseModel, ConfigDict, field_validator, model_serializer, model_validator

CpuSet = frozenset[int]

MAX_CPU = 4095
"""Highest CPU number a list may name (Linux's default NR_CPUS for large x86 configurations is 8,192; no
machine this harness runs on has more). Checked before a range is expanded, so ``1-99999999`` costs nothing."""


def parse_cpu_list(value: Any) -> CpuSet:
    """``"0-2,5"``, ``3`` or ``[0, 1]`` → the CPU numbers; raises ValueError saying what is wrong."""
    if isinstance(value, bool):
        raise ValueError(f"must be a CPU list such as \"0-1,3\" or [0, 1] (got {value!r})")
    if isinstance(value, int):
        items: list[Any] = [value]
    elif isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    else:
        raise ValueError(f"must be a CPU list such as \"0-1,3\" or [0, 1] (got {value!r})")
    cpus: set[int] = set()
    for item in items:
        cpus.update(_cpu_range(item, value))
    if not cpus:
        raise ValueError(f"must name at least one CPU (got {value!r})")
    return frozenset(cpus)


def _cpu_range(item: Any, whole: Any) -> range:
    if isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= MAX_CPU:
        return range(item, item + 1)
    text = str(item).strip()
    low, _, high = text.partition("-")
    if low.isdigit() and (not high or high.isdigit()) and len(text) <= 40:
        first, last = int(low), int(high or low)
        if last > MAX_CPU:
            raise ValueError(f"CPU {last} in {item!r} is above the highest CPU number accepted ({MAX_CPU}; this "
                             f"machine's CPUs are listed by `nproc --all` / lscpu) (got {whole!r})")
        if first <= last:
            return range(first, last + 1)
    raise ValueError(f"must be a CPU list such as \"0-1,3\" or [0, 1]: {item!r} is not a CPU number or range "
                     f"(got {whole!r})")


def format_cpu_list(cpus: Iterable[int]) -> str:
    """``{0, 1, 2, 5}`` → ``"0-2,5"`` (how Linux writes CPU lists)."""
    ordered = sorted(set(cpus))
    parts: list[str] = []
    start = prev = None
    for cpu in [*ordered, None]:
        if cpu is not None and prev is not None and cpu == prev + 1:
            prev = cpu
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = cpu
    return ",".join(parts)


def available_cpus() -> CpuSet:
    """The CPUs this process may run on (its affinity, which a container or ``taskset`` may have narrowed)."""
    return frozenset(os.sched_getaffinity(0))


class Isolation(BaseModel):
    """A scenario's ``isolation:`` block: the load path's CPUs and the engine's, disjoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    load_path: CpuSet
    """Harness (collector, generator workers) and the embedded broker."""
    engine: CpuSet
    """The engine's job: every process and thread it starts."""

    @field_validator("load_path", "engine", mode="before")
    @classmethod
    def _cpu_list(cls, value: Any) -> CpuSet:
        return parse_cpu_list(value)

    @model_validator(mode="after")
    def _disjoint(self) -> Isolation:
        shared = self.load_path & self.engine
        if shared:
            raise ValueError(
                f"load_path and engine must not share a CPU, or the engine still competes with the load path "
                f"(both have {format_cpu_list(shared)})"
            )
        return self

    def problems(self, available: CpuSet | None = None) -> list[str]:
        """``isolation.FIELD: …`` lines for CPUs this process may not use (``available``, default its affinity)."""
        available = available_cpus() if available is None else available
        lines = []
        for field in ("load_path", "engine"):
            missing = getattr(self, field) - available
            if missing:
                lines.append(
                    f"isolation.{field}: CPU {format_cpu_list(missing)} is not available here (this process may "
                    f"use CPUs {format_cpu_list(available)}); choose CPUs from that list"
                )
        return lines

    def describe(self) -> str:
        return f"load path on CPUs {format_cpu_list(self.load_path)}, engine on CPUs {format_cpu_list(self.engine)}"

    def to_json(self) -> dict[str, str]:
        return {"load_path": format_cpu_list(self.load_path), "engine": format_cpu_list(self.engine)}

    @model_serializer
    def _in_the_files_words(self) -> dict[str, str]:
        """Dumped as CPU lists, so a dumped scenario (run.json) reads back the same."""
        return self.to_json()


# --------------------------------------------------------------------------------------------------- pinning
def _threads(pid: int) -> list[int]:
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def pin_process(pid: int, cpus: CpuSet) -> int:
    """Pin every thread of ``pid`` to ``cpus``; return how many threads were outside it before. Threads that end
    meanwhile are skipped."""
    moved = 0
    for tid in _threads(pid):
        try:
            if set(os.sched_getaffinity(tid)) != set(cpus):
                os.sched_setaffinity(tid, cpus)
                moved += 1
        except OSError:  # the thread ended between the listing and the call
            continue
    return moved


def pin_processes(processes: Iterable[psutil.Process], cpus: CpuSet) -> int:
    """:func:`pin_process` for each process; the total of threads moved."""
    return sum(pin_process(proc.pid, cpus) for proc in processes)


def threads_outside(processes: Iterable[psutil.Process], cpus: CpuSet) -> int:
    """How many threads of ``processes`` may run on a CPU outside ``cpus`` (0 when pinning held)."""
    outside = 0
    for proc in processes:
        for tid in _threads(proc.pid):
            try:
                outside += not set(os.sched_getaffinity(tid)) <= set(cpus)
            except OSError:
                continue
    return outside


@contextlib.contextmanager
def harness_pinned(cpus: CpuSet | None) -> Iterator[None]:
    """Pin every thread of this process to ``cpus`` (None: no change) and restore each thread's affinity after."""
    if cpus is None:
        yield
        return
    before = {}
    for tid in _threads(os.getpid()):
        with contextlib.suppress(OSError):
            before[tid] = os.sched_getaffinity(tid)
    pin_process(os.getpid(), cpus)
    try:
        yield
    finally:
        everything = frozenset().union(*before.values()) if before else available_cpus()
        for tid in _threads(os.getpid()):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, before.get(tid, everything))


_spawn = threading.local()


@contextlib.contextmanager
def children_on(cpus: CpuSet | None) -> Iterator[None]:
    """Within the block, processes this thread starts through :class:`~harness.infra.proc.ManagedProcess` run on
    ``cpus`` (None: they inherit the harness's affinity)."""
    previous = getattr(_spawn, "cpus", None)
    _spawn.cpus = cpus
    try:
        yield
    finally:
        _spawn.cpus = previous


def children_cpus() -> CpuSet | None:
    """The CPU set :func:`children_on` gave this thread, if any."""
    return getattr(_spawn, "cpus", None)


__all__ = ["CpuSet", "Isolation", "available_cpus", "children_cpus", "children_on", "format_cpu_list",
           "harness_pinned", "parse_cpu_list", "pin_process", "pin_processes", "threads_outside"]
