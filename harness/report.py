"""``bench report``: a run directory → report.md + PNG plots.

The report holds: the run's state and the resolved scenario; the environment fingerprint; per engine the
throughput (target, achieved, processed), result latency (p50 … max) with the watermark delay D beside it,
event-time latency, correctness, sustainability, CPU and memory — as mean ± 95 % confidence interval
(Student t) across repetitions when there are several; the fairness table (every setting that changes what or
when results are emitted, engine by engine, with differences spelled out); warnings in words; and plots
(latency CDF, latency over time, throughput over time, resources over time).

Everything in it comes from the stored result files, so the same run directory always gives the same report.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from harness.engines.base import FAIRNESS_KEYS
from harness.results import LoadedRepetition, RepetitionSummary, RunData, load_run
from harness.stats import Estimate, estimate
from harness.workload import is_measured

CV_WARNING = 0.10
"""Spread across repetitions (coefficient of variation) above which a figure is called unstable."""
SHORT_RUN_WINDOWS = 5
"""Fewer measured windows than this and percentiles and the latency criterion of the keep-up verdict rest on
few windows (``bench validate`` refuses fewer than 3)."""


@dataclass(frozen=True)
class Figure:
    """One number per repetition that the report tabulates and ``bench compare`` compares."""

    key: str
    label: str
    unit: str
    get: Callable[[RepetitionSummary], float | None]
    lower_is_better: bool


def _resource(engine_cpu: bool) -> Callable[[RepetitionSummary], float | None]:
    def get(s: RepetitionSummary) -> float | None:
        stats = s.resources.get(s.engine)
        if stats is None:
            return None
        return stats.cpu_mean_percent if engine_cpu else (
            None if stats.rss_max_bytes is None else stats.rss_max_bytes / 2**20
        )

    return get


FIGURES: tuple[Figure, ...] = (
    Figure("target_rate", "target", "events/s", lambda s: s.throughput.target_rate, False),
    Figure("achieved_rate", "achieved", "events/s", lambda s: s.throughput.achieved_rate, False),
    Figure("processed_rate", "processed", "events/s", lambda s: s.throughput.processed_rate, False),
    Figure("result_p50", "result p50", "ms", lambda s: s.result_latency.p50_ms, True),
    Figure("result_p90", "result p90", "ms", lambda s: s.result_latency.p90_ms, True),
    Figure("result_p99", "result p99", "ms", lambda s: s.result_latency.p99_ms, True),
    Figure("result_p99_9", "result p99.9", "ms", lambda s: s.result_latency.p99_9_ms, True),
    Figure("result_max", "result max", "ms", lambda s: s.result_latency.max_ms, True),
    Figure("event_time_p50", "event-time p50", "ms", lambda s: s.event_time_latency.p50_ms, True),
    Figure("event_time_p99", "event-time p99", "ms", lambda s: s.event_time_latency.p99_ms, True),
    Figure("engine_cpu", "engine CPU", "% of a core", _resource(True), True),
    Figure("engine_rss", "engine RSS max", "MiB", _resource(False), True),
)
FIGURE_BY_KEY = {f.key: f for f in FIGURES}


# ---------------------------------------------------------------------------------------------------- helpers
def ok_reps(reps: list[LoadedRepetition]) -> list[LoadedRepetition]:
    """Repetitions that ran to the end (failed and interrupted ones carry no comparable figures)."""
    return [r for r in reps if r.summary.status == "ok"]


def figure_estimate(reps: list[LoadedRepetition], figure: Figure) -> Estimate | None:
    return estimate([figure.get(r.summary) for r in ok_reps(reps)])


def fmt_number(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if unit == "ms" and abs(value) >= 10_000:
        return f"{value / 1000:,.2f} s"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:,.1f}"
    else:
        text = f"{value:,.2f}"
    return f"{text} {unit}".rstrip() if unit == "ms" else text


def fmt_estimate(est: Estimate | None, unit: str = "") -> str:
    if est is None:
        return "–"
    if est.half_width is None:
        return fmt_number(est.mean, unit)
    return f"{fmt_number(est.mean, unit)} ± {fmt_number(est.half_width, unit)}"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


# ---------------------------------------------------------------------------------------------------- report
def write_report(run_dir: Path, to: Path | None = None, *, plots: bool = True) -> Path:
    """Write ``report.md`` (or ``to``) and the PNG plots (always into the run directory; the markdown links
    them relative to where it is written). Overwrites an older report: it is derived, not measured.
    Returns the markdown path."""
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    target = Path(to) if to is not None else run_dir / "report.md"
    images = write_plots(run) if plots else {}
    links = {name: Path(os.path.relpath(path, target.parent.resolve())).as_posix() for name, path in images.items()}
    target.write_text(render_report(run, links), encoding="utf-8")
    return target


def write_combined_report(run_dirs: list[Path], to: Path, *, preface: Path | None = None) -> Path:
    """Several runs' reports in one markdown file (e.g. the top-level REPORT.md), each with its plots linked
    relative to ``to``, after an optional hand-written ``preface`` (the reading of the results), so the whole
    file can be regenerated by one command without losing the prose."""
    target = Path(to)
    parts = [preface.read_text(encoding="utf-8").rstrip() + "\n"] if preface is not None else []
    for run_dir in run_dirs:
        run = load_run(Path(run_dir))
        images = write_plots(run)
        links = {name: Path(os.path.relpath(path, target.parent.resolve())).as_posix() for name, path in images.items()}
        parts.append(render_report(run, links))
    target.write_text("\n---\n\n".join(parts), encoding="utf-8")
    return target


def render_report(run: RunData, images: dict[str, str] | None = None) -> str:
    """The report as markdown (pure: the same run gives the same text)."""
    images = images or {}
    scenario = run.scenario
    lines: list[str] = [f"# Benchmark report: {scenario.get('name', run.path.name)}", ""]
    lines += [f"Run `{run.path.name}` — {_run_state(run)}.", ""]
    if scenario.get("description"):
        lines += [scenario["description"], ""]

    warnings = report_warnings(run)
    lines += ["## Warnings", ""]
    lines += [f"- {w}" for w in warnings] if warnings else ["None."]
    lines += [""]

    lines += _results_tables(run)
    lines += _fairness_section(run)
    if images:
        lines += ["## Plots", ""]
        titles = {
            "latency_cdf": "Result latency distribution (measured exact pairs, all repetitions)",
            "latency_time": "Result latency over time (p50 per second, by when results became visible)",
            "throughput_time": "Throughput over time",
            "resources_time": "CPU and memory over time",
        }
        for name, title in titles.items():
            if name in images:
                lines += [f"### {title}", "", f"![{title}]({images[name]})", ""]
    lines += _failures(run)
    lines += ["## Scenario (resolved)", "", "```yaml", yaml.safe_dump(scenario, sort_keys=False).rstrip(), "```", ""]
    lines += _fingerprint(run)
    lines += _definitions(run)
    return "\n".join(lines).rstrip() + "\n"


def _run_state(run: RunData) -> str:
    if run.status is None:
        return "**unfinished** (no run-status.json: the harness stopped before the end)"
    state = run.status.get("status", "?")
    message = run.status.get("message") or ""
    text = {"complete": "complete", "interrupted": "**interrupted**", "failed": "**failed**"}.get(state, state)
    return f"{text}{': ' + message if message else ''}"


def _results_tables(run: RunData) -> list[str]:
    if not run.engines:
        return ["## Results", "", "No engine results were written.", ""]
    reps = max(len(v) for v in run.engines.values())
    lines = ["## Results", ""]
    if reps > 1:
        lines += ["Mean ± half-width of the 95 % confidence interval (Student t) over the repetitions that ran.", ""]
    first = next(iter(run.engines.values()))[0].summary

    rows = []
    for name, engine_reps in run.engines.items():
        ok = ok_reps(engine_reps)
        valid = [r for r in ok if r.summary.valid]
        verdict = "yes" if len(valid) == len(engine_reps) else "no: " + "; ".join(
            dict.fromkeys(reason for r in engine_reps for reason in r.summary.invalid_reasons)
        )
        rows.append(
            [
                name,
                f"{len(ok)}/{len(engine_reps)}",
                fmt_estimate(figure_estimate(engine_reps, FIGURE_BY_KEY["target_rate"])),
                fmt_estimate(figure_estimate(engine_reps, FIGURE_BY_KEY["achieved_rate"])),
                fmt_estimate(figure_estimate(engine_reps, FIGURE_BY_KEY["processed_rate"]))
                + _source(ok),
                _sustained(ok),
                verdict,
            ]
        )
    lines += ["### Throughput (events/s, measured period)", ""]
    lines += _md_table(["engine", "reps ok", "target", "achieved", "processed", "sustained", "valid"], rows)
    lines += [""]
    lines += _generator_table(run)

    rows = []
    for name, engine_reps in run.engines.items():
        ok = ok_reps(engine_reps)
        negative = sum(r.summary.result_latency.negative for r in ok)
        rows.append(
            [name]
            + [
                fmt_estimate(figure_estimate(engine_reps, FIGURE_BY_KEY[key]), "ms")
                for key in ("result_p50", "result_p90", "result_p99", "result_p99_9", "result_max")
            ]
            + [
                fmt_number(float(ok[0].summary.watermark_delay_ms), "ms") if ok else "–",
                fmt_estimate(figure_estimate(engine_reps, FIGURE_BY_KEY["event_time_p50"]), "ms"),
                fmt_estimate(figure_estimate(engine_reps, FIGURE_BY_KEY["event_time_p99"]), "ms"),
                f"{sum(r.summary.result_latency.pairs for r in ok):,}",
                f"{negative:,}",
            ]
        )
    lines += ["### Latency", ""]
    lines += [
        f"Result latency = broker append time of the first record with the correct final count − window end; it "
        f"contains the watermark delay D. Windows ending in the warm-up, or that only the end-of-run records could close (end + D after the load), are not measured "
        f"(window {fmt_number(float(first.window_size_ms), 'ms')}"
        + (f", slide {fmt_number(float(first.window_slide_ms), 'ms')}" if first.window_slide_ms != first.window_size_ms else "")
        + ").",
        "",
    ]
    lines += _md_table(
        ["engine", "p50", "p90", "p99", "p99.9", "max", "D", "event-time p50", "event-time p99", "pairs", "negative"],
        rows,
    )
    lines += [""]

    rows = []
    for name, engine_reps in run.engines.items():
        ok = [r for r in ok_reps(engine_reps) if r.summary.correctness is not None]
        if not ok:
            rows.append([name, "–", "–", "–", "–", "–", "–", "–", "–"])
            continue
        cs = [r.summary.correctness for r in ok]
        correct = sum(c.correct for c in cs)
        rows.append(
            [
                name,
                "yes" if correct == len(cs) else f"**no** ({len(cs) - correct} of {len(cs)} reps)",
                _sum_or_range([c.expected for c in cs]),
                _sum_or_range([c.exact for c in cs]),
                _sum_or_range([c.missing for c in cs]),
                _sum_or_range([c.extra for c in cs]),
                _sum_or_range([c.wrong for c in cs]),
                _sum_or_range([c.duplicated for c in cs]),
                f"{_sum_or_range([round(c.late_dropped) for c in cs])} of {_sum_or_range([c.late_made for c in cs])}",
            ]
        )
    lines += ["### Correctness (per repetition; a range when repetitions differ)", ""]
    lines += _md_table(
        ["engine", "correct", "expected", "exact", "missing", "extra", "wrong", "duplicated", "late dropped of made"],
        rows,
    )
    lines += [""]

    others = list(
        dict.fromkeys(
            c for reps_ in run.engines.values() for r in reps_ for c in r.summary.resources if c not in run.engines
        )
    )
    if any(r.summary.resources for reps_ in run.engines.values() for r in reps_):
        rows = []
        for name, engine_reps in run.engines.items():
            row = [name]
            for component in [name, *others]:
                stats = [r.summary.resources[component] for r in ok_reps(engine_reps) if component in r.summary.resources]
                cpu = estimate([s.cpu_mean_percent for s in stats])
                rss = estimate([None if s.rss_max_bytes is None else s.rss_max_bytes / 2**20 for s in stats])
                row.append(f"{fmt_estimate(cpu)} % / {fmt_estimate(rss)} MiB")
            rows.append(row)
        lines += ["### Resources (mean CPU in % of one core / max RSS, measured period)", ""]
        lines += _md_table(["engine", "engine processes", *others], rows)
        lines += [""]
    return lines


def _generator_table(run: RunData) -> list[str]:
    """How the load was sent for each engine: client, processes, priority and publish delay (actual − intended
    send time, measured period). Large delays are what the validity verdict above rests on."""
    rows = []
    for name, engine_reps in run.engines.items():
        with_gen = [r for r in ok_reps(engine_reps) if r.summary.generator is not None]
        gens = [r.summary.generator for r in with_gen]
        if not gens:
            continue
        setup = [_generator_setup(r) for r in with_gen]
        how = sorted({f"{b} × {w}" for b, w, _ in setup if b is not None and w is not None})
        nice = sorted({n for _, _, n in setup if n is not None})
        rows.append(
            [name, ", ".join(how) or "–", ", ".join(str(n) for n in nice) or "–"]
            + [fmt_estimate(estimate([g.publish_delay_ms.get(q) for g in gens]), "ms") for q in ("p50", "p99", "max")]
        )
    if not rows:
        return []
    lines = ["### Load generator (publish delay = actual − intended send time, measured period)", ""]
    lines += _md_table(["engine", "client × processes", "nice", "delay p50", "delay p99", "delay max"], rows)
    return lines + [""]


def _generator_setup(rep: LoadedRepetition) -> tuple[str | None, int | None, int | None]:
    """(client, processes, nice) of a repetition's generator; summaries written before these fields existed
    have them only in generator.json."""
    g = rep.summary.generator
    if g is not None and g.backend is not None:
        return g.backend, g.workers, g.nice
    full = rep.generator
    return full.get("backend"), full.get("workers"), full.get("nice")


def _source(ok: list[LoadedRepetition]) -> str:
    sources = {r.summary.throughput.processed_rate_source for r in ok}
    return " (output)" if sources == {"output"} else " (engine, v1)" if sources == {"engine"} else ""


def _sustained(ok: list[LoadedRepetition]) -> str:
    verdicts = [r.summary.sustained.sustained for r in ok]
    if not verdicts or all(v is None for v in verdicts):
        return "unknown"
    bad = [r for r in ok if r.summary.sustained.sustained is False]
    if bad:
        criteria = sorted({f.split(":", 1)[0] for r in bad for f in r.summary.sustained.failed})
        return f"**no** ({len(bad)} of {len(verdicts)} reps; failed: {', '.join(criteria)})"
    return "yes"


def _sum_or_range(values: list[int | float]) -> str:
    low, high = min(values), max(values)
    return f"{low:,}" if low == high else f"{low:,}–{high:,}"


FAIRNESS_AFFECTS = {
    "output_mode": "result latency, duplicates",
    "trigger": "result latency, CPU",
    "watermark": "result and event-time latency, late events dropped",
    "late_events": "late events dropped",
    "checkpointing": "CPU, and result latency of transactional output",
    "delivery": "result latency (transactional output is visible at commit), duplicates",
    "parallelism": "processed rate, latency, CPU, memory",
    "partitions": "processed rate, latency",
    "deployment": "every figure",
}
"""What a real difference in each fairness setting makes not like for like."""


def _fairness_section(run: RunData) -> list[str]:
    if not run.engines:
        return []
    names = list(run.engines)
    settings = {name: run.engines[name][0].summary.fairness for name in names}
    keys = list(FAIRNESS_KEYS) + sorted({k for s in settings.values() for k in s} - set(FAIRNESS_KEYS))
    rows = []
    for key in keys:
        cells = [settings[n][key].detail or settings[n][key].value if key in settings[n] else "not reported"
                 for n in names]
        differs = len({settings[n][key].value if key in settings[n] else None for n in names}) > 1
        rows.append([f"**{key}** (differs)" if differs and len(names) > 1 else key, *cells])
    lines = ["## Fairness: settings that change what or when results are emitted", ""]
    lines += ["Each engine reports every setting as a normalised value (compared) and a detail (shown below).", ""]
    lines += _md_table(["setting"] + names, rows)
    lines += [""]
    notes = fairness_differences({n: {k: v.value for k, v in s.items()} for n, s in settings.items()})
    if len(names) > 1:
        lines += notes if notes else ["All engines ran with the same settings."]
        lines += [""]
    return lines


def fairness_differences(settings: dict[str, dict[str, str]]) -> list[str]:
    """One sentence per setting whose normalised values differ between engines (a missing value counts as a
    difference), naming the figures the difference affects."""
    out = []
    keys = list(FAIRNESS_KEYS) + sorted({k for s in settings.values() for k in s} - set(FAIRNESS_KEYS))
    for key in keys:
        values = {name: s.get(key, "not reported") for name, s in settings.items()}
        if len(set(values.values())) > 1:
            listing = ", ".join(f"{name} = {value}" for name, value in values.items())
            affected = FAIRNESS_AFFECTS.get(key, "the figures this setting influences")
            out.append(f"- **{key}** differs: {listing}. Not like for like: {affected}.")
    return out


def report_warnings(run: RunData) -> list[str]:
    """Every warning of the run, in words: per repetition (stored with it) and across repetitions (spread)."""
    out: list[str] = []
    if run.status is None:
        out.append("the run did not finish (no run-status.json): results may be incomplete")
    elif run.status.get("status") != "complete":
        out.append(f"the run was {run.status.get('status')}: {run.status.get('message') or 'no message'}")
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


def _failures(run: RunData) -> list[str]:
    failed = [r for reps in run.engines.values() for r in reps if r.summary.status == "failed"]
    if not failed:
        return []
    lines = ["## Failures", ""]
    for r in failed:
        lines += [f"### {r.summary.engine} rep {r.summary.repetition}", "", f"Error: {r.summary.error}", ""]
        if r.summary.log_tail:
            lines += ["Last log lines:", "", "```", *r.summary.log_tail, "```", ""]
    return lines


def _fingerprint(run: RunData) -> list[str]:
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
    return ["## Environment", ""] + _md_table(["what", "value"], rows) + [""]


def _definitions(run: RunData) -> list[str]:
    return [
        "## How to read this",
        "",
        "- *target*: events/s the open-loop schedule intended; *achieved*: records/s the generator sent; "
        "*processed*: events/s the engine processed (its own metric, or “(output)”: the growth of the output "
        "counts per second).",
        "- *sustained*: the fitted trend of result latency over the measured windows grows by less than "
        "max(one window, 50 % of its starting level).",
        "- *event-time latency*: broker append time − the largest event time among the pair's on-time events.",
        "- *negative*: latencies below 0, left out of the percentiles and never clamped.",
        "- *valid*: the engine ran, the generator drove the load (≥ 99 % of target, small publish delay) and the "
        "result topic carried broker append times.",
        "",
    ]


# ---------------------------------------------------------------------------------------------------- plots
def write_plots(run: RunData) -> dict[str, Path]:
    """PNG plots into the run directory (replaced if present); returns name → path of those drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, Path] = {}
    if not run.engines:
        return out

    fig, ax = plt.subplots(figsize=(8, 4.5))
    drawn = False
    for name, reps in run.engines.items():
        merged = None
        for r in ok_reps(reps):
            h = r.result_histogram
            if merged is None:
                merged = h
            else:
                merged.add(h)
        if merged is None or merged.get_total_count() == 0:
            continue
        values, fractions = [], []
        total = merged.get_total_count()
        cumulative = 0
        for item in merged.get_recorded_iterator():
            cumulative += item.count_at_value_iterated_to
            values.append(item.value_iterated_to)
            fractions.append(cumulative / total)
        ax.step(values, fractions, where="post", label=name)
        drawn = True
    if drawn:
        ax.set_xlabel("result latency (ms)")
        ax.set_ylabel("fraction of pairs")
        ax.grid(True, alpha=0.3)
        ax.legend()
        out["latency_cdf"] = _save(fig, run.path / "latency-cdf.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    drawn = False
    for name, reps in run.engines.items():
        for r in ok_reps(reps):
            series = r.series
            label = name if len(reps) == 1 else f"{name} rep {r.summary.repetition}"
            if series["latency_p50_ms"].notna().any():
                ax.plot(series["second"], series["latency_p50_ms"], marker=".", label=f"{label} p50")
                ax.plot(series["second"], series["latency_p99_ms"], linestyle=":", label=f"{label} p99")
                drawn = True
    if drawn:
        ax.set_xlabel("seconds since the load started")
        ax.set_ylabel("result latency (ms)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        out["latency_time"] = _save(fig, run.path / "latency-over-time.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    drawn = False
    target_drawn = False
    for name, reps in run.engines.items():
        for r in ok_reps(reps):
            series = r.series
            label = name if len(reps) == 1 else f"{name} rep {r.summary.repetition}"
            if not target_drawn and series["target_rate"].notna().any():
                ax.plot(series["second"], series["target_rate"], color="black", linewidth=1, label="target")
                target_drawn = True
            if series["achieved_rate"].notna().any():
                ax.plot(series["second"], series["achieved_rate"], linestyle="--", label=f"{label} sent")
            column = "processed_rate_engine" if series["processed_rate_engine"].notna().any() else "processed_rate_output"
            ax.plot(series["second"], series[column], label=f"{label} processed")
            drawn = True
    if drawn:
        ax.set_xlabel("seconds since the load started")
        ax.set_ylabel("events/s")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        out["throughput_time"] = _save(fig, run.path / "throughput-over-time.png")
    plt.close(fig)

    fig, (cpu_ax, rss_ax) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    drawn = False
    for name, reps in run.engines.items():
        ok = ok_reps(reps)
        if not ok:
            continue
        r = ok[0]  # the first repetition: several would make the plot unreadable
        frame = r.resources
        if frame.empty:
            continue
        start = r.summary.timeline.load_start_ms
        for component, rows in frame.groupby("component", sort=False):
            t = (rows["t_ms"].to_numpy() - start) / 1000.0
            cpu_ax.plot(t, rows["cpu_percent"], label=f"{name}: {component}")
            rss_ax.plot(t, rows["rss_bytes"] / 2**20, label=f"{name}: {component}")
            drawn = True
    if drawn:
        cpu_ax.set_ylabel("CPU (% of a core)")
        rss_ax.set_ylabel("RSS (MiB)")
        rss_ax.set_xlabel("seconds since the load started")
        cpu_ax.grid(True, alpha=0.3)
        rss_ax.grid(True, alpha=0.3)
        cpu_ax.legend(fontsize="x-small", ncol=2)
        out["resources_time"] = _save(fig, run.path / "resources-over-time.png")
    plt.close(fig)
    return out


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    return path


__all__ = ["FIGURES", "Figure", "fairness_differences", "render_report", "report_warnings", "write_report"]
