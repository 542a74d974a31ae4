"""Settings of the Flink engines (``engines[].settings`` in a scenario): :class:`FlinkSettings` for ``flink``,
:class:`FlinkPythonSettings` for ``flink-python``, validated before anything starts.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from harness.engines.base import EngineSettings
from harness.engines.jobs import LOOPBACK
from harness.units import Millis


def _off_or_duration(value: object) -> object:
    return None if value in (None, "off", False) else value


def _host_port(value: object) -> object:
    if value is not None and (not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9.\-]+:\d{1,5}", value)):
        raise ValueError(f"must be host:port of the JobManager's REST endpoint, e.g. flink-jm:8081 (got {value!r})")
    return value


def _address(value: object) -> object:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9.:\-]+", value.strip()):
        raise ValueError(f"must be an IP address or host name such as 127.0.0.1 or 0.0.0.0 (got {value!r})")
    return value.strip()


class FlinkSettings(EngineSettings):
    """Settings of the ``flink`` engine (``engines[].settings`` in a scenario)."""

    checkpoint_interval: Annotated[Millis | None, BeforeValidator(_off_or_duration)] = Field(default=10_000, gt=0)
    """Checkpoint every this often, or ``off``. Spark checkpoints every micro-batch, so it is on by default."""
    delivery: Literal["at-least-once", "exactly-once"] = "at-least-once"
    """Kafka sink guarantee. ``exactly-once`` writes in transactions committed on checkpoint completion."""
    idle_timeout: Millis = Field(default=5_000, gt=0)
    """A partition without records for this long is idle and stops holding the watermark back."""
    watermark_interval: Millis = Field(default=200, gt=0)
    """How often sources emit watermarks (``pipeline.auto-watermark-interval``): windows close on these ticks."""
    heap: str = Field(default="2g", pattern=r"^\d+[mMgG]$")
    """Max heap of the local MiniCluster JVM (``-Xmx``); not used with ``jobmanager``."""
    jobmanager: Annotated[str | None, BeforeValidator(_host_port)] = None
    """``host:port`` of a session cluster's REST endpoint; unset: a local MiniCluster in the job's JVM."""
    bind_address: Annotated[str, BeforeValidator(_address)] = LOOPBACK
    """Local MiniCluster only: where its REST endpoint and blob server and PyFlink's Python worker pool listen.
    (Submitting to a session cluster, the client listens on loopback only.)"""
    connector_jar: str | None = None
    """Path of the Kafka SQL connector jar; default: the one ``bench setup`` fetched."""
    log_level: Literal["ERROR", "WARN", "INFO"] = "WARN"
    config: dict[str, str] = Field(default_factory=dict)
    """Extra Flink configuration (``key: value``), applied last; recorded with the result."""

    @model_validator(mode="after")
    def _exactly_once_needs_checkpoints(self) -> FlinkSettings:
        if self.delivery == "exactly-once" and self.checkpoint_interval is None:
            raise ValueError(
                "delivery: exactly-once needs checkpoint_interval (Kafka transactions commit on checkpoints; "
                "with checkpointing off no result would ever become visible)"
            )
        return self


class FlinkPythonSettings(FlinkSettings):
    """Settings of the ``flink-python`` engine: those of ``flink`` plus the Python worker's."""

    python_execution_mode: Literal["process", "thread"] = "process"
    """``process``: Python functions in separate worker processes (Beam); ``thread``: embedded in the JVM."""
    python_bundle_size: int = Field(default=100_000, gt=0)
    """Records per bundle sent to the Python worker (``python.fn-execution.bundle.size``)."""
    python_bundle_time: Millis = Field(default=1_000, gt=0)
    """Longest wait before a bundle is flushed (``python.fn-execution.bundle.time``)."""
