"""The one chart helper every plot of the harness uses (report, history): a chart is described as data
(:class:`Chart` → :class:`Panel` → :class:`Line`) and drawn here, so every plot gets the same rules:

* only finite points are drawn, and a line with none is left out, legend entry included: a legend never names
  something that is not drawn;
* points of a line are joined across gaps (NaN seconds), so a series sampled every other second is still a line;
* a panel with nothing to draw says "no data"; a chart with nothing at all is not written.

Drawn with matplotlib's object API (no pyplot state), PNG at 100 dpi without a timestamp in the metadata.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.report.output import save_figure

DPI = 100
SPAN_LANE = 0.025
"""Height of one span lane (see :attr:`Span.lane`), as a fraction of the panel."""


@dataclass(frozen=True)
class Line:
    """One labelled series of a panel."""

    label: str
    """Legend text; never empty (every drawn line is named)."""
    x: Sequence[float] | np.ndarray
    y: Sequence[float] | np.ndarray
    yerr: Sequence[float] | Sequence[Sequence[float]] | np.ndarray | None = None
    """Error bars: symmetric (one value per point, e.g. a 95 % CI half-width) or [below, above] (two rows), or
    None."""
    style: Mapping[str, Any] = field(default_factory=dict)
    """matplotlib line properties: color, linestyle, marker, drawstyle, linewidth, alpha."""

    def finite(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """x, y (and yerr) at the points where x and y are finite."""
        x = np.asarray(self.x, dtype=np.float64)
        y = np.asarray(self.y, dtype=np.float64)
        keep = np.isfinite(x) & np.isfinite(y)
        err = None if self.yerr is None else np.nan_to_num(np.asarray(self.yerr, dtype=np.float64))[..., keep]
        return x[keep], y[keep], err


@dataclass(frozen=True)
class Span:
    """A marked stretch of the x axis (e.g. a fault and its recovery): a line at ``start`` and a light shade from
    ``start`` to ``end`` (to the panel's right edge when ``end`` is None). Not in the legend: the panel's
    title says what spans mean."""

    start: float
    end: float | None = None
    color: str = "red"
    """Of the line and the shade (e.g. the colour of the engine whose fault it is)."""
    lane: int = 0
    """Spans of several series overlap: each also gets a solid bar in its own lane along the top of the panel
    (lane 0 topmost), so where each one ends stays readable."""


@dataclass(frozen=True)
class Panel:
    """One axes: its lines, labels, scales and unlabelled guides."""

    lines: Sequence[Line]
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    xscale: str = "linear"
    yscale: str = "linear"
    xlim: tuple[float | None, float | None] | None = None
    ylim: tuple[float | None, float | None] | None = None
    xticks: Mapping[float, str] | None = None
    """Fixed x ticks → their labels (e.g. run dates), or None for matplotlib's."""
    yticks: Mapping[float, str] | None = None
    vlines: Sequence[float] = ()
    """Vertical guides (grey, dashed, not in the legend): e.g. where settings changed."""
    hlines: Sequence[float] = ()
    """Horizontal guides (grey, dotted, not in the legend): e.g. the p99 level of a tail view."""
    spans: Sequence[Span] = ()
    """Marked stretches (red line + shade, not in the legend): e.g. faults and their recovery."""


@dataclass(frozen=True)
class Chart:
    """A figure: panels laid out in ``columns`` columns, row by row."""

    panels: Sequence[Panel]
    title: str = ""
    columns: int = 1
    sharex: bool = False
    panel_size: tuple[float, float] = (8.0, 4.0)
    """Width, height of one panel in inches."""
    stamp: str = ""
    """Where the figure comes from (run or directory, scenario, machine, date), printed along its bottom so a
    plot taken out of its report still says what it shows."""


ENGINE_COLOURS: dict[str, str] = {
    "spark": "#1f77b4", "flink": "#ff7f0e", "calibration": "#2ca02c", "kafka-streams": "#d62728",
    "flink-python": "#9467bd",
}
"""One colour per engine in every plot (matplotlib's tab10): the built-in engines' own."""
_OTHER_COLOURS = ("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31",
                  "#843c39", "#7b4173")


def engine_colours(labels: Sequence[str]) -> dict[str, str]:
    """A colour per label: a built-in engine's own; any other label a colour chosen from its name (the same in
    every plot), the next free one where two labels of this plot would share it."""
    import zlib

    out: dict[str, str] = {}
    for label in labels:
        if label in ENGINE_COLOURS and ENGINE_COLOURS[label] not in out.values():
            out[label] = ENGINE_COLOURS[label]
            continue
        start = zlib.crc32(label.encode()) % len(_OTHER_COLOURS)
        free = [c for c in _OTHER_COLOURS[start:] + _OTHER_COLOURS[:start] if c not in out.values()]
        out[label] = free[0] if free else _OTHER_COLOURS[start]
    return out


def stamp_text(name: str, scenario: str, fingerprint: Mapping[str, Any], when: str) -> str:
    """``run <name> · scenario <s> · <CPU>, <n> CPUs · <date>`` for :attr:`Chart.stamp`."""
    machine = f"{fingerprint.get('cpu_model', 'unknown CPU')}, {fingerprint.get('cpu_logical', '?')} CPUs"
    return f"{name} · scenario {scenario} · {machine} · {when}"


def draw(chart: Chart, *, empty: bool = False) -> Any | None:
    """The chart as a matplotlib Figure, or None when no panel has a finite point (unless ``empty``: then its
    panels say "no data")."""
    if not empty and not any(line.finite()[0].size for panel in chart.panels for line in panel.lines):
        return None
    from matplotlib.figure import Figure

    columns = max(1, min(chart.columns, len(chart.panels)))
    rows = -(-len(chart.panels) // columns)
    fig = Figure(figsize=(chart.panel_size[0] * columns, chart.panel_size[1] * rows))
    axes = fig.subplots(rows, columns, sharex=chart.sharex, squeeze=False).flat
    for ax, panel in zip(axes, chart.panels):
        _draw_panel(ax, panel)
    for ax in list(axes)[len(chart.panels):]:
        ax.set_visible(False)
    if chart.title:
        fig.suptitle(chart.title)
    if chart.stamp:
        fig.text(0.005, 0.003, chart.stamp, fontsize=7, color="grey", ha="left", va="bottom")
        fig.tight_layout(rect=(0, 0.03, 1, 1))
    else:
        fig.tight_layout()
    return fig


def save(chart: Chart, path: Path, *, empty: bool = False, within: Path | None = None) -> Path | None:
    """Draw ``chart`` into the PNG ``path`` (replacing it, never through a symlink, inside ``within`` when
    given: :mod:`harness.report.output`); None, and nothing written, when it has no data and not ``empty``."""
    fig = draw(chart, empty=empty)
    if fig is None:
        return None
    return save_figure(fig, path, within=within, dpi=DPI, metadata={"Software": None})


def _draw_panel(ax: Any, panel: Panel) -> None:
    drawn = 0
    for line in panel.lines:
        x, y, err = line.finite()
        if not x.size:
            continue
        if err is not None:
            ax.errorbar(x, y, yerr=err, capsize=3, label=line.label, **line.style)
        else:
            ax.plot(x, y, label=line.label, **line.style)
        drawn += 1
    for at in panel.vlines:
        ax.axvline(at, color="grey", linestyle="--", linewidth=1)
    for at in panel.hlines:
        ax.axhline(at, color="grey", linestyle=":", linewidth=1)
    if panel.spans and drawn:
        _draw_spans(ax, panel.spans)
    if not drawn:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="grey")
    _decorate(ax, panel, legend=drawn > 0)


def _draw_spans(ax: Any, spans: Sequence[Span]) -> None:
    """Each span after the lines (an open span ends at the right edge the lines gave the axes)."""
    right = ax.get_xlim()[1]
    for span in spans:
        ax.axvline(span.start, color=span.color, linewidth=1.5, alpha=0.8)
        end = max(span.end if span.end is not None else right, span.start)
        ax.axvspan(span.start, end, color=span.color, alpha=0.07, linewidth=0)
        top = 1.0 - SPAN_LANE * span.lane
        ax.axvspan(span.start, end, ymin=top - SPAN_LANE, ymax=top, color=span.color, alpha=0.8, linewidth=0)
    ax.set_xlim(right=max(right, *(s.end or right for s in spans)))


def _decorate(ax: Any, panel: Panel, *, legend: bool) -> None:
    ax.set_title(panel.title, fontsize="medium")
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    ax.set_xscale(panel.xscale)
    ax.set_yscale(panel.yscale)
    if panel.xlim is not None:
        ax.set_xlim(*panel.xlim)
    if panel.ylim is not None:
        ax.set_ylim(*panel.ylim)
    if panel.xticks is not None:
        ax.set_xticks(list(panel.xticks), list(panel.xticks.values()), rotation=30, ha="right", fontsize=8)
    if panel.yticks is not None:
        ax.set_yticks(list(panel.yticks), list(panel.yticks.values()))
        ax.minorticks_off()
    ax.grid(True, alpha=0.3)
    if legend:
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def legend_entries(fig: Any) -> list[tuple[str, Any]]:
    """Every legend text of ``fig`` with the artist it names (for checks that each names something drawn)."""
    entries = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        artists = dict(zip(*reversed(ax.get_legend_handles_labels())))
        entries += [(text.get_text(), artists.get(text.get_text())) for text in legend.get_texts()]
    return entries


__all__ = ["Chart", "Line", "Panel", "Span", "draw", "legend_entries", "save"]
