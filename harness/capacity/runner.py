"""``bench capacity``: run the search of :mod:`harness.capacity.search` for each engine with real trials.

With ``capacity.trials: fresh`` (the default) each trial is one ordinary ``bench run`` of the scenario at a
constant rate R (``capacity.trial.duration`` with its warm-up, one repetition, one engine), written as a normal run
directory under ``<out>/<UTC stamp>-capacity-<scenario>/trials/<engine>-<R>/`` and judged from its ``summary.json``.
Every trial starts a fresh broker and a fresh engine, as ``bench run`` does: trials are independent — no backlog,
state, JIT warmth or broker log carries from one rate to the next — and a trial at R says exactly what
``bench run --rate R`` says.

With ``capacity.trials: stepped`` (:mod:`harness.capacity.stepped`) one broker and one engine serve a run of
several rates, each step judged like a fresh trial over its own span, and the search is
:func:`harness.capacity.search.stepped_search`.

Fresh is the default, chosen by measurement (2026-11-26, the same capacity block in both modes; docs/capacity.md
has the table): a step costs less than a fresh trial (72 against 92 s a rate for the calibration engine,
78 against 103 s for Flink) but a stepped search needs more of them (geometric refine steps instead of bisection;
a failing step runs until it is judged), so no search here finished sooner (integration test: 306 s stepped, 263 s
fresh). And the modes disagree where a step carries the steps before it: Flink passed 40,000/s stepped, warmed up
(50-55 % CPU, broker 38-40 %), while both fresh trials at 40,000/s were load-path-bound (Flink 78-80 %, broker
61-68 %, leaving the generator too little CPU: p99 publish delay 144 and 176 ms). A fresh trial at R says what
``bench run --rate R`` says; a stepped one says what a warm, long-running engine does.
"""

from __future__ import annotations

import copy
import datetime as dt
import time
from pathlib import Path
from typing import Any

from harness import results
from harness.capacity.results import CapacityOutcome, EngineSearch, write_capacity_json
from harness.capacity.search import SearchResult, TrialOutcome, TrialRecord, judge_trial, search, stepped_search
from harness.errors import HarnessError
from harness.run.progress import ProgressDisplay
from harness.scenario import CapacityConfig, Scenario, parse_scenario
from harness.units import format_count, format_duration_ms, format_percent

CALIBRATION = "calibration"
"""The built-in engine whose capacity is the load path's own ceiling on this machine."""


# ------------------------------------------------------------------------------------------------- scenario
def with_capacity_overrides(scenario: Scenario, *, source: str = "<scenario>", **overrides: Any) -> Scenario:
    """The scenario with its ``capacity`` block (defaults when it has none) changed by the command line —
    ``start``, ``max``, ``precision``, ``slo``, ``repetitions``, ``calibrate``, ``trials``, ``trial_duration``,
    ``trial_warmup``;
    None leaves a value —
    and validated again, so ``--trial-duration 5s`` is refused like ``trial: {duration: 5s}`` in the file."""
    data: dict[str, Any] = copy.deepcopy(scenario.dump())
    block = data.get("capacity") or CapacityConfig().model_dump(mode="json")
    for key in ("start", "max", "precision", "slo"):
        value = overrides.get(key)
        if value is not None:
            block[key] = format_percent(value) if key == "precision" else str(value) if key == "slo" else value
    if overrides.get("repetitions") is not None:
        block["repetitions"] = overrides["repetitions"]
    if overrides.get("calibrate") is not None:
        block["calibrate"] = bool(overrides["calibrate"])
    if overrides.get("trials") is not None:
        block["trials"] = overrides["trials"]
    for key in ("duration", "warmup"):
        value = overrides.get(f"trial_{key}")
        if value is not None:
            block["trial"][key] = format_duration_ms(value)
    data["capacity"] = block
    return parse_scenario(data, source=f"{source} (with command-line overrides)")


UNSETTLED_RETRY = 1.0
"""An unsettled trial's retry warms up longer by this many trial durations (warm-up and duration grow alike)."""


def trial_scenario(scenario: Scenario, engine: str, rate: float, *, longer_warmup: float = 0.0) -> Scenario:
    """One trial: ``engine`` alone (a label of the scenario or a registered name) at a constant ``rate`` for
    ``capacity.trial.duration`` after ``capacity.trial.warmup``, one repetition, no faults. ``longer_warmup``
    adds that many trial durations to both the warm-up and the duration (the measured span stays)."""
    config = scenario.capacity or CapacityConfig()
    extra = int(round(longer_warmup * config.trial.duration))
    data: dict[str, Any] = copy.deepcopy(scenario.dump())
    data["load"]["rate"] = float(rate)
    data["load"]["shape"] = {"type": "constant"}
    data["duration"] = format_duration_ms(config.trial.duration + extra)
    data["warmup"] = format_duration_ms(config.trial.warmup + extra)
    data["repetitions"] = 1
    data["faults"] = []
    by_name = {entry.name: entry for entry in scenario.engines}
    data["engines"] = [by_name[engine].model_dump(mode="json") if engine in by_name else engine]
    return parse_scenario(data, source=f"capacity trial of {engine} at {format_count(rate)}/s")


def engines_to_search(scenario: Scenario, names: list[str] | None) -> list[str]:
    """The engines in search order: ``names`` or the scenario's labels, with the calibration engine first when
    ``capacity.calibrate`` is on."""
    chosen = list(names) if names else [entry.name for entry in scenario.engines]
    config = scenario.capacity or CapacityConfig()
    if config.calibrate:
        chosen = [CALIBRATION, *(name for name in chosen if name != CALIBRATION)]
    return chosen


# ---------------------------------------------------------------------------------------------------- trials
class _EngineTrials:
    """What both trial modes of one engine's search hold: where trials go, how they are named, and every record
    (so an interrupted search still reports what it measured)."""

    def __init__(self, scenario: Scenario, engine: str, trials_dir: Path, display: ProgressDisplay,
                 name_suffix: str = "") -> None:
        self.scenario = scenario
        self.engine = engine
        self.trials_dir = trials_dir
        self.name_suffix = name_suffix
        """Appended to every trial directory's name (``-s2`` for an engine's second search)."""
        self.display = display
        self.records: list[TrialRecord] = []


class _Trials(_EngineTrials):
    """The trial function of one engine's search: runs and judges each rate, and keeps every record so an
    interrupted search still reports what it measured."""

    def __call__(self, rate: float) -> TrialOutcome:
        """Run and judge the trial at ``rate``. A load-path verdict is run once more at the same rate before it
        stands: on a shared machine one stall of the generator (a p99 publish delay over the limit) is common,
        and it would end the whole search. An ``unsettled`` trial is run once more with the warm-up longer by
        :data:`UNSETTLED_RETRY` × the trial's duration (the measured span unchanged); unsettled again, it fails.
        The first attempt is kept under ``first_attempt``."""
        outcome = self._attempt(rate, "")
        retry = {"load-path": ("the load path failed; once more", 0.0),
                 "unsettled": ("not settled after its warm-up; once more with a longer warm-up", UNSETTLED_RETRY)}
        if outcome.verdict in retry:
            first = {"verdict": outcome.verdict, "reason": outcome.reason, "run_dir": outcome.figures["run_dir"]}
            words, longer = retry[outcome.verdict]
            self.display.message(f"[capacity] {self.engine} at {rate:,.0f}/s: {words}")
            again = self._attempt(rate, "-again", longer_warmup=longer)
            verdict, reason = again.verdict, again.reason
            if verdict == "unsettled":
                verdict, reason = "fail", "did not settle even with the longer warm-up: " + reason
            outcome = TrialOutcome(verdict, reason, {**again.figures, "first_attempt": first})
        self.records.append(TrialRecord(rate, outcome.verdict, outcome.reason, outcome.figures))
        return outcome

    def _attempt(self, rate: float, suffix: str, longer_warmup: float = 0.0) -> TrialOutcome:
        one = trial_scenario(self.scenario, self.engine, rate, longer_warmup=longer_warmup)
        run_dir = self.trials_dir / f"{one.engines[0].name}-{rate:.0f}{self.name_suffix}{suffix}"
        self.display.message(f"[capacity] {self.engine}: trial at {rate:,.0f}/s -> {run_dir}")
        outcome = _run(one, run_dir, self.display)
        if outcome is None:
            raise KeyboardInterrupt
        figures = {**outcome.figures, "run_dir": str(run_dir.relative_to(self.trials_dir.parent))}
        words = outcome.verdict + (f": {outcome.reason}" if outcome.reason else "")
        self.display.message(f"[capacity] {self.engine} at {rate:,.0f}/s: {words}")
        return TrialOutcome(outcome.verdict, outcome.reason, figures)


class _SteppedRuns(_EngineTrials):
    """The run function of one engine's stepped search (:data:`harness.capacity.search.RunSteps`): one stepped run per
    call, every judged step kept so an interrupted search still reports what it measured."""

    def __init__(self, scenario: Scenario, engine: str, trials_dir: Path, display: ProgressDisplay,
                 name_suffix: str = "") -> None:
        super().__init__(scenario, engine, trials_dir, display, name_suffix)
        self.runs = 0
        """Stepped runs started so far (names each run's directory)."""

    def __call__(self, rates: list[float]) -> list[TrialRecord]:
        from harness.capacity.stepped import run_steps, stepped_scenario

        label = stepped_scenario(self.scenario, self.engine, rates).engines[0].name
        self.runs += 1
        run_dir = self.trials_dir / f"{label}-steps{self.runs}-{rates[0]:.0f}-{rates[-1]:.0f}{self.name_suffix}"
        shown = ", ".join(f"{r:,.0f}" for r in rates)
        self.display.message(f"[capacity] {self.engine}: stepped run at {shown}/s -> {run_dir}")
        records = run_steps(self.scenario, self.engine, rates, run_dir, self.display)
        if records is None:
            raise KeyboardInterrupt
        for record in records:
            words = record.verdict + (f": {record.reason}" if record.reason else "")
            self.display.message(f"[capacity] {self.engine} step at {record.rate:,.0f}/s: {words}")
        self.records.extend(records)
        return records


def _run(scenario: Scenario, run_dir: Path, display: ProgressDisplay) -> TrialOutcome | None:
    """Run one trial and judge it; None when it was interrupted."""
    from harness.run.runner import run_scenario  # imports the engines' machinery: only when trials really run

    outcome = run_scenario(scenario, run_dir.parent, run_dir=run_dir, display=display)
    if outcome.status == "interrupted":
        return None
    label = scenario.engines[0].name
    try:
        repetitions = results.load_run(run_dir).engines.get(label)
    except HarnessError as exc:
        return TrialOutcome("error", f"result unreadable: {exc}")
    if not repetitions:
        return TrialOutcome("error", "; ".join(outcome.failures) or "no result was written")
    config = scenario.capacity or CapacityConfig()
    return judge_trial(repetitions[0].summary, config.slo)


# ---------------------------------------------------------------------------------------------------- search
def run_capacity(scenario: Scenario, out: Path, *, engines: list[str] | None = None,
                 display: ProgressDisplay | None = None) -> CapacityOutcome:
    """Search every engine (the calibration engine first when asked) ``capacity.repetitions`` times, in rounds
    like the repetitions of ``bench run`` (round 1: every engine once, then round 2 …), so slow drift of the
    machine spreads over all engines; write ``capacity.json`` into ``out/<UTC stamp>-capacity-<scenario>/`` and
    return what was found (``bench capacity`` then renders capacity.md and capacity.png from that file). Ctrl-C
    ends the current search; what was measured is written and the outcome is ``interrupted``."""

    config = scenario.capacity or CapacityConfig()
    names = engines_to_search(scenario, engines)
    for name in names:
        trial_scenario(scenario, name, config.start)  # every engine's trial is valid before anything starts
        if config.trials == "stepped":
            from harness.capacity.stepped import stepped_scenario

            stepped_scenario(scenario, name, [config.start, config.start * config.growth])
    display = display or ProgressDisplay()
    out_dir = results.create_run_dir(Path(out).resolve(), f"capacity-{scenario.name}")
    started = dt.datetime.now(dt.timezone.utc)
    searches: list[EngineSearch] = []
    status = "complete"
    for number in range(1, config.repetitions + 1):
        for name in names:
            found = _search_once(scenario, name, number, out_dir / "trials", display)
            searches.append(found)
            if found.result.ended_by == INTERRUPTED:
                status = "interrupted"
                break
        if status == "interrupted":
            break
    outcome = CapacityOutcome(out_dir, config, searches, status)
    write_capacity_json(outcome, scenario, started)
    return outcome


INTERRUPTED = "interrupted (Ctrl-C or SIGTERM) before the search ended"


def _search_once(scenario: Scenario, name: str, number: int, trials_dir: Path,
                 display: ProgressDisplay) -> EngineSearch:
    """The ``number``-th search of engine ``name``; its trial directories are ``<engine>-<rate>`` for the first
    search and ``<engine>-<rate>-s<number>`` for the others. An interrupted search ends with :data:`INTERRUPTED`."""
    config = scenario.capacity or CapacityConfig()
    suffix = "" if number == 1 else f"-s{number}"
    trials: _Trials | _SteppedRuns
    t0 = time.monotonic()
    try:
        if config.trials == "stepped":
            trials = _SteppedRuns(scenario, name, trials_dir, display, suffix)
            result = stepped_search(trials, start=config.start, max=config.max, precision=config.precision,
                                    growth=config.growth, steps_per_run=config.steps_per_run)
        else:
            trials = _Trials(scenario, name, trials_dir, display, suffix)
            result = search(trials, start=config.start, max=config.max, precision=config.precision,
                            growth=config.growth)
    except KeyboardInterrupt:
        result = _interrupted(trials.records)
    of = f" (search {number} of {config.repetitions})" if config.repetitions > 1 else ""
    display.message(f"[capacity] {name}{of}: {_summary_line(result)} ({time.monotonic() - t0:,.0f} s)")
    return EngineSearch(name, result, time.monotonic() - t0, calibration=name == CALIBRATION, search=number)


def _interrupted(records: list[TrialRecord]) -> SearchResult:
    passed = [r.rate for r in records if r.verdict == "pass"]
    best = max(passed) if passed else None
    above = [r.rate for r in records if r.verdict == "fail" and (best is None or r.rate > best)]
    return SearchResult(best, (best, min(above) if above else None), list(records), INTERRUPTED)


def _summary_line(result: SearchResult) -> str:
    found = "no passing rate" if result.capacity is None else f"{result.capacity:,.0f}/s"
    return f"{found} after {len(result.trials)} trial(s); {result.ended_by}"
