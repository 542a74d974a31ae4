"""``bench run``: a benchmark run, one engine at a time.

For each repetition, for each engine (interleaved, so a slow drift of the machine spreads over all engines), one
:class:`harness.run.engine_run.EngineRun` goes through the phases of that engine × repetition::

    fresh topics → start engine → ready → load (warm-up + measured) → end-of-run records → drain (deadline)
    → input topic read back (append times) → engine metrics → check against the oracle → write the result
    → stop engine → external cluster: delete this repetition's topics (unless kafka.keep_topics)

Every engine gets byte-identical input (same seed; the start is aligned to the window slide so the same events
fall in the same windows). A failing engine is recorded with its error and log tail and the next one still runs.
Ctrl-C stops everything cleanly, keeps what was measured and marks the run interrupted.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import results
from harness.analysis.oracle import expected_for_run
from harness.engines.base import Engine, engine_versions
from harness.engines.registry import resolve_engine
from harness.errors import HarnessError
from harness.infra import isolation, jvm
from harness.run.kafka_service import kafka_service
from harness.kafka.clientlog import client_log_to
from harness.run.engine_run import EngineRun
from harness.run.progress import ProgressDisplay
from harness.run.watch import LiveView, LoadWatch  # re-exported: the watch is given to run_scenario
from harness.scenario import Scenario, apply_overrides  # apply_overrides: re-exported

__all__ = ["LiveView", "LoadWatch", "RunOutcome", "apply_overrides", "run_scenario"]


# ------------------------------------------------------------------------------------------------- the run
@dataclass
class RunOutcome:
    run_dir: Path
    status: str
    """complete | interrupted | failed"""
    failures: list[str]

    @property
    def has_results(self) -> bool:
        """At least one repetition wrote its summary (a report can be made of it)."""
        return any(self.run_dir.glob("*/rep-*/summary.json"))

def run_scenario(
    scenario: Scenario,
    out: Path,
    *,
    display: ProgressDisplay | None = None,
    run_dir: Path | None = None,
    watch: LoadWatch | None = None,
) -> RunOutcome:
    """Run every engine × repetition of an already validated scenario; write results under ``out`` (the report
    is the caller's: :func:`harness.report.document.write_report`, as ``bench run`` does).

    ``run_dir``, when given, is the run directory itself (it must not exist yet; ``bench capacity`` names its
    trials this way) instead of ``out/<UTC stamp>-<scenario>``. ``watch`` (:class:`LoadWatch`) may end each load
    early and is handed each repetition's analysis inputs.
    Checks that the JVM artifacts are in place before anything starts. Returns the run directory and how the
    run ended; raises only for problems before the first engine starts (e.g. the broker would not start).
    """
    engine_classes = {entry.name: resolve_engine(entry.engine) for entry in scenario.engines}
    # SetupError (exit 2) before a run directory exists: Java for the broker and JVM engines, then the jars
    if scenario.kafka.mode == "embedded" or any(getattr(c, "needs_java", False) for c in engine_classes.values()):
        jvm.java_home()
    jvm.classpath("kafka") if scenario.kafka.mode == "embedded" else None  # SetupError names `bench setup`
    settings = {entry.name: engine_classes[entry.name].Settings.model_validate(entry.settings)
                for entry in scenario.engines}
    display = display or ProgressDisplay()
    run_dir = _open_run_dir(scenario, out, run_dir, engine_classes)
    display.message(f"run directory: {run_dir}")
    failures: list[str] = []
    status = "complete"
    try:
        _run_engines(scenario, engine_classes, settings, run_dir, display, watch, failures)
    except KeyboardInterrupt:
        status = "interrupted"
        display.message("interrupted: engines stopped; what was measured is kept")
    except HarnessError as exc:
        status = "failed"
        failures.append(str(exc))
        display.message(f"run failed: {exc}")
    except Exception as exc:  # a bug of the harness: the run is still closed properly, with the traceback
        status = "failed"
        failures.append(f"harness error: {type(exc).__name__}: {exc}")
        (run_dir / "traceback.txt").write_text(traceback.format_exc(), encoding="utf-8")
        display.message(f"run failed inside the harness: {exc!r} (traceback in {run_dir / 'traceback.txt'})")
    if status == "complete" and failures:
        status = "complete" if len(failures) < len(scenario.engines) * scenario.repetitions else "failed"
    results.write_run_status(run_dir, status, "\n".join(failures))  # type: ignore[arg-type]
    return RunOutcome(run_dir, status, failures)


def _open_run_dir(scenario: Scenario, out: Path, run_dir: Path | None,
                  engine_classes: dict[str, type[Engine]]) -> Path:
    """The run directory, new (``run_dir`` itself, or ``out/<UTC stamp>-<scenario>``), with the run's info."""
    # absolute: engine jobs run with their own working directory (and on clusters, on other hosts)
    if run_dir is None:
        run_dir = results.create_run_dir(Path(out).resolve(), scenario.name)
    else:
        run_dir = Path(run_dir).resolve()
        run_dir.mkdir(parents=True)  # exclusive, as create_run_dir: a result is never overwritten
    results.write_run_info(
        run_dir, scenario,
        results.environment_fingerprint(kafka_mode=scenario.kafka.mode, deployment=_deployment(scenario),
                                        engine_versions=engine_versions(engine_classes)),
    )
    return run_dir


def _run_engines(scenario: Scenario, engine_classes: dict[str, type[Engine]], settings: dict[str, Any],
                 run_dir: Path, display: ProgressDisplay, watch: LoadWatch | None, failures: list[str]) -> None:
    """Every repetition, every engine, against one broker; each failure is added to ``failures``. Raises
    KeyboardInterrupt when a repetition was interrupted."""
    # the oracle, once per run and before any engine starts: its CPU never falls in a measured period
    expected = expected_for_run(scenario, 0)
    # librdkafka's own log lines (transient broker warnings) go to the run's kafka-clients.log, not the terminal
    with (
        display,
        client_log_to(run_dir / "kafka-clients.log"),
        isolation.harness_pinned(scenario.isolation.load_path if scenario.isolation else None),
        kafka_service(scenario.kafka, run_dir / "kafka") as kafka,
    ):
        display.message(f"kafka: {kafka.mode} at {kafka.bootstrap}")
        for repetition in range(1, scenario.repetitions + 1):
            for entry in scenario.engines:
                one = EngineRun(scenario, entry, engine_classes[entry.name], settings[entry.name],
                                repetition, run_dir, kafka, display, expected, watch)
                outcome = one.run()
                if outcome != "ok":
                    failures.append(f"{entry.name} rep {repetition}: {one.error or outcome}")
                if outcome == "interrupted":
                    raise KeyboardInterrupt


def _deployment(scenario: Scenario) -> str:
    """Where broker and engines ran, in words, for the fingerprint."""
    if scenario.kafka.mode == "embedded":
        parts = ["kafka: embedded on this host"]
    else:
        parts = [f"kafka: external at {scenario.kafka.bootstrap}"]
    for entry in scenario.engines:
        where = entry.settings.get("master") or entry.settings.get("jobmanager") or "local on this host"
        parts.append(f"{entry.name}: {where}")
    if scenario.isolation is not None:
        parts.append(f"isolation: {scenario.isolation.describe()}")
    return "; ".join(parts)
