"""One generator worker: the send loop over the slices it owns, and the process entry point around it.

Worker ``w`` of ``k`` owns slices ``w, w+k, w+2k, ...`` (see :mod:`harness.loadgen.events`), so ``k`` workers
share the schedule without talking to each other, and together send every event exactly once.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from harness.loadgen.events import Encoder, EventBatch, EventPlan, generate_chunk
from harness.loadgen.producer import BackendName, make_backend
from harness.loadgen.schedule import Pacer
from harness.loadgen.stats import WorkerStats
from harness.scenario import Scenario

Send = Callable[[Sequence[bytes], Sequence[bytes]], None]

FLUSH_TIMEOUT_S = 60.0
PROGRESS_EVERY_S = 0.5


class EpochClock:
    """Epoch milliseconds read through the monotonic clock: anchored to wall time once, so a clock step (NTP)
    during the run cannot make the pacer jump or stall."""

    def __init__(self) -> None:
        self._epoch0_ms = time.time_ns() / 1e6
        self._mono0_ns = time.perf_counter_ns()

    def __call__(self) -> float:
        return self._epoch0_ms + (time.perf_counter_ns() - self._mono0_ns) / 1e6


WAKE_INTERVAL_MS = 1.0
"""The send loop wakes at most once per millisecond (see :class:`Pacer`): ~1000 batches/s whatever the rate."""


def send_loop(
    plan: EventPlan,
    chunks: Iterable[int],
    encoder: Encoder,
    send: Send,
    pacer: Pacer,
    stats: WorkerStats,
    tick: Callable[[int], None] | None = None,
    stop_at: Callable[[], float] | None = None,
) -> None:
    """Send the events of ``chunks`` at their intended times; called once per worker, returns when all are
    handed to the client. ``tick(sent)`` is called after every batch (progress). ``stop_at()`` (epoch ms, read
    before every batch) ends the load early: no event intended at or after it is sent; the load's owner only
    moves it to a time still ahead, so every event intended before it is sent."""
    pending = iter(chunks)
    current: EventBatch | None = _next_batch(plan, pending)
    stopped = False
    while current is not None and not stopped:
        upcoming: EventBatch | None = None
        intended = current.intended_ms
        i, n = 0, len(current)
        sent_ms = np.empty(n, dtype=np.float64)
        while i < n:
            # Idle before the next event is due: make the next owned slice now, so the arrays are ready when
            # it starts instead of delaying its first events.
            if upcoming is None and pacer.clock() < intended[i]:
                upcoming = _next_batch(plan, pending)
            stop, before = pacer.next_due(intended, i)
            if stop_at is not None:
                end = stop_at()
                if intended[i] >= end:
                    stopped = True
                    break
                stop = i + int(np.searchsorted(intended[i:stop], end, side="left"))
            values, keys = encoder.encode(current.user[i:stop], current.ts[i:stop], current.seq[i:stop])
            send(values, keys)
            after = pacer.clock()
            # Each record's send time is interpolated over the batch: the k-th of m was handed over about k/m of
            # the way through encoding + sending, which a single timestamp per batch would understate.
            m = stop - i
            sent_ms[i:stop] = np.linspace(before + (after - before) / m, after, m)
            i = stop
            if tick is not None:
                tick(stats.sent + i)
        # Statistics once per slice: per batch they would cost more than the sending at high rates, when
        # batches are a handful of records.
        if stopped:
            stats.measured_until_ms = min(stats.measured_until_ms, int(stop_at()))  # type: ignore[misc]
        stats.record(intended[:i], sent_ms[:i], current.ts[:i])
        stats.late += int(np.count_nonzero(current.late[:i]))
        current = upcoming if upcoming is not None else _next_batch(plan, pending)


def _next_batch(plan: EventPlan, pending: Any) -> EventBatch | None:
    """The next non-empty owned slice, or None when there is none left."""
    for chunk in pending:
        batch = generate_chunk(plan, chunk)
        if len(batch):
            return batch
    return None


def _die_with_parent() -> None:
    """A worker must not go on sending load when the harness is killed (``kill -9``, OOM): ask the kernel for
    SIGKILL when the parent dies (Linux); elsewhere the worker ends with its schedule."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def set_priority(nice: int) -> int:
    """Run this process at Unix priority ``nice`` when the OS allows it; return the priority it runs at.

    Called before the producer exists: Linux keeps a nice value per thread and new threads inherit it, so
    librdkafka's I/O threads run at the same priority. On a machine the engines share, the generator must send on
    time whatever the engines do (a late send is publish delay, and enough of it invalidates the run); what it
    takes is what it would take on its own host, so the engines lose nothing they would otherwise have had.
    Raising priority (nice < 0) needs root or CAP_SYS_NICE: without it the worker stays where it is."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if nice == current:
        return current
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except PermissionError:
        return current
    return os.getpriority(os.PRIO_PROCESS, 0)


def worker_main(
    index: int,
    count: int,
    scenario: Scenario,
    bootstrap: str,
    topic: str,
    backend_name: BackendName,
    queue: Any,
    go: Any,
    start_value: Any,
    ready_timeout_s: float,
    stop_value: Any = None,
) -> None:
    """Entry point of a worker process (spawned by :func:`harness.loadgen.generator.run_generator`).

    Messages to the parent on ``queue``: ``("ready", index, nice)`` once connected (with the priority it runs
    at); ``("progress", index, sent)`` about twice a second; ``("done", index, WorkerStats)`` after its records
    are acknowledged; or ``("error", index, text)``. It starts sending when ``go`` is set, at ``start_value`` (epoch ms; < 0 = abort).
    ``stop_value`` (load offset in ms, shared) ends the load early when the parent lowers it below the duration.
    """
    _die_with_parent()
    try:
        nice = set_priority(scenario.load.producer.nice)
        backend = make_backend(backend_name, bootstrap, topic, linger_ms=scenario.load.producer.linger)
        backend.partitions()  # a metadata round-trip: connected and the topic exists before the load starts
        encoder = Encoder(scenario.load.users, scenario.load.payload_size)
        queue.put(("ready", index, nice))
        if not go.wait(ready_timeout_s) or start_value.value < 0:
            backend.close()
            return
        start = int(start_value.value)
        plan = EventPlan.from_scenario(scenario, start)
        stats = WorkerStats(start, start + scenario.warmup, start + scenario.duration)
        last_report = [time.monotonic()]

        def tick(sent: int) -> None:
            now = time.monotonic()
            if now - last_report[0] >= PROGRESS_EVERY_S:
                queue.put(("progress", index, sent))
                last_report[0] = now

        pacer = Pacer(EpochClock(), time.sleep, min_interval_ms=WAKE_INTERVAL_MS)
        stop_at = None if stop_value is None else (lambda: start + stop_value.value)
        send_loop(plan, range(index, plan.chunks, count), encoder, backend.send, pacer, stats, tick, stop_at)
        backend.flush(FLUSH_TIMEOUT_S)
        queue.put(("done", index, stats))
    except BaseException as exc:  # noqa: BLE001 - everything goes to the parent, which raises it
        queue.put(("error", index, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"))
