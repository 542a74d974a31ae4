"""From what one engine × repetition produced to its result: the analysis entry point, :func:`analyse`.

Called by the runner once per engine × repetition after the engine stopped (nothing here runs inside a measured
period). Pure: no I/O; the store writes the result (:mod:`harness.results.store`).

    judge (harness.analysis.judge)         → pairs, correctness, latencies of measured exact pairs
    histograms (harness.histograms) → latency percentiles
    series (harness.analysis.series)       → per-second rates, input lag, latency; the engine's processed rate
    keep-up (harness.analysis.keepup)      → sustained or not, and which criterion failed
    verdicts (harness.analysis.verdicts)   → invalid reasons and warnings, in words
    input delay (harness.analysis.input_delay) → input append − intended send time, when the input topic was read back
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness import histograms
from harness.analysis import fault_figures
from harness.analysis import verdicts
from harness.engines.base import normalise_fairness
from harness.analysis.arrival import WatermarkRule
from harness.analysis.input_delay import InputAppendTimes, arrived_late, summarize_input_delay
from harness.analysis.judge import Judgement, empty_records, judge, ordered, visible_ms
from harness.analysis.keepup import KeepUp, judge_keep_up, output_processed_rate
from harness.loadgen import GeneratorResult
from harness.loadgen.schedule import RateSchedule
from harness.analysis.oracle import Expected
from harness.analysis.resources import core_us_per_event, summarize
from harness.results.model import (
    FORMAT_VERSION,
    FairnessValue,
    GeneratorSummary,
    InputDelaySummary,
    LatencySummary,
    RepetitionResult,
    RepetitionSummary,
    Status,
    ThroughputSummary,
    Timeline,
    to_json,
)
from harness.scenario import Scenario
from harness.analysis.series import InputRows, mean_over, per_second_series
from harness.workload import FLUSH_USER, Windows, is_measured

CLOCK_NOTE = (
    "result latency = visible time (broker LogAppendTime; for read_committed output the later of it and the "
    "collector's receive time, i.e. the commit) − window_end, broker host clock; event-time latency = the same − "
    "largest event ts (generator host clock: ts is the intended send time)"
)


@dataclass(frozen=True, eq=False)
class RepetitionInputs:
    """Everything one engine × repetition produced, as the runner hands it over."""

    engine: str
    """The engine's label in the scenario."""
    repetition: int
    scenario: Scenario
    timeline: Timeline
    records: pd.DataFrame
    """The collector's frame (``LiveCollector.frame()``); empty when nothing was read."""
    expected: Expected | None
    """The oracle's table for this repetition's start; None when the load never started."""
    read_committed: bool = False
    generator: GeneratorResult | None = None
    engine_metrics: Mapping[str, Any] = field(default_factory=dict)
    resources: pd.DataFrame | None = None
    fairness: Mapping[str, object] = field(default_factory=dict)
    """``Engine.fairness()``: each value a ``Setting`` (value + detail) or a plain string."""
    collector: Mapping[str, Any] | None = None
    """The collector's final counters (``dataclasses.asdict(LiveCollector.snapshot())``)."""
    status: Status = "ok"
    error: str | None = None
    log_tail: Sequence[str] = ()
    input_append: InputAppendTimes | None = None
    """The input topic read back after the drain (``harness.analysis.input_delay.read_append_times``); None when not read."""
    faults: Sequence[Mapping[str, Any]] = ()
    """The fault injector's records (:meth:`harness.run.faults.FaultInjector.records`), one per scenario fault."""
    watermark_rule: WatermarkRule | None = None
    """:meth:`harness.engines.base.Engine.watermark_rule`; None: the one the fairness ``watermark`` states."""


def analyse(inputs: RepetitionInputs) -> RepetitionResult:
    """The result of one engine × repetition (see the module docstring)."""
    timeline, window = inputs.timeline, inputs.scenario.window
    records = inputs.records if len(inputs.records) else empty_records()
    as_intended, expected, judgement = _judged(inputs, records)
    pairs = judgement.pairs
    measured, timed = _measured(inputs, pairs)
    result_hist = histograms.record(pairs.loc[timed, "result_latency_ms"].to_numpy())
    event_hist = histograms.record(pairs.loc[timed, "event_time_latency_ms"].to_numpy())

    series, in_period = _series(inputs, records, pairs, measured)
    throughput = _throughput(inputs, series, in_period)
    keep_up = _keep_up(inputs, throughput, series, in_period, pairs.loc[timed])
    generator = _generator_summary(inputs.generator)
    collector = _collector_counters(inputs.collector, records)
    invalid = verdicts.invalid_reasons(status=inputs.status, error=inputs.error, generator=generator,
                                       collector=collector, records=len(records))
    resources = inputs.resources if inputs.resources is not None else pd.DataFrame(columns=["t_ms", "component"])
    summary = RepetitionSummary(
        format_version=FORMAT_VERSION,
        engine=inputs.engine,
        repetition=int(inputs.repetition),
        status=inputs.status,
        error=inputs.error,
        log_tail=list(inputs.log_tail),
        valid=not invalid,
        invalid_reasons=invalid,
        warnings=[],
        timeline=timeline,
        window_size_ms=window.size,
        window_slide_ms=window.slide_ms,
        watermark_delay_ms=window.watermark_delay,
        clock=CLOCK_NOTE,
        result_latency=_latency_summary(result_hist),
        event_time_latency=_latency_summary(event_hist),
        throughput=throughput,
        correctness=judgement.correctness if inputs.expected is not None and inputs.status != "failed" else None,
        generator=generator,
        sustained=keep_up,
        resources=summarize(resources, timeline.warmup_end_ms, timeline.load_end_ms),
        fairness=fairness_values(inputs.fairness),
        collector=collector,
        read_committed=inputs.read_committed,
        input_delay=_input_delay(inputs, expected.arrived_late,
                                 _arrived_late_dropped(as_intended, expected, judgement.pairs)),
        faults=_faults(inputs, records, pairs),
    )
    cost = core_us_per_event(summary.resources.get(inputs.engine), throughput.processed_rate)
    summary = dataclasses.replace(summary, warnings=verdicts.repetition_warnings(summary),
                                  engine_core_us_per_event=cost)
    return RepetitionResult(
        summary=summary,
        series=series,
        pairs=pairs,
        result_histogram=result_hist.histogram,
        event_time_histogram=event_hist.histogram,
        engine_metrics=dict(inputs.engine_metrics),
        resources=resources,
        generator=to_json(inputs.generator.to_json()) if inputs.generator is not None else None,
    )



def _judged(inputs: RepetitionInputs, records: pd.DataFrame) -> tuple[Expected, Expected, Judgement]:
    """The expected pairs as intended, the same allowing the events that arrived late, and the answers judged
    against the latter."""
    window = inputs.scenario.window
    as_intended = inputs.expected if inputs.expected is not None else _no_expectation(window.size // window.slide_ms)
    expected = _allowing_arrived_late(inputs, as_intended)
    return as_intended, expected, judge(records, expected, read_committed=inputs.read_committed)


def _measured(inputs: RepetitionInputs, pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Masks over the judged pairs: the measured windows, and those of them with a result latency."""
    timeline, window = inputs.timeline, inputs.scenario.window
    measured = is_measured(pairs["window_end"].to_numpy(), warmup_end_ms=timeline.warmup_end_ms,
                           load_end_ms=timeline.load_end_ms, watermark_delay_ms=window.watermark_delay)
    return measured, measured & pairs["result_latency_ms"].notna().to_numpy()


def _keep_up(inputs: RepetitionInputs, throughput: ThroughputSummary, series: pd.DataFrame, in_period: np.ndarray,
             timed: pd.DataFrame) -> KeepUp:
    """The keep-up verdict over the measured seconds and the measured pairs with a latency (``timed``)."""
    window = inputs.scenario.window
    return judge_keep_up(
        processed_rate=throughput.processed_rate_engine,
        achieved_rate=throughput.achieved_rate,
        lag=series["input_lag"].to_numpy(dtype=float)[in_period],
        window_end=timed["window_end"].to_numpy(),
        latency_ms=timed["result_latency_ms"].to_numpy(),
        output_rate=output_processed_rate(timed["window_end"].to_numpy(), timed["visible_ms"].to_numpy(),
                                          timed["got"].to_numpy(), window.size // window.slide_ms),
    )

# ------------------------------------------------------------------------------------------ one span of a run
@dataclass(frozen=True)
class Span:
    """A part of one run's load judged on its own as if it were a run of its own (a step of ``bench capacity``'s
    stepped trials). Offsets in ms from the load's start; ``start_ms < measured_from_ms < end_ms``."""

    start_ms: int
    measured_from_ms: int
    """Where its measured period begins: ``[start_ms, measured_from_ms)`` plays the warm-up's part."""
    end_ms: int


def analyse_span(inputs: RepetitionInputs, span: Span) -> RepetitionSummary:
    """The summary of one span of a repetition, by :func:`analyse` itself (one place for every verdict: the
    keep-up criteria, exactness, latency percentiles, the generator's self-check), given only the span:

    * timeline: warm-up end = ``measured_from_ms``, load end = ``end_ms`` (so the measured windows are those ending
      after ``measured_from_ms`` that the span's own events close, and rates, input lag and resources are taken
      over its measured seconds);
    * answers and expected pairs: those of the windows ending within ``(start_ms, end_ms]`` only;
    * generator: the self-check and rates over the span's seconds (:func:`harness.loadgen.stats.assess_span`);
    * no input-delay read-back and no faults (run-wide figures).

    Called after the run, once per span, with the inputs the runner analysed."""
    origin = inputs.timeline.load_start_ms
    lo, hi = origin + span.start_ms, origin + span.end_ms

    def within(frame: pd.DataFrame) -> pd.DataFrame:
        ends = frame["window_end"].to_numpy(dtype=np.int64)
        return frame[(ends > lo) & (ends <= hi)]

    expected = inputs.expected
    if expected is not None:
        expected = dataclasses.replace(expected, pairs=within(expected.pairs).reset_index(drop=True))
    records = within(inputs.records) if len(inputs.records) else inputs.records
    timeline = Timeline(origin, origin + span.measured_from_ms, hi)
    generator = _span_generator(inputs.generator, span, inputs.scenario) if inputs.generator is not None else None
    one = dataclasses.replace(inputs, timeline=timeline, records=records.reset_index(drop=True), expected=expected,
                              generator=generator, input_append=None, faults=())
    return analyse(one).summary


def _span_generator(gen: GeneratorResult, span: Span, scenario: Scenario) -> GeneratorResult:
    """The generator's result as if its load had been the span: rates over the span's measured seconds, and its
    self-check over the span (the per-second series stays the whole run's: the series are by load second)."""
    from harness.loadgen.generator import default_limits
    from harness.loadgen.stats import assess_span

    first, settle, last = span.start_ms // 1000, (span.measured_from_ms - span.start_ms) // 1000, span.end_ms // 1000
    seconds = [s for s in gen.seconds if first <= s.second < last]
    column = {key: np.array([getattr(s, key) for s in seconds]) for key in ("target", "achieved", "delay_max_ms",
                                                                           "slow")}
    valid, reason = assess_span(column["target"], column["achieved"], column["delay_max_ms"], column["slow"], settle,
                                default_limits(scenario), first_second=first)
    measured_s = max(len(seconds) - settle, 1)
    return dataclasses.replace(
        gen, duration_ms=span.end_ms - span.start_ms, warmup_ms=span.measured_from_ms - span.start_ms,
        target_rate=float(column["target"][settle:].sum()) / measured_s,
        achieved_rate=float(column["achieved"][settle:].sum()) / measured_s,
        events_sent=int(column["achieved"].sum()), valid=valid, reason=reason,
        publish_delay_ms={"max": float(column["delay_max_ms"].max()) if seconds else 0.0},
    )


def _faults(inputs: RepetitionInputs, records: pd.DataFrame, pairs: pd.DataFrame) -> list[dict[str, Any]]:
    """Each injected fault with its figures (:func:`harness.analysis.fault_figures.measured_faults`)."""
    if not inputs.faults:
        return []
    recs = ordered(records)
    visible = visible_ms(recs, read_committed=inputs.read_committed)
    found = fault_figures.measured_faults([dict(f) for f in inputs.faults], pairs, visible,
                                          window_size_ms=inputs.scenario.window.size,
                                          baseline_from_ms=inputs.timeline.warmup_end_ms)
    return [{key: to_json(value) for key, value in fault.items()} for fault in found]


def _series(inputs: RepetitionInputs, records: pd.DataFrame, pairs: pd.DataFrame,
            measured: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """The per-second series and the mask of its measured seconds (warm-up end .. load end)."""
    timeline, window = inputs.timeline, inputs.scenario.window
    recs = ordered(records)
    recs = recs.assign(visible_ms=visible_ms(recs, read_committed=inputs.read_committed))
    gen_seconds = None
    if inputs.generator is not None and inputs.generator.seconds:
        gen_seconds = pd.DataFrame([dataclasses.asdict(s) for s in inputs.generator.seconds])
    duration_s = math.ceil((timeline.load_end_ms - timeline.load_start_ms) / 1000)
    series = per_second_series(
        timeline.load_start_ms, recs, pairs, measured=measured, per_event=window.size // window.slide_ms,
        generator_seconds=gen_seconds, input_rows=InputRows(inputs.engine_metrics.get("input_rows") or []),
        min_seconds=duration_s,
    )
    warm_s = (timeline.warmup_end_ms - timeline.load_start_ms) // 1000
    in_period = ((series["second"] >= warm_s) & (series["second"] < duration_s)).to_numpy()
    return series, in_period


def _throughput(inputs: RepetitionInputs, series: pd.DataFrame, in_period: np.ndarray) -> ThroughputSummary:
    timeline, gen = inputs.timeline, inputs.generator
    rows = InputRows(inputs.engine_metrics.get("input_rows") or [])
    engine_rate = rows.rate(timeline.warmup_end_ms, timeline.load_end_ms) if rows else None
    output_rate = mean_over(series["processed_rate_output"], in_period)
    return ThroughputSummary(
        target_rate=gen.target_rate if gen is not None else mean_over(series["target_rate"], in_period),
        achieved_rate=gen.achieved_rate if gen is not None else mean_over(series["achieved_rate"], in_period),
        processed_rate=engine_rate if engine_rate is not None else output_rate,
        processed_rate_source="engine input rows" if engine_rate is not None else "output",
        processed_rate_output=output_rate,
        processed_rate_engine=engine_rate,
        results_per_s=mean_over(series["results_per_s"], in_period),
        events_sent=gen.events_sent if gen is not None else None,
    )


def fairness_values(fairness: Mapping[str, object]) -> dict[str, FairnessValue]:
    """``Engine.fairness()`` as stored (:func:`harness.engines.base.normalise_fairness`: a ``Setting`` keeps its
    value and detail, a plain string from an engine written before settings were structured is its value)."""
    settings = normalise_fairness(fairness)  # type: ignore[arg-type]
    return {key: FairnessValue(s.value, s.detail or s.value) for key, s in settings.items()}


def _latency_summary(recorded: histograms.Recorded) -> LatencySummary:
    p = histograms.percentiles(recorded.histogram)
    return LatencySummary(
        pairs=int(recorded.histogram.get_total_count()), negative=recorded.negative, overflow=recorded.overflow,
        p50_ms=p["p50"], p90_ms=p["p90"], p99_ms=p["p99"], p99_9_ms=p["p99_9"], max_ms=p["max"], mean_ms=p["mean"],
    )


def _generator_summary(gen: GeneratorResult | None) -> GeneratorSummary | None:
    if gen is None:
        return None
    return GeneratorSummary(
        valid=gen.valid, reason=gen.reason, target_rate=gen.target_rate, achieved_rate=gen.achieved_rate,
        events_sent=gen.events_sent, late_events=gen.late_events, publish_delay_ms=dict(gen.publish_delay_ms),
        backend=gen.backend, workers=gen.workers, nice=gen.nice,
    )


def _allowing_arrived_late(inputs: RepetitionInputs, expected: Expected) -> Expected:
    """``expected`` allowing for the on-time events that arrived late in the input topic (read back after the
    drain; :func:`harness.analysis.input_delay.arrived_late`), when it was read back."""
    times = inputs.input_append
    if times is None or times.ts is None or inputs.expected is None:
        return expected
    scenario = inputs.scenario
    schedule = RateSchedule.from_load(scenario.load, scenario.duration)
    load = times.seq < schedule.total_events
    deliberately = np.zeros(len(times.seq), dtype=bool)
    if scenario.load.late.fraction > 0:
        intended = inputs.timeline.load_start_ms + np.floor(schedule.offsets_of(times.seq[load])).astype(np.int64)
        deliberately[load] = intended - times.ts[load] >= scenario.load.late.by
    late = arrived_late(times, watermark_delay_ms=scenario.window.watermark_delay,
                        total_events=schedule.total_events, deliberately_late=deliberately,
                        rule=watermark_rule(inputs))
    if not late.any():
        return expected
    window = scenario.window
    windows = Windows(window.size, window.slide_ms, window.watermark_delay)
    return expected.allowing_arrived_late(times.user[late], times.ts[late], windows)


def watermark_rule(inputs: RepetitionInputs) -> WatermarkRule:
    """The engine's rule for arrived-late events: its own, else the one its fairness ``watermark`` value
    states (:mod:`harness.analysis.arrival`)."""
    if inputs.watermark_rule is not None:
        return inputs.watermark_rule
    value = inputs.fairness.get("watermark")
    text = value.value if hasattr(value, "value") else value.get("value") if isinstance(value, Mapping) else value
    return WatermarkRule.from_watermark_setting(text if isinstance(text, str) else None)


def _arrived_late_dropped(as_intended: Expected, allowing: Expected, pairs: pd.DataFrame) -> int:
    """(event, window) memberships of arrived-late events the engine left out: per pair, how far its answer
    (held within the allowed range) fell below the count without the allowance, at most the allowance."""
    if allowing is as_intended:
        return 0
    allowance = as_intended.pairs[KEY_COLUMNS + ["count_min"]].merge(
        allowing.pairs[KEY_COLUMNS + ["count_min"]], on=KEY_COLUMNS, suffixes=("_intended", ""))
    allowance = allowance[allowance["count_min_intended"] > allowance["count_min"]]
    answered = allowance.merge(pairs[KEY_COLUMNS + ["got", "count_max"]], on=KEY_COLUMNS, how="left")
    got = answered["got"].fillna(answered["count_min"]).clip(answered["count_min"], answered["count_max"])
    short = (answered["count_min_intended"] - got).clip(lower=0)
    return int(short.clip(upper=answered["count_min_intended"] - answered["count_min"]).sum())


KEY_COLUMNS = ["user", "window_start"]


def _input_delay(inputs: RepetitionInputs, late: int, dropped: int) -> InputDelaySummary | None:
    """The input path's own delay over the measured period, and how many on-time events arrived late (``late``),
    when the input topic was read back."""
    if inputs.input_append is None:
        return None
    scenario = inputs.scenario
    summary = summarize_input_delay(inputs.input_append, RateSchedule.from_load(scenario.load, scenario.duration),
                                    load_start_ms=inputs.timeline.load_start_ms, warmup_ms=scenario.warmup)
    read = inputs.input_append.ts is not None
    return dataclasses.replace(summary, arrived_late=late if read else None,
                               arrived_late_dropped=dropped if read else None,
                               arrival_rule=watermark_rule(inputs).describe() if read else None)


def _collector_counters(snapshot: Mapping[str, Any] | None, records: pd.DataFrame) -> dict[str, Any]:
    keys = ("records", "flush_records", "not_append_time", "bad_records", "bad_by_kind", "bad_samples", "error",
            "failed")
    if snapshot is None:
        flush = int((records["user"] == FLUSH_USER).sum()) if len(records) else 0
        return {"records": int(len(records)) - flush, "flush_records": flush, "not_append_time": 0, "bad_records": 0}
    return {k: to_json(snapshot[k]) for k in keys if k in snapshot}


def _no_expectation(per_event: int) -> Expected:
    """An empty oracle table (the load never started): every answer would be extra, none is judged."""
    empty = pd.DataFrame({
        "user": pd.Series(dtype=object),
        **{c: pd.Series(dtype="int64") for c in ("window_start", "window_end", "count_min", "count_max")},
        "max_ts": pd.Series(dtype="float64"),
    })
    return Expected(empty, 0, 0, per_event)


__all__ = ["RepetitionInputs", "Span", "analyse", "analyse_span", "fairness_values", "Judgement"]
