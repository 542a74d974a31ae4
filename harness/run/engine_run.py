"""One engine × one repetition of ``bench run``, in fixed phases (:class:`EngineRun`)::

    fresh topics → start engine → ready → load (warm-up + measured) → end-of-run records → drain (deadline)
    → input topic read back (append times) → engine metrics → check against the oracle → write the result
    → stop engine → external cluster: delete this repetition's topics (unless kafka.keep_topics)

A failing engine is recorded with its error and log tail (the runner then goes on with the next one); cleanup is
not cut short by a second Ctrl-C.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import signal
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import psutil

from harness import results
from harness.analysis.input_delay import InputAppendTimes, read_append_times
from harness.analysis.oracle import Expected, expected_for_run
from harness.analysis.repetition import RepetitionInputs, analyse
from harness.engines.base import Engine, EngineContext, Setting
from harness.errors import HarnessError
from harness.infra import isolation
from harness.kafka import create_topics, delete_topics
from harness.run.kafka_service import KafkaEndpoint
from harness.loadgen import GeneratorResult, Progress, run_generator
from harness.loadgen.generator import StopCallback
from harness.run.collector import LiveCollector
from harness.run.faults import FaultInjector
from harness.run.progress import ProgressDisplay
from harness.run.resources import ResourceSampler, this_process
from harness.run.watch import LiveView, LoadWatch
from harness.scenario import EngineEntry, Scenario, truncated
from harness.units import format_duration_ms
from harness.workload import JobSpec

if TYPE_CHECKING:
    from harness.workload import WatermarkRule


def _generator_processes() -> list[psutil.Process]:
    """The generator's worker processes: multiprocessing ``spawn`` children of the harness."""
    found = []
    for child in psutil.Process().children(recursive=False):
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Cleanup must not be cut short: a second Ctrl-C, or the SIGTERM a CI runner sends after SIGINT, waits
    until the block is done (and is then acted on as an interruption)."""
    received: list[int] = []

    def remember(signum: int, frame: object) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, remember) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        raise KeyboardInterrupt


class EngineRun:
    """One engine × one repetition, in fixed phases; never raises for an engine failure or a harness error inside
    the repetition (it is recorded, with the traceback, and the next engine still runs)."""

    CHECK_EVERY_S = 1.0
    METRICS_EVERY_S = 2.0
    SETTLE_MIN_S = 2.0
    """The drain ends when every expected pair has an answer and no result arrived for max(this, slide)."""

    def __init__(self, scenario: Scenario, entry: EngineEntry, engine_class: type[Engine], settings: Any,
                 repetition: int, run_dir: Path, kafka: KafkaEndpoint, display: ProgressDisplay,
                 expected_at_zero: Expected, watch: LoadWatch | None = None) -> None:
        self.scenario = scenario
        self.entry = entry
        self.engine_class = engine_class
        self.settings = settings
        self.repetition = repetition
        self.run_dir = run_dir
        self.kafka = kafka
        self.display = display
        self.expected_at_zero = expected_at_zero
        self.watch = watch
        self.label = entry.name
        self.rep_dir = results.repetition_dir(run_dir, self.label, repetition)
        self.work_dir = self.rep_dir / "work"
        prefix = f"bench-{run_dir.name}-{self.label}-r{repetition}"
        self.input_topic = f"{prefix}-in"
        self.output_topic = f"{prefix}-out"
        self.created_topics: list[str] = []
        """Topics this repetition created (only these may be deleted afterwards)."""
        self.error: str | None = None
        self.log_tail: list[str] = []
        self.traceback: str | None = None
        self._watched: RepetitionInputs | None = None
        """What the analysis was given, for the watch."""

    def _spec(self) -> JobSpec:
        scenario = self.scenario
        return JobSpec(
            bootstrap=self.kafka.bootstrap,
            input_topic=self.input_topic,
            output_topic=self.output_topic,
            window_size_ms=scenario.window.size,
            window_slide_ms=scenario.window.slide_ms,
            watermark_delay_ms=scenario.window.watermark_delay,
            parallelism=scenario.job_parallelism,
            partitions=scenario.kafka.partitions,
            state_dir=str(self.work_dir / "state"),
            settings=self.settings.model_dump(mode="json"),
        )

    def run(self) -> str:
        """``ok``, ``failed`` or ``interrupted``; the result is written in every case."""
        scenario = self.scenario
        display = self.display
        display.update(engine=self.label, repetition=f"rep {self.repetition}/{scenario.repetitions}",
                       phase="creating topics", elapsed_s=0, total_s=scenario.duration / 1000, sent=0, results=0,
                       p50_ms=None, p99_ms=None, target_rate=0, achieved_rate=0)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        engine = self.engine_class(self.settings, EngineContext(spec=self._spec(), run_dir=self.work_dir))
        sampler = ResourceSampler({
            "broker": self.kafka.processes,
            self.label: engine.processes,
            "generator": _generator_processes,
            "harness": this_process,
        })
        injector = FaultInjector(
            scenario.faults, engine, self.kafka, restart_timeout_s=scenario.engine_start_timeout / 1000,
            engine_cpus=self.engine_cpus,
            message=lambda text: display.message(f"[{self.label} rep {self.repetition}] {text}"),
            kill_worker=self.entry.kill_worker, log_path=self.work_dir / "faults.log",
        )
        state: dict[str, Any] = {"collector": None, "generator": None, "metrics": {}, "faults": injector,
                                 "input_append": None}
        status = "ok"
        try:
            self._phases(engine, sampler, state)
        except KeyboardInterrupt:
            status = "interrupted"
            self.error = "interrupted by the user (Ctrl-C or SIGTERM)"
        except HarnessError as exc:
            status = "failed"
            self.error = str(exc)
            display.message(f"[{self.label} rep {self.repetition}] FAILED: {exc}")
        except Exception as exc:  # noqa: BLE001 - a harness bug in one repetition must not end the run
            status = "failed"
            self.error = f"harness error: {type(exc).__name__}: {exc}"
            self.traceback = traceback.format_exc()
            display.message(f"[{self.label} rep {self.repetition}] FAILED inside the harness: {exc!r}")
        with _signals_deferred():
            status = self._finish(engine, sampler, state, status)
        return status

    def _phases(self, engine: Engine, sampler: ResourceSampler, state: dict[str, Any]) -> None:
        scenario, display = self.scenario, self.display
        for topic in (self.input_topic, self.output_topic):
            create_topics(self.kafka.bootstrap, {topic: scenario.kafka.partitions}, log_append_time=True,
                          replication_factor=scenario.kafka.replication_factor)
            self.created_topics.append(topic)
        sampler.start()
        display.update(phase="starting engine")
        started = time.monotonic()
        with isolation.children_on(self.engine_cpus):
            engine.start()
        engine.wait_ready(scenario.engine_start_timeout / 1000)
        ready_s = time.monotonic() - started
        display.message(f"[{self.label} rep {self.repetition}] ready after {ready_s:.1f} s")
        state["metrics"] = {"ready_s": ready_s, **self._pin_engine(engine)}
        collector = LiveCollector(self.kafka.bootstrap, self.output_topic, read_committed=engine.read_committed)
        state["collector"] = collector
        collector.start()
        injector: FaultInjector = state["faults"]
        state["generator"] = generator = self._load(engine, collector, injector)
        self._drain(injector, collector, self.expected_at_zero.shifted(generator.start_epoch_ms))
        state["input_append"] = self._read_input_append_times()

    @property
    def engine_cpus(self) -> frozenset[int] | None:
        """The engine's CPUs when the scenario isolates it (``isolation.engine``), else None."""
        return self.scenario.isolation.engine if self.scenario.isolation else None

    def _cpus_setting(self) -> Setting:
        """The ``cpus`` fairness setting, the harness's own: which CPUs the engine had, alone or shared."""
        iso = self.scenario.isolation
        if iso is None:
            shared = isolation.format_cpu_list(isolation.available_cpus())
            return Setting(f"shared {shared}", f"CPUs {shared}, shared with the load path (no isolation)")
        engine, load = isolation.format_cpu_list(iso.engine), isolation.format_cpu_list(iso.load_path)
        return Setting(f"engine {engine} / load path {load}", f"alone on CPUs {engine}; load path on {load}")

    def _pin_engine(self, engine: Engine) -> dict[str, int]:
        """With isolation: move any engine thread still outside its CPUs (one not started through ManagedProcess)
        and say how many there were; the count goes into the repetition's metrics."""
        if self.engine_cpus is None:
            return {}
        moved = isolation.pin_processes(engine.processes(), self.engine_cpus)
        if moved:
            self.display.message(f"[{self.label} rep {self.repetition}] {moved} engine threads ran outside "
                                 f"isolation.engine and were moved there")
        return {"isolation_threads_moved": moved}

    def _finish(self, engine: Engine, sampler: ResourceSampler, state: dict[str, Any], status: str) -> str:
        """Stop reading, write the result, then stop the engine (its stop grace cannot cost the result).
        Returns the repetition's status (``failed`` if the result could not be written)."""
        collector: LiveCollector | None = state["collector"]
        injector: FaultInjector = state["faults"]
        injector.stop(timeout_s=None if status == "ok" else 0.5)  # a restart still under way ends with the engine
        if collector is not None:
            collector.stop()
        sampler.stop()
        metrics = {**state["metrics"], **_safe_metrics(engine)}
        if self.engine_cpus is not None:  # did the pinning hold to the end? (threads started since inherit it)
            metrics["isolation_threads_outside"] = isolation.threads_outside(engine.processes(), self.engine_cpus)
        if status != "ok":
            self.log_tail = _log_tail(engine)
        try:
            self._write(engine, collector, sampler, state["generator"], metrics, status, injector.records(),
                        state["input_append"])
            if self.watch is not None and self._watched is not None:
                self.watch.analysed(self._watched)
        except Exception as exc:  # noqa: BLE001 - e.g. a full disk: say so, keep the traceback, go on
            status = "failed"
            self.error = f"result not written: {type(exc).__name__}: {exc}"
            self.display.message(f"[{self.label} rep {self.repetition}] {self.error}")
            with contextlib.suppress(OSError):
                (self.rep_dir / "traceback.txt").write_text(traceback.format_exc(), encoding="utf-8")
        finally:
            self.display.update(phase="stopping engine")
            try:
                engine.stop()
            finally:
                shutil.rmtree(self.work_dir / "state", ignore_errors=True)  # checkpoints: job state, not a result
                self._remove_topics()
        return status

    def _remove_topics(self) -> None:
        """External cluster: delete the topics this repetition created (never another one), after its result was
        written and its engine stopped, unless ``kafka.keep_topics``. The embedded broker's topics go with its
        data directory. A failed deletion is said, not fatal: the result is already written."""
        if self.kafka.mode != "external" or self.scenario.kafka.keep_topics or not self.created_topics:
            return
        try:
            delete_topics(self.kafka.bootstrap, self.created_topics)
        except HarnessError as exc:
            self.display.message(f"[{self.label} rep {self.repetition}] topics not removed: {exc}")

    # ----------------------------------------------------------------------------------------------- phases
    def _load(self, engine: Engine, collector: LiveCollector, injector: FaultInjector) -> GeneratorResult:
        """Warm-up + measured period, then the end-of-run records; the engine is checked all along (through the
        fault injector, which starts with the first progress report, when the load's start time is known)."""
        display = self.display
        warmup_s, total_s = self.scenario.warmup / 1000, self.scenario.duration / 1000
        display.update(phase="warm-up", phase_left_s=warmup_s, expected=self.expected_at_zero.required)
        last = {"check": 0.0, "metrics": 0.0}

        def progress(p: Progress) -> None:
            now = time.monotonic()
            injector.start(time.time_ns() // 1_000_000 - int(p.elapsed_ms))  # once; later calls do nothing
            if now - last["check"] >= self.CHECK_EVERY_S:
                last["check"] = now
                injector.check()
            if now - last["metrics"] >= self.METRICS_EVERY_S:
                last["metrics"] = now
                _safe_metrics(engine)  # engines that poll (Flink's REST) build their series from these calls
            elapsed_s = max(p.elapsed_ms, 0) / 1000
            warming = elapsed_s < warmup_s
            snap = collector.snapshot()
            display.update(
                phase="warm-up" if warming else "measuring",
                phase_left_s=(warmup_s if warming else total_s) - elapsed_s,
                elapsed_s=elapsed_s, sent=p.sent, due=p.due, results=snap.records, p50_ms=snap.recent_p50_ms,
                p99_ms=snap.recent_p99_ms,
            )

        generator = run_generator(self.scenario, self.kafka.bootstrap, self.input_topic, progress=progress,
                                  stop=self._stop_callback(engine, collector))
        if generator.duration_ms < self.scenario.duration:
            # ended early by the watch: from here on the run is the one the load really was
            display.message(f"[{self.label} rep {self.repetition}] load ended early, at "
                            f"{format_duration_ms(generator.duration_ms)}")
            self.scenario = truncated(self.scenario, generator.duration_ms)
            self.expected_at_zero = expected_for_run(self.scenario, 0)
        if generator.nice > self.scenario.load.producer.nice:
            display.message(
                f"[{self.label} rep {self.repetition}] generator ran at nice {generator.nice}, not "
                f"{self.scenario.load.producer.nice}: raising priority needs root or CAP_SYS_NICE (publish delay "
                "may suffer while the engines load the CPUs)"
            )
        if not generator.valid:
            display.message(f"[{self.label} rep {self.repetition}] generator: {generator.reason}")
        return generator

    def _stop_callback(self, engine: Engine, collector: LiveCollector) -> StopCallback | None:
        """The watch's :meth:`LoadWatch.during_load` as the generator's stop callback; None without a watch."""
        watch = self.watch
        if watch is None:
            return None
        shifted: dict[int, Expected] = {}

        def stop(p: Progress) -> int | None:
            if p.start_epoch_ms not in shifted:
                shifted[p.start_epoch_ms] = self.expected_at_zero.shifted(p.start_epoch_ms)
            return watch.during_load(LiveView(self.scenario, p, collector, shifted[p.start_epoch_ms],
                                              lambda: _safe_metrics(engine)))

        return stop

    def _read_input_append_times(self) -> InputAppendTimes | None:
        """The input topic read back (append time and ``seq`` per record) for the input path's delay; called after
        the drain, when the measured period and the engine's answer are over, so the read costs no figure. A
        failure only leaves that figure out (said on the display)."""
        self.display.update(phase="reading input append times")
        try:
            return read_append_times(self.kafka.bootstrap, self.input_topic)
        except Exception as exc:  # noqa: BLE001 - a supplementary figure must not fail the repetition
            self.display.message(f"[{self.label} rep {self.repetition}] input append times not read: {exc}")
            return None

    def _drain(self, injector: FaultInjector, collector: LiveCollector, expected: Expected) -> None:
        """Read until the answer is settled — every expected (window, user) has an answer and no result arrived
        for max(2 s, slide) — or the collector failed, or ``drain_timeout`` passed."""
        deadline = time.monotonic() + self.scenario.drain_timeout / 1000
        settle_s = max(self.SETTLE_MIN_S, self.scenario.window.slide_ms / 1000)
        # the load is over: no send rate to show
        self.display.update(phase="draining", phase_left_s=deadline - time.monotonic(), target_rate=0, achieved_rate=0)
        while True:
            injector.check()
            drain = collector.settle_state(expected.pairs)
            snap = collector.snapshot()
            self.display.update(phase="draining", phase_left_s=deadline - time.monotonic(), answered=drain.answered,
                                expected=drain.expected, results=snap.records, p50_ms=snap.recent_p50_ms,
                                p99_ms=snap.recent_p99_ms)
            if snap.failed:
                self.display.message(f"[{self.label} rep {self.repetition}] collector failed: {snap.failed}")
                return
            if drain.answered >= drain.expected and drain.idle_s >= settle_s:
                return
            if time.monotonic() > deadline:
                self.display.message(
                    f"[{self.label} rep {self.repetition}] drain deadline "
                    f"({format_duration_ms(self.scenario.drain_timeout)}) passed with "
                    f"{drain.expected - drain.answered:,} of {drain.expected:,} pairs unanswered; they are "
                    "reported as missing"
                )
                return
            time.sleep(0.25)

    def _write(self, engine: Engine, collector: LiveCollector | None, sampler: ResourceSampler,
               generator: GeneratorResult | None, metrics: dict[str, Any], status: str,
               faults: list[dict[str, Any]], input_append: InputAppendTimes | None) -> None:
        scenario = self.scenario
        start_ms = generator.start_epoch_ms if generator is not None else int(time.time() * 1000)
        inputs = RepetitionInputs(
            engine=self.label,
            repetition=self.repetition,
            scenario=scenario,
            timeline=results.Timeline.of(start_ms, warmup_ms=scenario.warmup, duration_ms=scenario.duration),
            records=collector.frame() if collector is not None else pd.DataFrame(),
            expected=self.expected_at_zero.shifted(start_ms) if generator is not None else None,
            read_committed=_safe_read_committed(engine),
            generator=generator,
            engine_metrics=metrics,
            resources=sampler.frame(),
            fairness={**_safe_fairness(engine), "cpus": self._cpus_setting()},  # HARNESS_FAIRNESS_KEYS
            collector=dataclasses.asdict(collector.snapshot()) if collector is not None else None,
            status=status,  # type: ignore[arg-type]
            error=self.error,
            log_tail=self.log_tail,
            faults=faults,
            input_append=input_append,
            watermark_rule=_safe_watermark_rule(engine),
        )
        result = analyse(inputs)
        self._watched = inputs
        if self.traceback:
            self.rep_dir.mkdir(parents=True, exist_ok=True)
            results.store.write_new(self.rep_dir / "traceback.txt", self.traceback)
        path = results.write_repetition(self.run_dir, result)
        c = result.summary.correctness
        verdict = "correct" if c is not None and c.correct else "NOT correct" if c is not None else status
        self.display.message(f"[{self.label} rep {self.repetition}] {status}: {verdict}; written to {path}")


def _safe_metrics(engine: Engine) -> dict[str, Any]:
    try:
        return engine.metrics()
    except Exception as exc:  # noqa: BLE001 - metrics are best effort; the run's figures do not depend on them
        return {"error": f"{type(exc).__name__}: {exc}"}


def _safe_read_committed(engine: Engine) -> bool:
    try:
        return bool(engine.read_committed)
    except Exception:  # noqa: BLE001
        return False


def _safe_fairness(engine: Engine) -> dict[str, object]:
    try:
        return engine.fairness()
    except Exception as exc:  # noqa: BLE001
        return {"error": f"{type(exc).__name__}: {exc}"}


def _safe_watermark_rule(engine: Engine) -> WatermarkRule | None:
    """The engine's rule for arrived-late events; None (the widest, global) when it cannot say."""
    try:
        return engine.watermark_rule()
    except Exception:  # noqa: BLE001 - a third-party engine's fairness may fail; the judge then allows more
        return None


def _log_tail(engine: Engine, lines: int = 40) -> list[str]:
    for path in engine.log_files():
        try:
            return path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
    return []
