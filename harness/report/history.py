"""``bench history RUN_DIR...``: how each engine's key figures moved over runs, as a markdown table and a plot.

Runs are put in time order (when their load started) and, per engine, the mean ± 95 % CI over each run's
usable repetitions (ran to the end, valid; :func:`harness.report.compare.usable_reps`) of :data:`HISTORY_FIGURES` is
listed: result latency p50 and p99, processed rate and the engine's CPU — what asv shows per benchmark over
commits. A run whose settings or environment differ from the run before it is marked, since its figures are not
like for like with the earlier ones (the same rules as ``bench compare``).

Everything comes from the stored result files; the same runs always give the same history.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.report import charts
from harness.report.compare import environment_differences, load_runs, setting_differences, usable_reps
from harness.report.markdown import table
from harness.report.output import write_output
from harness.report.figures import FIGURE_BY_KEY, Figure, figure_values, fmt_estimate
from harness.results import RunData
from harness.analysis.stats import Estimate, estimate

HISTORY_FIGURES = ("result_p50", "result_p99", "processed_rate", "engine_cpu")
"""Figure keys (:mod:`harness.report.figures`) followed over runs."""

_RUN_NAME_TIME = re.compile(r"^(\d{8}T\d{6}Z)-")


@dataclass(frozen=True)
class HistoryPoint:
    """One run in the history: when it started and, per engine, its figures."""

    run: RunData
    started: dt.datetime | None
    """UTC start of the run's load; None when no source of it survives."""
    figures: dict[str, dict[str, Estimate | None]]
    """engine → figure key → mean ± CI over the usable repetitions (None: not measured)."""
    reps: dict[str, tuple[int, int]]
    """engine → (usable repetitions, repetitions)."""
    note: str
    """Why this run may not be like for like with the one before it (status, settings, environment), or ""."""


def run_started(run: RunData) -> dt.datetime | None:
    """When a run's load started (UTC): its earliest repetition's load start, else the timestamp in the
    directory name (``20261125T120000Z-name``), else when it finished (run-status.json); None when none is known."""
    starts = [r.summary.timeline.load_start_ms for reps in run.engines.values() for r in reps]
    if starts:
        return dt.datetime.fromtimestamp(min(starts) / 1000, tz=dt.timezone.utc)
    match = _RUN_NAME_TIME.match(run.path.name)
    if match:
        return dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    finished = (run.status or {}).get("finished_utc")
    if finished:
        return dt.datetime.fromisoformat(str(finished).replace("Z", "+00:00"))
    return None


def history_points(runs: Sequence[RunData]) -> list[HistoryPoint]:
    """The runs in time order (runs without a known time last, in the given order), with their figures."""
    ordered = sorted(
        ((run_started(run), index, run) for index, run in enumerate(runs)),
        key=lambda item: (item[0] is None, item[0] or dt.datetime.min.replace(tzinfo=dt.timezone.utc), item[1]),
    )
    points: list[HistoryPoint] = []
    previous: RunData | None = None
    for started, _, run in ordered:
        figures: dict[str, dict[str, Estimate | None]] = {}
        reps: dict[str, tuple[int, int]] = {}
        for engine, engine_reps in run.engines.items():
            usable = usable_reps(engine_reps)
            reps[engine] = (len(usable), len(engine_reps))
            figures[engine] = {key: estimate(figure_values(usable, FIGURE_BY_KEY[key])) for key in HISTORY_FIGURES}
        points.append(HistoryPoint(run, started, figures, reps, _note(run, previous)))
        previous = run
    return points


def _note(run: RunData, previous: RunData | None) -> str:
    """What a reader of the row must know: an unfinished run, changed settings or environment."""
    out = []
    status = (run.status or {}).get("status")
    if status != "complete":
        out.append(f"run {status or 'unfinished'}")
    if previous is not None:
        if setting_differences(previous.scenario, run.scenario):
            out.append("settings changed")
        if environment_differences(previous.fingerprint, run.fingerprint):
            out.append("environment changed")
    return "; ".join(out)


def engines_of(points: Sequence[HistoryPoint]) -> list[str]:
    """Every engine that appears in any run, in order of first appearance."""
    return list(dict.fromkeys(engine for p in points for engine in p.figures))


def _when(point: HistoryPoint) -> str:
    return "?" if point.started is None else point.started.strftime("%Y-%m-%d %H:%M")


def render_history(points: Sequence[HistoryPoint], image: str | None = None) -> str:
    """The history as markdown: one table per engine, a row per run, oldest first; ``image`` links the plot."""
    lines = ["# Benchmark history", ""]
    lines += [f"{len(points)} run(s), oldest first. Mean ± half-width of the 95 % confidence interval over each "
              "run's usable repetitions (ran to the end and valid).", ""]
    if image:
        lines += [f"![Benchmark history]({image})", ""]
    figures = [FIGURE_BY_KEY[key] for key in HISTORY_FIGURES]
    header = ["started (UTC)", "run", "commit", "reps"] + [f"{f.label} ({f.unit})" for f in figures] + ["note"]
    for engine in engines_of(points):
        lines += [f"## {engine}", ""]
        lines += table(header, [_history_row(p, engine, figures) for p in points])
        lines.append("")
    if not points or not engines_of(points):
        lines += ["No engine results in these runs.", ""]
    return "\n".join(lines).rstrip() + "\n"


def _history_row(point: HistoryPoint, engine: str, figures: list[Figure]) -> list[str]:
    """One run's cells in an engine's table: when, run, commit, usable/all repetitions, the figures, the note."""
    usable, total = point.reps.get(engine, (0, 0))
    values = point.figures.get(engine, {})
    commit = str(point.run.fingerprint.get("git_commit") or "")[:10]
    cells = [_when(point), f"`{point.run.path.name}`", f"`{commit}`" if commit else "–", f"{usable}/{total}"]
    cells += [fmt_estimate(values.get(f.key)) for f in figures]
    cells.append(point.note)
    return cells


def plot_history(points: Sequence[HistoryPoint], path: Path) -> Path:
    """One panel per figure of :data:`HISTORY_FIGURES`, x = the runs in time order, a line per engine with the
    95 % CI as error bars, dashed where settings or the environment changed. Written as PNG to ``path`` (a panel
    without values says so)."""
    x = list(range(len(points)))
    changed = tuple(xi - 0.5 for xi, p in zip(x, points) if "changed" in p.note)
    ticks = {float(xi): _when(p) for xi, p in zip(x, points)}
    panels = [_history_panel(points, FIGURE_BY_KEY[key], x, ticks, changed) for key in HISTORY_FIGURES]
    machines = sorted({f"{p.run.fingerprint.get('cpu_model', '?')}, {p.run.fingerprint.get('cpu_logical', '?')} CPUs"
                       for p in points})
    stamp = (f"{len(points)} runs, {_when(points[0]) if points else '?'} to {_when(points[-1]) if points else '?'}"
             f" · {'; '.join(machines)} · whiskers: 95 % CI, cut at 0")
    chart = charts.Chart(panels, columns=2, sharex=True, panel_size=(5.5, 3.5), stamp=stamp,
                         title="Benchmark history (oldest left; dashed: settings or environment changed)")
    charts.save(chart, path, empty=True)  # with no value at all, its panels say "no data"
    return path


def _history_panel(points: Sequence[HistoryPoint], figure: Figure, x: list[int], ticks: dict[float, str],
                   changed: tuple[float, ...]) -> charts.Panel:
    lines = []
    colours = charts.engine_colours(engines_of(points))
    for engine in engines_of(points):
        est = [p.figures.get(engine, {}).get(figure.key) for p in points]
        xs = [xi for xi, e in zip(x, est) if e is not None]
        means = [e.mean for e in est if e is not None]
        # the interval's lower whisker stops at 0: no figure here (latency, rate, CPU) can be negative
        low = [min(e.half_width or 0.0, max(e.mean, 0.0)) for e in est if e is not None]
        high = [e.half_width or 0.0 for e in est if e is not None]
        lines.append(charts.Line(engine, xs, means, yerr=[low, high], style={"marker": "o", "color": colours[engine]}))
    return charts.Panel(lines, title=f"{figure.label} ({figure.better} is better)", ylabel=figure.unit,
                        xticks=ticks, vlines=changed)


def write_history(
    run_dirs: Sequence[Path], to: Path | None = None, plot: Path | None = None
) -> tuple[str, Path | None]:
    """Read the runs, write the plot to ``plot`` (None: no plot) and the markdown to ``to`` (None: not written),
    the markdown linking the plot relative to where it is. Returns the markdown and the plot's path."""
    points = history_points(load_runs(run_dirs))
    image = None
    if plot is not None:
        plot_history(points, plot)
        base = to.parent if to is not None else Path.cwd()
        image = Path(os.path.relpath(plot.resolve(), base.resolve())).as_posix()
    text = render_history(points, image)
    if to is not None:
        write_output(to, text)
    return text, plot
