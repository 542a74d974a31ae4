"""The files ``bench capacity`` writes beside its trials: ``capacity.json`` (every figure), ``capacity.md`` (a
table per engine) and ``capacity.png`` (latency and processed rate against the offered rate)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import results
from harness.results.store import dump_json, write_new
from harness.units import format_duration_ms, format_percent

if TYPE_CHECKING:
    from harness.capacity_runner import CapacityOutcome, EngineSearch
    from harness.scenario import Scenario

CAPACITY_FORMAT_VERSION = 1
SHARES = (0.25, 0.5, 0.75, 1.0)
"""Fractions of the capacity at which capacity.md shows latency (from the passing trial nearest to each)."""
NEAR = 0.1
"""A trial stands for a fraction f of the capacity when its rate is within this share of f × capacity (the table
shows its own share beside it)."""


def write_capacity_outputs(outcome: CapacityOutcome, scenario: Scenario, started: dt.datetime) -> None:
    """Write the three files into ``outcome.out_dir`` (never overwriting)."""
    data = capacity_json(outcome, scenario, started)
    write_new(outcome.out_dir / "capacity.json", dump_json(data))
    write_new(outcome.out_dir / "capacity.md", capacity_markdown(data))
    if any(s.result.trials for s in outcome.searches):
        plot_capacity(data, outcome.out_dir / "capacity.png")


# ---------------------------------------------------------------------------------------------------- json
def capacity_json(outcome: CapacityOutcome, scenario: Scenario, started: dt.datetime) -> dict[str, Any]:
    """Everything found, per engine: capacity, bracket, what ended the search, its wall time, every trial."""
    calibration = next((s for s in outcome.searches if s.calibration), None)
    ceiling = calibration.result.capacity if calibration is not None else None
    config = outcome.config
    return {
        "format_version": CAPACITY_FORMAT_VERSION,
        "kind": "capacity",
        "status": outcome.status,
        "started": started.isoformat(timespec="seconds"),
        "search": {
            "start": config.start, "max": config.max, "precision": config.precision, "growth": config.growth,
            "slo": None if config.slo is None else str(config.slo),
            "trial_duration_ms": config.trial.duration, "trial_warmup_ms": config.trial.warmup,
        },
        "calibration_capacity": ceiling,
        "engines": {s.engine: _engine_json(s, ceiling) for s in outcome.searches},
        "scenario": scenario.dump(),
        "fingerprint": results.environment_fingerprint(kafka_mode=scenario.kafka.mode),
    }


def _engine_json(found: EngineSearch, ceiling: float | None) -> dict[str, Any]:
    result = found.result
    fraction = None
    if ceiling and result.capacity is not None and not found.calibration:
        fraction = result.capacity / ceiling
    return {
        "capacity": result.capacity,
        "bracket": list(result.bracket),
        "ended_by": result.ended_by,
        "load_path_bound": result.load_path_bound,
        "fraction_of_calibration": fraction,
        "calibration": found.calibration,
        "wall_s": round(found.wall_s, 1),
        "trials": [{"rate": t.rate, "verdict": t.verdict, "reason": t.reason, **t.figures} for t in result.trials],
    }


# ------------------------------------------------------------------------------------------------ markdown
def capacity_markdown(data: dict[str, Any]) -> str:
    """capacity.md from capacity.json's content."""
    search = data["search"]
    lines = [
        f"# Capacity: {data['scenario']['name']}",
        "",
        f"Search: from {search['start']:,.0f}/s, × {search['growth']:g} until a trial fails, then bisection to "
        f"{format_percent(search['precision'])}; each trial {format_duration_ms(search['trial_duration_ms'])} "
        f"(first {format_duration_ms(search['trial_warmup_ms'])} not measured), a fresh broker and engine. A "
        "trial passes when the generator drove the load, the engine kept up (processed rate, input lag, latency "
        f"trend), every pair was exact{' and ' + search['slo'] + ' held' if search['slo'] else ''}. "
        f"Status: {data['status']}.",
        "",
    ]
    for engine, found in data["engines"].items():
        lines.extend(_engine_section(engine, found, data["calibration_capacity"]))
    return "\n".join(lines) + "\n"


def _engine_section(engine: str, found: dict[str, Any], ceiling: float | None) -> list[str]:
    trials = found["trials"]
    capacity = found["capacity"]
    at = next((t for t in trials if t["rate"] == capacity and t["verdict"] == "pass"), None)
    lines = [f"## {engine}" + (" (calibration: the harness's own ceiling)" if found["calibration"] else ""), "",
             "| | |", "|---|---|",
             f"| sustainable throughput | {_rate(capacity)} (bracket {_bracket(found['bracket'])}) |"]
    if found["fraction_of_calibration"] is not None:
        lines.append(f"| share of the calibration ceiling ({_rate(ceiling)}) | "
                     f"{found['fraction_of_calibration']:.0%} |")
    if at is not None:
        lines.append(f"| CPU / RSS at it | {_num(at.get('cpu_mean_percent'), '%')} / {_mib(at.get('rss_max_bytes'))} |")
    lines += [f"| ended by | {found['ended_by']} |", f"| search wall time | {found['wall_s']:,.0f} s, "
              f"{len(trials)} trial(s) |", ""]
    if capacity is not None:
        lines += ["| share of capacity | trial rate (its share) | latency p50 | latency p99 |", "|---|---|---|---|"]
        for share in SHARES:
            near = _nearest_pass(trials, share * capacity)
            if near is not None:
                lines.append(f"| {share:.0%} | {_rate(near['rate'])} ({near['rate'] / capacity:.0%}) | "
                             f"{_sec(near.get('p50_ms'))} | "
                             f"{_sec(near.get('p99_ms'))} |")
        lines.append("")
    lines += ["| trial | offered | verdict | processed | p50 | p99 | CPU | RSS | why |",
              "|---|---|---|---|---|---|---|---|---|"]
    for index, t in enumerate(trials, 1):
        why = t["reason"]
        if t.get("first_attempt"):
            why = (why + "; " if why else "") + f"run twice, the first attempt: {t['first_attempt']['reason']}"
        lines.append(f"| {index} | {_rate(t['rate'])} | {t['verdict']} | {_rate(t.get('processed_rate'))} | "
                     f"{_sec(t.get('p50_ms'))} | {_sec(t.get('p99_ms'))} | {_num(t.get('cpu_mean_percent'), '%')} | "
                     f"{_mib(t.get('rss_max_bytes'))} | {why.replace('|', '/')} |")
    return [*lines, ""]


def _nearest_pass(trials: list[dict[str, Any]], target: float) -> dict[str, Any] | None:
    passing = [t for t in trials if t["verdict"] == "pass" and abs(t["rate"] - target) <= NEAR * target]
    return min(passing, key=lambda t: abs(t["rate"] - target), default=None)


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
    """Two panels against the offered rate, one colour per engine: result latency p50 (dashed) and p99
    (solid), and the processed rate beside the line processed = offered; markers tell passed trials (o) from
    failed ones (x) and those the load path or the harness cut short (open squares)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat_ax, rate_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    top = 0.0
    for index, (engine, found) in enumerate(data["engines"].items()):
        trials = sorted(found["trials"], key=lambda t: t["rate"])
        colour = f"C{index}"
        rates = [t["rate"] for t in trials]
        top = max([top, *rates])
        for key, style in (("p50_ms", "--"), ("p99_ms", "-")):
            values = [None if t.get(key) is None else t[key] / 1000 for t in trials]
            lat_ax.plot(rates, values, style, color=colour, label=f"{engine} {key[:3]}")
        rate_ax.plot(rates, [t.get("processed_rate") for t in trials], "-", color=colour, label=engine)
        for ax, key, scale in ((lat_ax, "p99_ms", 1000), (rate_ax, "processed_rate", 1)):
            for t in trials:
                if t.get(key) is not None:
                    ax.plot(t["rate"], t[key] / scale, MARKERS.get(t["verdict"], "s"), color=colour,
                            fillstyle="none" if t["verdict"] in ("load-path", "error") else "full")
    rate_ax.plot([0, top], [0, top], ":", color="grey", label="processed = offered")
    lat_ax.set(xlabel="offered rate (events/s)", ylabel="result latency (s)", title="Latency vs offered rate")
    rate_ax.set(xlabel="offered rate (events/s)", ylabel="processed rate (events/s)",
                title="Processed vs offered (o pass, x fail, □ load path)")
    for ax in (lat_ax, rate_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
