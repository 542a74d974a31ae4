"""Every verdict about one repetition in words, built in one place: why a measurement is invalid, and the
warnings that do not invalidate it. A message appears once: an invalid reason is never repeated as a warning.
(The report adds the warnings that span repetitions: spread, short runs, incomplete repetitions.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.analysis.keepup import MAX_LATENCY_SLOPE
from harness.analysis.resources import OTHERS
from harness.results.model import GeneratorSummary, KeepUp, RepetitionSummary

CATCHING_UP_RATIO = 1.05
"""Processed above this share of the achieved rate over the measured period: the engine was working off a backlog
left from its start-up (a settled engine processes what arrives, ±1-2 % from micro-batch boundaries)."""

SHARED_CPU_PERCENT = 25.0
"""Mean CPU of processes outside the run (:data:`harness.analysis.resources.OTHERS`) over the measured period above which
a repetition is said to have shared the machine, % of one core."""


def still_catching_up(keep: KeepUp) -> bool:
    """True when an engine that kept up was still working off a backlog in the measured period: it processed
    more than :data:`CATCHING_UP_RATIO` of the achieved rate, or its latency fell faster than the keep-up
    verdict's latency-slope limit. Its latency figures then include its start-up."""
    return (keep.processed_ratio or 0) > CATCHING_UP_RATIO or (keep.latency_slope_ms_per_s or 0) < -MAX_LATENCY_SLOPE


def invalid_reasons(
    *,
    status: str,
    error: str | None,
    generator: GeneratorSummary | None,
    collector: Mapping[str, Any],
    records: int,
) -> list[str]:
    """Why the measurement cannot be trusted (empty: valid)."""
    out: list[str] = []
    if status == "failed":
        out.append(f"engine failed: {error or 'no error message'}")
    if status == "interrupted":
        out.append("interrupted before the repetition finished")
    if generator is not None and not generator.valid:
        out.append(generator.reason or "generator could not drive the load")
    if collector.get("failed"):
        out.append(f"collector failed: {collector['failed']} (results after that were not read)")
    if collector.get("not_append_time"):
        out.append(
            f"{collector['not_append_time']} result records carry CreateTime, not LogAppendTime: the result topic "
            "must be created with message.timestamp.type=LogAppendTime, else latency uses the engine's clock"
        )
    if status == "ok" and records == 0:
        out.append("no result records were received")
    return out


def repetition_warnings(summary: RepetitionSummary) -> list[str]:
    """Problems of one repetition that leave the measurement valid, in words."""
    out: list[str] = []
    negative = summary.result_latency.negative + summary.event_time_latency.negative
    if negative:
        update = summary.fairness.get("output_mode")
        why = (
            "in update mode a pair's final count can be written before its window closes"
            if update is not None and update.value == "update"
            else "the broker and generator clocks disagree"
        )
        out.append(
            f"{summary.result_latency.negative} negative result latencies and {summary.event_time_latency.negative} "
            f"negative event-time latencies (kept out of the percentiles): {why}"
        )
    keep = summary.sustained
    if keep.sustained is False:
        out.append("not sustained at this rate: " + "; ".join(keep.failed))
    elif still_catching_up(keep):
        out.append(
            "still catching up in the measured period (processed "
            + (f"{keep.processed_ratio:.0%} of the achieved rate" if keep.processed_ratio is not None else "unknown")
            + (f", latency falling {-keep.latency_slope_ms_per_s:,.0f} ms per s" if keep.latency_slope_ms_per_s else "")
            + "): the engine had not settled when the warm-up ended, so the figures include its start-up; "
            "use a longer warm-up"
        )
    c = summary.correctness
    if c is not None and not c.correct:
        out.append(f"incorrect: {c.missing} missing, {c.wrong} wrong, {c.extra} extra of {c.expected} expected pairs")
    if c is not None and c.duplicated:
        out.append(f"{c.duplicated} pairs had their final count written more than once (not exactly-once output)")
    bad = summary.collector.get("bad_records")
    if bad:
        kinds = summary.collector.get("bad_by_kind") or {}
        detail = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
        out.append(f"{bad} result records were not valid result records and were not judged"
                   + (f" ({detail})" if detail else ""))
    others = summary.resources.get(OTHERS)
    if others is not None and (others.cpu_mean_percent or 0) > SHARED_CPU_PERCENT:
        out.append(
            f"processes outside the run used {others.cpu_mean_percent / 100:.2f} cores on average (up to "
            f"{(others.cpu_max_percent or 0) / 100:.2f}) during the measured period: the run shared the CPUs, "
            "so its latency and rates may be worse than on a quiet machine"
        )
    if summary.collector.get("error") and not summary.collector.get("failed"):
        out.append(f"collector: {summary.collector['error']}")
    return out
