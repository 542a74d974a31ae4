"""The keep-up verdict: did the engine sustain the offered rate over the measured period?

Three criteria, each judged directly (Karimov et al.: sustainable means no continuously growing latency, i.e.
no prolonged backpressure; Theodolite: a fitted trend of the consumer lag under a threshold):

* **processed** — input rows the engine consumed per second over the measured period (:mod:`harness.analysis.series`)
  ≥ :data:`MIN_PROCESSED_RATIO` × the rate the generator achieved. An engine that reports no input-row counts is
  judged by its output instead: the rate at which it completed measured windows, the slope of the events its
  windows hold (cumulative) against the time each window's last answer became visible
  (:func:`output_processed_rate`), ≥ :data:`MIN_OUTPUT_PROCESSED_RATIO` × the achieved rate (an engine 10 %
  slower than its input completes a 5 s window every 5.5 s: 0.91).
* **input lag** — records sent − rows consumed, sampled every second of the measured period; the slope of its
  least-squares line ≤ :data:`MAX_LAG_SLOPE_SHARE` × the achieved rate (records/s). An engine that keeps up has a
  flat lag whatever its level (a micro-batch engine's lag saws up and down around a level). Needs the engine's
  input-row counts.
* **latency** — the median result latency of each measured window, fitted against window end: not sustained when
  the slope is above :data:`MAX_LATENCY_SLOPE` (ms of latency per s of run: an engine that processes 10 % slower
  than the input falls behind by 100 ms every second) with 95 % confidence (the lower end of the slope's
  confidence interval is above it: a noisy fit cannot fail it, a clean rise of a few seconds does).

A criterion that cannot be evaluated (no engine input-row samples, fewer than 3 measured windows or seconds) is
skipped and named; the verdict is None when none can be evaluated, and says how many were judged otherwise. The
report says which criterion failed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.analysis.stats import Trend, trend
from harness.results import KeepUp

MIN_PROCESSED_RATIO = 0.99
MIN_OUTPUT_PROCESSED_RATIO = 0.95
"""The processed criterion from output: coarser than from input rows (a window's answers become visible in one
burst, so the fit rests on one point per window), but a 10 % shortfall is still well below it."""
MAX_LAG_SLOPE_SHARE = 0.01
MAX_LATENCY_SLOPE = 50.0
"""ms per s."""
CRITERIA = 3


def output_processed_rate(window_end: np.ndarray, visible_ms: np.ndarray, count: np.ndarray,
                          per_event: int) -> Trend | None:
    """Events per second of wall time the engine's output covered: per measured window, its events (answers'
    counts summed, / windows per event) and the time its last answer became visible; the slope of the cumulative
    events against those times. None with fewer than 3 windows."""
    frame = pd.DataFrame({"end": np.asarray(window_end, np.int64), "visible": np.asarray(visible_ms, float),
                          "count": np.asarray(count, float)})
    frame = frame[np.isfinite(frame["visible"]) & np.isfinite(frame["count"])]
    per_window = frame.groupby("end").agg(done=("visible", "max"), events=("count", "sum")).sort_index()
    return trend(per_window["done"].to_numpy() / 1000.0, per_window["events"].cumsum().to_numpy() / per_event)


def judge_keep_up(
    *,
    processed_rate: float | None,
    achieved_rate: float | None,
    lag: np.ndarray,
    window_end: np.ndarray,
    latency_ms: np.ndarray,
    output_rate: Trend | None = None,
) -> KeepUp:
    """Apply the three criteria; ``lag`` is the per-second input lag over the measured seconds (NaN where
    unknown), ``window_end``/``latency_ms`` the measured exact pairs, ``output_rate`` the
    :func:`output_processed_rate` of those pairs (used when ``processed_rate``, from input rows, is None)."""
    failed: list[str] = []
    skipped: list[str] = []
    ratio, source = _processed(processed_rate, achieved_rate, output_rate, failed, skipped)
    lag_fit = trend(np.arange(lag.size, dtype=float), lag)
    lag_limit = MAX_LAG_SLOPE_SHARE * achieved_rate if achieved_rate else None
    if processed_rate is None:
        skipped.append("input lag: the engine reported no input-row counts")
        lag_fit = None
    elif lag_fit is None or lag_limit is None:
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
    elif lat_fit.slope_low > MAX_LATENCY_SLOPE:
        failed.append(
            f"latency: grows by {lat_fit.slope:,.0f} ms per s (at least {lat_fit.slope_low:,.0f} with 95 % "
            f"confidence; {lat_fit.growth / 1000:,.1f} s over the measured windows; limit {MAX_LATENCY_SLOPE:g} ms "
            "per s)"
        )
    judged = CRITERIA - len(skipped)
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
        judged=judged,
        processed_source=source,
    )


def _processed(processed_rate: float | None, achieved_rate: float | None, output_rate: Trend | None,
               failed: list[str], skipped: list[str]) -> tuple[float | None, str | None]:
    """The processed criterion (appending to ``failed``/``skipped``); the ratio and what it was taken from."""
    if not achieved_rate:
        skipped.append("processed: no achieved rate")
        return None, None
    if processed_rate is not None:
        ratio = processed_rate / achieved_rate
        if ratio < MIN_PROCESSED_RATIO:
            failed.append(
                f"processed: {processed_rate:,.0f}/s is {ratio:.1%} of the achieved {achieved_rate:,.0f}/s "
                f"(needs ≥ {MIN_PROCESSED_RATIO:.0%})"
            )
        return ratio, "engine input rows"
    if output_rate is None:
        skipped.append("processed: the engine reported no input-row counts and fewer than 3 windows were answered")
        return None, None
    ratio = output_rate.slope / achieved_rate
    if ratio < MIN_OUTPUT_PROCESSED_RATIO:
        failed.append(
            f"processed (from output: no input-row counts): windows completed at {output_rate.slope:,.0f} "
            f"events/s, {ratio:.1%} of the achieved {achieved_rate:,.0f}/s (needs ≥ {MIN_OUTPUT_PROCESSED_RATIO:.0%})"
        )
    return ratio, "output windows"
