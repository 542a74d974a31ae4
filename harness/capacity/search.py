"""``bench capacity``: the search for an engine's sustainable throughput, and the verdict on one trial.

Sustainable throughput (Karimov et al., ICDE 2018) is the highest constant offered rate an engine keeps up with,
every answer exact and, when one is given, within a latency objective. The search here is pure: it is given a
``trial`` function (a rate in, a :class:`TrialOutcome` out) and decides which rates to try:

1. **grow** geometrically from ``start`` (× ``growth``) until the first failed trial, or until ``max`` passed;
   when the very first trial fails, **step down** instead (halving, at most down to :data:`MIN_SEARCH_RATE`)
   until a trial passes, so an engine slower than ``start`` is bracketed too;
2. **bisect** between the last passing and the first failing rate until ``(fail − pass) / pass <= precision``.

A trial's verdict is one of:

* ``pass`` — the measurement is valid, the keep-up verdict is True, every pair is exact and the SLO holds;
* ``fail`` — the engine fell behind, answered wrongly, broke the SLO or failed: the engine's limit;
* ``load-path`` — the generator could not drive the rate (its self-check failed): the harness's limit, not the
  engine's. The search ends there, "bounded by the load path at R", and R is never reported as a capacity;
* ``error`` — the trial could not be judged for another reason (collector failed, a harness error): the search
  ends;
* ``unsettled`` — the engine did not keep up *and* its latency was falling over the measured windows: it was
  still working off the backlog of its own start-up (Spark's first micro-batches on a cold JVM took 12–30 s each
  on this machine), so the trial says nothing about the rate yet. The trial runner runs it once more with a longer
  warm-up (:data:`UNSETTLED_RETRY`); a second ``unsettled`` counts as ``fail`` ("did not settle"). The search
  itself never sees this verdict.

Rates are whole events per second, so trial directories and tables name them exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.analysis.keepup import MAX_LATENCY_SLOPE
from harness.results.model import RepetitionSummary
from harness.scenario import Slo
from harness.units import MAX_RATE, format_percent
from harness.analysis.verdicts import still_catching_up

Verdict = Literal["pass", "fail", "load-path", "error", "unsettled"]
ENDING_VERDICTS: tuple[Verdict, ...] = ("load-path", "error")
"""Verdicts that end a search at once: beyond them nothing can be said about the engine."""
MIN_SEARCH_RATE = 10.0
"""The lowest rate a search steps down to (events/s) when its first trial fails: below it a windowed count has
too few events per window to tell an engine's limit from its start-up."""


@dataclass(frozen=True)
class TrialOutcome:
    """What one trial at one rate found: the verdict, why (in words), and the figures the tables show."""

    verdict: Verdict
    reason: str
    """For a pass: empty, or why its latency figures are not steady state (passed while still catching up);
    else the failed criteria or the load-path problem, in words."""
    figures: dict[str, Any] = field(default_factory=dict)
    """Optional measured figures (latency p50/p99, processed rate, CPU, RSS, the trial's run directory)."""


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a search, in the order they ran."""

    rate: float
    verdict: Verdict
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchResult:
    """The answer of one search."""

    capacity: float | None
    """The highest passing rate (events/s); None when no trial passed."""
    bracket: tuple[float | None, float | None]
    """(highest pass, lowest engine failure above it); either side None when no such trial ran."""
    trials: list[TrialRecord]
    ended_by: str
    """The criterion that ended the search, in words."""
    load_path_bound: float | None = None
    """The rate the load path could not drive, when that ended the search: the capacity is at least
    ``capacity`` but was not measured beyond."""


def search(
    trial: Callable[[float], TrialOutcome],
    *,
    start: float,
    max: float | None = None,  # noqa: A002 - the scenario's field name
    precision: float,
    growth: float,
) -> SearchResult:
    """Run the grow-then-bisect search described in the module docstring; ``trial`` is called once per rate,
    one at a time, with whole rates in events/s."""
    if start <= 0 or growth <= 1 or precision <= 0:
        raise ValueError(f"search needs start > 0, growth > 1, precision > 0 (got {start}, {growth}, {precision})")
    ceiling = float(max if max is not None else MAX_RATE)
    trials: list[TrialRecord] = []

    def run(rate: float) -> TrialRecord:
        outcome = trial(rate)
        record = TrialRecord(rate, outcome.verdict, outcome.reason, dict(outcome.figures))
        trials.append(record)
        return record

    passed, failed, ended = _grow(run, _whole(start), ceiling, growth)
    if ended is None:
        passed, failed, ended = _bisect(run, passed, failed, precision)  # type: ignore[arg-type]
    bound = trials[-1].rate if trials and trials[-1].verdict == "load-path" else None
    return SearchResult(passed, (passed, failed), trials, ended, bound)


_Run = Callable[[float], TrialRecord]


def _grow(run: _Run, rate: float, ceiling: float, growth: float) -> tuple[float | None, float | None, str | None]:
    """(last pass, first fail, why it ended or None to go on bisecting)."""
    passed: float | None = None
    while True:
        record = run(rate)
        if record.verdict in ENDING_VERDICTS:
            return passed, None, _ending_words(record)
        if record.verdict == "fail":
            if passed is None:
                return _step_down(run, rate)
            return passed, rate, None
        passed = rate
        if rate >= ceiling:
            return passed, None, f"max reached: passed at the highest rate allowed ({ceiling:,.0f}/s)"
        rate = min(_whole(rate * growth) if rate * growth >= rate + 1 else rate + 1, ceiling)


def _step_down(run: _Run, failed: float) -> tuple[float | None, float | None, str | None]:
    """After a failing first trial: halve the rate until a trial passes (then bisect as usual), at most down to
    :data:`MIN_SEARCH_RATE`."""
    while True:
        rate = _whole(failed / 2)
        if rate < MIN_SEARCH_RATE:
            return None, failed, (f"no passing rate: every trial down to {failed:,.0f}/s failed (the lowest step, "
                                  f"{MIN_SEARCH_RATE:,.0f}/s, is not tried below)")
        record = run(rate)
        if record.verdict in ENDING_VERDICTS:
            return None, failed, _ending_words(record)
        if record.verdict == "pass":
            return rate, failed, None
        failed = rate


def _bisect(run: _Run, passed: float, failed: float, precision: float) -> tuple[float, float, str]:
    """Halve the bracket until it is within ``precision`` of the pass side; returns (pass, fail, why)."""
    while (failed - passed) / passed > precision:
        mid = _whole((passed + failed) / 2)
        if mid <= passed or mid >= failed:  # whole rates: the bracket cannot be halved further
            break
        record = run(mid)
        if record.verdict in ENDING_VERDICTS:
            return passed, failed, _ending_words(record)
        if record.verdict == "pass":
            passed = mid
        else:
            failed = mid
    width = (failed - passed) / passed
    return passed, failed, (f"precision reached: bracket {passed:,.0f}-{failed:,.0f}/s is "
                            f"{format_percent(round(width, 4))} wide (<= {format_percent(precision)})"
                            if width <= precision else
                            f"bracket {passed:,.0f}-{failed:,.0f}/s cannot be split in whole events/s")


# ------------------------------------------------------------------------------------------- the stepped search
RunSteps = Callable[[list[float]], list[TrialRecord]]
"""One stepped run (:mod:`harness.capacity.stepped`): given ascending whole rates, it returns the judged steps in
order — a prefix of the rates that ends at the first step that did not pass, or earlier when the run ended before
judging more (never empty: a run that judged nothing returns one ``error`` or ``fail`` record for the first rate)."""


def stepped_search(
    run_steps: RunSteps,
    *,
    start: float,
    max: float | None = None,  # noqa: A002 - the scenario's field name
    precision: float,
    growth: float,
    steps_per_run: int,
) -> SearchResult:
    """The search with stepped runs instead of one trial per rate, each step judged like a trial:

    1. **climb**: runs of up to ``steps_per_run`` rates growing × ``growth`` from ``start`` (the next run going on
       from the rate after the last judged one) until a step fails or ``max`` passed;
    2. **refine**: runs over the open bracket (pass P, fail F) at the geometric rates ``P·q^i`` strictly inside
       it, ``q = (F/P)^(1/m)`` with ``m`` the fewest parts of at most ``1 + precision`` each, but at most
       ``steps_per_run + 1`` parts per run; the first failing step and the last pass before it are the new
       bracket, until it is within ``precision``.

    A load-path verdict is run once more, in a new run from that rate (as :mod:`harness.capacity.runner` does for
    fresh trials); a second one, or an ``error``, ends the search."""
    if start <= 0 or growth <= 1 or precision <= 0 or steps_per_run < 1:
        raise ValueError(f"search needs start > 0, growth > 1, precision > 0, steps_per_run >= 1 (got {start}, "
                         f"{growth}, {precision}, {steps_per_run})")
    ceiling = float(max if max is not None else MAX_RATE)
    state = _SteppedState(run_steps)
    passed, failed, ended = state.climb(_whole(start), ceiling, growth, steps_per_run)
    while ended is None:
        assert passed is not None and failed is not None
        if (failed - passed) / passed <= precision:
            break
        rates = _refine_rates(passed, failed, precision, steps_per_run)
        if not rates:
            ended = f"bracket {passed:,.0f}-{failed:,.0f}/s cannot be split in whole events/s"
            break
        passed, failed, ended = state.refine(rates, passed, failed)
    if ended is None:
        width = (failed - passed) / passed  # type: ignore[operator]
        ended = (f"precision reached: bracket {passed:,.0f}-{failed:,.0f}/s is {format_percent(round(width, 4))} "
                 f"wide (<= {format_percent(precision)})")
    trials = state.trials
    bound = trials[-1].rate if trials and trials[-1].verdict == "load-path" else None
    return SearchResult(passed, (passed, failed), trials, ended, bound)


class _SteppedState:
    """The trials of a stepped search so far, and the one load-path retry each rate gets."""

    def __init__(self, run_steps: RunSteps) -> None:
        self.run_steps = run_steps
        self.trials: list[TrialRecord] = []
        self.retried: set[float] = set()

    def run(self, rates: list[float]) -> list[TrialRecord]:
        records = self.run_steps(rates)
        if not records:
            raise ValueError(f"a stepped run over {rates} judged no step (it must say why in a record)")
        self.trials.extend(records)
        return records

    def _retry(self, record: TrialRecord) -> bool:
        """True when ``record`` is a first load-path verdict at its rate: run that rate once more."""
        if record.verdict != "load-path" or record.rate in self.retried:
            return False
        self.retried.add(record.rate)
        return True

    def climb(self, rate: float, ceiling: float, growth: float,
              per_run: int) -> tuple[float | None, float | None, str | None]:
        passed: float | None = None
        while True:
            rates = _climb_rates(rate, ceiling, growth, per_run)
            records = self.run(rates)
            for record in records:
                if record.verdict == "pass":
                    passed = record.rate
                    continue
                if self._retry(record):
                    break
                if record.verdict in ENDING_VERDICTS:
                    return passed, None, _ending_words(record)
                if passed is None:
                    return self.step_down(record.rate)
                return passed, record.rate, None
            last = records[-1]
            if last.verdict == "pass":
                if last.rate >= ceiling:
                    return passed, None, f"max reached: passed at the highest rate allowed ({ceiling:,.0f}/s)"
                rate = rates[len(records)] if len(records) < len(rates) else _grown(last.rate, growth, ceiling)
            else:
                rate = last.rate  # the load-path retry

    def step_down(self, failed: float) -> tuple[float | None, float | None, str | None]:
        """After a failing first step: runs of one step, halving the rate until one passes (as the fresh search's
        :func:`_step_down`)."""
        while True:
            rate = _whole(failed / 2)
            if rate < MIN_SEARCH_RATE:
                return None, failed, (f"no passing rate: every trial down to {failed:,.0f}/s failed (the lowest "
                                      f"step, {MIN_SEARCH_RATE:,.0f}/s, is not tried below)")
            [record] = self.run([rate])[:1]
            if record.verdict == "pass":
                return rate, failed, None
            if self._retry(record):
                continue
            if record.verdict in ENDING_VERDICTS:
                return None, failed, _ending_words(record)
            failed = rate

    def refine(self, rates: list[float], passed: float, failed: float) -> tuple[float, float, str | None]:
        records = self.run(rates)
        for record in records:
            if record.verdict == "pass":
                passed = record.rate
                continue
            if self._retry(record):
                return passed, failed, None  # the next refine run starts above the last pass, with this rate
            if record.verdict in ENDING_VERDICTS:
                return passed, failed, _ending_words(record)
            return passed, record.rate, None
        return passed, failed, None


def _climb_rates(rate: float, ceiling: float, growth: float, per_run: int) -> list[float]:
    """Up to ``per_run`` whole rates from ``rate`` × ``growth``, the last not above ``ceiling``."""
    rates = [min(rate, ceiling)]
    while len(rates) < per_run and rates[-1] < ceiling:
        rates.append(_grown(rates[-1], growth, ceiling))
    return rates


def _grown(rate: float, growth: float, ceiling: float) -> float:
    return min(_whole(rate * growth) if rate * growth >= rate + 1 else rate + 1, ceiling)


def _refine_rates(passed: float, failed: float, precision: float, per_run: int) -> list[float]:
    """The whole rates strictly inside (passed, failed) of one refine run (see :func:`stepped_search`)."""
    ratio = failed / passed
    parts = min(per_run + 1, max(2, math.ceil(math.log(ratio) / math.log(1 + precision) - 1e-9)))
    q = ratio ** (1 / parts)
    rates = sorted({_whole(passed * q ** i) for i in range(1, parts)})
    return [r for r in rates if passed < r < failed]


def _ending_words(record: TrialRecord) -> str:
    if record.verdict == "load-path":
        return f"bounded by the load path at {record.rate:,.0f}/s: {record.reason}"
    return f"trial at {record.rate:,.0f}/s could not be judged: {record.reason}"


def _whole(rate: float) -> float:
    return float(max(1, round(rate)))


# --------------------------------------------------------------------------------------------- one trial's verdict
_SLO_FIELDS = {50.0: "p50_ms", 90.0: "p90_ms", 99.0: "p99_ms", 99.9: "p99_9_ms"}


def judge_trial(summary: RepetitionSummary, slo: Slo | None) -> TrialOutcome:
    """The verdict on one trial from its repetition summary (the module docstring gives the order of the
    checks: the load path first, so a rate the generator could not drive never counts against the engine)."""
    figures = trial_figures(summary)
    generator = summary.generator
    if generator is not None and not generator.valid:
        return TrialOutcome("load-path", generator.reason or "the generator could not drive the load", figures)
    if summary.status == "failed":
        error = summary.error or "no error message"
        # the runner marks its own bugs "harness error: ..." and a result it could not write "result not
        # written: ...": neither says anything about the engine
        own = error.startswith(("harness error:", "result not written:"))
        return TrialOutcome("error" if own else "fail", error if own else f"engine failed: {error}", figures)
    if not summary.valid:
        return TrialOutcome("error", "; ".join(summary.invalid_reasons), figures)
    problems = _engine_problems(summary, slo)
    keep_up = summary.sustained
    if keep_up.sustained is False and (keep_up.latency_slope_ms_per_s or 0) < -MAX_LATENCY_SLOPE:
        return TrialOutcome("unsettled", "; ".join([
            f"latency falling {-keep_up.latency_slope_ms_per_s:,.0f} ms per s: still working off its start-up",
            *problems]), figures)
    if not problems and still_catching_up(keep_up):
        problems_words = (f"passed while still catching up (processed {keep_up.processed_ratio or 0:.0%} of the "
                          "achieved rate or latency falling): its latency figures include its start-up")
        return TrialOutcome("pass", problems_words, figures)
    return TrialOutcome("fail" if problems else "pass", "; ".join(problems), figures)


def _engine_problems(summary: RepetitionSummary, slo: Slo | None) -> list[str]:
    problems: list[str] = []
    keep_up = summary.sustained
    if keep_up.sustained is None:
        problems.append("keep-up could not be judged: " + "; ".join(keep_up.skipped))
    elif not keep_up.sustained:
        problems.append("not sustained: " + "; ".join(keep_up.failed))
    c = summary.correctness
    if c is None:
        problems.append("no answers were checked")
    elif not c.correct:
        problems.append(f"incorrect: {c.missing} missing, {c.wrong} wrong, {c.extra} extra of {c.expected} pairs")
    if slo is not None:
        value = getattr(summary.result_latency, _SLO_FIELDS[slo.percentile])
        if value is None or value > slo.limit_ms:
            shown = "none" if value is None else f"{value / 1000:,.2f} s"
            problems.append(f"SLO {slo}: result latency {slo.label} was {shown}")
    return problems


def trial_figures(summary: RepetitionSummary) -> dict[str, Any]:
    """The figures a capacity table shows for one trial: result latency p50/p99 (ms), achieved and processed
    rate (events/s), the engine's mean CPU (% of one core) and peak RSS (bytes)."""
    resources = summary.resources.get(summary.engine)
    return {
        "p50_ms": summary.result_latency.p50_ms,
        "p99_ms": summary.result_latency.p99_ms,
        "achieved_rate": summary.throughput.achieved_rate,
        "processed_rate": summary.throughput.processed_rate,
        "cpu_mean_percent": None if resources is None else resources.cpu_mean_percent,
        "rss_max_bytes": None if resources is None else resources.rss_max_bytes,
    }
