"""The calibration engine: the windowed count in one small Python process, no JVM
(:mod:`harness.engines.jobs.python_count_job`).

It does what Spark and Flink do — same input, same windows, watermark and output — at close to no cost, so a run
of it measures the harness itself: the highest rate it keeps up with is the ceiling of the load path (generator +
broker + collector) on this machine, and its result latency − D is the latency floor the harness adds to every
engine's figures (consumer fetch, one batch, producer, broker append, collector).

Test engines with a known truth (``tests/engines.py``) subclass it and expose the job's knobs (extra latency, a
capacity, wrong answers, malformed or transactional output); the built-in engine exposes none.
"""

from __future__ import annotations

import json
import sys
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from harness.engines.base import EngineContext, EngineSettings
from harness.engines.jobs.python_count_job import BATCH, READY_MARKER
from harness.engines.process import ProcessEngine
from harness.infra.proc import ManagedProcess
from harness.units import format_duration_ms

METRICS_FILE = "python-count-metrics.jsonl"
"""In the run directory: one ``{"t_ms", "rows", ...}`` sample a second, written by the job."""
TRANSACTIONS_FILE = "python-count-transactions.jsonl"
"""In the run directory, transactional output only: one line per window with its write and commit times."""


class CalibrationSettings(EngineSettings):
    """The ``calibration`` engine has no settings: it is the reference every other engine is held against."""


class CalibrationEngine(ProcessEngine):
    """The windowed count as one Python consumer/producer process
    (``python -m harness.engines.jobs.python_count_job --spec FILE``), ready when it prints its READY marker line.
    Starting, stopping (TERM, then KILL after 10 s), ``kill`` (SIGKILL of its process group) and ``restart`` are
    :class:`~harness.engines.process.ProcessEngine`'s; the job needs no JVM."""

    name: ClassVar[str] = "calibration"
    description: ClassVar[str] = (
        "JVM-free windowed count in one Python process (consumer, dict counts, producer): its capacity is the "
        "harness's own ceiling (generator + broker + collector), its result latency - D the harness's floor"
    )
    Settings: ClassVar[type[EngineSettings]] = CalibrationSettings
    log_name: ClassVar[str] = "python-count.log"
    spec_name: ClassVar[str] = "python-count-spec.json"
    job_module: ClassVar[str] = "harness.engines.jobs.python_count_job"
    stop_grace_s: ClassVar[float] = 10.0
    needs_java: ClassVar[bool] = False

    def __init__(self, settings: EngineSettings, context: EngineContext) -> None:
        super().__init__(settings, context)
        self._transactional_id = f"bench-python-count-{uuid.uuid4().hex}"

    # -------------------------------------------------------------------------------------------- locations
    @property
    def metrics_path(self) -> Path:
        return self.run_dir / METRICS_FILE

    @property
    def transactions_path(self) -> Path:
        return self.run_dir / TRANSACTIONS_FILE

    def knob(self, name: str, default: Any = None) -> Any:
        """A job knob from the settings (test engines have them; the calibration engine's settings do not)."""
        return getattr(self.settings, name, default)

    @property
    def read_committed(self) -> bool:
        return bool(self.knob("transactional", False))

    # -------------------------------------------------------------------------------------------- lifecycle
    def job_settings(self) -> dict[str, Any]:
        """The knobs and where the side channels go."""
        return {
            **super().job_settings(),
            "metrics_file": str(self.metrics_path),
            "transactions_file": str(self.transactions_path),
            "transactional_id": self._transactional_id,
        }

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.job_module, "--spec", str(self.spec_path)]

    def wait_for_job(self, process: ManagedProcess, timeout: float) -> None:
        process.wait_for_line(rf"^{READY_MARKER}$", timeout,
                              hint="the log above says why (is the broker reachable from this host?)")

    def restart(self, timeout: float) -> None:
        """Start the job again after :meth:`kill`. It has no checkpoint: it reads the input again from the
        beginning, so every window already answered is answered again (duplicates; the counts stay exact)."""
        super().restart(timeout)

    # ------------------------------------------------------------------------------------------- reporting
    def fairness(self) -> dict[str, str]:
        spec = self.context.spec
        return {
            "output_mode": "append: each (window, user) once, when the window is final",
            "trigger": f"per record (consumed in batches of up to {BATCH:,}; windows close after each batch)",
            "watermark": "per partition, the smallest wins: min over partitions of the max event time read − "
            f"{format_duration_ms(spec.watermark_delay_ms)}, advanced after each consumed batch",
            "late_events": "dropped for windows already final (watermark ≥ end)",
            "checkpointing": "off",
            "delivery": "exactly-once (transactions)" if self.read_committed else "at-least-once",
            "parallelism": "1",
            "partitions": str(spec.partitions),
            "deployment": "local",
        }

    def samples(self) -> list[dict[str, Any]]:
        """Every metrics sample the job wrote so far, oldest first (a line being written is read next time)."""
        rows = []
        try:
            with open(self.metrics_path, encoding="utf-8") as file:
                for line in file:
                    if line.endswith("\n"):
                        rows.append(json.loads(line))
        except FileNotFoundError:
            pass
        return rows

    def metrics(self) -> dict[str, Any]:
        """``input_rows``: cumulative input records consumed, about once a second (``{"t_ms", "rows"}``); the job's
        late-event, result and bad-input counters at the last sample."""
        samples = self.samples()
        last = samples[-1] if samples else {}
        return {
            "metrics_file": str(self.metrics_path),
            "job_exit_code": None if self.process is None else self.process.returncode,
            "input_rows": cumulative_rows(samples),
            "late_dropped": last.get("late_dropped"),
            "results": last.get("results"),
            "bad_input": last.get("bad_input"),
            "watermark_ms": last.get("watermark_ms"),
        }

    def extra_log_files(self) -> list[Path]:
        return [self.metrics_path, self.transactions_path]

    @classmethod
    def versions(cls) -> dict[str, str]:
        import confluent_kafka

        return {"confluent-kafka": metadata.version("confluent-kafka"), "librdkafka": confluent_kafka.libversion()[0]}


def cumulative_rows(samples: list[dict[str, Any]]) -> list[dict[str, int]]:
    """``input_rows`` from the job's samples: a restarted job (``kill-engine`` fault) counts from 0 again, so the
    count goes on from the last sample before the restart (records read again are counted again: it did read
    them twice)."""
    rows: list[dict[str, int]] = []
    base = previous = 0
    for sample in samples:
        if sample["rows"] < previous:
            base = rows[-1]["rows"]
        previous = sample["rows"]
        rows.append({"t_ms": sample["t_ms"], "rows": base + sample["rows"]})
    return rows

