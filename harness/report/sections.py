"""The run report's smaller sections: the run's state, the warnings in words (per repetition and across
repetitions), failures with their last log lines, the environment fingerprint and how to read the figures. The
larger sections have modules of their own (:mod:`.results_tables`, :mod:`.fairness`, :mod:`.faults_table`)."""

from __future__ import annotations

import numpy as np

from harness.analysis import keepup
from harness.report.markdown import table
from harness.results import RunData
from harness.report.figures import FIGURE_BY_KEY, figure_estimate, ok_reps
from harness.workload import is_measured

CV_WARNING = 0.10
"""Spread across repetitions (coefficient of variation) above which a figure is called unstable."""
SHORT_RUN_WINDOWS = 5
"""Fewer measured windows than this and percentiles and the latency criterion of the keep-up verdict rest on
few windows (``bench validate`` refuses fewer than 3)."""


def run_state(run: RunData) -> str:
    """The run's state for the report's first line, from run-status.json (bold when not complete)."""
    if run.status is None:
        return "**unfinished** (no run-status.json: the harness stopped before the end)"
    state = run.status.get("status", "?")
    message = run.status.get("message") or ""
    text = {"complete": "complete", "interrupted": "**interrupted**", "failed": "**failed**"}.get(state, state)
    return f"{text}{': ' + message if message else ''}"


def report_warnings(run: RunData) -> list[str]:
    """Every warning of the run, in words: per repetition (stored with it) and across repetitions (spread)."""
    out: list[str] = []
    if run.status is None:
        out.append("the run did not finish (no run-status.json): results may be incomplete")
    elif run.status.get("status") != "complete":
        out.append(f"the run was {run.status.get('status')}: {run.status.get('message') or 'no message'}")
    if run.incomplete:
        out.append(f"{', '.join(run.incomplete)}: no summary.json (its writing was cut short): not reported")
    for name, reps in run.engines.items():
        many = len(reps) > 1
        for r in reps:
            where = f"{name} rep {r.summary.repetition}" if many else name
            if r.summary.status == "interrupted":
                out.append(f"{where}: interrupted before the repetition finished")
            out.extend(f"{where}: {w}" for w in r.summary.warnings)
        ok = ok_reps(reps)
        for key in ("result_p50", "result_p99", "processed_rate"):
            figure = FIGURE_BY_KEY[key]
            est = figure_estimate(reps, figure)
            if est is not None and est.cv is not None and est.cv > CV_WARNING:
                out.append(
                    f"{name}: {figure.label} varies a lot across {est.n} repetitions (CV {est.cv:.0%} > "
                    f"{CV_WARNING:.0%}): the result may be unstable; keep the machine idle, run longer or more "
                    "repetitions"
                )
        if ok:
            s = ok[0].summary
            slide = max(s.window_slide_ms, 1)  # window ends are multiples of the slide
            ends = np.arange(-(-s.timeline.warmup_end_ms // slide) * slide, s.timeline.load_end_ms + slide, slide)
            measured = int(is_measured(ends, warmup_end_ms=s.timeline.warmup_end_ms,
                                       load_end_ms=s.timeline.load_end_ms,
                                       watermark_delay_ms=s.watermark_delay_ms).sum())
            if measured < SHORT_RUN_WINDOWS:
                out.append(
                    f"{name}: only {measured} windows measured (< {SHORT_RUN_WINDOWS}): percentiles and the "
                    "sustained check rest on few windows; run longer"
                )
    return out


def failures_section(run: RunData) -> list[str]:
    """The Failures section: each failed repetition's error and last log lines (empty when none failed)."""
    failed = [r for reps in run.engines.values() for r in reps if r.summary.status == "failed"]
    if not failed:
        return []
    lines = ["## Failures", ""]
    for r in failed:
        lines += [f"### {r.summary.engine} rep {r.summary.repetition}", "", f"Error: {r.summary.error}", ""]
        if r.summary.log_tail:
            lines += ["Last log lines:", "", "```", *r.summary.log_tail, "```", ""]
    return lines


def environment_section(run: RunData) -> list[str]:
    """The Environment section: the fingerprint as a table (empty without one)."""
    fp = run.fingerprint
    if not fp:
        return []
    rows = []
    for key, value in fp.items():
        if key == "versions" and isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif key == "memory_bytes" and isinstance(value, (int, float)):
            value = f"{value / 2**30:,.1f} GiB"
        rows.append([key, str(value)])
    return ["## Environment", ""] + table(["what", "value"], rows) + [""]


def definitions_section(run: RunData) -> list[str]:
    """The How to read this section: what each column means and the keep-up verdict's thresholds."""
    return [
        "## How to read this",
        "",
        "- *target*: events/s the open-loop schedule intended; *achieved*: records/s the generator sent; "
        "*processed*: events/s the engine processed (its own metric, or “(output)”: the growth of the output "
        "counts per second).",
        "- *sustained* (keep-up verdict, `harness/analysis/keepup.py`): processed ≥ "
        f"{keepup.MIN_PROCESSED_RATIO:.0%} of the achieved rate (from the engine's input rows; an engine without "
        f"them: the rate its output completed windows at, ≥ {keepup.MIN_OUTPUT_PROCESSED_RATIO:.0%}), the input "
        f"lag's fitted slope ≤ {keepup.MAX_LAG_SLOPE_SHARE:.0%} of the achieved rate per s (needs input rows), and "
        f"result latency not rising faster than {keepup.MAX_LATENCY_SLOPE:g} ms per s over the measured windows "
        "(with 95 % confidence); a verdict on fewer than 3 criteria says so.",
        "- *event-time latency*: broker append time − the largest event time among the pair's on-time events.",
        "- *negative*: latencies below 0, left out of the percentiles and never clamped.",
        "- *valid*: the engine ran, the generator drove the load (≥ 99 % of target, small publish delay) and the "
        "result topic carried broker append times.",
        "",
    ]

