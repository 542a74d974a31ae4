"""The run report's Fairness section: every setting that changes what or when results are emitted, engine by
engine (the normalised value compared, its detail shown), with the differences spelled out and what each makes not
like for like."""

from __future__ import annotations

from harness.engines.base import FAIRNESS_KEYS
from harness.report.markdown import table
from harness.results import RunData

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
    "cpus": "latency and its spread, capacity: whether the engine had cores to itself",
}
"""What a real difference in each fairness setting makes not like for like."""


def fairness_section(run: RunData) -> list[str]:
    """The Fairness section: a row per setting, a column per engine, then the differences in words."""
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
    lines += table(["setting"] + names, rows)
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

