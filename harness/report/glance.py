"""The answer up front: one table, a row per engine, gathered from run and capacity directories.

Per engine label: result latency p50 / p99 at each rate it ran without faults, the open-loop capacity (or the
bound the load path set), the engine's CPU per event and peak RSS at those rates, whether every answer was exact,
the delivery guarantee it claims beside what a kill showed (duplicate pairs), and the time it took to recover
from a kill. Under it the machine(s) and the directories the figures come from. Every cell is read from stored
results (``summary.json``, ``capacity.json``); a figure the runs did not measure is "–". Drain capacity is not
measured by this harness yet and is not shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.report.figures import FIGURE_BY_KEY, figure_estimate, fmt_number, ok_reps
from harness.report.markdown import table
from harness.results import LoadedRepetition, RunData


@dataclass
class _Engine:
    """What the directories say about one engine label."""

    latency: list[str] = field(default_factory=list)
    cost: list[str] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    capacity: tuple[tuple[int, float], str] | None = None
    """(rank, capacity) and the cell: an engine-found range outranks a bound, then the higher capacity."""
    runs_correct: int = 0
    runs_judged: int = 0
    wrong_in: list[str] = field(default_factory=list)
    claimed: set[str] = field(default_factory=set)
    kill_duplicates: list[int] = field(default_factory=list)
    recovery_ms: list[float] = field(default_factory=list)


def glance_section(runs: Sequence[RunData], capacities: Sequence[tuple[Path, dict[str, Any]]] = (),
                   *, heading: str = "## At a glance", only: Sequence[str] | None = None) -> list[str]:
    """The markdown lines of the table (empty when there is no engine to show); ``only``: these engine labels."""
    engines: dict[str, _Engine] = {}
    for run in runs:
        for label, reps in run.engines.items():
            _add_run(engines.setdefault(label, _Engine()), run, reps)
    for path, data in capacities:
        for label, found in data.get("engines", {}).items():
            e = engines.setdefault(label, _Engine())
            candidate = _capacity(found, path)
            if e.capacity is None or candidate[0] > e.capacity[0]:
                e.capacity = candidate
    if only is not None:
        engines = {label: e for label, e in engines.items() if label in only}
    if not engines:
        return []
    rows = [[f"**{label}**", "; ".join(e.latency) or "–", e.capacity[1] if e.capacity else "–",
             "; ".join(e.cost) or "–",
             f"{fmt_number(max(e.rss))} MiB" if e.rss else "–", _correct(e), _delivery(e), _recovery(e)]
            for label, e in engines.items()]
    header = ["engine", "result latency p50 / p99 (at rate)", "open-loop capacity", "engine CPU per event",
              "engine RSS max", "correct", "delivery: claimed / after a kill", "recovery after a kill"]
    lines = [heading, "", *table(header, rows), ""]
    lines += _provenance(runs, [path for path, _ in capacities])
    return lines


def _add_run(e: _Engine, run: RunData, reps: list[LoadedRepetition]) -> None:
    usable = [r for r in ok_reps(reps) if r.summary.valid]
    faults = [f for r in usable for f in (r.summary.faults or [])]
    if usable and not faults:
        rate = figure_estimate(usable, FIGURE_BY_KEY["target_rate"])
        where = f"{run.scenario.get('name', '?')}"
        if any(f"({where})" in text or f"({where}, " in text for text in e.latency):  # the same scenario again
            where += f", {run.path.name.split('-', 1)[0]}"
        at = (f" at {fmt_number(rate.mean)}/s" if rate is not None else "") + f" ({where})"
        p50 = figure_estimate(usable, FIGURE_BY_KEY["result_p50"])
        p99 = figure_estimate(usable, FIGURE_BY_KEY["result_p99"])
        if p50 is not None and p99 is not None:
            e.latency.append(f"{_seconds(p50.mean)} / {_seconds(p99.mean)}{at}")
        cost = figure_estimate(usable, FIGURE_BY_KEY["engine_cost"])
        if cost is not None:
            e.cost.append(f"{cost.mean:,.0f} core-µs{at}")
        rss = figure_estimate(usable, FIGURE_BY_KEY["engine_rss"])
        if rss is not None:
            e.rss.append(rss.mean)
    checked = [r.summary.correctness for r in usable if r.summary.correctness is not None]
    if checked:
        e.runs_judged += 1
        if all(c.correct for c in checked):
            e.runs_correct += 1
        else:
            e.wrong_in.append(run.path.name)
    for r in usable:
        delivery = r.summary.fairness.get("delivery")
        if delivery is not None:
            e.claimed.add(delivery.value)
    for fault in faults:
        if fault.get("kind") != "kill-engine":
            continue
        if fault.get("duplicated_pairs") is not None:
            e.kill_duplicates.append(int(fault["duplicated_pairs"]))
        if fault.get("recovery_ms") is not None:
            e.recovery_ms.append(float(fault["recovery_ms"]))


def _seconds(ms: float) -> str:
    return f"{ms / 1000:,.2f} s"


def _capacity(found: dict[str, Any], path: Path) -> tuple[tuple[int, float], str]:
    """The capacity cell of one directory's search(es), ranked: a range the engine's own failure closed
    outranks a bound (the load path or the search's max ended it), then the higher capacity wins."""
    capacity = found.get("capacity")
    if capacity is None:
        return (0, 0.0), f"none found (`{path.name}`)"
    low, high = found.get("interval") or [capacity, None]
    if high is None:
        bounds = [s.get("load_path_bound") for s in found.get("searches", []) if s.get("load_path_bound")]
        why = f"the load path at {bounds[0]:,.0f}/s" if bounds else "no trial failed above it"
        return (1, capacity), f"≥ {capacity:,.0f}/s (bounded by {why}; `{path.name}`)"
    return (2, capacity), f"{capacity:,.0f}/s (range {low:,.0f}–{high:,.0f}; `{path.name}`)"


def _correct(e: _Engine) -> str:
    if not e.runs_judged:
        return "–"
    if not e.wrong_in:
        return f"exact in {e.runs_correct} of {e.runs_judged} runs"
    return f"**wrong** in {', '.join(f'`{name}`' for name in e.wrong_in)}"


def _delivery(e: _Engine) -> str:
    claimed = " / ".join(sorted(e.claimed)) or "–"
    if not e.kill_duplicates:
        return f"{claimed} / no kill measured"
    most = max(e.kill_duplicates)
    return f"{claimed} / {most:,} duplicate pair(s)" if most else f"{claimed} / no duplicate"


def _recovery(e: _Engine) -> str:
    if not e.recovery_ms:
        return "–"
    return ", ".join(f"{ms / 1000:,.1f} s" for ms in e.recovery_ms)


def _provenance(runs: Sequence[RunData], capacity_dirs: Sequence[Path]) -> list[str]:
    machines = []
    for fingerprint in [run.fingerprint for run in runs]:
        machine = f"{fingerprint.get('cpu_model', 'unknown CPU')}, {fingerprint.get('cpu_logical', '?')} logical CPUs"
        if machine not in machines:
            machines.append(machine)
    names = [f"`{run.path.name}`" for run in runs] + [f"`{path.name}`" for path in capacity_dirs]
    lines = [f"Machine: {'; '.join(machines) or 'not recorded'}. From: {', '.join(names)}.",
             "Latency, CPU per event and RSS are means over the valid repetitions of runs without faults; "
             "correctness over every run; delivery after a kill and recovery from `kill-engine` faults. "
             "Drain capacity is not measured yet.", ""]
    return lines
