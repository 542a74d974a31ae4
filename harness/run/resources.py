"""CPU and memory per component (broker, engine, generator, harness), sampled every second in a thread.

Each component is a callable returning its *current* processes (an engine's process tree changes while it runs,
so the list is asked for at every sample). A component's CPU in an interval is the CPU time its processes used in
it (100 % = one core fully busy), from each process's cumulative CPU times, **children included**: the time of
children it has waited for (``children_user`` + ``children_system``, the kernel's ``cutime``/``cstime``). An engine
that forks short-lived helpers between two samples (Hadoop's local file system runs ``chmod``/``stat`` commands
for every checkpoint file Spark writes) has them counted as its own; they once showed up as "other processes"
(0.3 core of an idle machine). A process first seen after the sampler started is counted from its start (its
first interval is not lost); one already running at :meth:`start` is counted from there. When a sampled process
ends, its parent's children counter takes its whole CPU time; what was already counted of it is deducted from its
component's next interval, so nothing is counted twice. Its memory is the sum of RSS.

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


def cpu_seconds(process: psutil.Process) -> float:
    """CPU seconds ``process`` used so far, the children it waited for included."""
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


class _Tracked:
    """A sampled process: the CPU seconds counted of it so far, its parent and its component."""

    __slots__ = ("process", "counted", "ppid", "component")

    def __init__(self, process: psutil.Process, counted: float, ppid: int, component: str) -> None:
        self.process, self.counted, self.ppid, self.component = process, counted, ppid, component


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
        self._known: dict[tuple[int, float], _Tracked] = {}
        self._credit: dict[str, float] = {}
        """Per component: CPU seconds already counted of processes that ended, due back from their parent's
        children counter."""
        self._rows: list[tuple[int, str, float, int, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: dict[str, str] = {}
        """Last error per component (e.g. its process list could not be read)."""
        self._host_busy: tuple[float, float] | None = None
        """(wall clock s, busy CPU s of all cores) at the previous sample, for :data:`OTHERS`."""
        self._previous_s: float | None = None
        """Wall clock (epoch s) of the previous sample: processes started after it are counted from their start."""

    def start(self) -> None:
        self.sample_once()  # the baseline of every process already running
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
        """Take one sample of every component (the first sample only sets the baseline: CPU is NaN)."""
        t_ms = int(self._clock() * 1000)
        now_s, previous_s = time.time(), self._previous_s
        elapsed = None
        if self._host_busy is not None:
            elapsed = time.monotonic() - self._host_busy[0]
        seen: set[tuple[int, float]] = set()
        used: dict[str, float] = {}
        rows: list[tuple[int, str, float, int, int]] = []
        for component, list_processes in self.components.items():
            try:
                processes = list_processes()
            except Exception as exc:  # a component that cannot be listed must not stop the others
                self.errors[component] = repr(exc)
                continue
            seconds, rss, counted = 0.0, 0, 0
            for process in processes:
                try:
                    key = (process.pid, process.create_time())
                    if key in seen:
                        continue
                    tracked = self._known.get(key)
                    with (tracked.process if tracked else process).oneshot():
                        total = cpu_seconds(tracked.process if tracked else process)
                        rss += (tracked.process if tracked else process).memory_info().rss
                        if tracked is None:
                            born_after = previous_s is not None and key[1] >= previous_s
                            tracked = _Tracked(process, 0.0 if born_after else total, process.ppid(), component)
                            self._known[key] = tracked
                        seconds += max(0.0, total - tracked.counted)
                        tracked.counted = max(tracked.counted, total)
                    seen.add(key)
                    counted += 1
                except psutil.Error:
                    continue  # the process ended between listing and sampling
            credit = self._credit.pop(component, 0.0)
            deducted = min(seconds, credit)
            if credit > deducted:
                self._credit[component] = credit - deducted
            used[component] = seconds - deducted
            rows.append((t_ms, component, float("nan"), rss, counted))
        self._forget_ended(seen)
        host = self._host_cpu_percent()
        if elapsed is not None and elapsed > 0:
            rows = [(t, c, used.get(c, 0.0) / elapsed * 100.0 if n else float("nan"), r, n)
                    for t, c, _, r, n in rows]
        if host is not None:
            ours = sum(row[2] for row in rows if row[2] == row[2])  # NaN (baseline) rows left out
            rows.append((t_ms, OTHERS, max(0.0, host - ours), 0, 0))
        self._previous_s = now_s
        with self._lock:
            self._rows.extend(rows)

    def _forget_ended(self, seen: set[tuple[int, float]]) -> None:
        """Drop processes no longer listed; what was counted of one whose parent is still sampled comes back in
        that parent's children counter, and is deducted then."""
        alive = {tracked.process.pid: tracked.component for key, tracked in self._known.items() if key in seen}
        for key in [key for key in self._known if key not in seen]:
            ended = self._known.pop(key)
            parent_component = alive.get(ended.ppid)
            if parent_component is not None:
                self._credit[parent_component] = self._credit.get(parent_component, 0.0) + ended.counted

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
        """Every sample: columns :data:`RESOURCE_COLUMNS`. ``cpu_percent`` is NaN at the first (baseline) sample
        and where a component had no process."""
        with self._lock:
            rows = list(self._rows)
        return pd.DataFrame(rows, columns=list(RESOURCE_COLUMNS))
