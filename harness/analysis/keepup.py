"""The keep-up verdict: did the engine sustain the offered rate over the measured period?

Three criteria, each judged directly (Karimov et al.: sustainable means no continuously growing latency, i.e.
no prolonged backpressure; Theodolite: a fitted trend of the consumer lag under a threshold):

* **processed** — input rows the engine consumed per second over the measured period (:mod:`harness.analysis.series`)
  ≥ :data:`MIN_PROCESSED_RATIO` × the rate the generator achieved.
* **input lag** — records sent − rows consumed, sampled every second of the measured period; the slope of its
  least-squares line ≤ :data:`MAX_LAG_SLOPE_SHARE` × the achieved rate (records/s). An engine that keeps up has a
  flat lag whatever its level (a micro-batch engine's lag saws up and down around a level).
* **latency** — the median result latency of each measured window, fitted against window end: slope ≤
  :data:`MAX_LATENCY_SLOPE` (ms of latency per s of run: an engine that processes 10 % slower than the input
  falls behind by 100 ms every second) and growth over the span > one slide (a smaller rise is noise).

A criterion that cannot be evaluated (no engine input-row samples, fewer than 3 measured windows or seconds) is
skipped and named; the verdict is None when none can be evaluated. The report says which criterion failed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.analysis.stats import trend
from harness.results import KeepUp

MIN_PROCESSED_RATIO = 0.99
MAX_LAG_SLOPE_SHARE = 0.01
MAX_LATENCY_SLOPE = 50.0
"""ms per s."""


def judge_keep_up(
    *,
    processed_rate: float | None,
    achieved_rate: float | None,
    lag: np.ndarray,
    window_end: np.ndarray,
    latency_ms: np.ndarray,
    slide_ms: int,
) -> KeepUp:
    """Apply the three criteria; ``lag`` is the per-second input lag over the measured seconds (NaN where
    unknown), ``window_end``/``latency_ms`` the measured exact pairs."""
    failed: list[str] = []
    skipped: list[str] = []
    ratio = None
    if processed_rate is None or not achieved_rate:
        skipped.append("processed: the engine reported no input-row counts")
    else:
        ratio = processed_rate / achieved_rate
        if ratio < MIN_PROCESSED_RATIO:
            failed.append(
                f"processed: {processed_rate:,.0f}/s is {ratio:.1%} of the achieved {achieved_rate:,.0f}/s "
                f"(needs ≥ {MIN_PROCESSED_RATIO:.0%})"
            )
    lag_fit = trend(np.arange(lag.size, dtype=float), lag)
    lag_limit = MAX_LAG_SLOPE_SHARE * achieved_rate if achieved_rate else None
    if lag_fit is None or lag_limit is None:
        skipped.append("input lag: fewer than 3 seconds with a known lag")
    elif lag_fit.slope > lag_limit:
        failed.append(
            f"input lag: grows by {lag_fit.slope:,.0f} records/s (limit {lag_limit:,.0f}/s = "
            f"{MAX_LAG_SLOPE_SHARE:.0%} of the achieved rate)"
        )
    frame = pd.DataFrame({"end": np.asarray(window_end, np.int64), "lat": np.asarray(latency_ms, float)})
    per_window = frame[np.isfinite(frame["lat"])].groupby("end")["lat"].median()
    lat_fit = trend(per_window.index.to_numpy() / 1000.0, per_window.to_numpy())
    if lat_fit is None:
        skipped.append("latency: fewer than 3 measured windows")
    elif lat_fit.slope > MAX_LATENCY_SLOPE and lat_fit.growth > slide_ms:
        failed.append(
            f"latency: grows by {lat_fit.slope:,.0f} ms per s ({lat_fit.growth / 1000:,.1f} s over the measured "
            f"windows; limit {MAX_LATENCY_SLOPE:g} ms per s)"
        )
    judged = 3 - len(skipped)
    return KeepUp(
        sustained=None if judged == 0 else not failed,
        failed=failed,
        skipped=skipped,
        processed_ratio=ratio,
        lag_slope_per_s=None if lag_fit is None else lag_fit.slope,
        lag_threshold_per_s=lag_limit,
        latency_slope_ms_per_s=None if lat_fit is None else lat_fit.slope,
        latency_growth_ms=None if lat_fit is None else lat_fit.growth,
        windows=int(per_window.size),
    )
