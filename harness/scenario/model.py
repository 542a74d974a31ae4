"""The scenario as a whole: its top-level fields, the sections and blocks it holds, and the cross-field checks
between them, which report every problem at once (the limits they check live in :mod:`harness.scenario.strict`).

Time fields are integer milliseconds internally and human strings (``10s``) in files and in ``bench validate``.
``duration`` is the whole load period; its first ``warmup`` is excluded from measurement.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, model_validator

from harness.engines.registry import BUILTIN
from harness.infra.isolation import Isolation
from harness.scenario.blocks import CapacityConfig, Fault
from harness.scenario.errors import CrossFieldErrors
from harness.scenario.load import LoadConfig, StepsShape
from harness.scenario.sections import EngineEntry, KafkaConfig, WindowConfig
from harness.scenario.strict import (MAX_ENGINES, MAX_NAME_LENGTH, MAX_PARALLELISM, MIN_MEASURED_WINDOWS,
                                     StrictModel)
from harness.units import Millis, format_count, format_duration_ms
from harness.workload import measured_window_count


_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")


class Scenario(StrictModel):
    name: str
    description: str = ""
    duration: Millis = Field(gt=0, description="the whole load period, warm-up included")
    warmup: Millis = Field(default=0, ge=0, description="first part of the load, excluded from measurement")
    repetitions: int = Field(default=1, ge=1, le=100)
    seed: int = Field(default=1, ge=0, lt=2**32)
    drain_timeout: Millis = Field(default=120_000, gt=0, description="how long to wait for the last windows")
    load: LoadConfig
    window: WindowConfig = WindowConfig()
    kafka: KafkaConfig = KafkaConfig()
    parallelism: int | None = Field(
        default=None, ge=1, le=MAX_PARALLELISM, description="tasks per operator in every engine (default: kafka.partitions)"
    )
    engine_start_timeout: Millis = Field(default=180_000, gt=0, description="deadline for an engine to be ready")
    engines: list[EngineEntry] = Field(min_length=1, max_length=MAX_ENGINES)
    capacity: CapacityConfig | None = None
    faults: list[Fault] = Field(default_factory=list)
    isolation: Isolation | None = Field(
        default=None, description="disjoint CPU sets for the load path and the engine (harness.infra.isolation)"
    )

    @property
    def measured_ms(self) -> int:
        return self.duration - self.warmup

    @property
    def measured_windows(self) -> int:
        """How many windows a run of this scenario measures (:func:`harness.workload.measured_window_count`)."""
        return measured_window_count(self.window.geometry, warmup_ms=self.warmup, duration_ms=self.duration)

    @property
    def job_parallelism(self) -> int:
        """What every engine runs with: one task per partition unless ``parallelism`` says otherwise."""
        return self.parallelism if self.parallelism is not None else self.kafka.partitions

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        problems = [
            *_timing_problems(self),
            *_load_problems(self),
            *_engine_problems(self),
            *_capacity_problems(self),
            *_fault_problems(self),
            *(self.isolation.problems() if self.isolation is not None else []),
        ]
        if problems:
            raise CrossFieldErrors(problems)
        return self

    def dump(self) -> dict[str, Any]:
        """The fully resolved scenario (defaults filled in), in the file's human units."""
        return self.model_dump(mode="json")


# ---------------------------------------------------------------------------------------------- cross-checks
# Each returns ``field.path: problem (got X)`` lines for one concern; Scenario._cross_checks reports them all.
def _timing_problems(s: Scenario) -> list[str]:
    problems: list[str] = []
    if not _NAME_RE.fullmatch(s.name):
        problems.append(f"name: must be lower-case letters, digits, '_' or '-' (got {s.name!r})")
    elif len(s.name) > MAX_NAME_LENGTH:
        problems.append(
            f"name: must be at most {MAX_NAME_LENGTH} characters: it goes into the run directory's name and every "
            f"Kafka topic name (at most 249 characters) (got {len(s.name)} characters)"
        )
    if s.warmup >= s.duration:
        problems.append(
            f"warmup: must be shorter than duration ({format_duration_ms(s.duration)}) "
            f"(got {format_duration_ms(s.warmup)})"
        )
    else:
        problems.extend(_too_few_windows("", s.window, warmup_ms=s.warmup, duration_ms=s.duration))
    if isinstance(s.load.shape, StepsShape) and s.load.shape.steps[-1].at >= s.duration:
        problems.append(
            f"load.shape.steps: the last step (at {format_duration_ms(s.load.shape.steps[-1].at)}) "
            f"starts after the load ends ({format_duration_ms(s.duration)})"
        )
    return problems


def _too_few_windows(prefix: str, window: WindowConfig, *, warmup_ms: int, duration_ms: int) -> list[str]:
    """The ``{prefix}duration`` line when a load of ``duration_ms`` after ``warmup_ms`` measures fewer than
    :data:`MIN_MEASURED_WINDOWS` windows, with the shortest duration that would measure enough."""
    measured = measured_window_count(window.geometry, warmup_ms=warmup_ms, duration_ms=duration_ms)
    if measured >= MIN_MEASURED_WINDOWS:
        return []
    slide = window.slide_ms
    # the smallest duration with MIN_MEASURED_WINDOWS ends k*S in (warmup, duration - D): see measured_window_count
    needed = (warmup_ms // slide + MIN_MEASURED_WINDOWS) * slide + window.watermark_delay
    step = "window.slide" if window.hopping else "window.size"
    return [
        f"{prefix}duration: measures {measured} window(s), at least {MIN_MEASURED_WINDOWS} are needed (a window "
        f"counts when it ends after {prefix}warmup and at least window.watermark_delay before the load ends); make "
        f"{prefix}duration longer than {format_duration_ms(needed)}, or shorten {prefix}warmup or {step} "
        f"(got {format_duration_ms(duration_ms)})"
    ]


def _load_problems(s: Scenario) -> list[str]:
    problems: list[str] = []
    load, window = s.load, s.window
    if load.disorder.max_delay >= window.watermark_delay and (
            load.disorder.fraction > 0 or load.disorder.max_delay > window.watermark_delay):
        problems.append(
            f"load.disorder.max_delay: must be less than window.watermark_delay "
            f"({format_duration_ms(window.watermark_delay)}), else disordered events are late (an event exactly "
            f"D behind is late for Flink, which fires a window at its end − 1 ms); use load.late for late events "
            f"(got {format_duration_ms(load.disorder.max_delay)})"
        )
    if s.parallelism is None and s.kafka.partitions > MAX_PARALLELISM:
        problems.append(
            f"kafka.partitions: {s.kafka.partitions} partitions would run every engine at parallelism "
            f"{s.kafka.partitions} (one task per partition; at most {MAX_PARALLELISM}); set parallelism "
            f"(at most {MAX_PARALLELISM}) explicitly (got {s.kafka.partitions})"
        )
    if load.disorder.fraction > 0 and load.disorder.max_delay == 0:
        problems.append("load.disorder.max_delay: must be > 0 when disorder.fraction > 0 (got 0ms)")
    if load.late.fraction > 0 and load.late.by <= window.size + window.watermark_delay:
        problems.append(
            f"load.late.by: must exceed window.size + window.watermark_delay "
            f"({format_duration_ms(window.size + window.watermark_delay)}) so late events are "
            f"surely late (got {format_duration_ms(load.late.by)})"
        )
    if load.disorder.fraction + load.late.fraction > 1:
        problems.append("load.late.fraction: disorder.fraction + late.fraction must not exceed 1")
    return problems


def _engine_problems(s: Scenario) -> list[str]:
    """Engine names must differ, also as Kafka and case-insensitive file systems see them: Kafka refuses a topic
    that differs from an existing one only by '.' vs '_', and ``Flink/`` and ``flink/`` are one directory on
    macOS and Windows."""
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(s.engines):
        key = entry.name.lower().replace(".", "_")
        first = seen.setdefault(key, index)
        if first == index:
            continue
        if s.engines[first].name == entry.name:
            problems.append(f"engines.{index}: engine {entry.name!r} is listed twice; give one a distinct label")
        else:
            problems.append(
                f"engines.{index}.label: collides with engines.{first} ({s.engines[first].name!r}): Kafka topic "
                f"names do not tell '.' from '_', and some file systems do not tell upper from lower case; choose "
                f"another label (got {entry.name!r})"
            )
    return problems


def _capacity_problems(s: Scenario) -> list[str]:
    capacity = s.capacity
    if capacity is None:
        return []
    problems: list[str] = []
    if capacity.max is not None and capacity.max < capacity.start:
        problems.append(
            f"capacity.max: must be >= capacity.start ({format_count(capacity.start)}) "
            f"(got {format_count(capacity.max)})"
        )
    trial = capacity.trial
    if trial.warmup >= trial.duration:
        problems.append(
            f"capacity.trial.warmup: must be shorter than capacity.trial.duration "
            f"({format_duration_ms(trial.duration)}) (got {format_duration_ms(trial.warmup)})"
        )
    else:
        problems.extend(
            _too_few_windows("capacity.trial.", s.window, warmup_ms=trial.warmup, duration_ms=trial.duration)
        )
    return problems


def _fault_problems(s: Scenario) -> list[str]:
    """Faults fall in the measured period, in time order, each followed by room to recover (downtime, then
    :func:`recovery_room_ms`) before the next fault and before the load ends; ``kill-worker`` needs every engine
    on a cluster with its ``kill_worker`` command, ``kill-engine`` every engine local and ``restart-broker`` the
    embedded broker."""
    problems: list[str] = []
    room = recovery_room_ms(s.window)
    earliest = s.warmup
    for index, fault in enumerate(s.faults):
        where = f"faults.{index}"
        recovered = fault.at + fault.downtime + room
        if index == 0 and fault.at < s.warmup:
            problems.append(
                f"{where}.at: must fall in the measured period, at or after warmup ({format_duration_ms(s.warmup)}) "
                f"(got {format_duration_ms(fault.at)})"
            )
        elif fault.at < earliest:
            problems.append(
                f"{where}.at: must come after faults.{index - 1} has recovered: at >= its at + downtime + "
                f"2 x (window.size + window.watermark_delay) = {format_duration_ms(earliest)}; faults go in time "
                f"order (got {format_duration_ms(fault.at)})"
            )
        if recovered > s.duration:
            problems.append(
                f"{where}.at: leaves no room to recover before the load ends: at + downtime + 2 x (window.size + "
                f"window.watermark_delay) = {format_duration_ms(recovered)} must be <= duration "
                f"({format_duration_ms(s.duration)}); move it earlier, shorten downtime or lengthen duration "
                f"(got {format_duration_ms(fault.at)})"
            )
        earliest = max(earliest, recovered)
        problems.extend(_fault_kind_problems(s, where, fault))
    return problems


def recovery_room_ms(window: WindowConfig) -> int:
    """Time a fault leaves the engine after its downtime, before the next fault or the end of the load:
    two windows and their watermark delay, so at least one window after the fault is opened, filled and
    closed by the load itself and recovery can be seen in the figures."""
    return 2 * (window.size + window.watermark_delay)


def _fault_kind_problems(s: Scenario, where: str, fault: Fault) -> list[str]:
    if fault.kind == "kill-worker":
        return _kill_worker_problems(s, where)
    if fault.kind == "kill-engine":
        remote = [index for index, entry in enumerate(s.engines) if entry.on_cluster]
        if remote:
            return [
                f"{where}.kind: kill-engine kills and restarts the engine's local job processes; "
                f"engines.{remote[0]} ({s.engines[remote[0]].name}) runs on a cluster, where that is not "
                f"implemented; run the engines locally for this fault (got 'kill-engine')"
            ]
    if fault.kind == "restart-broker" and s.kafka.mode != "embedded":
        return [
            f"{where}.kind: restart-broker needs the embedded broker (kafka.mode: embedded): the harness never "
            f"stops an external cluster; use kill-engine (got 'restart-broker')"
        ]
    return []


def _kill_worker_problems(s: Scenario, where: str) -> list[str]:
    """``kill-worker`` needs every engine on a cluster and its ``kill_worker.command``. A built-in engine whose
    settings run it locally is refused (there is no worker to kill); a ``module:Class`` engine's deployment is its
    own business, so its ``kill_worker`` block is taken as saying it has workers."""
    local = [index for index, entry in enumerate(s.engines) if entry.engine in BUILTIN and not entry.on_cluster]
    if local:
        return [
            f"{where}.kind: kill-worker needs every engine on a cluster (settings.master: spark://host:port or "
            f"settings.jobmanager: host:port), but engines.{local[0]} ({s.engines[local[0]].name}) runs "
            f"locally; use kill-engine (got 'kill-worker')"
        ]
    return [
        f"engines.{index}.kill_worker: is required by {where} (kill-worker): the shell command that kills one "
        f"worker of {entry.name}'s cluster, e.g. {{command: 'docker compose kill -s KILL flink-taskmanager', "
        f"restart: 'docker compose start flink-taskmanager'}} (restart optional); the harness cannot reach into a "
        f"cluster it did not start"
        for index, entry in enumerate(s.engines)
        if entry.kill_worker is None
    ]
