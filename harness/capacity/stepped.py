"""``capacity.trials: stepped``: one broker and one engine per run of several rates, each step a trial.

A stepped run is one ordinary ``bench run`` of the scenario with a ``steps`` load shape: step ``k`` offers rate
``r_k`` from offset ``k × P`` on, where the step period ``P`` is ``capacity.trial.duration`` rounded up to a whole
window slide. Each step is judged like a fresh trial, by :func:`harness.capacity.search.judge_trial` over
:func:`harness.analysis.repetition.analyse_span` of the step's span — offsets ``[kP, kP + duration)`` with the first
``capacity.trial.warmup`` of it as its settle period — so a step measures exactly the windows, seconds and
answers a fresh trial at ``r_k`` measures (the rounding only leaves the few seconds before the next step
unjudged, so every step starts on a window boundary as a fresh trial does). The keep-up verdict, exactness, the
SLO and the generator's self-check (the load path: never the engine's fault) are the same code.

While the load runs, each step is judged as soon as every pair of its windows has its final count (at the latest
when the next step ends); the first step that does not pass ends the load (later steps say nothing). The load also
ends as soon as the generator is further behind its schedule than any event may be late (watermark delay − max
disorder, the self-check's own limit): that step is then recorded as ``load-path`` without being completed — the
backlog of a rate the load path cannot drive would otherwise cost minutes to send and drain. The stored
verdicts are those judged after the run, from the complete output (the drain waited for the last answers); the
live verdict only decides when to stop. Steps after the first one that did not pass are not recorded. A step
judged ``unsettled`` (not keeping up while its latency fell: still working off the previous step's backlog)
counts as failed: the settle period is the step's warm-up and is not lengthened.

The search over stepped runs is :func:`harness.capacity.search.stepped_search`. Every stepped run is a normal run
directory under ``trials/<engine>-steps<n>-<first rate>-<last rate>[-s<search>]/`` (``n``: the run's number in
its search); its repetition directory holds
``steps.json``, each judged step's summary.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from pathlib import Path
from typing import Any

from harness import results
from harness.analysis.repetition import RepetitionInputs, Span, analyse_span
from harness.capacity.search import TrialOutcome, TrialRecord, judge_trial
from harness.loadgen.generator import GeneratorResult, SecondStats, default_limits
from harness.loadgen.stats import SelfCheckLimits
from harness.loadgen.schedule import RateSchedule
from harness.run.progress import ProgressDisplay
from harness.results.model import Timeline, to_json
from harness.results.store import dump_json, write_new
from harness.scenario import CapacityConfig, Scenario, Slo, parse_scenario
from harness.units import format_count, format_duration_ms

STEPS_FILE = "steps.json"

BEHIND_SLACK_MS = 4000.0
"""Allowance on top of the self-check's limit before the live check calls the generator behind. The counts it
sees are the workers' last reports, relayed by the harness's main loop; when that loop is held up (a Flink REST
poll for the engine's metrics), the reports queue up and look seconds old: a first Flink run was stopped at
10,000/s with the generator "2.1 s behind", a rate its fresh trial had passed. A real shortfall grows without
bound (8.6 s behind at 160,000/s), so a wide allowance costs little."""
BEHIND_FOR_S = 2.0
"""...and it must be seen that far behind on looks at least this many seconds apart (a stale queue is worked off
in well under a second)."""


# ------------------------------------------------------------------------------------------------- planning
def step_period_ms(scenario: Scenario) -> int:
    """Offset between step starts: ``capacity.trial.duration`` rounded up to a whole window slide."""
    config = scenario.capacity or CapacityConfig()
    slide = scenario.window.slide_ms
    return -(-config.trial.duration // slide) * slide


def step_spans(scenario: Scenario, steps: int) -> list[Span]:
    """The judged span of each of ``steps`` steps (see the module docstring)."""
    config = scenario.capacity or CapacityConfig()
    period = step_period_ms(scenario)
    return [Span(k * period, k * period + config.trial.warmup, k * period + config.trial.duration)
            for k in range(steps)]


def stepped_scenario(scenario: Scenario, engine: str, rates: list[float]) -> Scenario:
    """One stepped run: ``engine`` alone (a label of the scenario or a registered name), the ``rates`` in order,
    one repetition, no faults; its warm-up is the first step's settle period (for the run-wide summary)."""
    config = scenario.capacity or CapacityConfig()
    period = step_period_ms(scenario)
    data: dict[str, Any] = copy.deepcopy(scenario.dump())
    data["load"]["rate"] = float(rates[0])
    data["load"]["shape"] = ({"type": "steps", "steps": [{"at": format_duration_ms(k * period), "rate": float(r)}
                                                         for k, r in enumerate(rates) if k]}
                             if len(rates) > 1 else {"type": "constant"})
    data["duration"] = format_duration_ms((len(rates) - 1) * period + config.trial.duration)
    data["warmup"] = format_duration_ms(config.trial.warmup)
    data["repetitions"] = 1
    data["faults"] = []
    by_name = {entry.name: entry for entry in scenario.engines}
    data["engines"] = [by_name[engine].model_dump(mode="json") if engine in by_name else engine]
    shown = ", ".join(format_count(r) for r in rates)
    return parse_scenario(data, source=f"stepped capacity run of {engine} at {shown}/s")


# ---------------------------------------------------------------------------------------------------- judging
def judge_step(inputs: RepetitionInputs, span: Span, slo: Slo | None) -> tuple[TrialOutcome, Any]:
    """The verdict on one step and its summary: :func:`judge_trial` of :func:`analyse_span`; ``unsettled``
    becomes ``fail`` (the settle period is not lengthened)."""
    summary = analyse_span(inputs, span)
    outcome = judge_trial(summary, slo)
    if outcome.verdict == "unsettled":
        outcome = TrialOutcome("fail", "did not settle within the step's settle period: " + outcome.reason,
                               outcome.figures)
    return outcome, summary


def judge_steps(inputs: RepetitionInputs, rates: list[float], slo: Slo | None,
                spans: list[Span]) -> list[tuple[float, Span, TrialOutcome, Any]]:
    """Every step the load completed, in order, up to and including the first that did not pass."""
    judged = []
    for rate, span in zip(rates, spans, strict=True):
        if span.end_ms > inputs.timeline.load_end_ms - inputs.timeline.load_start_ms:
            break  # the load ended before this step did
        outcome, summary = judge_step(inputs, span, slo)
        judged.append((rate, span, outcome, summary))
        if outcome.verdict != "pass":
            break
    return judged


class StepWatch:
    """The runner's :class:`~harness.run.runner.LoadWatch` for one stepped run: judges each step live and ends the
    load after the first that does not pass; keeps the analysis inputs for the judging after the run."""

    POLL_S = 1.0
    """Seconds between looks at a step that is waiting for its last answers."""

    def __init__(self, label: str, rates: list[float], spans: list[Span], slo: Slo | None,
                 display: ProgressDisplay) -> None:
        self.label = label
        self.rates = rates
        self.spans = spans
        self.slo = slo
        self.display = display
        self.next_step = 0
        """The first step not judged live yet."""
        self.stopped_at_ms: int | None = None
        self.load_path: tuple[int, str] | None = None
        """(step, why) when the load was ended because the generator fell behind in that step."""
        self.inputs: RepetitionInputs | None = None
        """What the runner analysed (set by :meth:`analysed`)."""
        self._last_look = -math.inf
        self._pairs: tuple[int, Any] | None = None
        self._behind_since: float | None = None
        """Monotonic time from which every look found the generator too far behind (None: not behind)."""
        """(step, the expected pairs of its windows) of the step being waited for."""

    def during_load(self, view: Any) -> int | None:
        """See :meth:`harness.run.runner.LoadWatch.during_load`: ends the load when the generator fell behind
        (:meth:`_generator_behind`) or a step did not pass (:meth:`_judge_live`)."""
        if self.stopped_at_ms is not None:
            return None
        elapsed = view.progress.elapsed_ms
        behind = self._generator_behind(view)
        if behind is None and not self._judge_live(view):
            return None
        if behind is not None:
            self.load_path = behind
            self.display.message(f"[capacity] {self.label} step {behind[0] + 1} at {self.rates[behind[0]]:,.0f}/s "
                                 f"(live): load-path: {behind[1]}")
        self.stopped_at_ms = int(elapsed // 1000 + 2) * 1000
        return self.stopped_at_ms

    def _judge_live(self, view: Any) -> bool:
        """Judge the first step not judged yet once every pair of its windows has its final count (at the latest
        when the next step ends); True when it did not pass. The last step is not judged live: it ends the load."""
        elapsed = view.progress.elapsed_ms
        if self.next_step >= len(self.spans) - 1:
            return False
        span = self.spans[self.next_step]
        if elapsed < span.end_ms or elapsed - self._last_look < 1000 * self.POLL_S:
            return False
        self._last_look = elapsed
        if self._pairs is None or self._pairs[0] != self.next_step:
            start = view.progress.start_epoch_ms
            pairs = view.expected.pairs
            ends = pairs["window_end"].to_numpy()
            # one frame per step: the collector then folds in only the records new since the last look
            self._pairs = (self.next_step, pairs[(ends > start + span.start_ms) & (ends <= start + span.end_ms)])
        state = view.collector.settle_state(self._pairs[1])
        deadline = span.end_ms + step_period_ms(view.scenario)
        if state.final < state.expected and elapsed < deadline:
            return False
        outcome, _ = judge_step(_live_inputs(view, self.label), span, self.slo)
        self.display.message(f"[capacity] {self.label} step {self.next_step + 1} at "
                             f"{self.rates[self.next_step]:,.0f}/s (live): {outcome.verdict}")
        self.next_step += 1
        return outcome.verdict != "pass"

    def _generator_behind(self, view: Any) -> tuple[int, str] | None:
        """(step, why) when the generator is further behind its schedule than the self-check allows any event to
        be (watermark delay − max disorder, :func:`harness.loadgen.generator.default_limits`; plus
        :data:`BEHIND_SLACK_MS` for the age of the workers' progress counts): that step would be judged
        load-path after the run, so the load ends now instead of sending the backlog. None otherwise."""
        p = view.progress
        if p.elapsed_ms <= 0:
            return None
        step = min(int(p.elapsed_ms // step_period_ms(view.scenario)), len(self.rates) - 1)
        budget = default_limits(view.scenario).max_any_delay_ms or SelfCheckLimits().max_p99_delay_ms
        behind_ms = (p.due - p.sent) / self.rates[step] * 1000.0
        if behind_ms <= budget + BEHIND_SLACK_MS:
            self._behind_since = None
            return None
        now = time.monotonic()
        if self._behind_since is None:
            self._behind_since = now
        if now - self._behind_since < BEHIND_FOR_S:
            return None
        return step, (f"generator could not drive the load: {behind_ms / 1000:,.1f} s behind its schedule at "
                      f"{p.elapsed_ms / 1000:,.0f} s of the run, more than the {budget:,.0f} ms any event may be "
                      "late (seen during the load, which was ended there)")

    def load_path_record(self, judged: list[tuple[float, Span, TrialOutcome, Any]],
                         run_dir: str) -> TrialRecord | None:
        """The record of the step the generator fell behind in, when the run was ended there before that step
        was complete and every step before it passed; None otherwise (a complete step has its own verdict)."""
        if self.load_path is None:
            return None
        step, why = self.load_path
        if len(judged) != step or any(o.verdict != "pass" for _, _, o, _ in judged):
            return None
        return TrialRecord(self.rates[step], "load-path", why, {"run_dir": run_dir, "step": step + 1})

    def analysed(self, inputs: RepetitionInputs) -> None:
        """See :meth:`harness.run.runner.LoadWatch.analysed`."""
        self.inputs = inputs


def _live_inputs(view: Any, label: str) -> RepetitionInputs:
    """The analysis inputs as far as the load has come: the output read so far, the engine's metrics now, and
    the generator taken to have sent as planned (its own figures come only at the end of the load; a load path
    that fell behind shows here as an engine falling behind, which stops the load as it should, and the verdict
    after the run names the load path)."""
    scenario, start = view.scenario, view.progress.start_epoch_ms
    schedule = RateSchedule.from_load(scenario.load, scenario.duration)
    planned = schedule.per_second()
    seconds = [SecondStats(s, int(n), int(n), 0.0) for s, n in enumerate(planned)]
    generator = GeneratorResult(
        start_epoch_ms=start, duration_ms=scenario.duration, warmup_ms=scenario.warmup, backend="confluent",
        workers=0, partitions=scenario.kafka.partitions, linger_ms=0, nice=0, events_planned=int(planned.sum()),
        events_sent=int(planned.sum()), late_events=0, flush_ts=0, target_rate=0.0, achieved_rate=0.0,
        publish_delay_ms={}, publish_delay_histogram="", seconds=seconds, valid=True, reason=None)
    return RepetitionInputs(
        engine=label, repetition=1, scenario=scenario,
        timeline=Timeline.of(start, warmup_ms=scenario.warmup, duration_ms=scenario.duration),
        records=view.collector.frame(), expected=view.expected, generator=generator,
        engine_metrics=view.metrics())


# ---------------------------------------------------------------------------------------------------- one run
def run_steps(scenario: Scenario, engine: str, rates: list[float], run_dir: Path,
              display: ProgressDisplay) -> list[TrialRecord] | None:
    """Run one stepped run over ``rates`` into ``run_dir`` and return its judged steps as trial records (see
    :func:`harness.capacity.search.stepped_search`); None when it was interrupted. A run that judged no step (the
    engine failed, the harness could not run it) gives one record for the first rate saying why."""
    from harness.run.runner import run_scenario  # imports the engines' machinery: only when trials really run

    config = scenario.capacity or CapacityConfig()
    one = stepped_scenario(scenario, engine, rates)
    label = one.engines[0].name
    spans = step_spans(scenario, len(rates))
    watch = StepWatch(label, rates, spans, config.slo, display)
    outcome = run_scenario(one, run_dir.parent, run_dir=run_dir, display=display, watch=watch)
    if outcome.status == "interrupted":
        return None
    relative = str(run_dir.relative_to(run_dir.parent.parent))
    if watch.inputs is None:
        why = "; ".join(outcome.failures) or "no result was written"
        return [TrialRecord(rates[0], "error", f"stepped run failed: {why}", {"run_dir": relative, "step": 1})]
    judged = judge_steps(watch.inputs, rates, config.slo, spans)
    records = [TrialRecord(rate, o.verdict, o.reason, {**o.figures, "run_dir": relative, "step": k,
                                                        "span_s": [span.start_ms / 1000, span.end_ms / 1000]})
               for k, (rate, span, o, _) in enumerate(judged, 1)]
    cut = watch.load_path_record(judged, relative)
    if judged:
        _write_steps(run_dir, label, judged)
    if records or cut is not None:
        return records + ([cut] if cut is not None else [])
    summary = _whole_run_summary(run_dir, label)  # nothing judged: say why from the run as a whole
    whole = judge_trial(summary, config.slo) if summary is not None else None
    verdict = whole.verdict if whole is not None and whole.verdict in ("fail", "error") else "error"
    why = whole.reason if whole is not None else "; ".join(outcome.failures)
    return [TrialRecord(rates[0], verdict, f"the first step was not completed: {why}", {"run_dir": relative, "step": 1})]


def _whole_run_summary(run_dir: Path, label: str) -> Any:
    try:
        repetitions = results.load_run(run_dir).engines.get(label)
    except Exception:  # noqa: BLE001 - only used to say why; a missing result is said by the caller
        return None
    return repetitions[0].summary if repetitions else None


def _write_steps(run_dir: Path, label: str, judged: list[tuple[float, Span, TrialOutcome, Any]]) -> None:
    """``steps.json`` beside the repetition's summary: per judged step its rate, span, verdict and summary."""
    rows = [{"step": k, "rate": rate, "span_ms": dataclasses.asdict(span), "verdict": o.verdict,
             "reason": o.reason, "summary": to_json(dataclasses.asdict(summary))}
            for k, (rate, span, o, summary) in enumerate(judged, 1)]
    write_new(results.repetition_dir(run_dir, label, 1) / STEPS_FILE, dump_json(rows))
