"""The engine interface: one class per engine, registered by name (see :mod:`harness.engines.registry`).

The runner drives every engine through the same phases, one engine at a time::

    engine = EngineClass(settings, context)   # settings validated against EngineClass.Settings
    engine.start()                            # launch the job process; returns quickly
    engine.wait_ready(timeout)                # job running and reading the (still empty) input topic
    ... load is sent, results are collected; engine.check() and engine.metrics() are called along the way ...
    engine.metrics()                          # the engine's own view (input rows consumed, batches, checkpoints)
    engine.stop()                             # TERM then KILL, no process left behind; idempotent

The job code that runs inside the engine lives in ``harness/engines/jobs/`` and takes its semantics from
:mod:`harness.workload` through the :class:`~harness.workload.JobSpec` it is given. Engines whose job is a child
process on this host build on :class:`harness.engines.process.ProcessEngine`.

The public plug-in interface is :class:`Engine`, :class:`EngineSettings`, :class:`EngineContext`,
:class:`Setting` and :data:`FAIRNESS_KEYS` (with :class:`~harness.workload.JobSpec`,
:class:`~harness.infra.proc.ManagedProcess` and :mod:`harness.errors`).
"""

from __future__ import annotations

import inspect
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Union

import psutil
from pydantic import BaseModel, ConfigDict

from harness.infra.proc import kill_processes
from harness.workload import JobSpec, WatermarkRule

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
"""Settings that change what or when results are emitted; every engine reports each one (``Setting("n/a")`` if
it has no such knob) so the report's fairness table can put them side by side."""

HARNESS_FAIRNESS_KEYS = ("cpus",)
"""Fairness settings the harness adds to every engine's own (``cpus``: the CPUs the engine had, alone with
``isolation`` or shared with the load path); an engine does not report them."""


@dataclass(frozen=True)
class Setting:
    """One fairness setting of one engine: ``value`` is what engines are compared on, ``detail`` what the report
    shows beside it. Two engines differ on a key exactly when their ``value`` strings differ, so a value says the
    semantics in the shared vocabulary below and nothing engine-specific; how the engine gets there goes in
    ``detail``.

    Vocabulary of ``value`` (``D``, ``N``, ``T`` are numbers; durations always in whole milliseconds):

    ============== =====================================================================================
    key            values
    ============== =====================================================================================
    output_mode    ``append`` (each (window, user) once, when final) · ``update`` (re-emitted on change)
    trigger        ``micro-batch, as fast as possible`` · ``micro-batch every T ms`` (either may end in
                   ``, at most N records per batch``) · ``per record`` · ``per bundle (at most N records
                   or T ms)``
    watermark      ``D ms, global (max over partitions)`` · ``D ms, per partition (min over partitions)``
                   · ``D ms, per source subtask (min over subtasks)``
    late_events    ``dropped`` · ``kept``
    checkpointing  ``off`` · ``every micro-batch`` · ``T ms``
    delivery       ``at-least-once`` · ``exactly-once``
    parallelism    ``N`` (tasks working on the window aggregate at once); ``N, M shuffle partitions`` when
                   an engine's override splits the state over another number of partitions
    partitions     ``N`` (Kafka input partitions)
    deployment     ``local`` (one host, in-process cluster) · ``cluster``
    ============== =====================================================================================
    """

    value: str
    """Normalised, compared across engines."""
    detail: str = ""
    """Engine-specific explanation, shown in the report; never compared."""

    def __str__(self) -> str:
        return f"{self.value} ({self.detail})" if self.detail else self.value

    @classmethod
    def of(cls, raw: Setting | str | Mapping[str, Any]) -> Setting:
        """A Setting from what an engine returned (a plain ``str`` is the value) or from its JSON form
        (``{"value": …, "detail": …}`` as stored in a result)."""
        if isinstance(raw, Setting):
            return raw
        if isinstance(raw, Mapping):
            return cls(str(raw.get("value", "")), str(raw.get("detail", "") or ""))
        return cls(str(raw))


FairnessValue = Union[Setting, str]
"""What :meth:`Engine.fairness` maps each key to: a :class:`Setting`, or (third-party engines) a plain string."""


def normalise_fairness(values: Mapping[str, FairnessValue | Mapping[str, Any]]) -> dict[str, Setting]:
    """Every entry of an engine's :meth:`~Engine.fairness` (or of its stored JSON form) as a :class:`Setting`."""
    return {key: Setting.of(value) for key, value in values.items()}


class EngineSettings(BaseModel):
    """Base of every engine's settings model: strict, like the scenario it is part of."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, init=False)
class EngineContext:
    """What the runner gives an engine for one run (one engine × one repetition)."""

    spec: JobSpec
    run_dir: Path
    """This engine × repetition's directory: the engine writes its logs, metrics and state (checkpoints) here."""

    def __init__(self, spec: JobSpec, run_dir: Path | str, **deprecated: Any) -> None:
        object.__setattr__(self, "spec", spec)
        object.__setattr__(self, "run_dir", Path(run_dir))
        if "extra_env" in deprecated:
            deprecated.pop("extra_env")
            warnings.warn("EngineContext(extra_env=...) is ignored and will be removed: no engine reads it",
                          DeprecationWarning, stacklevel=2)
        if deprecated:
            raise TypeError(f"EngineContext() got unexpected keyword arguments: {', '.join(sorted(deprecated))}")

    @property
    def extra_env(self) -> dict[str, str]:
        """Deprecated, always empty: the runner never filled it and the built-in engines no longer read it."""
        warnings.warn("EngineContext.extra_env is deprecated and always empty", DeprecationWarning, stacklevel=2)
        return {}


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
    def fairness(self) -> dict[str, FairnessValue]:
        """Every :data:`FAIRNESS_KEYS` setting for this run as a :class:`Setting` in the shared vocabulary (see
        there). A plain string is accepted too and counts as the value. Called once, after the run."""

    def watermark_rule(self) -> WatermarkRule:
        """Which on-time events this engine may drop because of the order they arrived in
        (:mod:`harness.analysis.arrival`): by default what the fairness ``watermark`` value states (``per partition`` or
        global), with no idle timeout. An engine whose partitions can go idle overrides it. Called once, after
        the run."""
        value = Setting.of(self.fairness().get("watermark", "")).value
        return WatermarkRule.from_watermark_setting(value)

    def check(self) -> None:
        """Raise :class:`~harness.errors.EngineError` (with the log tail) if the job has died. Called by the
        runner every second or so while load is sent and results are drained."""

    def metrics(self) -> dict[str, Any]:
        """The engine's own metrics so far (JSON-serialisable). Called every few seconds during the load and once
        after the drain, before :meth:`stop`.

        Contract of the keys the harness reads (all optional; an engine that cannot know them leaves them out):

        ``input_rows``
            ``[{"t_ms": int, "rows": int}, ...]`` in time order: ``rows`` is the cumulative number of input
            records the job has consumed from the input topic since it started, as observed at epoch
            millisecond ``t_ms``; sampled about once a second while the job runs (samples may be denser or
            sparser where the engine only learns the count in steps, e.g. once per micro-batch). ``rows`` never
            decreases. The harness takes the engine's processed rate as Δrows/Δt over the measured span and its
            input lag as records sent − rows consumed, the same way for every engine.

        Any other key is kept with the result (``engine-metrics.json``) for the reader but not analysed.
        """
        return {}

    def processes(self) -> list[psutil.Process]:
        """The engine's live processes, for CPU and RSS sampling."""
        return []

    def kill(self) -> None:
        """SIGKILL every process of the job at once, without any last words (a ``kill-engine`` fault, see
        :mod:`harness.run.faults`). Called while the load runs; :meth:`restart` follows. Default: every process of
        :meth:`processes`."""
        kill_processes(self.processes(), wait_s=10)

    def restart(self, timeout: float) -> None:
        """Start the same job again after :meth:`kill`, from its last checkpoint where it has one, and return when
        it is ready (as :meth:`wait_ready`; raise :class:`~harness.errors.EngineError` on failure). Called by the
        fault injector after the fault's downtime. Default: :meth:`start` then :meth:`wait_ready`; engines whose
        ``start`` refuses to run twice override it."""
        self.start()
        self.wait_ready(timeout)

    def recovered_at(self, since_ms: int) -> int | None:
        """After a ``kill-worker`` fault injected at epoch ms ``since_ms`` (one worker of the engine's cluster
        killed, the engine recovering by its own means): the epoch ms at which the job was processing input again
        on its cluster, or None while it is not yet. Polled by the fault injector about twice a second until it
        answers or the engine start timeout passes; raising OSError, ValueError or KeyError counts as "not yet".
        Default: :class:`NotImplementedError` (this engine cannot tell; the fault's figures still come from its
        results)."""
        raise NotImplementedError

    def log_files(self) -> list[Path]:
        """Log files to keep with the result (already inside ``context.run_dir`` or copied there)."""
        return []

    @classmethod
    def versions(cls) -> dict[str, str]:
        """Engine and connector versions, for the environment fingerprint (see :func:`engine_versions`)."""
        return {}


def engine_versions(engine_classes: Mapping[str, type[Engine]] | Iterable[type[Engine]]) -> dict[str, dict[str, str]]:
    """``{label: {component: version}}`` of the engines of a run, for the environment fingerprint. Takes the
    runner's label → class mapping, or classes (labelled by their ``name``). Called once per run, before any
    engine starts, so :meth:`Engine.versions` is called on the class.

    A third-party engine that still defines ``versions`` as an instance method gets a DeprecationWarning and is
    asked through an instance created without ``__init__``; if that fails its entry holds the error."""
    if isinstance(engine_classes, Mapping):
        items = list(engine_classes.items())
    else:
        items = [(engine_class.name, engine_class) for engine_class in engine_classes]
    found: dict[str, dict[str, str]] = {}
    for label, engine_class in items:
        try:
            found[label] = {str(k): str(v) for k, v in _class_versions(engine_class).items()}
        except Exception as exc:  # noqa: BLE001 - one engine's broken versions() must not cost the run
            found[label] = {"error": f"{type(exc).__name__}: {exc}"}
    return found


def _class_versions(engine_class: type[Engine]) -> dict[str, str]:
    if isinstance(inspect.getattr_static(engine_class, "versions"), (classmethod, staticmethod)):
        return engine_class.versions()
    warnings.warn(f"{engine_class.__name__}.versions() should be a classmethod (it is called before the engine "
                  "is created)", DeprecationWarning, stacklevel=3)
    return engine_class.versions(engine_class.__new__(engine_class))  # type: ignore[call-arg,arg-type]
