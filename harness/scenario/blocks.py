"""The optional ``capacity`` block (the search's settings and its latency objective) and ``faults`` block (what
to inject into every engine run, and when). The ``isolation`` block is :class:`harness.infra.isolation.Isolation`."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, field_validator

from harness.scenario.strict import StrictModel
from harness.units import Millis, Percent, Rate, format_duration_ms, parse_duration_ms


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
