"""``bench compare RUN_A RUN_B``: the report's figures side by side, with changes and a regression verdict.

A figure of an engine **regressed** when, from A to B, it got worse (higher latency, CPU or memory; lower
processed rate) by more than ``fail_on_regression_pct`` percent **and** by more than the noise measured in the
repetitions: the difference of the means must exceed the combined 95 % confidence half-widths of both runs,
``sqrt(ci_a² + ci_b²)``. A figure measured only once on either side has no measured noise, so it is shown but
never judged (a single number cannot tell a shift from chance; run with ``repetitions: 3`` or more). An engine
that was correct in A and is incorrect in B, or that ran in A and failed in B, is a regression too: those are
verdicts, not noisy figures.

Only the engines present in both runs are compared; the others are listed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from harness.report import FIGURES, Figure, figure_estimate, fmt_estimate, ok_reps
from harness.results import LoadedRepetition, RunData, load_run
from harness.stats import Estimate

COMPARED = (
    "processed_rate",
    "result_p50",
    "result_p90",
    "result_p99",
    "result_p99_9",
    "event_time_p50",
    "event_time_p99",
    "engine_cpu",
    "engine_rss",
)
"""Figures compared (target and achieved rate describe the load, not the engine: shown in the header)."""


@dataclass(frozen=True)
class Change:
    engine: str
    figure: Figure
    a: Estimate | None
    b: Estimate | None
    change_pct: float | None
    """(b − a) / a in percent."""
    worse_pct: float | None
    """How much worse B is, in percent (negative: better)."""
    noise: float | None
    """sqrt(ci_a² + ci_b²) in the figure's unit; None when a side has a single value."""
    verdict: str
    """``regressed``, ``improved``, ``within noise``, ``below threshold``, ``not judged`` or ``n/a``."""


def compare(run_a: Path, run_b: Path, fail_on_regression_pct: float | None = None) -> tuple[str, bool]:
    """Text for the terminal and whether any figure regressed (always False when ``fail_on_regression_pct``
    is None: then the verdicts are informational with a 5 % threshold)."""
    a, b = load_run(Path(run_a)), load_run(Path(run_b))
    pct = 5.0 if fail_on_regression_pct is None else fail_on_regression_pct
    changes, verdicts = compare_runs(a, b, pct)
    text = render(a, b, changes, verdicts, pct)
    regressed = any(c.verdict == "regressed" for c in changes) or any(v[1] for v in verdicts)
    return text, regressed if fail_on_regression_pct is not None else False


def compare_runs(a: RunData, b: RunData, pct: float) -> tuple[list[Change], list[tuple[str, bool]]]:
    """Per engine in both runs, per figure: the :class:`Change`; plus verdict lines ``(text, is_regression)``."""
    changes: list[Change] = []
    verdicts: list[tuple[str, bool]] = []
    for engine in [e for e in a.engines if e in b.engines]:
        reps_a, reps_b = a.engines[engine], b.engines[engine]
        for key in COMPARED:
            figure = next(f for f in FIGURES if f.key == key)
            changes.append(judge(engine, figure, figure_estimate(reps_a, figure), figure_estimate(reps_b, figure), pct))
        verdicts.extend(_verdict_changes(engine, reps_a, reps_b))
    return changes, verdicts


def judge(engine: str, figure: Figure, a: Estimate | None, b: Estimate | None, pct: float) -> Change:
    """The rule of the module docstring for one figure."""
    if a is None or b is None or a.mean == 0:
        return Change(engine, figure, a, b, None, None, None, "n/a")
    change = (b.mean - a.mean) / abs(a.mean) * 100.0
    worse = change if figure.lower_is_better else -change
    if a.half_width is None or b.half_width is None:
        return Change(engine, figure, a, b, change, worse, None, "not judged")
    noise = math.hypot(a.half_width, b.half_width)
    beyond = abs(b.mean - a.mean) > noise
    if not beyond:
        verdict = "within noise"
    elif worse > pct:
        verdict = "regressed"
    elif worse < -pct:
        verdict = "improved"
    else:
        verdict = "below threshold"
    return Change(engine, figure, a, b, change, worse, noise, verdict)


def _verdict_changes(engine: str, reps_a: list[LoadedRepetition], reps_b: list[LoadedRepetition]) -> list[tuple[str, bool]]:
    out = []
    failed_a = sum(r.summary.status == "failed" for r in reps_a)
    failed_b = sum(r.summary.status == "failed" for r in reps_b)
    if failed_b and not failed_a:
        out.append((f"{engine}: failed in B ({failed_b} of {len(reps_b)} reps), ran in A", True))
    correct_a = _all_correct(reps_a)
    correct_b = _all_correct(reps_b)
    if correct_a is True and correct_b is False:
        out.append((f"{engine}: correct in A, incorrect in B", True))
    elif correct_a is False and correct_b is True:
        out.append((f"{engine}: incorrect in A, correct in B", False))
    sustained_a = all(r.summary.sustained.sustained is not False for r in ok_reps(reps_a))
    sustained_b = all(r.summary.sustained.sustained is not False for r in ok_reps(reps_b))
    if sustained_a and not sustained_b:
        out.append((f"{engine}: sustained in A, not sustained in B", True))
    invalid = [side for side, reps in (("A", reps_a), ("B", reps_b)) if any(not r.summary.valid for r in reps)]
    if invalid:
        out.append((f"{engine}: run {' and '.join(invalid)} has invalid repetitions; compare with care", False))
    return out


def _all_correct(reps: list[LoadedRepetition]) -> bool | None:
    checked = [r.summary.correctness for r in ok_reps(reps) if r.summary.correctness is not None]
    if not checked:
        return None
    return all(c.correct for c in checked)


def render(a: RunData, b: RunData, changes: list[Change], verdicts: list[tuple[str, bool]], pct: float) -> str:
    lines = [f"A: {a.path}", f"B: {b.path}", ""]
    sa, sb = a.scenario, b.scenario
    for key in ("name", "duration", "warmup", "repetitions"):
        if sa.get(key) != sb.get(key):
            lines.append(f"note: scenario {key} differs: A = {sa.get(key)}, B = {sb.get(key)}")
    if sa.get("load") != sb.get("load"):
        lines.append("note: the load differs between the runs")
    only = sorted(set(a.engines) ^ set(b.engines))
    if only:
        lines.append(f"note: not in both runs: {', '.join(only)}")
    if lines[-1] != "":
        lines.append("")
    header = ("engine", "figure", "A", "B", "change", "verdict")
    rows = [
        (
            c.engine,
            f"{c.figure.label} ({c.figure.unit})",
            fmt_estimate(c.a),
            fmt_estimate(c.b),
            "–" if c.change_pct is None else f"{c.change_pct:+.1f} %",
            c.verdict,
        )
        for c in changes
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    lines.extend("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in rows)
    lines.append("")
    lines.extend(("REGRESSION: " if bad else "") + text for text, bad in verdicts)
    regressed = [c for c in changes if c.verdict == "regressed"]
    for c in regressed:
        lines.append(
            f"REGRESSION: {c.engine} {c.figure.label} worse by {c.worse_pct:.1f} % (> {pct:g} %) and by more than "
            f"the noise of the repetitions (±{c.noise:,.2f} {c.figure.unit})"
        )
    if any(c.verdict == "not judged" for c in changes):
        lines.append("note: figures measured once in a run are not judged: use repetitions >= 2 (3+ recommended)")
    if not regressed and not any(bad for _, bad in verdicts):
        lines.append(f"no regression (threshold {pct:g} % beyond the measured noise)")
    return "\n".join(lines).rstrip() + "\n"
