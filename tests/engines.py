"""Test engines whose truth is known: the calibration engine's job with its knobs exposed, so a test (or the lead,
from a scenario) can make a real run through the real broker and collector with a known extra latency, a known
capacity, known wrong answers, malformed output, or transactional output, and check the verdicts against it::

    engines:
      - {engine: "tests.engines:KnownTruthEngine", label: slow, settings: {delay_ms: 3000}}
      - {engine: "tests.engines:KnownTruthEngine", label: capped, settings: {capacity: 5000}}
      - {engine: "tests.engines:KnownTruthEngine", label: liar, settings: {wrong_every: 10}}
      - {engine: "tests.engines:KnownTruthEngine", label: garbage, settings: {malformed: [not-json, count-null]}}
      - {engine: "tests.engines:KnownTruthEngine", label: txn, settings: {transactional: true, commit_delay_ms: 2000}}
      - {engine: "tests.engines:KnownTruthEngine", label: silent, settings: {capacity: 5000, report_input_rows: false}}

The knobs are documented in :mod:`harness.engines.jobs.python_count_job`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from harness.engines.base import EngineSettings
from harness.engines.jobs.python_count_output import MALFORMED_KINDS
from harness.engines.python_count import CalibrationEngine


class KnownTruthSettings(EngineSettings):
    """The job's knobs; every default leaves the job exactly the calibration engine."""

    delay_ms: int = Field(default=0, ge=0, le=600_000)
    """Hold every result this long after its window became final, then write it (known extra latency)."""
    capacity: int | None = Field(default=None, gt=0)
    """At most this many input records consumed per second (known capacity); none by default."""
    wrong_every: int | None = Field(default=None, ge=1)
    """Every Nth result record carries count + 1 (known wrong answers); none by default."""
    malformed: list[str] = Field(default_factory=list)
    """Kinds of bad result records written with each final window, besides the genuine ones."""
    transactional: bool = False
    """Write each window's results in one Kafka transaction; the collector then reads read_committed."""
    commit_delay_ms: int = Field(default=0, ge=0, le=600_000)
    """With ``transactional``: commit this long after the window's records were written."""
    report_input_rows: bool = True
    """False: report no input-row counts (as a plug-in engine without such a metric), so the keep-up verdict
    must judge it from what the harness observes."""

    @field_validator("malformed")
    @classmethod
    def _kinds(cls, value: list[str]) -> list[str]:
        unknown = [kind for kind in value if kind not in MALFORMED_KINDS]
        if unknown:
            raise ValueError(f"unknown kind(s) {', '.join(map(repr, unknown))}; "
                             f"choose from {', '.join(MALFORMED_KINDS)}")
        if len(set(value)) != len(value):
            raise ValueError("list each kind once")
        return value

    @model_validator(mode="after")
    def _commit_delay_needs_transactions(self) -> KnownTruthSettings:
        if self.commit_delay_ms and not self.transactional:
            raise ValueError("commit_delay_ms is only for transactional output: set transactional: true, "
                             "or use delay_ms to delay plain output")
        return self


class KnownTruthEngine(CalibrationEngine):
    """The calibration engine's job with known faults switched on by its settings."""

    name: ClassVar[str] = "known-truth"
    description: ClassVar[str] = "test engine: the calibration job with a known latency, capacity or faults"
    Settings: ClassVar[type[EngineSettings]] = KnownTruthSettings

    def fairness(self) -> dict[str, str]:
        """As the calibration engine, with the knobs that are on named under ``deployment``."""
        defaults = KnownTruthSettings()
        on = {key: value for key, value in self.settings.model_dump().items() if getattr(defaults, key) != value}
        knobs = ", ".join(f"{key}={value}" for key, value in on.items()) or "no knobs"
        return {**super().fairness(), "deployment": f"local (test engine {type(self).__name__}: {knobs})"}

    def metrics(self) -> dict[str, Any]:
        metrics = super().metrics()
        if not self.settings.report_input_rows:  # type: ignore[attr-defined]
            metrics["input_rows"] = []
        return metrics
