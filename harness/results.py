"""Result files: one directory per run, one sub-directory per engine × repetition, versioned and never overwritten.

Layout (``format_version`` 1)::

    results/<YYYYmmddTHHMMSSZ>-<scenario>/       create_run_dir(): exclusive, -2, -3 … on collision
        run.json                                  resolved scenario + environment fingerprint (write_run_info)
        run-status.json                           complete | interrupted, with a message (write_run_status)
        <engine>/rep-<n>/
            summary.json                          RepetitionSummary: every figure of the repetition, with units
            series.csv                            per wall second since the load started (collector.SERIES_COLUMNS)
            pairs.csv.gz                          per (window, user): expected, got, latencies, status
            result-latency.hdr                    HdrHistogram (standard base64), measured exact pairs, ms
            event-time-latency.hdr                same for event-time latency
            engine-metrics.json                   the engine's own metrics, as it reported them
            resources.csv                         CPU/RSS samples per component (resources.RESOURCE_COLUMNS)
            generator.json                        the generator's full result (when given)
        report.md, *.png                          written by ``bench report`` (harness.report)

Every writer opens its file with mode ``"x"``: an existing file is never replaced (as pyperf refuses to
overwrite), so a result on disk is what was measured. The runner calls, per engine × repetition,
:func:`build_repetition_result` then :func:`write_repetition`; the report and compare read it all back with
:func:`load_run`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import io
import json
import math
import os
import platform
import re
import shutil
import socket
import subprocess
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
from hdrh.histogram import HdrHistogram

from harness import collector, versions
from harness.errors import HarnessError
from harness.resources import ResourceStats, summarize

FORMAT_VERSION = 1

Status = typing.Literal["ok", "failed", "interrupted"]


# ---------------------------------------------------------------------------------------------------- model
@dataclass(frozen=True)
class Timeline:
    """The load's place on the wall clock (epoch ms), fixed when the generator starts."""

    load_start_ms: int
    """Intended send time of event 0 (the generator's ``start_epoch_ms``)."""
    warmup_end_ms: int
    """load_start_ms + warmup: windows ending at or before it are not measured."""
    load_end_ms: int
    """load_start_ms + duration: windows ending after it are partial and closed by the flush; not measured."""


def timeline(load_start_ms: int, warmup_end_ms: int, load_end_ms: int) -> Timeline:
    return Timeline(int(load_start_ms), int(warmup_end_ms), int(load_end_ms))


def timeline_for(scenario: Any, load_start_ms: int) -> Timeline:
    """The timeline of a scenario whose load started (intended) at ``load_start_ms``."""
    return timeline(load_start_ms, load_start_ms + scenario.warmup, load_start_ms + scenario.duration)


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
    """Means over the measured seconds (warm-up end .. load end) of the per-second series, events/s."""

    target_rate: float | None
    """Events/s the schedule intended."""
    achieved_rate: float | None
    """Records/s the generator actually sent."""
    processed_rate: float | None
    """Events/s the engine processed: its own metric when it has one, else the output-based rate."""
    processed_rate_source: str
    """``engine`` or ``output``."""
    processed_rate_output: float | None
    """Events/s accounted for by the output (count increments visible per second / windows per event)."""
    processed_rate_engine: float | None
    """Events/s by the engine's own metrics (None when it reports none)."""
    results_per_s: float | None
    """Result records/s that became visible."""
    events_sent: int | None
    """Records the generator sent over the whole load (warm-up included)."""


@dataclass(frozen=True)
class CorrectnessSummary:
    """The oracle's diff (:class:`harness.oracle.Diff`); counts of (window, user) pairs unless noted."""

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
    late_made: int
    """Events the generator made deliberately late."""
    late_dropped: float
    """Late events the engine did not count (events; memberships / windows per event)."""
    records: int
    """Result records compared (flush records excluded)."""
    correct: bool
    """Nothing missing, wrong or extra (duplicates and dropped late events are allowed)."""
    problems: list[dict[str, Any]] = field(default_factory=list)
    """The first problem rows (kind, user, window, allowed range, count, difference)."""


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
    """p50, p90, p99, p99.9, max of actual − intended send time in the measured period, ms."""
    backend: str | None = None
    """Producer client (confluent or kafka-python)."""
    workers: int | None = None
    """Worker processes that shared the schedule."""
    nice: int | None = None
    """Unix priority the workers ran at (``load.producer.nice`` when the OS allowed it)."""


SustainedSummary = collector.SustainedCheck
"""The keep-up trend check, stored as the collector computes it (``sustained`` is None with fewer than 3 timed
measured windows)."""


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
    """The measurement can be trusted: the engine ran, the generator drove the load and the result topic carried
    broker append times. Correctness and sustainability are separate verdicts."""
    invalid_reasons: list[str]
    warnings: list[str]
    """Problems in words (negative latencies, not sustained, incorrect, duplicates …)."""
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
    fairness: dict[str, str]
    """Every FAIRNESS_KEYS setting of this engine, in words."""
    collector: dict[str, Any]
    """The collector's counters at the end (records, flush_records, not_append_time, bad_records, error)."""


@dataclass(eq=False)
class RepetitionResult:
    """Everything measured in one engine × repetition; built by :func:`build_repetition_result`, written by
    :func:`write_repetition`, read back by :func:`load_run`."""

    summary: RepetitionSummary
    series: pd.DataFrame
    """collector.SERIES_COLUMNS."""
    pairs: pd.DataFrame | None
    """collector.PAIR_COLUMNS (not loaded back by load_run: it can be large; see :meth:`LoadedRepetition.pairs`)."""
    result_histogram: HdrHistogram
    event_time_histogram: HdrHistogram
    engine_metrics: dict[str, Any]
    resources: pd.DataFrame
    generator: dict[str, Any] | None = None
    """The generator's full result (``GeneratorResult.to_json()``), stored as generator.json."""


# --------------------------------------------------------------------------------------------------- building
def build_repetition_result(
    engine: str,
    repetition: int,
    scenario: Any,
    timeline: Timeline,
    records: pd.DataFrame | None,
    expected: Any,
    *,
    diff: Any = None,
    max_ts: pd.DataFrame | None = None,
    generator: Any = None,
    engine_metrics: Mapping[str, Any] | None = None,
    engine_series: pd.DataFrame | None = None,
    resources: pd.DataFrame | None = None,
    fairness: Mapping[str, str] | None = None,
    collector_snapshot: Any = None,
    status: Status = "ok",
    error: str | None = None,
    log_tail: Sequence[str] = (),
) -> RepetitionResult:
    """Turn what one engine × repetition produced into a :class:`RepetitionResult`. Pure (no I/O).

    ``records`` is :meth:`LiveCollector.frame` (None or empty when the engine failed early); ``expected`` the
    oracle's :class:`~harness.oracle.Expected` (or its ``pairs`` frame; None when unavailable); ``diff`` the
    oracle's :class:`~harness.oracle.Diff` (or its ``summary()`` dict; recomputed from the pairs when None);
    ``max_ts`` :func:`collector.max_ts_for_run` (or ``max_ts`` as a column of the pairs) for event-time latency;
    ``generator`` the :class:`~harness.loadgen.GeneratorResult` or a dict with the same keys;
    ``engine_series`` the engine's processed rate per second (columns ``second, processed``) when it has one.
    """
    windows_cfg = scenario.window
    per_event = windows_cfg.size // windows_cfg.slide_ms
    records = collector.empty_records() if records is None else records
    pairs_table = _pairs_table(expected, max_ts)
    pairs = collector.pair_outcomes(records, pairs_table)
    measured = collector.measured_mask(
        pairs["window_end"], timeline.warmup_end_ms, timeline.load_end_ms, windows_cfg.watermark_delay
    )
    timed = measured & pairs["result_latency_ms"].notna().to_numpy()

    result_hist = collector.latency_histogram(pairs.loc[timed, "result_latency_ms"])
    event_hist = collector.latency_histogram(pairs.loc[timed, "event_time_latency_ms"])

    gen = _generator_dict(generator)
    gen_series = None
    if gen is not None and gen.get("seconds"):
        gen_series = pd.DataFrame(gen["seconds"])[["second", "target", "achieved"]]
    duration_s = math.ceil((timeline.load_end_ms - timeline.load_start_ms) / 1000)
    series = collector.per_second_series(
        timeline.load_start_ms,
        records,
        pairs,
        measured=measured,
        per_event=per_event,
        generator_series=gen_series,
        engine_series=engine_series,
        min_seconds=duration_s,
    )
    warm_s = (timeline.warmup_end_ms - timeline.load_start_ms) // 1000
    in_period = ((series["second"] >= warm_s) & (series["second"] < duration_s)).to_numpy()
    output_rate = collector.mean_over(series["processed_rate_output"], in_period)
    engine_rate = collector.mean_over(series["processed_rate_engine"], in_period)
    throughput = ThroughputSummary(
        target_rate=_first(gen, "target_rate") if gen else collector.mean_over(series["target_rate"], in_period),
        achieved_rate=_first(gen, "achieved_rate") if gen else collector.mean_over(series["achieved_rate"], in_period),
        processed_rate=engine_rate if engine_rate is not None else output_rate,
        processed_rate_source="engine" if engine_rate is not None else "output",
        processed_rate_output=output_rate,
        processed_rate_engine=engine_rate,
        results_per_s=collector.mean_over(series["results_per_s"], in_period),
        events_sent=_int_or_none(gen.get("events_sent")) if gen else None,
    )

    correctness = None
    if expected is not None and status != "failed":
        correctness = _correctness(diff, pairs, gen, expected, per_event)
    generator_summary = _generator_summary(gen)
    check = collector.sustained(
        pairs.loc[timed, "window_end"].to_numpy(), pairs.loc[timed, "result_latency_ms"].to_numpy(), windows_cfg.size
    )
    resource_frame = resources if resources is not None else pd.DataFrame(columns=["t_ms", "component"])
    resource_stats = summarize(resource_frame, timeline.warmup_end_ms, timeline.load_end_ms)
    snap = _snapshot_dict(collector_snapshot, records)

    invalid: list[str] = []
    if status == "failed":
        invalid.append(f"engine failed: {error or 'no error message'}")
    if status == "interrupted":
        invalid.append("interrupted before the repetition finished")
    if generator_summary is not None and not generator_summary.valid:
        invalid.append(generator_summary.reason or "generator could not drive the load")
    if snap.get("not_append_time"):
        invalid.append(
            f"{snap['not_append_time']} result records carry CreateTime, not LogAppendTime: the result topic must be "
            "created with message.timestamp.type=LogAppendTime, else latency uses the engine's clock"
        )
    if status == "ok" and len(records) == 0:
        invalid.append("no result records were received")

    result_latency = _latency_summary(result_hist)
    summary = RepetitionSummary(
        format_version=FORMAT_VERSION,
        engine=engine,
        repetition=int(repetition),
        status=status,
        error=error,
        log_tail=list(log_tail),
        valid=not invalid,
        invalid_reasons=invalid,
        warnings=[],
        timeline=timeline,
        window_size_ms=windows_cfg.size,
        window_slide_ms=windows_cfg.slide_ms,
        watermark_delay_ms=windows_cfg.watermark_delay,
        clock=CLOCK_NOTE,
        result_latency=result_latency,
        event_time_latency=_latency_summary(event_hist),
        throughput=throughput,
        correctness=correctness,
        generator=generator_summary,
        sustained=check,
        resources=resource_stats,
        fairness=dict(fairness or {}),
        collector=snap,
    )
    summary = dataclasses.replace(summary, warnings=repetition_warnings(summary))
    return RepetitionResult(
        summary=summary,
        series=series,
        pairs=pairs,
        result_histogram=result_hist.histogram,
        event_time_histogram=event_hist.histogram,
        engine_metrics=dict(engine_metrics or {}),
        resources=resource_frame,
        generator=gen,
    )


CLOCK_NOTE = (
    "result latency = broker LogAppendTime (broker host clock) − window_end; event-time latency = the same − "
    "largest event ts (generator host clock: ts is the intended send time)"
)


def repetition_warnings(summary: RepetitionSummary) -> list[str]:
    """Problems of one repetition, in words (the report adds the cross-repetition ones)."""
    out: list[str] = []
    if summary.status == "failed":
        out.append(f"engine failed: {summary.error or 'no error message'}")
    out.extend(reason for reason in summary.invalid_reasons if reason.startswith(("generator", "publish")))
    negative = summary.result_latency.negative + summary.event_time_latency.negative
    if negative:
        update = "update" in summary.fairness.get("output_mode", "")
        why = (
            "in update mode a pair's final count can be written before its window closes"
            if update
            else "the broker and generator clocks disagree"
        )
        out.append(
            f"{summary.result_latency.negative} negative result latencies and {summary.event_time_latency.negative} "
            f"negative event-time latencies (kept out of the percentiles): {why}"
        )
    sus = summary.sustained
    if sus.sustained is False:
        out.append(
            f"not sustained: result latency grew by {sus.growth_ms / 1000:,.1f} s over the measured period "
            f"(limit {sus.threshold_ms / 1000:,.1f} s; {sus.slope_ms_per_s:,.1f} ms per second): the engine falls "
            "further behind at this rate"
        )
    c = summary.correctness
    if c is not None and not c.correct:
        out.append(
            f"incorrect: {c.missing} missing, {c.wrong} wrong, {c.extra} extra of {c.expected} expected pairs"
        )
    if c is not None and c.duplicated:
        out.append(f"{c.duplicated} pairs had their final count written more than once (not exactly-once output)")
    if summary.collector.get("bad_records"):
        out.append(f"{summary.collector['bad_records']} result records were not valid result JSON and were skipped")
    if summary.collector.get("error"):
        out.append(f"collector: {summary.collector['error']}")
    return out


def _pairs_table(expected: Any, max_ts: pd.DataFrame | None) -> pd.DataFrame:
    if expected is None:
        table = pd.DataFrame(
            {
                "user": pd.Series(dtype=object),
                **{c: pd.Series(dtype="int64") for c in ("window_start", "window_end", "count_min", "count_max")},
            }
        )
    else:
        table = expected.pairs if hasattr(expected, "pairs") else expected
    if max_ts is not None and "max_ts" not in table.columns:
        table = table.merge(max_ts[collector.PAIR_KEY + ["max_ts"]], on=collector.PAIR_KEY, how="left")
    return table


def _generator_dict(generator: Any) -> dict[str, Any] | None:
    if generator is None:
        return None
    if isinstance(generator, Mapping):
        data = dict(generator)
    elif hasattr(generator, "to_json"):
        data = generator.to_json()
    else:
        data = dataclasses.asdict(generator)
    return _jsonable(data)


def _generator_summary(gen: dict[str, Any] | None) -> GeneratorSummary | None:
    if gen is None:
        return None
    return GeneratorSummary(
        valid=bool(gen.get("valid", True)),
        reason=gen.get("reason"),
        target_rate=_float_or_none(gen.get("target_rate")),
        achieved_rate=_float_or_none(gen.get("achieved_rate")),
        events_sent=_int_or_none(gen.get("events_sent")),
        late_events=_int_or_none(gen.get("late_events")),
        publish_delay_ms={str(k): float(v) for k, v in (gen.get("publish_delay_ms") or {}).items()},
        backend=gen.get("backend"),
        workers=_int_or_none(gen.get("workers")),
        nice=_int_or_none(gen.get("nice")),
    )


def _correctness(diff: Any, pairs: pd.DataFrame, gen: dict | None, expected: Any, per_event: int) -> CorrectnessSummary:
    if diff is None:
        late_made = getattr(expected, "late_events", None)
        if late_made is None:
            late_made = (gen or {}).get("late_events") or 0
        data = collector.correctness_from_pairs(pairs, late_made=int(late_made), windows_per_event=per_event)
    elif isinstance(diff, Mapping):
        data = dict(diff)
    else:
        data = diff.summary()
    names = {f.name for f in dataclasses.fields(CorrectnessSummary)}
    return CorrectnessSummary(**_jsonable({k: v for k, v in data.items() if k in names}))


def _latency_summary(result: collector.HistogramResult) -> LatencySummary:
    p = collector.histogram_percentiles(result.histogram)
    return LatencySummary(
        pairs=int(result.histogram.get_total_count()),
        negative=result.negative,
        overflow=result.overflow,
        p50_ms=p["p50"],
        p90_ms=p["p90"],
        p99_ms=p["p99"],
        p99_9_ms=p["p99_9"],
        max_ms=p["max"],
        mean_ms=p["mean"],
    )


def _snapshot_dict(snapshot: Any, records: pd.DataFrame) -> dict[str, Any]:
    if snapshot is None:
        flush = int((records["user"] == collector.FLUSH_USER).sum()) if len(records) else 0
        return {"records": int(len(records)) - flush, "flush_records": flush, "not_append_time": 0, "bad_records": 0, "error": None}
    data = dataclasses.asdict(snapshot) if dataclasses.is_dataclass(snapshot) else dict(snapshot)
    return {k: data.get(k) for k in ("records", "flush_records", "not_append_time", "bad_records", "error")}


def _first(data: Mapping[str, Any], key: str) -> float | None:
    return _float_or_none(data.get(key))


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars to Python, NaN to None, dataclasses to dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA:
        return None
    return value


# ---------------------------------------------------------------------------------------------------- run dir
_RUN_DIR_RE = re.compile(r"\d{8}T\d{6}Z-.+")


def create_run_dir(base: Path, scenario_name: str, *, now: dt.datetime | None = None) -> Path:
    """``base/<UTC YYYYmmddTHHMMSSZ>-<scenario>``, created exclusively: an existing directory is never reused;
    ``-2``, ``-3`` … are appended on collision."""
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    stamp = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"{stamp}-{scenario_name}"
    for attempt in range(1, 1000):
        path = base / (name if attempt == 1 else f"{name}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise HarnessError(f"cannot create a run directory under {base}: {name} and 998 suffixes exist")


def _write_new(path: Path, data: str | bytes) -> None:
    """Write a new file; refuse to replace an existing one."""
    mode = "xb" if isinstance(data, bytes) else "x"
    try:
        with open(path, mode, **({} if isinstance(data, bytes) else {"encoding": "utf-8"})) as handle:
            handle.write(data)
    except FileExistsError:
        raise HarnessError(f"{path} exists: result files are never overwritten; use a new run directory") from None


def _dump_json(data: Any) -> str:
    return json.dumps(_jsonable(data), indent=2, sort_keys=False, allow_nan=False) + "\n"


def write_run_info(run_dir: Path, scenario: Any, fingerprint: Mapping[str, Any]) -> Path:
    """run.json: the resolved scenario (``Scenario.dump()``, human units) and the environment fingerprint;
    written once at the start of a run."""
    data = {
        "format_version": FORMAT_VERSION,
        "scenario": scenario.dump() if hasattr(scenario, "dump") else dict(scenario),
        "fingerprint": dict(fingerprint),
    }
    path = Path(run_dir) / "run.json"
    _write_new(path, _dump_json(data))
    return path


def write_run_status(run_dir: Path, status: typing.Literal["complete", "interrupted", "failed"], message: str = "") -> Path:
    """run-status.json, written once at the end: ``complete``, ``interrupted`` (Ctrl-C; what was measured is
    kept) or ``failed`` (the harness itself failed)."""
    data = {
        "status": status,
        "message": message,
        "finished_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    path = Path(run_dir) / "run-status.json"
    _write_new(path, _dump_json(data))
    return path


def repetition_dir(run_dir: Path, engine: str, repetition: int) -> Path:
    return Path(run_dir) / engine / f"rep-{repetition}"


def write_repetition(run_dir: Path, result: RepetitionResult) -> Path:
    """Write one engine × repetition into ``run_dir/<engine>/rep-<n>/`` (see the module docstring); refuses to
    overwrite any file. Returns the directory. The engine may already have put its logs there."""
    summary = result.summary
    directory = repetition_dir(run_dir, summary.engine, summary.repetition)
    directory.mkdir(parents=True, exist_ok=True)
    _write_new(directory / "summary.json", _dump_json(dataclasses.asdict(summary)))
    _write_new(directory / "series.csv", result.series.to_csv(index=False, float_format="%.6g"))
    if result.pairs is not None:
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
            gz.write(result.pairs.to_csv(index=False, float_format="%.10g").encode())
        _write_new(directory / "pairs.csv.gz", buffer.getvalue())
    _write_new(directory / "result-latency.hdr", _encode(result.result_histogram) + "\n")
    _write_new(directory / "event-time-latency.hdr", _encode(result.event_time_histogram) + "\n")
    _write_new(directory / "engine-metrics.json", _dump_json(result.engine_metrics))
    _write_new(directory / "resources.csv", result.resources.to_csv(index=False, float_format="%.6g"))
    if result.generator is not None:
        _write_new(directory / "generator.json", _dump_json(result.generator))
    return directory


def _encode(histogram: HdrHistogram) -> str:
    encoded = histogram.encode()
    return encoded.decode() if isinstance(encoded, bytes) else str(encoded)


def decode_histogram(text: str) -> HdrHistogram:
    return HdrHistogram.decode(text.strip().encode())


# ---------------------------------------------------------------------------------------------------- loading
@dataclass(eq=False)
class LoadedRepetition:
    """One engine × repetition read back from disk; big files are read on first use."""

    path: Path
    summary: RepetitionSummary

    @property
    def series(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "series.csv")

    @property
    def resources(self) -> pd.DataFrame:
        path = self.path / "resources.csv"
        return pd.read_csv(path) if path.exists() and path.stat().st_size > 1 else pd.DataFrame()

    def pairs(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "pairs.csv.gz")

    @property
    def result_histogram(self) -> HdrHistogram:
        return decode_histogram((self.path / "result-latency.hdr").read_text())

    @property
    def event_time_histogram(self) -> HdrHistogram:
        return decode_histogram((self.path / "event-time-latency.hdr").read_text())

    @property
    def engine_metrics(self) -> dict[str, Any]:
        return json.loads((self.path / "engine-metrics.json").read_text())

    @property
    def generator(self) -> dict[str, Any]:
        """The generator's full result (``generator.json``); empty when the repetition has none."""
        path = self.path / "generator.json"
        return json.loads(path.read_text()) if path.exists() else {}


@dataclass(eq=False)
class RunData:
    """A run directory read back: ``engines`` maps each engine label to its repetitions, in scenario order."""

    path: Path
    scenario: dict[str, Any]
    fingerprint: dict[str, Any]
    status: dict[str, Any] | None
    """run-status.json, None when the run never finished (killed) — the report says so."""
    engines: dict[str, list[LoadedRepetition]]


def load_run(run_dir: Path) -> RunData:
    """Read a run directory (written by this module) for the report and compare."""
    run_dir = Path(run_dir)
    info_path = run_dir / "run.json"
    if not info_path.exists():
        raise HarnessError(f"{run_dir} is not a run directory: run.json is missing")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    _check_version(info, info_path)
    status_path = run_dir / "run-status.json"
    status = json.loads(status_path.read_text(encoding="utf-8")) if status_path.exists() else None
    order = [e.get("label") or str(e.get("engine", "")).rsplit(":", 1)[-1] for e in info["scenario"].get("engines", [])]
    found = sorted(p.parent.name for p in run_dir.glob("*/rep-*") if p.is_dir())
    names = [n for n in order if n in found] + [n for n in dict.fromkeys(found) if n not in order]
    engines: dict[str, list[LoadedRepetition]] = {}
    for name in names:
        reps = []
        for rep_dir in (run_dir / name).glob("rep-*"):
            summary_path = rep_dir / "summary.json"
            if not summary_path.exists():
                continue
            data = json.loads(summary_path.read_text(encoding="utf-8"))
            _check_version(data, summary_path)
            reps.append(LoadedRepetition(rep_dir, summary_from_json(data)))
        reps.sort(key=lambda r: r.summary.repetition)
        if reps:
            engines[name] = reps
    return RunData(run_dir, info["scenario"], info.get("fingerprint", {}), status, engines)


def _check_version(data: Mapping[str, Any], path: Path) -> None:
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise HarnessError(
            f"{path}: result format_version {version!r} is not supported (this harness reads {FORMAT_VERSION})"
        )


def summary_from_json(data: Mapping[str, Any]) -> RepetitionSummary:
    return _from_json(RepetitionSummary, data)


def _from_json(cls: Any, data: Any) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        kwargs[f.name] = _convert(hints[f.name], data[f.name])
    return cls(**kwargs)


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(args[0], value) if len(args) == 1 else value
    if dataclasses.is_dataclass(hint):
        return _from_json(hint, value)
    if origin is dict:
        _, value_hint = typing.get_args(hint)
        return {k: _convert(value_hint, v) for k, v in value.items()}
    if origin is list:
        (item_hint,) = typing.get_args(hint) or (Any,)
        return [_convert(item_hint, v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------------- fingerprint
def environment_fingerprint(
    *,
    engine_versions: Mapping[str, Mapping[str, str]] | None = None,
    deployment: str = "local: broker, engines and generator on this host",
    kafka_mode: str = "embedded",
) -> dict[str, Any]:
    """What the result depends on besides the scenario: hardware, OS, software versions, code version, clocks.
    Called once per run, at the start."""
    memory = psutil.virtual_memory().total
    git = _git_state()
    same_host = kafka_mode == "embedded"
    return {
        "hostname": socket.gethostname(),
        "cpu_model": _cpu_model(),
        "cpu_logical": os.cpu_count(),
        "cpu_physical": psutil.cpu_count(logical=False),
        "memory_bytes": memory,
        "os": platform.platform(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "java": _java_version(),
        "versions": {
            "kafka": versions.KAFKA,
            "spark": versions.SPARK,
            "flink": versions.FLINK,
            "flink_kafka_connector": versions.FLINK_KAFKA_CONNECTOR,
            "scala_binary": versions.SCALA_BINARY,
            **{f"{name}:{k}": v for name, vs in (engine_versions or {}).items() for k, v in vs.items()},
        },
        "git_commit": git[0],
        "git_dirty": git[1],
        "deployment": deployment,
        "clock": (
            "one host clock: the broker's LogAppendTime and the generator's event times come from the same machine"
            if same_host
            else "two clocks: LogAppendTime is the broker host's clock, event times the generator host's; their "
            "offset (NTP) is part of every latency"
        ),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _java_version() -> str | None:
    java = shutil.which("java")
    if os.environ.get("JAVA_HOME"):
        candidate = Path(os.environ["JAVA_HOME"]) / "bin" / "java"
        if candidate.exists():
            java = str(candidate)
    if java is None:
        return None
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (out.stderr or out.stdout).strip().splitlines()
    return lines[0] if lines else None


def _git_state() -> tuple[str | None, bool | None]:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, bool(dirty)
