"""The run report's Results section: per engine the throughput (target, achieved, processed, sustained, valid),
how the load was sent (generator and input path), result latency (p50 … max) with the watermark delay D beside it,
event-time latency, correctness, and CPU and memory — as mean ± 95 % confidence interval (Student t) across
repetitions when there are several."""

from __future__ import annotations

from typing import Any

from harness.analysis.stats import estimate
from harness.report.markdown import table
from harness.results import LoadedRepetition, RepetitionSummary, RunData
from harness.report.figures import FIGURE_BY_KEY, figure_estimate, fmt_estimate, fmt_number, ok_reps


def results_section(run: RunData) -> list[str]:
    """The Results section: throughput, load generator, input path, latency, correctness and resources tables."""
    if not run.engines:
        return ["## Results", "", "No engine results were written.", ""]
    reps = max(len(v) for v in run.engines.values())
    lines = ["## Results", ""]
    if reps > 1:
        lines += ["Mean ± half-width of the 95 % confidence interval (Student t) over the repetitions that ran.", ""]
    first = next(iter(run.engines.values()))[0].summary

    lines += _throughput_table(run)
    lines += _latency_table(run, first)
    lines += _correctness_table(run)
    lines += _resources_table(run)
    return lines


def _throughput_table(run: RunData) -> list[str]:
    lines: list[str] = []
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
    lines += table(["engine", "reps ok", "target", "achieved", "processed", "sustained", "valid"], rows)
    lines += [""]
    lines += _generator_table(run)
    lines += _input_path_table(run)

    return lines


def _latency_table(run: RunData, first: RepetitionSummary) -> list[str]:
    lines: list[str] = []
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
        f"Result latency = time the first record with the correct final count became visible (broker append time; "
        f"for read_committed output the commit) − window end; it contains the watermark delay D. Windows ending in "
        f"the warm-up, or that only the end-of-run records could close (end + D after the load), are not measured "
        f"(window {fmt_number(float(first.window_size_ms), 'ms')}"
        + (f", slide {fmt_number(float(first.window_slide_ms), 'ms')}"
           if first.window_slide_ms != first.window_size_ms else "")
        + ").",
        "",
    ]
    lines += table(
        ["engine", "p50", "p90", "p99", "p99.9", "max", "D", "event-time p50", "event-time p99", "pairs", "negative"],
        rows,
    )
    lines += [""]

    return lines


def _correctness_table(run: RunData) -> list[str]:
    lines: list[str] = []
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
    lines += table(
        ["engine", "correct", "expected", "exact", "missing", "extra", "wrong", "duplicated", "late dropped of made"],
        rows,
    )
    lines += [""]

    return lines


def _resources_table(run: RunData) -> list[str]:
    lines: list[str] = []
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
                stats = [r.summary.resources[component] for r in ok_reps(engine_reps)
                         if component in r.summary.resources]
                cpu = estimate([s.cpu_mean_percent for s in stats])
                rss = estimate([None if s.rss_max_bytes is None else s.rss_max_bytes / 2**20 for s in stats])
                rss_p99 = estimate([None if s.rss_p99_bytes is None else s.rss_p99_bytes / 2**20 for s in stats])
                p99 = f" (p99 {fmt_estimate(rss_p99)} MiB)" if rss_p99 is not None else ""
                row.append(f"{fmt_estimate(cpu)} % / {fmt_estimate(rss)} MiB{p99}")
            row.insert(1, fmt_estimate(figure_estimate(engine_reps, FIGURE_BY_KEY["engine_cost"])))
            rows.append(row)
        lines += ["### Resources (mean CPU in % of one core / RSS max (p99 of the one-second samples), "
                  "measured period; CPU per event: the engine's core-µs per processed event)", ""]
        lines += table(["engine", "CPU per event (core-µs)", "engine processes", *others], rows)
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
    lines += table(["engine", "client × processes", "nice", "delay p50", "delay p99", "delay max"], rows)
    return lines + [""]


def _input_path_table(run: RunData) -> list[str]:
    """Per repetition, the generator's publish delay beside the input path's own delay (input topic
    LogAppendTime − intended send time: publish delay plus producer batching and the broker's append), measured
    period; only for runs that read their input topics back (``summary.input_delay``)."""
    rows = []
    for name, engine_reps in run.engines.items():
        for rep in ok_reps(engine_reps):
            delay, gen = rep.summary.input_delay, rep.summary.generator
            if delay is None:
                continue
            publish = gen.publish_delay_ms if gen is not None else {}
            rows.append(
                [name, str(rep.summary.repetition)]
                + [fmt_number(publish.get(q), "ms") for q in ("p50", "p99", "max")]
                + [fmt_number(delay.delay_ms.get(q), "ms") for q in ("p50", "p99", "max")]
                + [f"{delay.negative:,}" if delay.negative else "0", _arrived_late_cell(delay)]
            )
    if not rows:
        return []
    lines = ["### Input path (publish = actual − intended send time; input append = the input topic's "
             "LogAppendTime − intended send time, 1 ms resolution; measured period)", ""]
    lines += table(["engine", "rep", "publish p50", "publish p99", "publish max", "input append p50",
                        "input append p99", "input append max", "appended before intended (clocks)",
                        "arrived late: allowed / dropped (whole run)"], rows)
    rules = sorted({d.arrival_rule for reps in run.engines.values() for r in ok_reps(reps)
                    if (d := r.summary.input_delay) is not None and d.arrival_rule})
    lines += ["", "*Arrived late*: on-time events the input topic received in an order that lets the engine's own "
              "watermark rule make them late (e.g. a backlog flushed after a broker restart, one partition's "
              "before another's): the engine may drop them and the correctness check allows it; *dropped* is "
              "how many of them the engine left out. Rules: " + ("; ".join(rules) if rules else "—") + "."]
    return lines + [""]


def _arrived_late_cell(delay: Any) -> str:
    if delay.arrived_late is None:
        return "—"
    dropped = f"{delay.arrived_late_dropped:,}" if delay.arrived_late_dropped is not None else "—"
    return f"{delay.arrived_late:,} / {dropped}"


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
    judged = {r.summary.sustained.judged for r in ok if r.summary.sustained.judged is not None}
    if judged and min(judged) < 3:
        skipped = sorted({s.split(":", 1)[0] for r in ok for s in r.summary.sustained.skipped})
        return f"yes ({min(judged)} of 3 criteria judged; skipped: {', '.join(skipped)})"
    return "yes"


def _sum_or_range(values: list[int | float]) -> str:
    low, high = min(values), max(values)
    return f"{low:,}" if low == high else f"{low:,}–{high:,}"
