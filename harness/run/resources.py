"""CPU and memory per component (broker, engine, generator, harness), sampled every second in a thread.

Each component is a callable returning its *current* processes (an engine's process tree changes while it runs,
so the list is asked for at every sample). A component's CPU is the sum of ``cpu_percent`` over its processes
(100 % = one core fully busy) and its memory the sum of their RSS. ``psutil``'s ``cpu_percent`` measures since
the previous call on the same process object, so a process seen for the first time is primed and counted from
its second sample on; the sampler keeps one ``psutil.Process`` per (pid, start time) for that.

Beside the run's own components the sampler records :data:`OTHERS`: the machine's busy CPU (all cores, from
``psutil.cpu_times``) minus the run's components, i.e. what processes outside the run took from the cores while it
was measured. A run that shared the machine says so (:mod:`harness.analysis.verdicts`). The figures over the
measured period are :func:`harness.analysis.resources.summarize`'s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

import pandas as pd
import psutil

from harness.analysis.resources import OTHERS  # the pseudo-component of processes outside the run (CPU only)

RESOURCE_COLUMNS = ("t_ms", "component", "cpu_percent", "rss_bytes", "processes")
"""resources.csv: ``t_ms`` epoch ms of the sample; ``cpu_percent`` summed over the component's processes
(100 = one core); ``rss_bytes`` summed resident memory; ``processes`` how many were sampled."""


def process_tree(root: psutil.Process | None) -> list[psutil.Process]:
    """``root`` and all its descendants that are still alive (empty if ``root`` is gone or None)."""
    if root is None:
        return []
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def this_process() -> list[psutil.Process]:
    """The harness itself (its own Python process; the generator workers are a component of their own)."""
    return [psutil.Process()]


class ResourceSampler:
    """Samples every component every ``interval`` seconds from :meth:`start` until :meth:`stop`.

    The runner starts one per engine × repetition before the engine starts and stops it after the drain.
    ``clock`` gives epoch milliseconds (injectable for tests); :meth:`sample_once` is public for the same reason.
    """

    def __init__(
        self,
        components: Mapping[str, Callable[[], list[psutil.Process]]],
        interval: float = 1.0,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.components = dict(components)
        self.interval = interval
        self._clock = clock
        self._known: dict[tuple[int, float], psutil.Process] = {}
        self._rows: list[tuple[int, str, float, int, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: dict[str, str] = {}
        """Last error per component (e.g. its process list could not be read)."""
        self._host_busy: tuple[float, float] | None = None
        """(wall clock s, busy CPU s of all cores) at the previous sample, for :data:`OTHERS`."""

    def start(self) -> None:
        self.sample_once()  # primes cpu_percent of every process already running
        self._thread = threading.Thread(target=self._run, name="resource-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (idempotent); samples taken stay available."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 5)

    def _run(self) -> None:
        next_at = time.monotonic() + self.interval
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            next_at += self.interval
            self.sample_once()

    def sample_once(self) -> None:
        """Take one sample of every component (the first sample of a process only primes its CPU counter)."""
        t_ms = int(self._clock() * 1000)
        seen: set[tuple[int, float]] = set()
        rows: list[tuple[int, str, float, int, int]] = []
        for component, list_processes in self.components.items():
            try:
                processes = list_processes()
            except Exception as exc:  # a component that cannot be listed must not stop the others
                self.errors[component] = repr(exc)
                continue
            cpu, rss, counted, primed_only = 0.0, 0, 0, True
            for process in processes:
                try:
                    key = (process.pid, process.create_time())
                    tracked = self._known.get(key)
                    with (tracked or process).oneshot():
                        if tracked is None:
                            self._known[key] = process
                            process.cpu_percent(None)
                            rss += process.memory_info().rss
                        else:
                            cpu += tracked.cpu_percent(None)
                            rss += tracked.memory_info().rss
                            primed_only = False
                    seen.add(key)
                    counted += 1
                except psutil.Error:
                    continue  # the process ended between listing and sampling
            if counted == 0:
                rows.append((t_ms, component, float("nan"), 0, 0))
            else:
                rows.append((t_ms, component, float("nan") if primed_only else cpu, rss, counted))
        for key in list(self._known):
            if key not in seen:
                del self._known[key]
        host = self._host_cpu_percent()
        if host is not None:
            ours = sum(row[2] for row in rows if row[2] == row[2])  # NaN (priming) rows left out
            rows.append((t_ms, OTHERS, max(0.0, host - ours), 0, 0))
        with self._lock:
            self._rows.extend(rows)

    def _host_cpu_percent(self) -> float | None:
        """Busy CPU of the whole machine since the previous sample, % of one core (None at the first sample)."""
        times = psutil.cpu_times()
        # guest time is already inside user on Linux; steal is the hypervisor's, not this machine's processes'
        busy = times.user + times.nice + times.system + getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0)
        now = time.monotonic()
        previous, self._host_busy = self._host_busy, (now, busy)
        if previous is None or now <= previous[0]:
            return None
        return max(0.0, (busy - previous[1]) / (now - previous[0]) * 100.0)

    def frame(self) -> pd.DataFrame:
        """Every sample: columns :data:`RESOURCE_COLUMNS`. ``cpu_percent`` is NaN where no process of the
        component had been seen before (priming sample)."""
        with self._lock:
            rows = list(self._rows)
        return pd.DataFrame(rows, columns=list(RESOURCE_COLUMNS))
