"""The ``load`` section: the rate and its shape over time, users, disorder and late events, record size, and how
the generator publishes."""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, field_validator, model_validator

from harness.scenario.errors import CrossFieldErrors
from harness.scenario.strict import (
    MAX_PAYLOAD_BYTES,
    MAX_USERS,
    MAX_WORKERS,
    WORKERS_PER_CPU,
    StrictModel,
    max_workers,
)
from harness.units import Bytes, Millis, Rate, format_count, format_duration_ms


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


# ----------------------------------------------------------------------------- disorder, late events, producer
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
            raise CrossFieldErrors([f"workers: must be >= 1 or auto (got {self.workers})"])
        limit = max_workers()
        if isinstance(self.workers, int) and self.workers > limit:
            raise CrossFieldErrors([
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
