"""The result model: what one engine × repetition measured (``summary.json``), versioned, with JSON conversion.

Format history (``format_version``; the loader upgrades older versions, see :func:`upgrade`):

* **1** (sessions 1-2): ``sustained`` was a latency-trend check (slope, start, growth, threshold);
  ``fairness`` values were prose strings; the generator's publish delay used the key ``p99.9``;
  ``throughput.processed_rate_source`` was ``engine`` (Spark: mean of per-batch processedRowsPerSecond) or
  ``output``.
* **2**: ``sustained`` is the keep-up verdict (:class:`KeepUp`: processed ratio, input-lag
  trend, latency slope, the failed criteria in words); ``fairness`` maps each key to ``{value, detail}``
  (value is compared, detail shown); every percentile key is spelled ``p99_9``; the engine's processed rate is
  input rows per second of wall time (``engine input rows``); ``read_committed`` records whether results were
  read as transactional output (latency then uses the visible time, see :mod:`harness.analysis.judge`);
  ``collector`` carries bad records by kind. Added later without a version change (new optional fields with
  defaults; absent means not measured): ``input_delay``, the input topic's append time − intended send time
  (:mod:`harness.analysis.input_delay`); ``faults``, one entry per injected fault (see :mod:`harness.analysis.fault_figures`;
  empty without faults).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from hdrh.histogram import HdrHistogram

FORMAT_VERSION = 2

Status = typing.Literal["ok", "failed", "interrupted"]


@dataclass(frozen=True)
class Timeline:
    """The load's place on the wall clock (epoch ms), fixed when the generator starts."""

    load_start_ms: int
    """Intended send time of event 0 (the generator's ``start_epoch_ms``)."""
    warmup_end_ms: int
    """load_start_ms + warmup: windows ending at or before it are not measured."""
    load_end_ms: int
    """load_start_ms + duration: windows the load's own events cannot close are not measured."""

    @classmethod
    def of(cls, load_start_ms: int, *, warmup_ms: int, duration_ms: int) -> Timeline:
        return cls(int(load_start_ms), int(load_start_ms + warmup_ms), int(load_start_ms + duration_ms))


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles of one latency over the measured exact pairs (HdrHistogram, 3 significant digits)."""

    pairs: int
    """Values in the histogram (measured exact pairs with a non-negative latency)."""
    negative: int
    """Values below 0 ms, kept out of the histogram and never clamped (clock trouble, or update mode showing a
    final count before its window closed)."""
    overflow: int
    """Values above the histogram's range (7 days)."""
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    p99_9_ms: float | None
    max_ms: float | None
    mean_ms: float | None


@dataclass(frozen=True)
class ThroughputSummary:
    """Over the measured seconds (warm-up end .. load end), events/s."""

    target_rate: float | None
    """Events/s the schedule intended."""
    achieved_rate: float | None
    """Records/s the generator actually sent."""
    processed_rate: float | None
    """Events/s the engine processed: its input rows per second when it reports them, else the output-based rate."""
    processed_rate_source: str
    """``engine input rows`` or ``output``."""
    processed_rate_output: float | None
    """Events/s accounted for by the output (count increments visible per second / windows per event)."""
    processed_rate_engine: float | None
    """Input rows/s by the engine's own counters (None when it reports none)."""
    results_per_s: float | None
    """Result records/s that became visible."""
    events_sent: int | None
    """Records the generator sent over the whole load (warm-up included)."""


@dataclass(frozen=True)
class GeneratorSummary:
    """What the generator reports about itself."""

    valid: bool
    """False when it could not drive the load (the whole repetition is then invalid)."""
    reason: str | None
    target_rate: float | None
    """Events/s intended in the measured period."""
    achieved_rate: float | None
    """Records/s sent in the measured period."""
    events_sent: int | None
    late_events: int | None
    publish_delay_ms: dict[str, float]
    """p50, p90, p99, p99_9, max of actual − intended send time in the measured period, ms."""
    backend: str | None = None
    """Producer client (confluent or kafka-python)."""
    workers: int | None = None
    """Worker processes that shared the schedule."""
    nice: int | None = None
    """Unix priority the workers ran at (``load.producer.nice`` when the OS allowed it)."""


@dataclass(frozen=True)
class InputDelaySummary:
    """summary.json ``input_delay`` (:mod:`harness.analysis.input_delay`): input append − intended send time over
    the load events of the measured period (intended at or after the warm-up end), ms."""

    events: int
    """Load events in the histogram (measured period, non-negative delay)."""
    negative: int
    """Events appended before their intended millisecond: two clocks disagree (generator host vs broker host)."""
    not_append_time: int
    """Input records without a broker append time (not counted)."""
    delay_ms: dict[str, float | None]
    """p50, p90, p99, p99_9, max, mean (ms)."""
    arrived_late: int | None = None
    """On-time load events (whole run) appended below the contract's watermark (max ts appended before − D): the
    load path made them late, so the judge allows an engine to drop them
    (:func:`harness.analysis.input_delay.arrived_late`). None: not measured (results written before this check
    existed)."""
    arrived_late_dropped: int | None = None
    """Of the ``arrived_late`` events, (event, window) memberships the engine did leave out (None: not measured)."""
    arrival_rule: str | None = None
    """The engine's watermark rule that decided ``arrived_late``, in words (:mod:`harness.analysis.arrival`)."""


@dataclass(frozen=True)
class Correctness:
    """The counts of a judgement; (window, user) pairs unless noted. Stored as ``summary.json``'s
    ``correctness``; made by the judge (:func:`harness.analysis.judge.judge`)."""

    expected: int
    """Pairs that must appear (at least one on-time event)."""
    exact: int
    missing: int
    extra: int
    """Answers for pairs no event belongs to."""
    wrong: int
    wrong_difference_sum: int
    """Sum of (answer − nearest allowed count) over wrong pairs, events (signed)."""
    duplicated: int
    """Pairs whose final count was written more than once."""
    duplicate_records: int
    """Surplus records of those pairs."""
    late_made: int
    """Events the generator made deliberately late."""
    late_dropped: float
    """Late events the engine did not count (events; memberships / windows per event)."""
    records: int
    """Result records judged (flush records excluded)."""
    correct: bool
    """Nothing missing, wrong or extra (duplicates and dropped late events are allowed)."""
    problems: list[dict[str, Any]] = field(default_factory=list)
    """The first :data:`harness.analysis.judge.MAX_PROBLEMS` problem rows: kind, user, window, allowed range, count,
    difference."""


CorrectnessSummary = Correctness
"""The judge's counts, stored as they are (one type for the counts)."""


@dataclass(frozen=True)
class KeepUp:
    """The verdict and the figures behind it (``summary.json``'s ``sustained``; judged by
    :func:`harness.analysis.keepup.judge_keep_up`)."""

    sustained: bool | None
    """True: every evaluated criterion held; False: one failed (see ``failed``); None: nothing could be judged."""
    failed: list[str] = field(default_factory=list)
    """The criteria that failed, each in words with its figures."""
    skipped: list[str] = field(default_factory=list)
    """The criteria that could not be evaluated, with the reason."""
    processed_ratio: float | None = None
    """Engine processed rate / achieved rate over the measured period."""
    lag_slope_per_s: float | None = None
    """Fitted input-lag growth, records per s."""
    lag_threshold_per_s: float | None = None
    latency_slope_ms_per_s: float | None = None
    """Fitted result-latency growth per s of event time."""
    latency_growth_ms: float | None = None
    """Fitted latency at the last measured window − at the first."""
    windows: int = 0
    """Measured windows with at least one timed pair."""
    judged: int | None = None
    """How many of the three criteria were evaluated (None: stored before this was recorded)."""
    processed_source: str | None = None
    """What the processed criterion was judged from: ``engine input rows`` or ``output windows``."""


SustainedSummary = KeepUp
"""The keep-up verdict, stored as it is."""


@dataclass(frozen=True)
class ResourceStats:
    """One component's use over the measured period (``summary.json``'s ``resources``; summarised from
    resources.csv by :func:`harness.analysis.resources.summarize`)."""

    cpu_mean_percent: float | None
    """Mean CPU, % of one core (200 = two cores busy)."""
    cpu_max_percent: float | None
    """Highest one-second CPU sample, % of one core."""
    rss_max_bytes: int | None
    """Highest resident memory, bytes."""
    samples: int
    rss_p99_bytes: int | None = None
    """99th percentile of the one-second RSS samples, bytes: beside the max, it shows whether the max was a
    single spike."""


@dataclass(frozen=True)
class FairnessValue:
    """One fairness setting of an engine: ``value`` is what the report compares, ``detail`` what it shows."""

    value: str
    detail: str = ""


@dataclass(frozen=True)
class RepetitionSummary:
    """summary.json: every figure of one engine × repetition. Times are epoch ms, durations ms, rates
    events/s, CPU % of one core, memory bytes."""

    format_version: int
    engine: str
    """The engine's label in the scenario."""
    repetition: int
    """1-based."""
    status: str
    """``ok``, ``failed`` (see error) or ``interrupted`` (Ctrl-C during this repetition)."""
    error: str | None
    log_tail: list[str]
    """Last lines of the engine's log when it failed."""
    valid: bool
    """The measurement can be trusted: the engine ran, the generator drove the load, the collector read the
    result topic and it carried broker append times. Correctness and keep-up are separate verdicts."""
    invalid_reasons: list[str]
    warnings: list[str]
    """Problems in words that do not make the measurement invalid (negative latencies, not sustained,
    incorrect, duplicates, bad records …); never a repeat of an invalid reason."""
    timeline: Timeline
    window_size_ms: int
    window_slide_ms: int
    watermark_delay_ms: int
    """D: part of every result latency by construction; shown beside it."""
    clock: str
    """Which clocks the latencies compare."""
    result_latency: LatencySummary
    """visible time of the first record with the correct final count − window_end."""
    event_time_latency: LatencySummary
    """the same visible time − the largest on-time ts of the pair's events."""
    throughput: ThroughputSummary
    correctness: CorrectnessSummary | None
    """None when the engine failed before any output could be checked."""
    generator: GeneratorSummary | None
    sustained: SustainedSummary
    resources: dict[str, ResourceStats]
    """Per component (broker, the engine, generator, harness), over the measured period."""
    fairness: dict[str, FairnessValue]
    """Every FAIRNESS_KEYS setting of this engine."""
    collector: dict[str, Any]
    """The collector's counters at the end (records, flush_records, not_append_time, bad_records, bad_by_kind,
    bad_samples, failed)."""
    read_committed: bool = False
    """Results were transactional output, read ``read_committed`` (latency = visible time, see
    harness.analysis.judge)."""
    input_delay: InputDelaySummary | None = None
    """Input append − intended send time over the measured period: the input path's own delay (None when the
    input topic was not read back: results written before this field existed, or the load did not finish)."""
    engine_core_us_per_event: float | None = None
    """The engine's CPU per processed event over the measured period, in core-µs (its mean CPU in cores, children
    included, / its processed rate); None when either is unknown or in summaries written before it was stored."""
    faults: list[dict[str, Any]] = field(default_factory=list)
    """One entry per scenario fault: the injector's record (kind, at_ms, downtime_ms, injected_at_ms,
    restarted_at_ms, recovered_at_ms, error) and, if it was injected, :class:`harness.analysis.fault_figures.FaultFigures`."""


@dataclass(eq=False)
class RepetitionResult:
    """Everything measured in one engine × repetition: built by :func:`harness.analysis.repetition.analyse`, written by
    :func:`harness.results.store.write_repetition`."""

    summary: RepetitionSummary
    series: pd.DataFrame
    """harness.analysis.series.SERIES_COLUMNS."""
    pairs: pd.DataFrame | None
    """harness.analysis.judge.PAIR_COLUMNS."""
    result_histogram: HdrHistogram
    event_time_histogram: HdrHistogram
    engine_metrics: dict[str, Any]
    resources: pd.DataFrame
    generator: dict[str, Any] | None = None
    """The generator's full result (``GeneratorResult.to_json()``), stored as generator.json."""


# ------------------------------------------------------------------------------------------------ JSON
def to_json(value: Any) -> Any:
    """Plain JSON types: numpy scalars to Python, NaN to None, dataclasses to dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA:
        return None
    return value


def summary_from_json(data: Mapping[str, Any]) -> RepetitionSummary:
    """A summary of the current format (see :func:`upgrade` for older ones)."""
    return _from_json(RepetitionSummary, data)


class SummaryFieldError(TypeError):
    """A stored field of the wrong type; its message names the field's path (``sustained.sustained``)."""


def _from_json(cls: Any, data: Any, path: str = "") -> Any:
    if not isinstance(data, Mapping):
        raise SummaryFieldError(f"{path or 'the summary'}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{path}{f.name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field missing
        raise SummaryFieldError(f"{path.rstrip('.') or 'the summary'}: {exc}") from None


_SCALARS: dict[Any, tuple[type, ...]] = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}
"""Stored scalar types and the JSON values each accepts (a bool is never a number here, a string never a bool)."""


def _convert(hint: Any, value: Any, path: str) -> Any:
    """``value`` as the type ``hint`` says; a value of another JSON type raises :class:`SummaryFieldError`
    naming ``path`` (``"valid": "false"`` must not read as true)."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(args[0], value, path) if len(args) == 1 else value
    if dataclasses.is_dataclass(hint):
        return _from_json(hint, value, f"{path}.")
    if origin is dict or hint is dict:
        _expect(value, (dict,), path, "an object")
        value_hint = typing.get_args(hint)[1] if typing.get_args(hint) else Any
        return {k: _convert(value_hint, v, f"{path}.{k}") for k, v in value.items()}
    if origin is list or hint is list:
        _expect(value, (list,), path, "a list")
        (item_hint,) = typing.get_args(hint) or (Any,)
        return [_convert(item_hint, v, f"{path}[{i}]") for i, v in enumerate(value)]
    accepted = _SCALARS.get(hint)
    if accepted is not None:
        if isinstance(value, bool) and hint is not bool:
            accepted = ()
        _expect(value, accepted, path, hint.__name__)
        return float(value) if hint is float else value
    return value


def _expect(value: Any, accepted: tuple[type, ...], path: str, what: str) -> None:
    if not isinstance(value, accepted):
        raise SummaryFieldError(f"{path}: expected {what}, got {type(value).__name__} {value!r:.40}")


# ------------------------------------------------------------------------------------------------ upgrades
def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A summary.json of any supported older version, rewritten in the current format (in memory only)."""
    version = data.get("format_version")
    if version == 1:
        data = _v1_to_v2(data)
    return data


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    out["format_version"] = 2
    invalid = set(data.get("invalid_reasons") or [])
    out["warnings"] = [w for w in data.get("warnings") or [] if w not in invalid and not w.startswith("engine failed")
                       and not w.startswith(("generator", "publish"))]
    out["fairness"] = {k: {"value": _v1_fairness_value(str(v)), "detail": str(v)}
                       for k, v in (data.get("fairness") or {}).items()}
    old = data.get("sustained") or {}
    failed = []
    if old.get("sustained") is False:
        failed.append(
            f"latency (format 1 rule): grew by {(old.get('growth_ms') or 0) / 1000:,.1f} s, limit "
            f"{(old.get('threshold_ms') or 0) / 1000:,.1f} s"
        )
    out["sustained"] = {
        "sustained": old.get("sustained"),
        "failed": failed,
        "skipped": ["processed, input lag: not recorded in format 1"],
        "latency_slope_ms_per_s": old.get("slope_ms_per_s"),
        "latency_growth_ms": old.get("growth_ms"),
        "windows": old.get("windows") or 0,
    }
    generator = data.get("generator")
    if generator and "publish_delay_ms" in generator:
        delays = dict(generator["publish_delay_ms"])
        if "p99.9" in delays:
            delays["p99_9"] = delays.pop("p99.9")
        out["generator"] = {**generator, "publish_delay_ms": delays}
    return out


_V1_LEADING_VALUE = re.compile(r"^(\d+|at-least-once|exactly-once|append|update)\b")


def _v1_fairness_value(prose: str) -> str:
    """Format 1 stored fairness as prose ("4 (local cores / shuffle partitions)", "at-least-once (Kafka sink)"):
    its value is the leading number or guarantee or mode when there is one, else the whole prose."""
    match = _V1_LEADING_VALUE.match(prose.strip().lower())
    return match.group(1) if match else " ".join(prose.lower().split())
