"""The run report's Faults section: one table per engine with a fault record, what each injected fault cost (see
:mod:`harness.analysis.fault_figures`), and the delivery guarantee the engine claims beside what was observed."""

from __future__ import annotations

from typing import Any

from harness.report.markdown import table
from harness.results import LoadedRepetition, RunData
from harness.report.figures import fmt_number


def faults_section(run: RunData) -> list[str]:
    """The Faults section (empty when no engine has a fault record): the words, then per engine its table and
    the errors of faults that could not be injected."""
    engines = {name: reps for name, reps in run.engines.items() if any(r.summary.faults for r in reps)}
    if not engines:
        return []
    lines = [
        "## Faults",
        "",
        "Per injected fault: *back after* = kill (or broker stop) → engine ready again (or broker answering); "
        "*results gap* = last result visible before the fault → first after; *recovery* = fault → results of the "
        "first window whose median latency is back within 10 % of the pre-fault median (*baseline*, over measured "
        "windows answered before the fault). The fault's windows are those ending from one window before it to "
        "one window after recovery (to the end of the run if latency never recovered): *peak* is the largest "
        "result latency among them, *around the fault* counts their pairs, *whole run* counts every window's. "
        "Counts are missing / duplicated pairs (extra records) / wrong; *late allowed / dropped* counts the late "
        "events among the fault's windows the engine's watermark rule let it leave out (deliberately late, or on "
        "time but arrived late: see the Input path table) and those it did leave out; *observed* is read from the "
        "whole run.",
        "",
    ]
    header = ["rep", "fault", "at", "back after", "results gap", "recovery", "baseline latency", "peak latency",
              "around the fault", "late allowed / dropped", "whole run", "delivery claimed", "observed"]
    for name, reps in engines.items():
        rows = [_fault_row(r, fault) for r in reps for fault in r.summary.faults]
        lines += [f"### {name}", ""] + table(header, rows) + [""]
        errors = [f"- rep {r.summary.repetition}, {f['kind']} at {f['at_ms'] / 1000:g} s: {f['error']}"
                  for r in reps for f in r.summary.faults if f.get("error")]
        lines += errors + ([""] if errors else [])
    return lines


def _fault_row(rep: LoadedRepetition, fault: dict[str, Any]) -> list[str]:
    """A row of the Faults table: figures in ms (seconds above 10 s), ``–`` where not measured."""
    def ms(value: Any) -> str:
        return fmt_number(None if value is None else float(value), "ms")

    def since(key: str) -> Any:
        start = fault.get("injected_at_ms")
        return None if fault.get(key) is None or start is None else fault[key] - start

    delivery = rep.summary.fairness.get("delivery")
    claimed = delivery.value if delivery is not None else "–"
    injected = fault.get("injected_at_ms") is not None
    whole = rep.summary.correctness
    around = _answer_counts(fault.get("missing"), fault.get("duplicated_pairs"), fault.get("duplicate_records"),
                            fault.get("wrong")) if injected else "–"
    overall = "–" if whole is None else _answer_counts(whole.missing, whole.duplicated, whole.duplicate_records,
                                                        whole.wrong)
    return [
        str(rep.summary.repetition), fault["kind"], f"{fault['at_ms'] / 1000:g} s", ms(since("recovered_at_ms")),
        ms(fault.get("results_gap_ms")),
        _recovery_cell(fault, injected),
        ms(fault.get("baseline_latency_ms")), ms(fault.get("peak_latency_ms")),
        around, _late_cell(fault) if injected else "–", overall, claimed,
        _observed(claimed, whole) if injected else "not injected",
    ]


def _late_cell(fault: dict[str, Any]) -> str:
    """``allowed / dropped`` late events among the fault's windows (``–``: results written before they were)."""
    if fault.get("late_allowed") is None:
        return "–"
    return f"{fault['late_allowed']:,} / {fault.get('late_dropped', 0):,}"


def _recovery_cell(fault: dict[str, Any], injected: bool) -> str:
    """The recovery time, or why there is none: no window answered before the fault to compare with, or latency
    never came back within tolerance."""
    if not injected:
        return "–"
    if fault.get("recovery_ms") is not None:
        return fmt_number(float(fault["recovery_ms"]), "ms")
    return "no baseline (no result before the fault)" if fault.get("baseline_latency_ms") is None else "not recovered"


def _answer_counts(missing: Any, dup_pairs: Any, dup_records: Any, wrong: Any) -> str:
    """``missing / duplicated pairs (extra records) / wrong``, ``–`` for a count not measured."""
    def n(value: Any) -> str:
        return "–" if value is None else f"{int(value):,}"

    return f"{n(missing)} / {n(dup_pairs)} ({n(dup_records)}) / {n(wrong)}"


def _observed(claimed: str, whole: Any) -> str:
    """The delivery a run with a fault showed over the whole run, in the vocabulary of the claim, and whether
    that falls short of the claim (duplicates under exactly-once; any answer lost or wrong)."""
    if whole is None:
        return "not judged"
    if whole.missing or whole.wrong:
        return f"**answers lost or wrong** ({whole.missing:,} missing, {whole.wrong:,} wrong) — below the claim"
    if whole.duplicated:
        shortfall = " — **below the claim**" if claimed == "exactly-once" else ""
        return f"at-least-once: every answer exact, {whole.duplicate_records:,} duplicate records{shortfall}"
    return "exactly-once: every answer exact, no duplicate"

