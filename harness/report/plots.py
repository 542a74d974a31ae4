"""The run report's PNG plots: latency CDF with a tail view, latency per measured window, throughput with each
engine's processed rate and input lag, CPU and RSS a row per component — described as
:class:`harness.report.charts.Chart` and drawn by that one helper, from the stored result files."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.report import charts
from harness.results import LoadedRepetition, ResultError, RunData
from harness.report.figures import ok_reps
from harness.workload import is_measured

PLOT_FILES = {
    "latency_cdf": "latency-cdf.png",
    "latency_time": "latency-over-time.png",
    "throughput_time": "throughput-over-time.png",
    "resources_time": "resources-over-time.png",
}
"""Plot name → its file in the run directory."""
PROCESSED_MEAN_S = 5
"""The engine's processed rate is drawn as a mean over this many seconds (its input-row counter advances by
micro-batch or by metric poll, so single seconds jump between 0 and twice the rate)."""
TAIL_LEVELS = {0.1: "10 % (p90)", 0.01: "1 % (p99)", 0.001: "0.1 % (p99.9)"}
"""Levels of the latency tail view (fraction of pairs at or above a latency) and their percentile names."""


def write_plots(run: RunData) -> dict[str, Path]:
    """PNG plots into the run directory (replaced if present); returns name → path of those drawn."""
    out: dict[str, Path] = {}
    for name, chart in plot_charts(run).items():
        path = charts.save(chart, run.path / PLOT_FILES[name], within=run.path)
        if path is not None:
            out[name] = path
    return out


def plot_charts(run: RunData) -> dict[str, charts.Chart]:
    """The report's plots as chart descriptions (name → chart; see :data:`PLOT_FILES`), from the stored files."""
    if not run.engines:
        return {}
    stamp = run_stamp(run)
    return {name: dataclasses.replace(chart, stamp=stamp) for name, chart in _charts(run).items()}


def run_stamp(run: RunData) -> str:
    """What every plot of ``run`` is stamped with: the run, its scenario, the machine, the date."""
    stamp = run.path.name.split("-", 1)[0]
    when = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}" if len(stamp) >= 8 and stamp[:8].isdigit() else "date unknown"
    return charts.stamp_text(f"run {run.path.name}", str(run.scenario.get("name", "?")), run.fingerprint, when)


def _charts(run: RunData) -> dict[str, charts.Chart]:
    return {
        "latency_cdf": _latency_cdf_chart(run),
        "latency_time": _latency_time_chart(run),
        "throughput_time": _throughput_chart(run),
        "resources_time": _resources_chart(run),
    }


def _first_reps(run: RunData) -> list[tuple[str, str, LoadedRepetition]]:
    """(colour, label, repetition) of each engine's first repetition that ran to the end, one colour per engine:
    plots over time show one repetition per engine (several would make them unreadable)."""
    out = []
    colours = charts.engine_colours(list(run.engines))
    for name, reps in run.engines.items():
        ok = ok_reps(reps)
        if ok:
            label = name if len(reps) == 1 else f"{name} rep {ok[0].summary.repetition}"
            out.append((colours[name], label, ok[0]))
    return out


def _latency_cdf_chart(run: RunData) -> charts.Chart:
    """Left: the CDF of result latency per engine (all repetitions merged); right: the tail, the fraction of pairs
    at or above each latency on a log axis, so p99 … p99.9 get as much room as the body."""
    body, tail = [], []
    colours = charts.engine_colours(list(run.engines))
    for name, reps in run.engines.items():
        merged = None
        for r in ok_reps(reps):
            if merged is None:
                merged = r.result_histogram
            else:
                merged.add(r.result_histogram)
        if merged is None or merged.get_total_count() == 0:
            continue
        values, counts = zip(*((it.value_iterated_to, it.count_at_value_iterated_to)
                               for it in merged.get_recorded_iterator()))
        below = np.cumsum(counts) / merged.get_total_count()
        style = {"color": colours[name], "drawstyle": "steps-post"}
        body.append(charts.Line(name, values, below, style=style))
        at_or_above = 1.0 - np.concatenate([[0.0], below[:-1]])
        tail.append(charts.Line(name, values, at_or_above, style={"color": colours[name], "marker": ".", "markersize": 3}))
    return charts.Chart([
        charts.Panel(body, title="all measured pairs", xlabel="result latency (ms)", ylabel="fraction of pairs"),
        charts.Panel(tail, title="tail (log scale)", xlabel="result latency (ms)",
                     ylabel="fraction of pairs at or above", yscale="log", ylim=(5e-4, 0.3), yticks=TAIL_LEVELS,
                     hlines=tuple(TAIL_LEVELS)),
    ], columns=2, panel_size=(6.0, 4.5))


def _latency_time_chart(run: RunData) -> charts.Chart:
    """p50 and p99 of result latency per measured window, over the window's (window, user) pairs of all repetitions
    that ran to the end, at the window's end relative to the load's start."""
    lines = []
    colours = charts.engine_colours(list(run.engines))
    for name, reps in run.engines.items():
        by_window = _latency_by_window(ok_reps(reps))
        if by_window is None:
            continue
        label = name if len(ok_reps(reps)) <= 1 else f"{name} ({len(ok_reps(reps))} reps pooled)"
        x = by_window.index.to_numpy()
        lines.append(charts.Line(f"{label} p50", x, by_window[0.5], style={"color": colours[name], "marker": "o"}))
        lines.append(charts.Line(f"{label} p99", x, by_window[0.99],
                                 style={"color": colours[name], "marker": "^", "linestyle": "--"}))
    spans = _fault_spans(run)
    title = "per measured window: p50 and p99 over its (window, user) pairs" + (FAULT_SPAN_NOTE if spans else "")
    return charts.Chart([charts.Panel(lines, xlabel="window end (seconds since the load started)",
                                      ylabel="result latency (ms)", title=title, spans=spans)])


FAULT_SPAN_NOTE = "\nline: fault injected; shaded, and a bar per engine on top: until latency recovered"
"""Added to the title of a plot with fault spans (spans are not in the legend)."""


def _fault_spans(run: RunData) -> list[charts.Span]:
    """A span per injected fault of each engine's first repetition that ran to the end, in the engine's colour:
    from the fault to its recovery (:mod:`harness.analysis.fault_figures`; open to the plot's edge when latency never recovered),
    in seconds since that repetition's load started."""
    spans = []
    colours = charts.engine_colours(list(run.engines))
    for i, name in enumerate(run.engines):
        ok = ok_reps(run.engines[name])
        if not ok:
            continue
        summary = ok[0].summary
        for fault in summary.faults:
            if fault.get("injected_at_ms") is None:
                continue
            at = (fault["injected_at_ms"] - summary.timeline.load_start_ms) / 1000
            recovery = fault.get("recovery_ms")
            spans.append(charts.Span(at, None if recovery is None else at + recovery / 1000, color=colours[name], lane=i))
    return spans


def _latency_by_window(reps: list[LoadedRepetition]) -> Any | None:
    """Quantiles 0.5 and 0.99 of the measured pairs' result latency by window end in seconds since the load
    started (a frame with columns 0.5 and 0.99), pooled over ``reps``; None when none has timed measured pairs."""
    timed = []
    for r in reps:
        try:
            pairs = r.pairs()
        except ResultError:
            continue
        s = r.summary
        measured = is_measured(pairs["window_end"], warmup_end_ms=s.timeline.warmup_end_ms,
                               load_end_ms=s.timeline.load_end_ms, watermark_delay_ms=s.watermark_delay_ms)
        rows = pairs.loc[measured & pairs["result_latency_ms"].notna().to_numpy()]
        timed.append(pd.DataFrame({"end_s": (rows["window_end"] - s.timeline.load_start_ms) / 1000.0,
                                   "latency": rows["result_latency_ms"]}))
    if not timed or not sum(len(t) for t in timed):
        return None
    return pd.concat(timed).groupby("end_s")["latency"].quantile([0.5, 0.99]).unstack()


def _throughput_chart(run: RunData) -> charts.Chart:
    """Top: the target, each engine's sent rate and processed rate; bottom (when recorded): the input lag."""
    rates: list[charts.Line] = []
    lags: list[charts.Line] = []
    target_drawn = False
    for colour, label, r in _first_reps(run):
        series = r.series
        second = series["second"]
        if not target_drawn and series["target_rate"].notna().any():
            rates.append(charts.Line("target", second, series["target_rate"],
                                     style={"color": "grey", "linewidth": 4, "alpha": 0.4}))
            target_drawn = True
        rates.append(charts.Line(f"{label} sent", second, series["achieved_rate"],
                                 style={"color": colour, "linestyle": ":", "linewidth": 1}))
        rates.append(_processed_line(colour, label, series, r.summary.window_size_ms))
        if "input_lag" in series:
            lags.append(charts.Line(f"{label} input lag", second, series["input_lag"], style={"color": colour}))
    spans = _fault_spans(run)
    panels = [charts.Panel(rates, xlabel="seconds since the load started", ylabel="events/s", spans=spans,
                           title="target, sent and processed rate" + (" (first repetition)" if any(
                               len(reps) > 1 for reps in run.engines.values()) else "")
                           + (FAULT_SPAN_NOTE if spans else ""))]
    if any(np.isfinite(np.asarray(line.y, dtype=float)).any() for line in lags):
        panels[0] = dataclasses.replace(panels[0], xlabel="")  # shared x axis: named under the last panel
        panels.append(charts.Panel(lags, xlabel="seconds since the load started", ylabel="records", spans=spans,
                                   title="input lag: records sent − rows the engine consumed"))
    return charts.Chart(panels, sharex=True, panel_size=(8.0, 3.6))


def _processed_line(colour: str, label: str, series: Any, window_ms: int) -> charts.Line:
    """The engine's processed rate (its input-row counter) as a :data:`PROCESSED_MEAN_S` mean over the seconds it
    was sampled; without that counter, the rate the output advanced, as a mean over one window (results come in a
    burst per window)."""
    engine = series["processed_rate_engine"]
    if engine.notna().any():
        known = engine.dropna()
        mean = known.rolling(PROCESSED_MEAN_S, min_periods=1, center=True).mean()
        return charts.Line(f"{label} processed ({PROCESSED_MEAN_S} s mean)", series["second"][known.index], mean,
                           style={"color": colour})
    per_window = max(1, round(window_ms / 1000))
    mean = series["processed_rate_output"].rolling(per_window, min_periods=1, center=True).mean()
    return charts.Line(f"{label} processed (from results, {per_window} s mean)", series["second"], mean,
                       style={"color": colour})


def _resources_chart(run: RunData) -> charts.Chart:
    """A row per component (the engine's processes, broker, generator, harness), CPU left and RSS right, a line per
    engine (its first repetition that ran to the end)."""
    frames = {}
    for colour, label, r in _first_reps(run):
        frame = r.resources
        if not frame.empty:
            frames[(colour, label)] = frame.assign(
                t_s=(frame["t_ms"] - r.summary.timeline.load_start_ms) / 1000.0,
                role=frame["component"].where(frame["component"] != r.summary.engine, "engine"))
    roles = sorted(dict.fromkeys(role for frame in frames.values() for role in frame["role"]),
                   key=lambda r: r != "engine")
    panels = []
    for role in roles:
        title = "engine processes" if role == "engine" else role
        cpu, rss = [], []
        for (colour, label), frame in frames.items():
            rows = frame[frame["role"] == role]
            cpu.append(charts.Line(label, rows["t_s"], rows["cpu_percent"], style={"color": colour}))
            rss.append(charts.Line(label, rows["t_s"], rows["rss_bytes"] / 2**20, style={"color": colour}))
        last = role == roles[-1]
        xlabel = "seconds since the load started" if last else ""
        panels.append(charts.Panel(cpu, title=f"{title}: CPU", ylabel="% of a core", xlabel=xlabel))
        panels.append(charts.Panel(rss, title=f"{title}: RSS", ylabel="MiB", xlabel=xlabel))
    return charts.Chart(panels, columns=2, sharex=True, panel_size=(5.5, 2.4))

