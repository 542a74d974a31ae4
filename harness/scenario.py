"""Scenario files: what load to drive, which windowed count to run, on which Kafka, with which engines.

The model is strict: an unknown key is an error (pydantic ignores them by default; a benchmark that silently
ignores ``duraton: 10m`` runs the wrong experiment). :func:`load_scenario` turns every problem into one line
``FILE: field.path: what is wrong (got X)`` and raises them all together in a :class:`ScenarioError`.

Time fields are integer milliseconds internally and human strings (``10s``) in files and in ``bench validate``.
``duration`` is the whole load period; its first ``warmup`` is excluded from measurement.
"""

from __future__ import annotations

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
    ValidationError,
    model_validator,
)

from harness.errors import ScenarioError
from harness.units import format_count, format_duration_ms, parse_count, parse_duration_ms, parse_size

Millis = Annotated[int, BeforeValidator(parse_duration_ms), PlainSerializer(format_duration_ms, when_used="json")]
"""A duration: ``"10s"`` in files, integer milliseconds in code."""

Rate = Annotated[float, BeforeValidator(parse_count), PlainSerializer(format_count, when_used="json")]
"""Events per second: ``"20k"`` in files, a float in code."""

Bytes = Annotated[int, BeforeValidator(parse_size)]


class StrictModel(BaseModel):
    """Unknown keys are errors and models are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
            raise ValueError(f"workers must be >= 1 or auto (got {self.workers})")
        return self


class LoadConfig(StrictModel):
    rate: Rate = Field(gt=0, description="events/s; the base rate of the shape")
    shape: Annotated[Shape, BeforeValidator(_shape_shorthand)] = ConstantShape()
    users: int = Field(default=1000, ge=1)
    distribution: Literal["uniform", "zipf"] = "uniform"
    zipf_exponent: float = Field(default=1.1, gt=0)
    disorder: Disorder = Disorder()
    late: Late = Late()
    payload_size: Bytes = Field(default=0, ge=0, le=1_048_576, description="pad each record to at least this size")
    producer: Producer = Producer()

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

    @model_validator(mode="after")
    def _slide_divides_size(self) -> WindowConfig:
        if self.slide is not None and (self.slide > self.size or self.size % self.slide):
            raise ValueError(
                f"slide ({format_duration_ms(self.slide)}) must divide size ({format_duration_ms(self.size)})"
            )
        return self


class KafkaConfig(StrictModel):
    """``embedded`` (default): the harness starts its own broker. ``external``: ``bootstrap`` names an existing
    cluster, which the harness never starts or stops."""

    mode: Literal["embedded", "external"] = "embedded"
    bootstrap: str | None = None
    partitions: int = Field(default=4, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1)

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
        return self


_LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class EngineEntry(StrictModel):
    """One engine to run: a registered name (``bench engines``) or a ``module:Class`` path, with its settings.
    ``label`` names it in results (default: the engine name) so one engine can run twice with other settings."""

    engine: str
    label: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"engine": data} if isinstance(data, str) else data

    @property
    def name(self) -> str:
        return self.label or self.engine.rsplit(":", 1)[-1]

    @model_validator(mode="after")
    def _label(self) -> EngineEntry:
        if self.label is not None and not _LABEL_RE.fullmatch(self.label):
            raise ValueError(f"label must be letters, digits, '.', '_' or '-' (got {self.label!r})")
        return self


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

    @property
    def measured_ms(self) -> int:
        return self.duration - self.warmup

    @property
    def job_parallelism(self) -> int:
        """What every engine runs with: one task per partition unless ``parallelism`` says otherwise."""
        return self.parallelism if self.parallelism is not None else self.kafka.partitions

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        problems: list[str] = []
        if not _NAME_RE.fullmatch(self.name):
            problems.append(f"name: must be lower-case letters, digits, '_' or '-' (got {self.name!r})")
        if self.warmup >= self.duration:
            problems.append(
                f"warmup: must be shorter than duration ({format_duration_ms(self.duration)}) "
                f"(got {format_duration_ms(self.warmup)})"
            )
        elif self.measured_ms < self.window.size:
            problems.append(
                f"duration: the measured period (duration - warmup = {format_duration_ms(self.measured_ms)}) "
                f"must cover at least one window ({format_duration_ms(self.window.size)})"
            )
        if self.load.disorder.max_delay > self.window.watermark_delay:
            problems.append(
                f"load.disorder.max_delay: must not exceed window.watermark_delay "
                f"({format_duration_ms(self.window.watermark_delay)}), else disordered events are late; "
                f"use load.late for late events (got {format_duration_ms(self.load.disorder.max_delay)})"
            )
        if self.load.disorder.fraction > 0 and self.load.disorder.max_delay == 0:
            problems.append("load.disorder.max_delay: must be > 0 when disorder.fraction > 0 (got 0ms)")
        if self.load.late.fraction > 0 and self.load.late.by <= self.window.size + self.window.watermark_delay:
            problems.append(
                f"load.late.by: must exceed window.size + window.watermark_delay "
                f"({format_duration_ms(self.window.size + self.window.watermark_delay)}) so late events are "
                f"surely late (got {format_duration_ms(self.load.late.by)})"
            )
        if self.load.disorder.fraction + self.load.late.fraction > 1:
            problems.append("load.late.fraction: disorder.fraction + late.fraction must not exceed 1")
        if isinstance(self.load.shape, StepsShape) and self.load.shape.steps[-1].at >= self.duration:
            problems.append(
                f"load.shape.steps: the last step (at {format_duration_ms(self.load.shape.steps[-1].at)}) "
                f"starts after the load ends ({format_duration_ms(self.duration)})"
            )
        names = [entry.name for entry in self.engines]
        for index, name in enumerate(names):
            if names.index(name) != index:
                problems.append(f"engines.{index}: engine {name!r} is listed twice; give one a distinct label")
        if problems:
            raise _CrossFieldErrors(problems)
        return self

    def dump(self) -> dict[str, Any]:
        """The fully resolved scenario (defaults filled in), in the file's human units."""
        return self.model_dump(mode="json")


class _CrossFieldErrors(ValueError):
    """Carries several ``field: message`` lines out of a validator (pydantic keeps only the message)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("; ".join(lines))


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


def _engine_setting_errors(scenario: Scenario) -> list[str]:
    from harness.engines.registry import resolve_engine  # late: the registry imports engine modules

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
    parts = [str(part) for part in loc if part not in _UNION_TAGS and not str(part).startswith("function-")]
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
        "string_type": "must be a string",
        "bool_parsing": "must be true or false",
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
