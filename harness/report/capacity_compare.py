"""``bench compare A B`` on two ``bench capacity`` directories: each engine's capacity A vs B.

Per engine: both capacities, the change in percent of A, and whether the ranges of
:func:`harness.capacity.results.capacity_interval` overlap (one search: its bracket; several: the 95 % CI of the
mean, at least as wide as the brackets). **Overlapping ranges: no detectable change** — the search cannot tell
the two capacities apart. Otherwise B is *lower* or *higher*.

**The gate** (``--fail-on-regression PCT``) uses the exit codes of :data:`harness.report.compare.EXIT_CODES`:

* 1 — an engine regressed: B's capacity is lower than A's by more than PCT percent **and** the ranges do not
  overlap; or the two are not comparable: an engine of A is missing in B or B found no capacity for it, B's
  search was interrupted, the workload or the trial settings differ (the scenario's ``window``, ``kafka``,
  ``parallelism``, ``load`` apart from its rate and shape, ``capacity.trial`` and ``capacity.slo``, each engine's
  ``engine`` and ``settings``), or the environment differs without ``--allow-env-change``;
* 3 — cannot judge: A found no capacity for an engine (nothing to compare with), or B's search for it ended
  without the engine failing (the load path, an unjudged trial, its ``max`` or an interruption ended it: its range
  is open above) at a capacity below A's: B's engine may have held A's rate, or not, and an open range that
  overlaps A's would otherwise hide any drop; likewise when B found no capacity and no trial failed on the engine;
* 0 — no regression.

Differences of the search's own steps (start, growth, max, precision, repetitions) and of the trial mode (fresh or
stepped) are listed as notes: they move where the trials fall, not what passes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.capacity.results import is_capacity_dir, load_capacity
from harness.report.compare import (
    EXIT_CANNOT_JUDGE,
    EXIT_FAIL,
    EXIT_PASS,
    INFORMATIONAL_PCT,
    CompareInputError,
    environment_differences,
    setting_differences,
)
from harness.errors import HarnessError

NOTED_SEARCH_KEYS = ("start", "growth", "max", "precision")
"""Search settings that may differ between A and B (noted, not failing): they only move the trial rates."""


def capacity_kind(paths: list[Path]) -> bool:
    """True when every path is a capacity directory, False when none is; a mix raises
    :class:`harness.report.compare.CompareInputError` (exit 2) naming one of each."""
    kinds = {Path(p): is_capacity_dir(Path(p)) for p in paths}
    if all(kinds.values()):
        return True
    if not any(kinds.values()):
        return False
    capacity = next(p for p, k in kinds.items() if k)
    run = next(p for p, k in kinds.items() if not k)
    raise CompareInputError(f"{capacity} is a capacity directory (capacity.json) but {run} is not: bench compare "
                            "compares run directories with run directories, or two capacity directories")


@dataclass(frozen=True)
class CapacityChange:
    """One engine's capacity from A to B."""

    engine: str
    a: dict[str, Any] | None
    """A's engine entry of capacity.json (format 2); None when A has no such engine."""
    b: dict[str, Any] | None
    change_pct: float | None
    """(B − A) / A in percent; None when either found no capacity."""
    overlap: bool | None
    """Whether the two ranges overlap; None when either found no capacity."""
    verdict: str
    """``regressed``, ``lower``, ``higher``, ``no detectable change``, ``cannot judge`` (see :attr:`reason`)
    or ``no capacity in B``."""
    reason: str = ""
    """Why a ``cannot judge`` verdict could not judge."""


@dataclass
class CapacityComparison:
    """Everything the comparison of two capacity directories decided; :attr:`exit_code` is the gate's answer."""

    a_path: Path
    b_path: Path
    pct: float
    gate: bool
    changes: list[CapacityChange] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if not self.gate:
            return EXIT_PASS
        if self.problems or self.regressions:
            return EXIT_FAIL
        return EXIT_CANNOT_JUDGE if any(c.verdict == "cannot judge" for c in self.changes) else EXIT_PASS


def compare_capacity(baselines: list[Path], candidate: Path, fail_on_regression_pct: float | None = None, *,
                     allow_env_change: bool = False, skip_incomparable: bool = False) -> CapacityComparison:
    """Compare capacity directory ``candidate`` (B) with the one baseline (A); see the module docstring."""
    if len(baselines) != 1:
        raise CompareInputError(f"capacity directories are compared two at a time (A B); got {len(baselines)} "
                                "baselines")
    if skip_incomparable:
        raise CompareInputError("--skip-incomparable-baselines is for pooled run baselines, not capacity directories")
    try:
        a, b = load_capacity(baselines[0]), load_capacity(candidate)
    except HarnessError as exc:
        raise CompareInputError(str(exc)) from None
    gate = fail_on_regression_pct is not None
    pct = INFORMATIONAL_PCT if fail_on_regression_pct is None else fail_on_regression_pct
    result = CapacityComparison(Path(baselines[0]), Path(candidate), pct, gate)
    _comparability(result, a, b, allow_env_change)
    for engine, found_a in a["engines"].items():
        change = judge_capacity(engine, found_a, b["engines"].get(engine), pct)
        result.changes.append(change)
        found_b = change.b or {"capacity": None, "searches": []}
        if change.verdict == "regressed":
            result.regressions.append(
                f"{engine}: capacity {_rate(found_a['capacity'])} → {_rate(found_b['capacity'])} "
                f"({change.change_pct:+.1f} %, beyond {pct:g} %), ranges do not overlap")
        elif change.verdict == "no capacity in B":
            result.problems.append(f"candidate: {engine} has no capacity ({_ended(found_b)})")
    extra = [e for e in b["engines"] if e not in a["engines"]]
    if extra:
        result.notes.append(f"only in the candidate, not compared: {', '.join(extra)}")
    return result


def judge_capacity(engine: str, a: dict[str, Any], b: dict[str, Any] | None, pct: float) -> CapacityChange:
    """The rule of the module docstring for one engine (``a``, ``b``: its capacity.json entries)."""
    if a["capacity"] is None:
        return CapacityChange(engine, a, b, None, None, "cannot judge", "the baseline found no capacity")
    if b is not None and b["capacity"] is None and not _failed_on_engine(b):
        return CapacityChange(engine, a, b, None, None, "cannot judge",
                              f"the candidate found no capacity and no trial failed on the engine ({_ended(b)})")
    if b is None or b["capacity"] is None:
        return CapacityChange(engine, a, b, None, None, "no capacity in B")
    change = (b["capacity"] - a["capacity"]) / a["capacity"] * 100.0
    if b["interval"][1] is None and b["capacity"] < a["capacity"]:
        return CapacityChange(
            engine, a, b, change, None, "cannot judge",
            f"the candidate's search ended at {_rate(b['capacity'])} without the engine failing ({_ended(b)}), "
            f"below the baseline's {_rate(a['capacity'])}: whether the engine holds that rate is unknown")
    overlap = ranges_overlap(a["interval"], b["interval"])
    if overlap:
        verdict = "no detectable change"
    elif b["capacity"] < a["capacity"]:
        verdict = "regressed" if -change > pct else "lower"
    else:
        verdict = "higher"
    return CapacityChange(engine, a, b, change, overlap, verdict)


def _failed_on_engine(entry: dict[str, Any]) -> bool:
    """Whether any search of this engine saw a trial fail on the engine (its bracket closed above)."""
    return any(s.get("bracket", [None, None])[1] is not None for s in entry["searches"])


def _ended(entry: dict[str, Any]) -> str:
    return "; ".join(s["ended_by"] for s in entry["searches"]) or "not searched"


def ranges_overlap(a: list[float | None], b: list[float | None]) -> bool:
    """Whether [low, high] ranges overlap (touching ends count); a high of None is open upwards."""
    inf = float("inf")
    (a_low, a_high), (b_low, b_high) = a, b
    return (a_low or 0.0) <= (inf if b_high is None else b_high) and (b_low or 0.0) <= (inf if a_high is None else a_high)


def _comparability(result: CapacityComparison, a: dict[str, Any], b: dict[str, Any], allow_env: bool) -> None:
    """Fill in the problems (B not complete, other workload or trial settings, other environment) and notes."""
    if b.get("status") != "complete":
        result.problems.append(f"candidate: status is {b.get('status')}, not complete")
    result.problems += [f"settings: {line}" for line in setting_differences(_workload(a), _workload(b))]
    if a["search"].get("slo") != b["search"].get("slo"):
        result.problems.append(f"settings: capacity.slo: {a['search'].get('slo')} vs {b['search'].get('slo')}")
    env = environment_differences(a.get("fingerprint", {}), b.get("fingerprint", {}))
    if allow_env:
        result.notes += [f"{line} (allowed by --allow-env-change)" for line in env]
    else:
        result.problems += env
    for key in NOTED_SEARCH_KEYS:
        if a["search"].get(key) != b["search"].get(key):
            result.notes.append(f"search {key}: {a['search'].get(key)} vs {b['search'].get(key)} (moves the trial "
                                "rates, not the pass criterion)")
    if a.get("repetitions", 1) != b.get("repetitions", 1):
        result.notes.append(f"searches per engine: {a.get('repetitions', 1)} vs {b.get('repetitions', 1)}")
    if a["search"].get("trials") != b["search"].get("trials"):
        result.notes.append(f"trials: {a['search'].get('trials')} vs {b['search'].get('trials')} (the same verdict "
                            "per trial; a stepped trial starts with the engine and broker of the step before)")


def _workload(data: dict[str, Any]) -> dict[str, Any]:
    """The stored scenario as its trials ran it: the rate and shape of ``load`` are the search's, and duration
    and warm-up are ``capacity.trial``'s, so only what every trial shares is compared."""
    scenario = copy.deepcopy(data["scenario"])
    scenario["load"] = {**scenario.get("load", {}), "rate": 1, "shape": {"type": "constant"}}
    search = data["search"]
    scenario["duration"] = f"{search['trial_duration_ms']}ms"
    scenario["warmup"] = f"{search['trial_warmup_ms']}ms"
    scenario.pop("capacity", None)
    return scenario


# ---------------------------------------------------------------------------------------------------- text
def render_capacity_comparison(c: CapacityComparison) -> str:
    """The comparison as text for the terminal and CI logs."""
    lines = [f"A (baseline): {c.a_path}", f"B (candidate): {c.b_path}", "",
             "Capacity per engine; ranges overlap = no detectable change; threshold "
             f"{c.pct:g} %" + ("" if c.gate else " (report only: no --fail-on-regression)"), ""]
    header = ("engine", "A", "A range", "B", "B range", "change", "verdict")
    rows = [(ch.engine, _cap(ch.a), _range(ch.a), _cap(ch.b), _range(ch.b),
             "–" if ch.change_pct is None else f"{ch.change_pct:+.1f} %", ch.verdict) for ch in c.changes]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    lines.extend("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in rows)
    lines += ["", *(f"note: {n}" for n in c.notes), *(f"NOT COMPARABLE: {p}" for p in c.problems),
              *(f"REGRESSION: {r}" for r in c.regressions)]
    lines += [f"CANNOT JUDGE: {ch.engine}: {ch.reason}" for ch in c.changes if ch.verdict == "cannot judge"]
    lines.append(_gate_line(c))
    return "\n".join(lines).rstrip() + "\n"


def _gate_line(c: CapacityComparison) -> str:
    code = c.exit_code
    if not c.gate:
        return "report only (no --fail-on-regression): exit 0"
    if code == EXIT_FAIL:
        return (f"gate: FAIL (exit {code}): {len(c.regressions)} regression(s), "
                f"{len(c.problems)} comparability problem(s)")
    if code == EXIT_CANNOT_JUDGE:
        return f"gate: CANNOT JUDGE (exit {code}): an engine's capacity is unknown on one side (see above)"
    return f"gate: pass (exit 0): no capacity lower by more than {c.pct:g} % with ranges apart"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}/s"


def _cap(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "not searched"
    ci = entry.get("capacity_ci")
    return _rate(entry["capacity"]) + ("" if ci is None else f" ± {ci:,.0f}") + f" ({len(entry['searches'])})"


def _range(entry: dict[str, Any] | None) -> str:
    if entry is None or entry["interval"][0] is None:
        return "–"
    low, high = entry["interval"]
    return f"{low:,.0f}–{'open' if high is None else f'{high:,.0f}'}"


def render_capacity_json(c: CapacityComparison) -> str:
    """The comparison as JSON: each engine's capacities, ranges, change and verdict, and the gate's decision."""
    import json

    def side(entry: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if entry is None else {"capacity": entry["capacity"], "range": entry["interval"],
                                           "searches": len(entry["searches"])}

    data = {"baseline": str(c.a_path), "candidate": str(c.b_path), "threshold_pct": c.pct, "gate": c.gate,
            "exit_code": c.exit_code, "gate_line": _gate_line(c),
            "changes": [{"engine": ch.engine, "a": side(ch.a), "b": side(ch.b), "change_pct": ch.change_pct,
                         "overlap": ch.overlap, "verdict": ch.verdict, "reason": ch.reason or None}
                        for ch in c.changes],
            "regressions": c.regressions, "problems": c.problems, "notes": c.notes}
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def render_capacity_markdown(c: CapacityComparison) -> str:
    """The comparison for a CI job summary: the gate's line first, then the text in a block."""
    return f"**{_gate_line(c)}**\n\n```text\n{render_capacity_comparison(c)}```\n"


RENDERERS = {"text": render_capacity_comparison, "md": render_capacity_markdown, "json": render_capacity_json}
"""``bench compare --format`` → the renderer of a capacity comparison."""
