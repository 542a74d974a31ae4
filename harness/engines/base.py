"""The engine interface: one class per engine, registered by name (see :mod:`harness.engines.registry`).

The runner drives every engine through the same phases, one engine at a time::

    engine = EngineClass(settings, context)   # settings validated against EngineClass.Settings
    engine.start()                            # launch the job process; returns quickly
    engine.wait_ready(timeout)                # job running and reading the (still empty) input topic
    ... load is sent, results are collected ...
    engine.metrics()                          # the engine's own view (rows/s, batch durations, checkpoints)
    engine.stop()                             # TERM then KILL, no process left behind; idempotent

The job code that runs inside the engine lives in ``harness/engines/jobs/`` and takes its semantics from
:mod:`harness.workload` through the :class:`~harness.workload.JobSpec` it is given.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import psutil
from pydantic import BaseModel, ConfigDict

from harness.workload import JobSpec

FAIRNESS_KEYS = (
    "output_mode",
    "trigger",
    "watermark",
    "late_events",
    "checkpointing",
    "delivery",
    "parallelism",
    "partitions",
    "deployment",
)
"""Settings that change what or when results are emitted; every engine reports each one (``"n/a"`` if it has no
such knob) so the report's fairness table can put them side by side."""


class EngineSettings(BaseModel):
    """Base of every engine's settings model: strict, like the scenario it is part of."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class EngineContext:
    """What the runner gives an engine for one run (one engine × one repetition)."""

    spec: JobSpec
    run_dir: Path
    """This engine × repetition's directory: the engine writes its logs, metrics and state (checkpoints) here."""
    extra_env: dict[str, str] = field(default_factory=dict)


class Engine(ABC):
    """A stream processing engine running the windowed count of :mod:`harness.workload`."""

    name: ClassVar[str]
    """Registry name, as written in scenarios and listed by ``bench engines``."""
    description: ClassVar[str] = ""
    Settings: ClassVar[type[EngineSettings]] = EngineSettings

    def __init__(self, settings: EngineSettings, context: EngineContext) -> None:
        self.settings = settings
        self.context = context

    @property
    def read_committed(self) -> bool:
        """True when the job writes results in Kafka transactions: the collector then reads ``read_committed``."""
        return False

    @abstractmethod
    def start(self) -> None:
        """Launch the job in its own process group. Called once; returns without waiting for readiness."""

    @abstractmethod
    def wait_ready(self, timeout: float) -> None:
        """Return when the job runs and reads the input topic, before any load is sent; raise
        :class:`~harness.errors.EngineError` (with the log tail) if it fails or ``timeout`` seconds pass."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the job: TERM, then KILL after a grace period. Idempotent; called even after a failed start."""

    @abstractmethod
    def fairness(self) -> dict[str, str]:
        """The value of every :data:`FAIRNESS_KEYS` setting for this run, in words."""

    def check(self) -> None:
        """Raise :class:`~harness.errors.EngineError` (with the log tail) if the job has died. Called by the
        runner every second or so while load is sent and results are drained."""

    def metrics(self) -> dict[str, Any]:
        """The engine's own metrics so far (JSON-serialisable). Called during and after the run.

        If the engine knows its processing rate, ``metrics()["processed_series"]`` is a list of
        ``{"t_ms": epoch ms, "processed": input rows/s}`` samples: the report's "processed (engine)" rate."""
        return {}

    def processes(self) -> list[psutil.Process]:
        """The engine's live processes, for CPU and RSS sampling."""
        return []

    def log_files(self) -> list[Path]:
        """Log files to keep with the result (already inside ``context.run_dir`` or copied there)."""
        return []

    def versions(self) -> dict[str, str]:
        """Engine and connector versions, for the environment fingerprint."""
        return {}
