"""The resource figures of a repetition from the sampler's frame (:class:`harness.run.resources.ResourceSampler`):
per component, mean and max CPU and max RSS over the measured period. Pure."""

from __future__ import annotations

import pandas as pd

from harness.results import ResourceStats

OTHERS = "other processes"
"""The sampler's component for what processes outside the run took from the cores (machine busy − the run)."""


def core_us_per_event(stats: ResourceStats | None, processed_rate: float | None) -> float | None:
    """What an event cost the engine: its mean CPU over the measured period (cores) per event it processed per
    second, in core-microseconds (``1e6 / events per core-second``); None without both figures."""
    if stats is None or stats.cpu_mean_percent is None or not processed_rate:
        return None
    return stats.cpu_mean_percent / 100.0 / processed_rate * 1e6


def summarize(frame: pd.DataFrame, start_ms: int | None = None, end_ms: int | None = None) -> dict[str, ResourceStats]:
    """Per component: mean and max CPU and max RSS over samples with ``start_ms <= t_ms <= end_ms`` (all samples
    of a component when none falls in that period)."""
    out: dict[str, ResourceStats] = {}
    if frame is None or frame.empty:
        return out
    for component, rows in frame.groupby("component", sort=False):
        window = rows
        if start_ms is not None and end_ms is not None:
            inside = rows[(rows["t_ms"] >= start_ms) & (rows["t_ms"] <= end_ms)]
            if len(inside):
                window = inside
        cpu = window["cpu_percent"].dropna()
        rss = window["rss_bytes"][window["processes"] > 0]
        out[str(component)] = ResourceStats(
            cpu_mean_percent=float(cpu.mean()) if len(cpu) else None,
            cpu_max_percent=float(cpu.max()) if len(cpu) else None,
            rss_max_bytes=int(rss.max()) if len(rss) else None,
            samples=int(len(window)),
            rss_p99_bytes=int(rss.quantile(0.99, interpolation="lower")) if len(rss) else None,
        )
    return out
