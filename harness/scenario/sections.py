"""The ``window``, ``kafka`` and ``engines`` sections: which windowed count to run, on which Kafka, with which
engines (and how to kill one worker of an engine's cluster)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, StrictBool, field_validator, model_validator

from harness.scenario.errors import CrossFieldErrors
from harness.scenario.strict import MAX_NAME_LENGTH, MAX_WINDOWS_PER_EVENT, RESERVED_LABELS, StrictModel
from harness.units import Millis, format_duration_ms
from harness.workload import Windows


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
        if self.size // self.slide_ms > MAX_WINDOWS_PER_EVENT:
            raise ValueError(
                f"slide ({format_duration_ms(self.slide_ms)}) puts every event in {self.size // self.slide_ms:,} "
                f"windows of {format_duration_ms(self.size)}; at most {MAX_WINDOWS_PER_EVENT} are allowed (each "
                f"engine and the oracle keep a count per window): make slide at least "
                f"{format_duration_ms(-(-self.size // MAX_WINDOWS_PER_EVENT))}"
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
            raise CrossFieldErrors([
                f"label: {what}must start with a letter or digit and hold only letters, digits, '.', '_' or "
                f"'-': it names result directories and Kafka topics{fix} (got {self.name!r})"
            ])
        if self.name.lower() in RESERVED_LABELS:
            raise CrossFieldErrors([
                f"label: {what}names a file or directory the run directory holds itself "
                f"({', '.join(sorted(RESERVED_LABELS))}); choose another label (got {self.name!r})"
            ])
        if len(self.name) > MAX_NAME_LENGTH:
            raise CrossFieldErrors([
                f"label: {what}must be at most {MAX_NAME_LENGTH} characters: it goes into Kafka topic names "
                f"(at most 249 characters){fix or '; shorten it'} (got {len(self.name)} characters)"
            ])
        return self
