"""The figures measured around each injected fault (pure: from the judged pairs and the records' visible times).

The faults themselves are injected by :class:`harness.run.faults.FaultInjector`, which leaves one record per
fault (when it was injected, when the engine or broker was back, errors); :func:`measured_faults` adds the
figures to each.

The figures per fault (:func:`fault_figures`):

- **results gap** (the observed downtime): last result record visible before the fault → first one visible after;
- **recovery**: from the fault until the first window (ending after the fault) whose median result latency is back
  within :data:`RECOVERY_TOLERANCE` of the baseline, the median of the per-window medians of the measured windows
  that ended and were answered before the fault (all earlier windows if none was measured yet) — measured to
  that window's end + its median latency, i.e. when its results were typically visible;
- **peak latency**: the largest result latency of a pair whose window ends in the fault's span (which starts one
  window before the fault: the window in progress when it struck is often the slowest);
- **missing, wrong, duplicated pairs and duplicate records** among windows ending in
  ``[fault − window size, recovery end + window size]`` (to the end of the run if latency never recovered).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

RECOVERY_TOLERANCE = 0.10
"""Latency counts as recovered when a window's median is at most this fraction above the pre-fault median."""


@dataclass(frozen=True)
class FaultFigures:
    """What one fault cost, from the judged pairs (ms; epoch ms for ``*_at_ms`` and the span)."""

    results_gap_ms: int | None
    """Last result record visible before the fault → first visible after (None: no result on one side)."""
    recovery_ms: int | None
    """Fault → results of the first window back within tolerance were visible (None: never recovered)."""
    baseline_latency_ms: float | None
    """Median of the per-window median result latencies of windows ending before the fault."""
    peak_latency_ms: float | None
    span_from_ms: int
    span_to_ms: int
    """Windows ending in [span_from_ms, span_to_ms] are the fault's: they give the counts below."""
    missing: int
    wrong: int
    duplicated_pairs: int
    duplicate_records: int
    late_allowed: int = 0
    """Late (event, window) memberships in the span the engine was allowed to leave out: deliberately late
    events and on-time ones that arrived late (:mod:`harness.analysis.arrival`), e.g. a backlog flushed after a broker
    restart. With tumbling windows, events."""
    late_dropped: int = 0
    """Of those, the ones the engine did leave out (its answers' shortfall against every event)."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def results_gap_ms(visible: np.ndarray, fault_ms: int) -> int | None:
    """Last visible time before ``fault_ms`` → first at or after it; None when one side has no result."""
    visible = np.asarray(visible, dtype=np.int64)
    before, after = visible[visible < fault_ms], visible[visible >= fault_ms]
    if not len(before) or not len(after):
        return None
    return int(after.min() - before.max())


def window_latency(pairs: pd.DataFrame) -> pd.Series:
    """Median result latency per window (indexed by window_end, ascending) over pairs with a latency."""
    timed = pairs[pairs["result_latency_ms"].notna()]
    return timed.groupby("window_end")["result_latency_ms"].median().sort_index()


def recovery(pairs: pd.DataFrame, fault_ms: int, *, tolerance: float = RECOVERY_TOLERANCE,
             baseline_from_ms: int | None = None) -> tuple[float | None, int | None]:
    """(pre-fault median latency, recovery time in ms or None): see the module docstring. The baseline is taken
    over windows ending in [``baseline_from_ms``, fault) — the measured period, so start-up latencies do not
    inflate it — or over every window ending before the fault when none ends in that stretch; in both cases
    only windows typically answered (end + median latency) before the fault. No such window: no baseline, and
    no recovery time."""
    medians = window_latency(pairs)
    # answered before the fault: a window that ended before it but was answered after is part of the disruption
    before = medians[(medians.index < fault_ms) & (medians.index + medians < fault_ms)]
    if baseline_from_ms is not None and (before.index >= baseline_from_ms).any():
        before = before[before.index >= baseline_from_ms]
    if not len(before):
        return None, None
    baseline = float(before.median())
    after = medians[medians.index >= fault_ms]
    back = after[after <= baseline * (1 + tolerance)]
    if not len(back):
        return baseline, None
    window_end = int(back.index[0])
    return baseline, int(window_end + back.iloc[0] - fault_ms)


def fault_figures(pairs: pd.DataFrame, visible: np.ndarray, fault_ms: int, *, window_size_ms: int,
                  tolerance: float = RECOVERY_TOLERANCE, baseline_from_ms: int | None = None) -> FaultFigures:
    """The figures of a fault injected at ``fault_ms`` from the judged ``pairs`` (harness.analysis.judge.PAIR_COLUMNS)
    and the visible times of every result record (``visible``, epoch ms); ``baseline_from_ms`` (the warm-up's
    end) as in :func:`recovery`."""
    baseline, recovery_ms = recovery(pairs, fault_ms, tolerance=tolerance, baseline_from_ms=baseline_from_ms)
    last_end = int(pairs["window_end"].max()) if len(pairs) else fault_ms
    span_from = fault_ms - window_size_ms
    span_to = fault_ms + recovery_ms + window_size_ms if recovery_ms is not None else last_end
    span = pairs[(pairs["window_end"] >= span_from) & (pairs["window_end"] <= span_to)]
    peak = span["result_latency_ms"].max()  # the window in progress at the fault is often the slowest
    duplicated = span["final_records"] > 1
    late_allowed, late_dropped = late_memberships(span)
    return FaultFigures(
        results_gap_ms=results_gap_ms(visible, fault_ms),
        recovery_ms=recovery_ms,
        baseline_latency_ms=baseline,
        peak_latency_ms=None if pd.isna(peak) else float(peak),
        span_from_ms=int(span_from),
        span_to_ms=int(span_to),
        missing=int((span["status"] == "missing").sum()),
        wrong=int((span["status"] == "wrong").sum()),
        duplicated_pairs=int(duplicated.sum()),
        duplicate_records=int((span.loc[duplicated, "final_records"] - 1).sum()),
        late_allowed=late_allowed,
        late_dropped=late_dropped,
    )


def late_memberships(pairs: pd.DataFrame) -> tuple[int, int]:
    """(late (event, window) memberships the judged ``pairs`` allowed an engine to leave out, those it left
    out): ``count_max − count_min`` and ``count_max −`` the answer held within the allowed range."""
    if not {"count_min", "count_max", "got"} <= set(pairs.columns):
        return 0, 0
    rows = pairs[pairs["status"] != "extra"]
    low, high = rows["count_min"], rows["count_max"]
    counted = rows["got"].fillna(low).clip(low, high)
    return int((high - low).sum()), int((high - counted).sum())


def measured_faults(records: Sequence[dict[str, Any]], pairs: pd.DataFrame, visible: np.ndarray, *,
                    window_size_ms: int, baseline_from_ms: int | None = None) -> list[dict[str, Any]]:
    """Each injector record (:meth:`harness.run.faults.FaultInjector.records`) with its :func:`fault_figures`
    added (for faults that were injected)."""
    out = []
    for record in records:
        row = dict(record)
        if record.get("injected_at_ms") is not None:
            row.update(fault_figures(pairs, visible, int(record["injected_at_ms"]), window_size_ms=window_size_ms,
                                     baseline_from_ms=baseline_from_ms).to_json())
        out.append(row)
    return out


__all__ = ["FaultFigures", "RECOVERY_TOLERANCE", "fault_figures", "late_memberships", "measured_faults", "recovery",
           "results_gap_ms", "window_latency"]
