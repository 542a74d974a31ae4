"""Running the load: worker processes, the start time, progress, the end-of-run records and the self-check.

:func:`run_generator` is what ``bench generate`` and the runner call. Phases:

1. spawn the workers (``spawn``, not ``fork``: a forked librdkafka or a forked thread is unsafe); each connects
   and proves the topic exists, then reports ready — so start-up cost never eats into the schedule;
2. fix the start time (default: the next multiple of the window slide, at least :data:`START_LEAD_MS` ahead, so
   every run's windows hold the same events) and release the workers;
3. relay progress until every worker has sent and flushed its slices;
4. send one end-of-run record per partition (``workload.FLUSH_USER``, explicit partition, ``ts`` =
   ``Windows.flush_ts(last event ts)``) — after the workers flushed, so it is last on every partition;
5. merge the workers' statistics into a :class:`GeneratorResult` and judge it (:func:`stats.assess`).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import queue as queue_module
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from harness import workload
from harness.errors import ServiceError
from harness.loadgen.events import flush_value
from harness.loadgen.producer import CAPACITY_PER_WORKER, BackendName, make_backend, resolve_backend
from harness.loadgen.schedule import RateSchedule
from harness.loadgen.stats import (
    SelfCheckLimits,
    WorkerStats,
    assess,
    delay_percentiles_ms,
    encode_histogram,
)
from harness.loadgen.worker import FLUSH_TIMEOUT_S, worker_main
from harness.scenario import Scenario, truncated

START_LEAD_MS = 500
"""Least time between fixing the start and the first event: the workers' release must not eat into it."""

READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Progress:
    """Handed to the ``progress`` callback about twice a second during the load (in the calling process)."""

    elapsed_ms: float
    """Since the start of the load (negative while waiting for the aligned start)."""
    sent: int
    """Records handed to the producers so far."""
    due: int
    """Records the schedule intends by now: ``sent`` below it means the generator is behind."""
    planned: int
    """Records of the whole run."""
    planned_ms: int = 0
    """The whole run's load duration, ms."""
    start_epoch_ms: int = 0
    """Intended time of event 0 (epoch ms)."""


ProgressCallback = Callable[[Progress], None]

StopCallback = Callable[[Progress], "int | None"]
"""Asked with every progress report whether to end the load early: a load offset in ms (a whole second, later
than the progress report's ``elapsed_ms``) ends it there, None goes on. Set by ``bench capacity``'s stepped trials
to stop a run once a step failed."""


@dataclass(frozen=True)
class SecondStats:
    """One second of the load, counted from the start."""

    second: int
    target: int
    """Events intended in this second (events/s)."""
    achieved: int
    """Records actually sent in this second (events/s)."""
    delay_max_ms: float
    """Largest publish delay among the events intended in this second (ms)."""
    slow: int = 0
    """Events intended in this second sent more than :data:`harness.loadgen.stats.SLOW_SEND_MS` late."""


@dataclass(frozen=True)
class GeneratorResult:
    """What the generator did and whether it drove the load it was asked for; stored with every run."""

    start_epoch_ms: int
    """Intended time of event 0: the oracle needs it to regenerate the events."""
    duration_ms: int
    warmup_ms: int
    backend: BackendName
    workers: int
    partitions: int
    linger_ms: int
    nice: int
    """Unix priority the workers ran at (``load.producer.nice`` when the OS allowed it; the highest of them)."""
    events_planned: int
    events_sent: int
    late_events: int
    """Events made deliberately late (``load.late``)."""
    flush_ts: int
    """Event time of the end-of-run records (one per partition, not counted as load)."""
    target_rate: float
    """Events/s intended in the measured period."""
    achieved_rate: float
    """Records/s actually sent in the measured period."""
    publish_delay_ms: dict[str, float]
    """p50, p90, p99, p99_9, max of actual − intended send time in the measured period (ms)."""
    publish_delay_histogram: str = field(repr=False)
    """The same as an HdrHistogram in standard base64 encoding, values in microseconds."""
    seconds: list[SecondStats] = field(repr=False)
    valid: bool
    reason: str | None
    """Why the run is invalid (None when valid)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_generator(
    scenario: Scenario,
    bootstrap: str,
    topic: str,
    *,
    start_epoch_ms: int | None = None,
    progress: ProgressCallback | None = None,
    backend: str | None = None,
    workers: int | None = None,
    limits: SelfCheckLimits | None = None,
    stop: StopCallback | None = None,
) -> GeneratorResult:
    """Drive the scenario's load into ``topic`` (which must exist) and return what was achieved.

    Called once per engine run, after the engine is ready. ``start_epoch_ms`` fixes the intended time of event
    0 (default: aligned, see the module docstring); ``backend``/``workers`` override the scenario; ``limits``
    (default :class:`SelfCheckLimits`) decide validity. ``stop`` may end the load early (:data:`StopCallback`):
    the workers send no event intended at or after that offset, and the result is exactly that of the scenario
    cut to that duration (:func:`harness.scenario.truncated`; events are made slice by slice, so the cut load is
    a prefix of the whole): its ``duration_ms`` says where the load ended. Raises
    :class:`ServiceError` when a worker cannot connect or a record cannot be delivered.
    """
    load = scenario.load
    backend_name = resolve_backend(backend or load.producer.backend)
    schedule = RateSchedule.from_load(load, scenario.duration)
    count = workers or plan_workers(load.producer.workers, schedule.peak_rate, backend_name)
    pool = _WorkerPool.create(count, scenario, bootstrap, topic, backend_name)
    flusher = None
    finished = False
    try:
        pool.start()
        ready = _await(pool.messages, pool.processes, "ready", time.monotonic() + READY_TIMEOUT_S, "connect to Kafka")
        nice = max(ready.values())
        flusher = make_backend(backend_name, bootstrap, topic, linger_ms=0)
        partitions = flusher.partitions()
        start = start_epoch_ms if start_epoch_ms is not None else aligned_start(scenario, time.time_ns() // 1_000_000)
        pool.release(start)
        stats = _collect(pool.messages, pool.processes, schedule, start, _with_stop(progress, stop, pool.stop_value))
        if pool.stop_value.value < scenario.duration:
            scenario = truncated(scenario, int(pool.stop_value.value))
            schedule = RateSchedule.from_load(scenario.load, scenario.duration)
        flush_ts = _send_flush_records(flusher, partitions, stats, scenario, schedule)
        finished = True
    finally:
        pool.end(finished)
        if flusher is not None:
            flusher.close()
    return _result(
        scenario, backend_name, count, partitions, nice, start, stats, flush_ts, schedule,
        limits or default_limits(scenario)
    )


def _with_stop(progress: ProgressCallback | None, stop: StopCallback | None, stop_value: Any) -> ProgressCallback:
    """The progress relay, asking ``stop`` (when given) after each report and passing its answer to the workers."""

    def relay(p: Progress) -> None:
        if progress is not None:
            progress(p)
        if stop is None or stop_value.value < p.planned_ms:
            return
        at = stop(p)
        if at is not None:
            if at % 1000 or at <= p.elapsed_ms:
                raise ValueError(f"stop offset {at} ms must be a whole second after now ({p.elapsed_ms:.0f} ms)")
            stop_value.value = min(int(at), p.planned_ms)

    return relay


def plan_workers(setting: int | str, peak_rate: float, backend: BackendName) -> int:
    """``producer.workers``: a number is taken as is; ``auto`` is the fewest workers whose estimated capacity
    covers the peak rate, at most one per CPU (the engines share the machine)."""
    if isinstance(setting, int):
        return setting
    needed = math.ceil(peak_rate / CAPACITY_PER_WORKER[backend])
    return max(1, min(needed, os.cpu_count() or 1))


def default_limits(scenario: Scenario) -> SelfCheckLimits:
    """The self-check of the contract, with the whole-load limit of this scenario (D − max disorder)."""
    budget = scenario.window.watermark_delay - scenario.load.disorder.max_delay
    return SelfCheckLimits(max_any_delay_ms=float(budget) if budget > 0 else None)


def aligned_start(scenario: Scenario, now_ms: int) -> int:
    """The next multiple of the window slide at least :data:`START_LEAD_MS` after ``now_ms``: every run of a
    scenario then puts the same events in the same windows (at most one slide of waiting)."""
    align = scenario.window.slide_ms
    return -(-(now_ms + START_LEAD_MS) // align) * align


# ------------------------------------------------------------------------------------------------- internals
@dataclass
class _WorkerPool:
    """The worker processes (not started yet by :meth:`create`) and what they share with the generator: the
    message queue, the ``go`` event releasing them, the start time (< 0 until fixed: released with it, they stop)
    and the load offset to stop at."""

    processes: list[Any]
    messages: Any
    go: Any
    start_value: Any
    stop_value: Any

    @classmethod
    def create(cls, count: int, scenario: Scenario, bootstrap: str, topic: str, backend: BackendName) -> _WorkerPool:
        context = multiprocessing.get_context("spawn")
        messages = context.Queue()
        go = context.Event()
        start_value = context.Value("q", -1)
        stop_value = context.Value("q", scenario.duration)
        processes = [
            context.Process(
                target=worker_main,
                args=(i, count, scenario, bootstrap, topic, backend, messages, go, start_value, READY_TIMEOUT_S,
                      stop_value),
                name=f"loadgen-{i}",
                daemon=True,
            )
            for i in range(count)
        ]
        return cls(processes, messages, go, start_value, stop_value)

    def start(self) -> None:
        for process in self.processes:
            process.start()

    def release(self, start_epoch_ms: int) -> None:
        """Fix the start time and let the workers go."""
        self.start_value.value = start_epoch_ms
        self.go.set()

    def end(self, finished: bool) -> None:
        """Release the workers still waiting and wait for every started one to end: up to 10 s each after a
        ``finished`` load, else (a failure, or Ctrl-C: nobody reads the results) 0.5 s before it is terminated
        rather than left to send out the rest of the schedule."""
        self.go.set()  # releases workers still waiting; start_value < 0 tells them to stop
        for process in self.processes:
            if process.pid is None:  # never started
                continue
            process.join(timeout=10 if finished else 0.5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)


def _await(messages: Any, processes: list[Any], kind: str, deadline: float, doing: str) -> dict[int, Any]:
    """Wait for one ``kind`` message from every worker and return their payloads by worker; raise on a worker
    error, death or the deadline."""
    payloads: dict[int, Any] = {}
    while len(payloads) < len(processes):
        what, index, payload = _receive(messages, processes, deadline, doing)
        if what == kind:
            payloads[index] = payload
    return payloads


def _receive(messages: Any, processes: list[Any], deadline: float, doing: str) -> tuple[str, int, Any]:
    while True:
        try:
            what, index, payload = messages.get(timeout=0.2)
        except queue_module.Empty:
            if time.monotonic() > deadline:
                raise ServiceError(f"load generator workers did not {doing} within the deadline") from None
            dead = [p.name for p in processes if not p.is_alive() and p.exitcode not in (0, None)]
            if dead:
                raise ServiceError(f"load generator worker(s) {', '.join(dead)} died (exit code != 0)") from None
            continue
        if what == "error":
            raise ServiceError(f"load generator worker {index} failed: {payload}")
        return what, index, payload


def _collect(
    messages: Any,
    processes: list[Any],
    schedule: RateSchedule,
    start: int,
    progress: ProgressCallback | None,
) -> WorkerStats:
    """Relay progress until every worker is done; merge their statistics."""
    sent = [0] * len(processes)
    merged: WorkerStats | None = None
    done = 0
    deadline = time.monotonic() + (start - time.time() * 1000 + schedule.duration_ms) / 1000 + FLUSH_TIMEOUT_S + 60
    while done < len(processes):
        try:
            what, index, payload = messages.get(timeout=0.5)
        except queue_module.Empty:
            what, index, payload = "tick", -1, None
        if what == "error":
            raise ServiceError(f"load generator worker {index} failed: {payload}")
        if what == "progress":
            sent[index] = payload
        elif what == "done":
            sent[index] = payload.sent
            if merged is None:
                merged = payload
            else:
                merged.merge(payload)
            done += 1
        if time.monotonic() > deadline:
            raise ServiceError("load generator workers did not finish within the load duration + flush timeout")
        if what == "tick" and any(not p.is_alive() and p.exitcode not in (0, None) for p in processes):
            raise ServiceError("a load generator worker died during the load (see its exit code in the log)")
        if progress is not None:
            elapsed = time.time() * 1000 - start
            due = int(math.ceil(float(schedule.cumulative(max(elapsed, 0.0)))) if elapsed > 0 else 0)
            progress(Progress(elapsed, sum(sent), min(due, schedule.total_events), schedule.total_events,
                              schedule.duration_ms, start))
    assert merged is not None
    return merged


def _send_flush_records(
    flusher: Any, partitions: int, stats: WorkerStats, scenario: Scenario, schedule: RateSchedule
) -> int:
    """One ``FLUSH_USER`` record per partition, ``seq`` continuing after the load's; returns their ``ts``."""
    if stats.max_ts is None:
        raise ServiceError("the load generator sent no events: nothing to flush")
    window = scenario.window
    windows = workload.Windows(window.size, window.slide_ms, window.watermark_delay)
    flush_ts = windows.flush_ts(stats.max_ts)
    key = workload.FLUSH_USER.encode()
    for partition in range(partitions):
        flusher.send_to(partition, flush_value(partition, flush_ts, schedule.total_events + partition), key)
    flusher.flush(FLUSH_TIMEOUT_S)
    return flush_ts


def _result(
    scenario: Scenario,
    backend: BackendName,
    workers: int,
    partitions: int,
    nice: int,
    start: int,
    stats: WorkerStats,
    flush_ts: int,
    schedule: RateSchedule,
    limits: SelfCheckLimits,
) -> GeneratorResult:
    first_measured = int(math.ceil(float(schedule.cumulative(scenario.warmup)) - 1e-9))
    target_measured = schedule.total_events - first_measured
    measured_s = scenario.measured_ms / 1000.0
    percentiles = delay_percentiles_ms(stats.histogram)
    valid, reason = assess(
        target_measured,
        stats.sent_measured,
        scenario.measured_ms,
        percentiles,
        stats.delay_max_per_second,
        scenario.warmup // 1000,
        limits,
    )
    if stats.sent != schedule.total_events:
        valid, reason = False, f"generator sent {stats.sent} records but planned {schedule.total_events}"
    return GeneratorResult(
        start_epoch_ms=start,
        duration_ms=scenario.duration,
        warmup_ms=scenario.warmup,
        backend=backend,
        workers=workers,
        partitions=partitions,
        linger_ms=scenario.load.producer.linger,
        nice=nice,
        events_planned=schedule.total_events,
        events_sent=stats.sent,
        late_events=stats.late,
        flush_ts=flush_ts,
        target_rate=target_measured / measured_s,
        achieved_rate=stats.sent_measured / measured_s,
        publish_delay_ms=percentiles,
        publish_delay_histogram=encode_histogram(stats.histogram),
        seconds=_per_second(schedule, stats),
        valid=valid,
        reason=reason,
    )


def _per_second(schedule: RateSchedule, stats: WorkerStats) -> list[SecondStats]:
    """One row per second of the load (as long as the schedule or the sending, whichever is longer)."""
    target = schedule.per_second()
    seconds = max(target.size, stats.sent_per_second.size)
    rows = []
    for s in range(seconds):
        rows.append(
            SecondStats(
                second=s,
                target=int(target[s]) if s < target.size else 0,
                achieved=int(stats.sent_per_second[s]) if s < stats.sent_per_second.size else 0,
                delay_max_ms=float(stats.delay_max_per_second[s]) if s < stats.delay_max_per_second.size else 0.0,
                slow=int(stats.slow_per_second[s]) if s < stats.slow_per_second.size else 0,
            )
        )
    return rows
