"""The figure registry: what each per-repetition number of a run is, and how it is written.

A :class:`Figure` is one number per engine × repetition, read from its ``summary.json`` (a
:class:`~harness.results.RepetitionSummary`): its key, label, unit, getter and which direction is better. The
report (``harness/report/results_tables.py``) tabulates them, ``bench compare`` judges them and ``bench history`` follows them
over runs; all three take the definitions from here, so a figure means the same thing everywhere.

Figures are taken over the repetitions that ran to the end (:func:`ok_reps`); failed and interrupted ones carry
no comparable numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from harness.results import LoadedRepetition, RepetitionSummary
from harness.analysis.resources import core_us_per_event
from harness.analysis.stats import Estimate, estimate


@dataclass(frozen=True)
class Figure:
    """One number per repetition that the report tabulates, ``bench compare`` compares and ``bench history``
    follows."""

    key: str
    """Stable identifier (``result_p50``), used in code and on the command line."""
    label: str
    """Short human name (``result p50``)."""
    unit: str
    """Unit of the values (``ms``, ``events/s``, ``% of a core``, ``MiB``)."""
    get: Callable[[RepetitionSummary], float | None]
    """The value of one repetition; None when it was not measured."""
    lower_is_better: bool
    """True for latencies, CPU and memory; False for rates."""

    @property
    def better(self) -> str:
        """``lower`` or ``higher``: the direction of an improvement."""
        return "lower" if self.lower_is_better else "higher"


def _resource(engine_cpu: bool) -> Callable[[RepetitionSummary], float | None]:
    """Getter of the engine's own mean CPU (% of a core) or peak RSS (MiB) over the measured period."""

    def get(s: RepetitionSummary) -> float | None:
        stats = s.resources.get(s.engine)
        if stats is None:
            return None
        return stats.cpu_mean_percent if engine_cpu else (
            None if stats.rss_max_bytes is None else stats.rss_max_bytes / 2**20
        )

    return get


def engine_cost(s: RepetitionSummary) -> float | None:
    """What an event cost the engine, in core-µs (Nexmark's throughput per core turned around): as stored, or
    for an older summary from its figures by the same rule (:func:`harness.analysis.resources.core_us_per_event`)."""
    if s.engine_core_us_per_event is not None:
        return s.engine_core_us_per_event
    return core_us_per_event(s.resources.get(s.engine), s.throughput.processed_rate)


FIGURES: tuple[Figure, ...] = (
    Figure("target_rate", "target", "events/s", lambda s: s.throughput.target_rate, False),
    Figure("achieved_rate", "achieved", "events/s", lambda s: s.throughput.achieved_rate, False),
    Figure("processed_rate", "processed", "events/s", lambda s: s.throughput.processed_rate, False),
    Figure("result_p50", "result p50", "ms", lambda s: s.result_latency.p50_ms, True),
    Figure("result_p90", "result p90", "ms", lambda s: s.result_latency.p90_ms, True),
    Figure("result_p99", "result p99", "ms", lambda s: s.result_latency.p99_ms, True),
    Figure("result_p99_9", "result p99.9", "ms", lambda s: s.result_latency.p99_9_ms, True),
    Figure("result_max", "result max", "ms", lambda s: s.result_latency.max_ms, True),
    Figure("event_time_p50", "event-time p50", "ms", lambda s: s.event_time_latency.p50_ms, True),
    Figure("event_time_p99", "event-time p99", "ms", lambda s: s.event_time_latency.p99_ms, True),
    Figure("engine_cpu", "engine CPU", "% of a core", _resource(True), True),
    Figure("engine_rss", "engine RSS max", "MiB", _resource(False), True),
    Figure("engine_cost", "engine CPU per event", "core-µs", engine_cost, True),
)
FIGURE_BY_KEY: dict[str, Figure] = {f.key: f for f in FIGURES}


def ok_reps(reps: list[LoadedRepetition]) -> list[LoadedRepetition]:
    """Repetitions that ran to the end (failed and interrupted ones carry no comparable figures)."""
    return [r for r in reps if r.summary.status == "ok"]


def figure_values(reps: list[LoadedRepetition], figure: Figure) -> list[float]:
    """The finite values of ``figure`` over the repetitions that ran to the end, in repetition order."""
    values = (figure.get(r.summary) for r in ok_reps(reps))
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def figure_estimate(reps: list[LoadedRepetition], figure: Figure) -> Estimate | None:
    """Mean ± 95 % CI of ``figure`` over the repetitions that ran to the end; None when none measured it."""
    return estimate(figure_values(reps, figure))


def fmt_number(value: float | None, unit: str = "") -> str:
    """A figure's value for a table: 3 significant digits or more, ms above 10 s as seconds, ``–`` for none."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if unit == "ms" and abs(value) >= 10_000:
        return f"{value / 1000:,.2f} s"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:,.1f}"
    else:
        text = f"{value:,.2f}"
    return f"{text} {unit}".rstrip() if unit == "ms" else text


def fmt_estimate(est: Estimate | None, unit: str = "") -> str:
    """``mean ± half-width`` (or the mean alone when a single value was measured), ``–`` for none."""
    if est is None:
        return "–"
    if est.half_width is None:
        return fmt_number(est.mean, unit)
    return f"{fmt_number(est.mean, unit)} ± {fmt_number(est.half_width, unit)}"


__all__ = [
    "FIGURES",
    "FIGURE_BY_KEY",
    "Figure",
    "figure_estimate",
    "figure_values",
    "fmt_estimate",
    "fmt_number",
    "ok_reps",
]
