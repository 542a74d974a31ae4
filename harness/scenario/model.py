"""Scenario files: what load to drive, which windowed count to run, on which Kafka, with which engines.

The model is strict: an unknown key is an error (pydantic ignores them by default; a benchmark that silently
ignores ``duraton: 10m`` runs the wrong experiment). :func:`load_scenario` turns every problem into one line
``FILE: field.path: what is wrong (got X)`` and raises them all together in a :class:`ScenarioError`.

Time fields are integer milliseconds internally and human strings (``10s``) in files and in ``bench validate``.
``duration`` is the whole load period; its first ``warmup`` is excluded from measurement.

Values that could only hurt are refused before anything starts, each limit with its reason beside it:
rates (:data:`harness.units.MAX_RATE`), users (:data:`MAX_USERS`), record size (:data:`MAX_PAYLOAD_BYTES`),
generator workers (:func:`max_workers`), name and label lengths (:data:`MAX_NAME_LENGTH`), and a run that
measures fewer than :data:`MIN_MEASURED_WINDOWS` windows.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from harness.engines.registry import BUILTIN, resolve_engine
from harness.errors import ScenarioError
from harness.infra.isolation import Isolation
from harness.units import (  # Millis, Rate, Bytes: re-exported, engine settings models import them from here
    Bytes,
    Millis,
    Percent,
    Rate,
    format_count,
    format_duration_ms,
    parse_duration_ms,
)
from harness.workload import Windows, measured_window_count


MIN_MEASURED_WINDOWS = 3
"""Fewest windows a run (and a capacity trial) must measure: below that, percentiles and the latency trend of
the sustained check rest on one or two windows."""

MAX_USERS = 1_000_000
"""Most users a load may have: every generator worker and the oracle build every user name in memory, about
240 MB and 2 s per million users per process (measured; 10M took 2.2 GB and 23 s per process)."""

MAX_PAYLOAD_BYTES = 999_000
"""Largest ``load.payload_size``: a record, key and framing included, must stay within librdkafka's
``message.max.bytes`` (1,000,000; the broker's default limit is 1,048,588)."""

MAX_NAME_LENGTH = 64
"""Longest scenario name and engine label: both go into every Kafka topic name
(``bench-<UTC stamp>-<name>[-N]-<label>-r<N>-in``, at most 249 characters) and into directory names (at most
255 bytes); 64 + 64 leaves room for the stamp, a ``capacity-`` prefix and trial numbers."""

MAX_WORKERS = 64
WORKERS_PER_CPU = 4


def max_workers() -> int:
    """Most generator worker processes allowed on this host: :data:`WORKERS_PER_CPU` per CPU, never more than
    :data:`MAX_WORKERS`; more processes than that only take turns on the CPUs."""
    return min(MAX_WORKERS, WORKERS_PER_CPU * (os.cpu_count() or 1))


class StrictModel(BaseModel):
    """Unknown keys are errors, numbers are finite (``.inf`` and ``.nan`` are refused, not written to ``run.json``
    as ``null``), and models are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _CrossFieldErrors(ValueError):
    """Carries several ``field: message`` lines out of a validator (pydantic keeps only the message)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("; ".join(lines))


# --------------------------------------------------------------------------------------------------- load shapes
class ConstantShape(StrictModel):
    """``load.rate`` events/s for the whole run."""

    type: Literal["constant"] = "constant"


class Step(StrictModel):
    at: Millis = Field(ge=0, description="offset from the start of the load")
    rate: Rate = Field(ge=0)


class StepsShape(StrictModel):
    """``load.rate`` until the first step, then each step's rate from its ``at`` offset on."""

    type: Literal["steps"]
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _increasing(self) -> StepsShape:
        offsets = [step.at for step in self.steps]
        if offsets != sorted(set(offsets)):
            raise ValueError("step offsets (at) must be strictly increasing")
        return self


class RampShape(StrictModel):
    """Linear from ``load.rate`` at the start to ``to`` at ``over`` (default: the whole duration), then flat."""

    type: Literal["ramp"]
    to: Rate = Field(ge=0)
    over: Millis | None = Field(default=None, gt=0)


class BurstShape(StrictModel):
    """``load.rate``, except ``rate`` for ``length`` at the start of every ``every`` period (after the first)."""

    type: Literal["burst"]
    rate: Rate = Field(gt=0)
    every: Millis = Field(gt=0)
    length: Millis = Field(gt=0)

    @model_validator(mode="after")
    def _fits(self) -> BurstShape:
        if self.length >= self.every:
            raise ValueError(
                f"length ({format_duration_ms(self.length)}) must be shorter than every "
                f"({format_duration_ms(self.every)})"
            )
        return self


class SineShape(StrictModel):
    """``load.rate + amplitude * sin(2π t / period)``."""

    type: Literal["sine"]
    amplitude: Rate = Field(ge=0)
    period: Millis = Field(gt=0)


Shape = Annotated[
    Union[ConstantShape, StepsShape, RampShape, BurstShape, SineShape], Field(discriminator="type")
]


def _shape_shorthand(value: Any) -> Any:
    return {"type": value} if isinstance(value, str) else value


# ---------------------------------------------------------------------------------------------------- sections
class Disorder(StrictModel):
    """A ``fraction`` of events carry ``ts`` earlier than their intended send time by up to ``max_delay``
    (uniformly); with ``max_delay`` ≤ the watermark delay they are out of order but on time."""

    fraction: float = Field(default=0.0, ge=0, le=1)
    max_delay: Millis = Field(default=0, ge=0)


class Late(StrictModel):
    """A ``fraction`` of events carry ``ts`` earlier than their intended send time by ``by``: deliberately late,
    engines may drop them. ``by`` must exceed the window size plus the watermark delay."""

    fraction: float = Field(default=0.0, ge=0, le=1)
    by: Millis = Field(default=60_000, gt=0)


class Producer(StrictModel):
    """How the generator publishes: the client library and how many worker processes share the schedule."""

    backend: Literal["auto", "confluent", "kafka-python"] = "auto"
    workers: int | Literal["auto"] = "auto"
    linger: Millis = Field(default=5, ge=0)
    nice: int = Field(
        default=-10,
        ge=-20,
        le=19,
        description="Unix scheduling priority of the worker processes; below 0 needs root or CAP_SYS_NICE and "
        "is skipped (and recorded) without",
    )

    @model_validator(mode="after")
    def _workers(self) -> Producer:
        if isinstance(self.workers, int) and self.workers < 1:
            raise _CrossFieldErrors([f"workers: must be >= 1 or auto (got {self.workers})"])
        limit = max_workers()
        if isinstance(self.workers, int) and self.workers > limit:
            raise _CrossFieldErrors([
                f"workers: must be <= {limit} ({WORKERS_PER_CPU} per CPU of this host, {os.cpu_count() or 1} "
                f"CPUs, never more than {MAX_WORKERS}): more processes only take turns on the CPUs; use auto "
                f"(got {self.workers})"
            ])
        return self


class LoadConfig(StrictModel):
    rate: Rate = Field(gt=0, description="events/s; the base rate of the shape")
    shape: Annotated[Shape, BeforeValidator(_shape_shorthand)] = ConstantShape()
    users: int = Field(default=1000, ge=1, description=f"at most {MAX_USERS:,}")
    distribution: Literal["uniform", "zipf"] = "uniform"
    zipf_exponent: float = Field(default=1.1, gt=0)
    disorder: Disorder = Disorder()
    late: Late = Late()
    payload_size: Bytes = Field(default=0, ge=0, description="pad each record to at least this size")
    producer: Producer = Producer()

    @field_validator("users")
    @classmethod
    def _users_fit_in_memory(cls, users: int) -> int:
        if users > MAX_USERS:
            raise ValueError(
                f"must be <= {MAX_USERS}: every generator worker and the oracle hold all user names in memory "
                f"(about 240 MB per million users per process); use fewer users (got {users})"
            )
        return users

    @field_validator("payload_size")
    @classmethod
    def _record_fits(cls, size: int) -> int:
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(
                f"must be <= {MAX_PAYLOAD_BYTES} bytes: a record, key and framing included, must fit the "
                f"producer's message.max.bytes (1,000,000 in librdkafka) (got {size})"
            )
        return size

    @model_validator(mode="after")
    def _sine_not_negative(self) -> LoadConfig:
        if isinstance(self.shape, SineShape) and self.shape.amplitude > self.rate:
            raise ValueError(
                f"shape.amplitude ({format_count(self.shape.amplitude)}) must not exceed rate "
                f"({format_count(self.rate)}): the rate would go negative"
            )
        return self


class WindowConfig(StrictModel):
    """Event-time windows ``[start, end)`` aligned to the epoch; hopping when ``slide`` < ``size``."""

    size: Millis = Field(default=10_000, gt=0)
    slide: Millis | None = Field(default=None, gt=0)
    watermark_delay: Millis = Field(default=2_000, ge=0)

    @property
    def slide_ms(self) -> int:
        return self.slide if self.slide is not None else self.size

    @property
    def hopping(self) -> bool:
        return self.slide_ms != self.size

    @property
    def geometry(self) -> Windows:
        """The same windows as :class:`harness.workload.Windows`, the form the semantics are written in."""
        return Windows(self.size, self.slide_ms, self.watermark_delay)

    @model_validator(mode="after")
    def _slide_divides_size(self) -> WindowConfig:
        if self.slide is not None and (self.slide > self.size or self.size % self.slide):
            raise ValueError(
                f"slide ({format_duration_ms(self.slide)}) must divide size ({format_duration_ms(self.size)})"
            )
        return self


class KafkaConfig(StrictModel):
    """``embedded`` (default): the harness starts its own broker. ``external``: ``bootstrap`` names an existing
    cluster, which the harness never starts or stops; the per-run topics it creates there are deleted after each
    repetition (once its result is written) unless ``keep_topics``."""

    mode: Literal["embedded", "external"] = "embedded"
    bootstrap: str | None = None
    partitions: int = Field(default=4, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1)
    keep_topics: StrictBool = Field(
        default=False,
        description="external clusters only: keep each repetition's input and result topics instead of deleting them",
    )

    @model_validator(mode="before")
    @classmethod
    def _mode_from_bootstrap(cls, data: Any) -> Any:
        if isinstance(data, dict) and "mode" not in data and data.get("bootstrap"):
            return {**data, "mode": "external"}
        return data

    @model_validator(mode="after")
    def _bootstrap_matches_mode(self) -> KafkaConfig:
        if self.mode == "external" and not self.bootstrap:
            raise ValueError("mode external needs bootstrap: host:port[,host:port...] of the existing cluster")
        if self.mode == "embedded" and self.bootstrap:
            raise ValueError("bootstrap is only for mode external; remove it to use the embedded broker")
        if self.mode == "embedded" and self.replication_factor != 1:
            raise ValueError("the embedded broker is a single node: replication_factor must be 1")
        if self.mode == "embedded" and self.keep_topics:
            raise ValueError("keep_topics is only for mode external: the embedded broker's topics go with its "
                             "temporary data directory at the end of the run; remove keep_topics")
        return self


_LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
"""What an engine's name must look like: it names result directories and goes into Kafka topic names, whose
legal characters are ``[a-zA-Z0-9._-]``. Names are refused, never rewritten: results carry what the file says."""


class KillWorker(StrictModel):
    """How to kill one worker of the cluster an engine runs on, for a ``kill-worker`` fault: the harness cannot know
    how to reach into a cluster it did not start, so the scenario says it. Both commands run in ``sh -c`` on the
    host that runs ``bench``, with its environment, each within ``timeout``; a non-zero exit is the fault's error.

    ``command`` kills one worker (a Spark executor, a Flink TaskManager), e.g.
    ``docker compose kill -s KILL flink-taskmanager`` or ``pkill -KILL -f '[C]oarseGrainedExecutorBackend'``.
    ``restart``, when given, runs ``downtime`` after the kill, for clusters where nothing else replaces the worker
    (a standalone Flink TaskManager; a Spark standalone worker relaunches its executors itself, and Kubernetes,
    YARN or a container restart policy bring workers back on their own)."""

    command: str = Field(description="shell command that kills one worker")
    restart: str | None = Field(default=None, description="shell command that starts it again")
    timeout: Millis = Field(default=60_000, gt=0, description="longest each command may take")

    @field_validator("command", "restart")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must be a shell command, not blank")
        return value


class EngineEntry(StrictModel):
    """One engine to run: a registered name (``bench engines``) or a ``module:Class`` path, with its settings.
    ``label`` names it in results (default: the engine name) so one engine can run twice with other settings.
    ``kill_worker`` says how to kill one worker of its cluster (needed by ``kill-worker`` faults)."""

    engine: str
    label: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    kill_worker: KillWorker | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"engine": data} if isinstance(data, str) else data

    @property
    def name(self) -> str:
        return self.label or self.engine.rsplit(":", 1)[-1]

    @property
    def on_cluster(self) -> bool:
        """True when the settings send the job to a cluster (``jobmanager``, or a ``master`` other than local)."""
        master = self.settings.get("master")
        return bool(self.settings.get("jobmanager")) or (isinstance(master, str) and not master.startswith("local"))

    @model_validator(mode="after")
    def _label(self) -> EngineEntry:
        # Without a label the engine's class name stands in for it, and must pass the same test.
        what, fix = ("", "") if self.label is not None else ("without a label, the engine's name ", "; give a label")
        if not _LABEL_RE.fullmatch(self.name):
            raise _CrossFieldErrors([
                f"label: {what}must start with a letter or digit and hold only letters, digits, '.', '_' or "
                f"'-': it names result directories and Kafka topics{fix} (got {self.name!r})"
            ])
        if len(self.name) > MAX_NAME_LENGTH:
            raise _CrossFieldErrors([
                f"label: {what}must be at most {MAX_NAME_LENGTH} characters: it goes into Kafka topic names "
                f"(at most 249 characters){fix or '; shorten it'} (got {len(self.name)} characters)"
            ])
        return self


# ---------------------------------------------------------------------------------------------------- capacity
_SLO_RE = re.compile(r"\s*p(?P<pct>50|90|99|99\.9)\s*<=\s*(?P<limit>\S+)\s*")


class Slo(StrictModel):
    """A latency objective: the ``percentile`` of result latency must stay at or below ``limit_ms``. Written
    ``p99<=10s`` in files and on the command line (:func:`parse_slo`)."""

    percentile: float = Field(description="50, 90, 99 or 99.9")
    limit_ms: int = Field(gt=0)

    @field_validator("percentile")
    @classmethod
    def _known_percentile(cls, percentile: float) -> float:
        if percentile not in (50.0, 90.0, 99.0, 99.9):
            raise ValueError(f"must be 50, 90, 99 or 99.9 (got {percentile:g})")
        return percentile

    @property
    def label(self) -> str:
        """``p99``, ``p99.9``: how reports and ``bench validate`` name the percentile."""
        return f"p{self.percentile:g}"

    def __str__(self) -> str:
        return f"{self.label}<={format_duration_ms(self.limit_ms)}"


def parse_slo(value: object) -> Slo:
    """``"p99<=10s"`` → ``Slo(percentile=99.0, limit_ms=10000)``; p50, p90, p99 and p99.9 are known."""
    if isinstance(value, Slo):
        return value
    match = _SLO_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"must be a latency objective such as p99<=10s: p50, p90, p99 or p99.9, then <=, then a duration "
            f"(got {value!r})"
        )
    limit = parse_duration_ms(match["limit"])  # its ValueError names the duration forms
    if limit <= 0:
        raise ValueError(f"the limit must be > 0ms (got {value!r})")
    return Slo(percentile=float(match["pct"]), limit_ms=limit)


def _slo_or_none(value: object) -> Slo | None:
    return None if value is None else parse_slo(value)


def _slo_text(slo: Slo | None) -> str | None:
    return None if slo is None else str(slo)


class CapacityTrial(StrictModel):
    """One trial of the capacity search: a constant rate for ``duration``, its first ``warmup`` not measured."""

    duration: Millis = Field(default=60_000, gt=0)
    warmup: Millis = Field(default=20_000, ge=0)


class CapacityConfig(StrictModel):
    """``bench capacity``: per engine, constant-rate trials from ``start``, growing by ``growth`` until a trial
    fails (or ``max`` is reached), then bisecting until the bracket is narrower than ``precision``. A trial passes
    when the engine keeps up, every pair is exact and the optional ``slo`` holds. ``load.rate`` and
    ``load.shape`` are not used by the search; everything else of the load is."""

    start: Rate = Field(default=5_000, gt=0, description="first trial's rate, events/s")
    max: Rate | None = Field(default=None, gt=0, description="highest rate tried (default: no bound but MAX_RATE)")
    precision: Percent = Field(default=0.05, description="stop when (fail - pass) / pass is below this")
    growth: float = Field(default=2.0, gt=1, description="factor between rates until the first failed trial")
    slo: Annotated[Slo | None, BeforeValidator(_slo_or_none), PlainSerializer(_slo_text, when_used="json")] = None
    trial: CapacityTrial = CapacityTrial()
    repetitions: int = Field(default=1, ge=1, le=100, description="searches per engine")
    calibrate: bool = Field(default=True, description="search the built-in calibration engine first")
    trials: Literal["fresh", "stepped"] = Field(
        default="fresh",
        description="fresh: every trial a whole run with its own broker and engine; stepped: one broker and engine "
                    "per run of up to steps_per_run rates, each step a trial (see harness.capacity.stepped)",
    )
    steps_per_run: int = Field(default=4, ge=2, le=20, description="stepped trials: most steps in one run")


# ------------------------------------------------------------------------------------------------------ faults
FaultKind = Literal["kill-engine", "kill-worker", "restart-broker"]


class Fault(StrictModel):
    """A fault injected at ``at`` (offset from the load start) into every engine run: ``kill-engine`` kills the
    engine's job and restarts it from its checkpoint after ``downtime``; ``kill-worker`` kills one worker of a
    cluster (Spark executor, Flink TaskManager); ``restart-broker`` stops the embedded broker for ``downtime``."""

    at: Millis = Field(ge=0, description="offset from the start of the load")
    kind: FaultKind
    downtime: Millis = Field(default=5_000, gt=0)


# ---------------------------------------------------------------------------------------------------- scenario
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
        default=None, ge=1, le=256, description="tasks per operator in every engine (default: kafka.partitions)"
    )
    engine_start_timeout: Millis = Field(default=180_000, gt=0, description="deadline for an engine to be ready")
    engines: list[EngineEntry] = Field(min_length=1)
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
            raise _CrossFieldErrors(problems)
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
    if load.disorder.max_delay > window.watermark_delay:
        problems.append(
            f"load.disorder.max_delay: must not exceed window.watermark_delay "
            f"({format_duration_ms(window.watermark_delay)}), else disordered events are late; "
            f"use load.late for late events (got {format_duration_ms(load.disorder.max_delay)})"
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


# ----------------------------------------------------------------------------------------------------- loading
def load_scenario(path: str | Path, *, check_engines: bool = True) -> Scenario:
    """Read, validate and resolve a scenario file; raise :class:`ScenarioError` listing every problem.

    With ``check_engines`` each engine is resolved in the registry and its ``settings`` validated against the
    engine's own settings model, so a typo in an engine setting is caught before anything starts.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot read the scenario file: {exc.strerror or exc}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise ScenarioError([f"{path}: not valid YAML{at}: {getattr(exc, 'problem', exc)}"]) from None
    return parse_scenario(data, source=str(path), check_engines=check_engines)


def parse_scenario(data: Any, *, source: str = "<scenario>", check_engines: bool = True) -> Scenario:
    """Validate an already-parsed mapping (see :func:`load_scenario`)."""
    if not isinstance(data, dict):
        raise ScenarioError([f"{source}: must be a mapping of fields (name, duration, load, ...), got {_kind(data)}"])
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError([f"{source}: {line}" for line in _error_lines(exc)]) from None
    if check_engines:
        lines = _engine_setting_errors(scenario)
        if lines:
            raise ScenarioError([f"{source}: {line}" for line in lines])
    return scenario


def truncated(scenario: Scenario, duration_ms: int) -> Scenario:
    """The scenario with its load cut to ``duration_ms`` (steps starting at or after it dropped): what a run
    whose load was ended early (:data:`harness.loadgen.generator.StopCallback`) actually ran. Not validated
    again: the cut is a fact of the run, not a choice (it may measure fewer windows than a scenario must)."""
    if not 0 < duration_ms <= scenario.duration:
        raise ValueError(f"cut duration must be in (0, {scenario.duration}] ms (got {duration_ms})")
    shape = scenario.load.shape
    if isinstance(shape, StepsShape):
        kept = [step for step in shape.steps if step.at < duration_ms]
        shape = shape.model_copy(update={"steps": kept}) if kept else ConstantShape(type="constant")
    load = scenario.load.model_copy(update={"shape": shape})
    return scenario.model_copy(update={"duration": int(duration_ms), "load": load})


def apply_overrides(
    scenario: Scenario,
    *,
    rate: float | None = None,
    duration: int | None = None,
    repetitions: int | None = None,
    engines: list[str] | None = None,
    isolation: str | None = None,
    source: str = "<scenario>",
) -> Scenario:
    """The scenario with command-line overrides applied and validated again (cross-field checks included), so
    ``--duration 5s`` is rejected the same way as ``duration: 5s`` in the file. ``isolation`` is
    ``LOAD_PATH_CPUS:ENGINE_CPUS`` (``0:1``) or ``off``.

    Values go in exactly: ``rate`` as the number itself and ``duration`` in its exact text form, so
    ``--rate 1234567`` runs 1,234,567 events/s and ``run.json`` says so (``format_count`` is exact as well).
    """
    if rate is None and duration is None and repetitions is None and engines is None and isolation is None:
        return scenario
    data: dict[str, Any] = copy.deepcopy(scenario.dump())
    if isolation is not None:
        data["isolation"] = _isolation_override(isolation, source)
    if rate is not None:
        data["load"]["rate"] = float(rate)
    if duration is not None:
        data["duration"] = format_duration_ms(duration)
    if repetitions is not None:
        data["repetitions"] = repetitions
    if engines is not None:
        by_name = {entry.name: entry for entry in scenario.engines}
        chosen: list[Any] = []
        for name in engines:
            entry = by_name.get(name)
            chosen.append(entry.model_dump(mode="json") if entry is not None else name)
        data["engines"] = chosen
    return parse_scenario(data, source=f"{source} (with command-line overrides)")


def _isolation_override(text: str, source: str) -> dict[str, str] | None:
    """``--isolation 0:1`` → ``{load_path: "0", engine: "1"}``; ``off`` → None (the CPU lists are checked by the
    model, like the file's)."""
    if text.strip().lower() == "off":
        return None
    load_path, colon, engine = text.partition(":")
    if not colon:
        raise ScenarioError([f"{source}: --isolation: must be LOAD_PATH_CPUS:ENGINE_CPUS (e.g. 0:1 or 0-1:2-3) or "
                             f"off (got {text!r})"])
    return {"load_path": load_path.strip(), "engine": engine.strip()}


def _engine_setting_errors(scenario: Scenario) -> list[str]:
    lines: list[str] = []
    for index, entry in enumerate(scenario.engines):
        try:
            engine_class = resolve_engine(entry.engine)
        except LookupError as exc:
            lines.append(f"engines.{index}.engine: {exc}")
            continue
        try:
            engine_class.Settings.model_validate(entry.settings)
        except ValidationError as exc:
            lines.extend(f"engines.{index}.settings.{line}" for line in _error_lines(exc))
    return lines


_UNION_TAGS = {"constant", "steps", "ramp", "burst", "sine"}


def _error_lines(exc: ValidationError) -> list[str]:
    lines: list[str] = []
    for error in exc.errors():
        ctx_error = error.get("ctx", {}).get("error")
        if isinstance(ctx_error, _CrossFieldErrors):
            prefix = _loc(error["loc"])
            lines.extend(f"{prefix}.{line}" if prefix else line for line in ctx_error.lines)
            continue
        loc = _loc(error["loc"])
        lines.append(f"{loc or '(top level)'}: {_message(error)}")
    return lines


def _loc(loc: tuple[Any, ...]) -> str:
    """``('load', 'shape', 'steps', 'steps', 0, 'rate')`` → ``load.shape.steps.0.rate``: pydantic puts the
    union member's tag after the union field; the field named like a tag stays."""
    parts: list[str] = []
    previous = None
    for part in loc:
        text = str(part)
        if not (previous == "shape" and text in _UNION_TAGS) and not text.startswith("function-"):
            parts.append(text)
        previous = text
    return ".".join(parts)


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {})
    got = error.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; see `bench validate --help` for the format)"
    bounds = {
        "greater_than": f"must be > {_show(ctx.get('gt'))}",
        "greater_than_equal": f"must be >= {_show(ctx.get('ge'))}",
        "less_than": f"must be < {_show(ctx.get('lt'))}",
        "less_than_equal": f"must be <= {_show(ctx.get('le'))}",
        "too_short": f"must have at least {ctx.get('min_length')} item(s)",
        "literal_error": f"must be one of {ctx.get('expected')}",
        "union_tag_invalid": f"type must be one of {ctx.get('expected_tags')}",
        "union_tag_not_found": "needs a type: one of 'constant', 'steps', 'ramp', 'burst', 'sine'",
        "int_parsing": "must be a whole number",
        "int_type": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_parsing": "must be a number",
        "float_type": "must be a number",
        "finite_number": "must be a finite number",
        "string_type": "must be a string",
        "bool_parsing": "must be true or false",
        "bool_type": "must be true or false",
        "dict_type": "must be a mapping",
        "list_type": "must be a list",
        "model_type": "must be a mapping",
        "model_attributes_type": "must be a mapping",
    }
    if kind in bounds:
        return f"{bounds[kind]} (got {_show(got)})"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return message


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return _kind(value)
    return repr(value) if isinstance(value, str) else str(value)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", type(None): "nothing"}.get(type(value), type(value).__name__)
