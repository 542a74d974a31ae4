"""``capacity.md`` (a table per engine) and ``capacity.png`` (latency and processed rate against the offered rate),
both rendered from a capacity directory's stored ``capacity.json`` (:mod:`harness.capacity.results`): written once
by ``bench capacity`` when its searches end, and by ``bench report`` of a capacity directory, which renders the
same markdown (alone, or as one section of a combined report such as REPORT.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.capacity.results import load_capacity
from harness.report.markdown import table
from harness.report.output import save_figure, write_output
from harness.results.store import write_new
from harness.units import format_duration_ms, format_percent

SHARES = (0.25, 0.5, 0.75, 1.0)
"""Fractions of the capacity at which the tables show latency (from the passing trial nearest to each)."""
NEAR = 0.1
"""A trial stands for a fraction f of the capacity when its rate is within this share of f × capacity (the table
shows its own share beside it)."""
PLOT_FILE = "capacity.png"


def write_capacity_files(capacity_dir: Path) -> None:
    """``bench capacity``, once its searches have ended: capacity.md and, when some search has trials, capacity.png
    into the capacity directory, from its stored capacity.json (capacity.md never overwritten)."""
    capacity_dir = Path(capacity_dir)
    data = load_capacity(capacity_dir)
    has_plot = _has_trials(data)
    if has_plot:
        plot_capacity(data, capacity_dir / PLOT_FILE)
    write_new(capacity_dir / "capacity.md", render_capacity(data, PLOT_FILE if has_plot else None))


def write_capacity_report(capacity_dir: Path, to: Path | None = None) -> Path:
    """``bench report CAPACITY_DIR``: the markdown of :func:`render_capacity` into ``to`` (default
    ``CAPACITY_DIR/report.md``) and capacity.png redrawn into the directory (both derived: may be rewritten).
    Returns the markdown path."""
    capacity_dir = Path(capacity_dir)
    target = Path(to) if to is not None else capacity_dir / "report.md"
    return write_output(target, capacity_report_section(capacity_dir, target),
                        within=None if to is not None else capacity_dir)


def capacity_report_section(capacity_dir: Path, target: Path) -> str:
    """The capacity directory's markdown with its plot (redrawn into the directory) linked relative to
    ``target``, the file the text goes into; used alone and by ``bench report RUN... CAPACITY_DIR --to FILE``."""
    data = load_capacity(capacity_dir)
    image = None
    if _has_trials(data):
        path = plot_capacity(data, Path(capacity_dir) / PLOT_FILE)
        image = Path(os.path.relpath(path.resolve(), target.parent.resolve())).as_posix()
    return render_capacity(data, image, source=Path(capacity_dir).name)


def _has_trials(data: dict[str, Any]) -> bool:
    """Whether any search of the capacity result ran a trial (else there is nothing to plot)."""
    return any(s["trials"] for found in data["engines"].values() for s in found["searches"])


# ------------------------------------------------------------------------------------------------ markdown
def render_capacity(data: dict[str, Any], image: str | None = None, *, source: str | None = None) -> str:
    """The markdown of a capacity result (format 2): the search settings, a section per engine and the plot
    (``image``: its path relative to the markdown). Pure: the same capacity.json gives the same text."""
    search = data["search"]
    searches = data.get("repetitions", 1)
    lines = [f"# Capacity: {data['scenario']['name']}", ""]
    if source is not None:
        lines += [f"Capacity directory `{source}` — status: {data['status']}.", ""]
    lines += [
        _search_words(search) + " A trial passes when the generator drove the load, the engine kept up (processed "
        "rate, input lag, latency trend), every pair was exact"
        f"{' and ' + search['slo'] + ' held' if search['slo'] else ''}. "
        + (f"{searches} searches per engine: the capacity is their mean ± the half-width of its 95 % confidence "
           "interval (Student t)." if searches > 1 else
           "One search per engine: no confidence interval (`--repetitions N` gives one).")
        + ("" if source is not None else f" Status: {data['status']}."),
        "",
    ]
    for engine, found in data["engines"].items():
        lines.extend(_engine_section(engine, found, data["calibration_capacity"]))
    if image is not None:
        lines += ["## Capacity plots", "", "Result latency p50/p99 against the offered rate (the hockey stick) and "
                  "processed against offered rate; o passed, x failed, open squares: load path or unjudged.", "",
                  f"![Latency and processed rate against the offered rate]({image})", ""]
    return "\n".join(lines).rstrip() + "\n"


def _search_words(search: dict[str, Any]) -> str:
    """How the trials were run and the rates chosen, in words (fresh or stepped trials)."""
    span = (f"{format_duration_ms(search['trial_duration_ms'])} (first "
            f"{format_duration_ms(search['trial_warmup_ms'])} not measured)")
    if search.get("trials") == "stepped":
        return (f"Search with stepped trials: one broker and engine per run of up to {search['steps_per_run']} "
                f"rates, each step a trial of {span} judged like a fresh one; from {search['start']:,.0f}/s, "
                f"× {search['growth']:g} per step until a step fails (the run ends there), then runs of finer steps "
                f"inside the bracket to {format_percent(search['precision'])}.")
    return (f"Search: from {search['start']:,.0f}/s, × {search['growth']:g} until a trial fails, then bisection to "
            f"{format_percent(search['precision'])}; each trial {span}, a fresh broker and engine.")


Numbered = tuple[int, int, dict[str, Any]]
"""(search number, trial number within it, the trial), both from 1."""


def _numbered(found: dict[str, Any]) -> list[Numbered]:
    return [(s, t, trial) for s, search in enumerate(found["searches"], 1)
            for t, trial in enumerate(search["trials"], 1)]


def _engine_section(engine: str, found: dict[str, Any], ceiling: float | None) -> list[str]:
    capacity = found["capacity"]
    trials = _numbered(found)
    several = len(found["searches"]) > 1
    at = _nearest_pass(trials, capacity) if capacity is not None else None
    rows = [["sustainable throughput", _capacity_cell(found)]]
    if several:
        rows.append(["range compared by `bench compare`", _bracket(found["interval"])])
    if found["fraction_of_calibration"] is not None:
        rows.append([f"share of the calibration ceiling ({_rate(ceiling)})", f"{found['fraction_of_calibration']:.0%}"])
    if at is not None:
        rows.append([f"CPU / RSS at it ({_which(at, several)})",
                     f"{_num(at[2].get('cpu_mean_percent'), '%')} / {_mib(at[2].get('rss_max_bytes'))}"])
        rows.append([f"engine CPU per event at it ({_which(at, several)})", _cost(at[2])])
    if not several:
        rows.append(["ended by", found["searches"][0]["ended_by"]])
    rows.append(["search wall time", f"{found['wall_s']:,.0f} s, {len(trials)} trial(s)"
                 + (f" in {len(found['searches'])} searches" if several else "")])
    title = f"## {engine}" + (" (calibration: the harness's own ceiling)" if found["calibration"] else "")
    lines = [title, "", *table(["", ""], rows), ""]
    if capacity is not None:
        lines += [*_shares_table(trials, capacity, several), ""]
    if several:
        lines += [*_searches_table(found["searches"]), ""]
    return [*lines, *_trials_table(trials, several), ""]


def _capacity_cell(found: dict[str, Any]) -> str:
    values = found["capacity_values"]
    if found["capacity"] is None:
        return "— (no search found a passing rate)"
    if len(values) == 1:
        return (f"{_rate(found['capacity'])} (bracket {_bracket(found['searches'][0]['bracket'])}; one search: "
                "no confidence interval)")
    none = sum(v is None for v in values)
    spread = ("no confidence interval: only one search found a capacity" if found["capacity_ci"] is None
              else f"± {found['capacity_ci']:,.0f}/s, 95 % CI (Student t)")
    each = ", ".join("none" if v is None else f"{v:,.0f}" for v in values)
    return (f"{_rate(found['capacity'])} {spread}; the {len(values)} searches: {each}/s"
            + (f" ({none} found no passing rate, left out of the mean)" if none else ""))


def _shares_table(trials: list[Numbered], capacity: float, several: bool) -> list[str]:
    rows = []
    for share in SHARES:
        target = share * capacity
        near = _nearest_pass(trials, target)
        if near is None or abs(near[2]["rate"] - target) > NEAR * target:
            shown = "no passing trial within ±10 %" + ("" if near is None else
                                                        f" (nearest: {_rate(near[2]['rate'])})")
            rows.append([f"{share:.0%}", _rate(target), shown, "—", "—"])
            continue
        trial = near[2]
        unsteady = " — still catching up: includes its start-up" if trial.get("reason") else ""
        rows.append([f"{share:.0%}", _rate(target), f"{_which(near, several)}: {_rate(trial['rate'])} "
                     f"({trial['rate'] / capacity:.0%}){unsteady}", _sec(trial.get("p50_ms")),
                     _sec(trial.get("p99_ms"))])
    return table(["share of capacity", "rate", "nearest passing trial (its share)", "latency p50", "latency p99"],
                 rows)


def _searches_table(searches: list[dict[str, Any]]) -> list[str]:
    rows = [[str(index), _rate(s["capacity"]), _bracket(s["bracket"]), str(len(s["trials"])), f"{s['wall_s']:,.0f} s",
             s["ended_by"]] for index, s in enumerate(searches, 1)]
    return table(["search", "capacity", "bracket", "trials", "wall time", "ended by"], rows)


def _cost(trial: dict[str, Any]) -> str:
    """The engine's core-µs per processed event in a trial (its mean CPU / its processed rate)."""
    cpu, rate = trial.get("cpu_mean_percent"), trial.get("processed_rate")
    return "–" if cpu is None or not rate else f"{cpu / 100.0 / rate * 1e6:,.0f} core-µs"


def _trials_table(trials: list[Numbered], several: bool) -> list[str]:
    if not trials:
        return ["No trial ran."]
    rows = []
    for search, index, t in trials:
        why = t["reason"]
        if t.get("first_attempt"):
            why = (why + "; " if why else "") + f"run twice, the first attempt: {t['first_attempt']['reason']}"
        rows.append([*([str(search)] if several else []), str(index), _rate(t["rate"]), t["verdict"],
                     _rate(t.get("processed_rate")), _sec(t.get("p50_ms")), _sec(t.get("p99_ms")),
                     _num(t.get("cpu_mean_percent"), "%"), _cost(t), _mib(t.get("rss_max_bytes")), why])
    header = ["trial", "offered", "verdict", "processed", "p50", "p99", "CPU", "core-µs/event", "RSS", "why"]
    return table(["search", *header] if several else header, rows)


def _nearest_pass(trials: list[Numbered], target: float) -> Numbered | None:
    """The passing trial whose rate is nearest ``target`` (the earlier one on a tie), of any search."""
    passing = [n for n in trials if n[2]["verdict"] == "pass"]
    return min(passing, key=lambda n: abs(n[2]["rate"] - target), default=None)


def _which(numbered: Numbered, several: bool) -> str:
    search, index, _ = numbered
    return f"search {search}, trial {index}" if several else f"trial {index}"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}/s"


def _bracket(bracket: list[float | None]) -> str:
    low, high = bracket
    return f"{'—' if low is None else f'{low:,.0f}'} – {'not reached' if high is None else f'{high:,.0f}'}/s"


def _sec(ms: float | None) -> str:
    return "—" if ms is None else f"{ms / 1000:,.2f} s"


def _num(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{value:,.0f}{unit}"


def _mib(value: float | None) -> str:
    return "—" if value is None else f"{value / 2**20:,.0f} MiB"


# ---------------------------------------------------------------------------------------------------- plot
MARKERS = {"pass": "o", "fail": "x"}


def plot_capacity(data: dict[str, Any], path: Path) -> Path:
    """Two panels against the offered rate, one colour per engine and a line per search: result latency p50
    (dashed) and p99 (solid) — the hockey stick —, and the processed rate beside the line processed = offered;
    markers tell passed trials (o) from failed ones (x) and those the load path or the harness cut short (open
    squares). Overwrites ``path`` (derived from the data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.report.charts import engine_colours, stamp_text

    fig, (lat_ax, rate_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    top = 0.0
    colours = engine_colours(list(data["engines"]))
    for engine, found in data["engines"].items():
        for number, search in enumerate(found["searches"], 1):
            trials = sorted(search["trials"], key=lambda t: t["rate"])
            top = max([top, *(t["rate"] for t in trials)])
            _plot_search(lat_ax, rate_ax, trials, colours[engine], engine if number == 1 else None)
    rate_ax.plot([0, top], [0, top], ":", color="grey", label="processed = offered")
    lat_ax.set(xlabel="offered rate (events/s)", ylabel="result latency (s)", title="Latency vs offered rate")
    rate_ax.set(xlabel="offered rate (events/s)", ylabel="processed rate (events/s)",
                title="Processed vs offered (o pass, x fail, □ load path)")
    for ax in (lat_ax, rate_ax):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    stamp = path.parent.name.split("-", 1)[0]
    when = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}" if stamp[:8].isdigit() else "date unknown"
    fig.text(0.005, 0.003, stamp_text(f"capacity {path.parent.name}", str(data.get("scenario", {}).get("name", "?")),
                                      data.get("fingerprint", {}), when), fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    try:
        return save_figure(fig, path, dpi=110)
    finally:
        plt.close(fig)


def _plot_search(lat_ax: Any, rate_ax: Any, trials: list[dict[str, Any]], colour: str, label: str | None) -> None:
    """One search's lines and markers; ``label`` (the engine) only on an engine's first search."""
    rates = [t["rate"] for t in trials]
    for key, style in (("p50_ms", "--"), ("p99_ms", "-")):
        values = [float("nan") if t.get(key) is None else t[key] / 1000 for t in trials]
        lat_ax.plot(rates, values, style, color=colour, label=None if label is None else f"{label} {key[:3]}")
    processed = [float("nan") if t.get("processed_rate") is None else t["processed_rate"] for t in trials]
    rate_ax.plot(rates, processed, "-", color=colour, label=label)
    for ax, key, scale in ((lat_ax, "p99_ms", 1000), (rate_ax, "processed_rate", 1)):
        for t in trials:
            if t.get(key) is not None:
                ax.plot(t["rate"], t[key] / scale, MARKERS.get(t["verdict"], "s"), color=colour,
                        fillstyle="none" if t["verdict"] in ("load-path", "error") else "full")
