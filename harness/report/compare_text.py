"""``bench compare`` on run directories as text for the terminal and CI logs: the figures table, the notes, the
problems and regressions, what cannot be judged, and the gate's line (:class:`harness.report.compare.Comparison`)."""

from __future__ import annotations

from harness.analysis.stats import Estimate
from harness.report.compare import EXIT_CANNOT_JUDGE, EXIT_FAIL, EXIT_NO_BASELINE, Comparison
from harness.report.figures import fmt_estimate


HEADER = ("engine", "figure", "A (n)", "B (n)", "change", "detectable", "verdict")


def _rows(c: Comparison) -> list[tuple[str, ...]]:
    return [
        (
            ch.engine,
            f"{ch.figure.label} ({ch.figure.unit})",
            _with_n(ch.a),
            _with_n(ch.b),
            "–" if ch.change_pct is None else f"{ch.change_pct:+.1f} %",
            "–" if ch.detectable_pct is None else f"±{ch.detectable_pct:.1f} %",
            ch.verdict,
        )
        for ch in c.changes
    ]


def _verdict_lines(c: Comparison) -> list[str]:
    lines = [f"note: {n}" for n in c.notes + _insensitive(c)]
    lines += [f"NOT COMPARABLE: {p}" for p in c.problems]
    lines += [f"REGRESSION: {r}" for r in c.regressions]
    lines += _unjudged(c)
    lines.append(_gate_line(c))
    return lines


def render(c: Comparison) -> str:
    """The comparison as text for the terminal and CI logs."""
    lines = _header(c)
    rows = _rows(c)
    if rows:
        widths = [max(len(str(x)) for x in column) for column in zip(HEADER, *rows)]
        lines.append("  ".join(h.ljust(w) for h, w in zip(HEADER, widths)).rstrip())
        lines.extend("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in rows)
        lines.append("")
    lines += _verdict_lines(c)
    return "\n".join(lines).rstrip() + "\n"


def render_markdown(c: Comparison) -> str:
    """The comparison as markdown (a CI job summary): the gate's line first, then the table and the lines."""
    from harness.report.markdown import table

    lines = [f"**{_gate_line(c)}**", "", *_header(c)]
    if c.changes:
        lines += [*table(HEADER, _rows(c)), ""]
    lines += [f"- {line}" for line in _verdict_lines(c)[:-1]]
    return "\n".join(lines).rstrip() + "\n"


def render_json(c: Comparison) -> str:
    """The comparison as JSON: every figure's change with its estimates, and the gate's decision."""
    import json

    def est(e: Estimate | None) -> dict[str, float | int | None] | None:
        return None if e is None else {"mean": e.mean, "half_width": e.half_width, "n": e.n}

    data = {
        "baselines": [str(a.path) for a in c.baselines], "candidate": str(c.candidate.path),
        "skipped_baselines": [{"run": str(a.path), "why": why} for a, why in c.skipped],
        "threshold_pct": c.pct, "gate": c.gate, "exit_code": c.exit_code, "gate_line": _gate_line(c),
        "changes": [{"engine": ch.engine, "figure": ch.figure.key, "unit": ch.figure.unit, "a": est(ch.a),
                     "b": est(ch.b), "change_pct": ch.change_pct, "worse_pct": ch.worse_pct,
                     "detectable_pct": ch.detectable_pct, "verdict": ch.verdict} for ch in c.changes],
        "regressions": c.regressions, "problems": c.problems, "notes": c.notes + _insensitive(c),
        "cannot_judge": _unjudged(c),
    }
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def _unjudged(c: Comparison) -> list[str]:
    """One line per engine and pair of sample sizes listing the figures that cannot be judged."""
    groups: dict[tuple[str, int, int], list[str]] = {}
    for ch in c.unjudged:
        key = (ch.engine, 0 if ch.a is None else ch.a.n, 0 if ch.b is None else ch.b.n)
        groups.setdefault(key, []).append(ch.figure.label)
    return [f"CANNOT JUDGE: {engine}: no usable baseline repetition (every one failed, was interrupted or is "
            "invalid): nothing to judge the candidate against" for engine in c.no_baseline] + [
        f"CANNOT JUDGE: {engine}: fewer than 2 usable values on a side (A {na}, B {nb}): {', '.join(labels)}"
        for (engine, na, nb), labels in groups.items() if engine not in c.no_baseline]


def _insensitive(c: Comparison) -> list[str]:
    """Per engine, the figures whose smallest detectable change exceeds the threshold."""
    out = []
    for engine in dict.fromkeys(ch.engine for ch in c.changes):
        blind = [ch.figure.label for ch in c.changes
                 if ch.engine == engine and ch.detectable_pct is not None and ch.detectable_pct > c.pct]
        if blind:
            out.append(f"{engine}: a {c.pct:g} % change of {', '.join(blind)} cannot be told from noise with these "
                       "repetitions (column 'detectable'): run more repetitions or pool more baseline runs")
    return out


def _header(c: Comparison) -> list[str]:
    pooled = f" ({len(c.baselines)} runs pooled)" if len(c.baselines) > 1 else ""
    lines = [f"A (baseline){pooled}: " + (", ".join(str(a.path) for a in c.baselines) or "none")]
    lines += [f"   left out: {a.path} — {'; '.join(why)}" for a, why in c.skipped]
    lines += [f"B (candidate): {c.candidate.path}", ""]
    lines += [f"Significance: Welch's t-test at 95 % on per-repetition values; threshold {c.pct:g} %"
              + ("" if c.gate else " (report only: no --fail-on-regression)"), ""]
    return lines


def _with_n(est: Estimate | None) -> str:
    return "–" if est is None else f"{fmt_estimate(est)} ({est.n})"


def _gate_line(c: Comparison) -> str:
    code = c.exit_code
    if not c.gate:
        return "report only (no --fail-on-regression): exit 0"
    if code == EXIT_FAIL:
        return (f"gate: FAIL (exit {code}): {len(c.regressions)} regression(s), "
                f"{len(c.problems)} comparability problem(s)")
    if code == EXIT_NO_BASELINE:
        return f"gate: NO BASELINE (exit {code}): every baseline run was left out; this run starts a new baseline"
    if code == EXIT_CANNOT_JUDGE:
        if c.no_baseline:
            return (f"gate: CANNOT JUDGE (exit {code}): no usable baseline repetition for "
                    f"{', '.join(c.no_baseline)}")
        return f"gate: CANNOT JUDGE (exit {code}): {len(c.unjudged)} figure(s) lack 2 usable repetitions on a side"
    return f"gate: pass (exit 0): no regression beyond {c.pct:g} % that is significant at 95 %"


RENDERERS = {"text": render, "md": render_markdown, "json": render_json}
"""``bench compare --format`` → the renderer of a run comparison."""
