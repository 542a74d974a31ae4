"""The per-second series of one repetition (``series.csv``), and the engine's processed rate.

Seconds count from the load's start (second 0 = the first second of load), on the wall clock.

The engine's processed rate is one quantity for every engine: **input rows consumed per second of wall time**,
from the cumulative input-row samples the engine reports (``metrics()["input_rows"]``: Spark's numInputRows
summed over its micro-batches, stamped at each batch's end; Flink's source numRecordsIn counter; the
calibration engine's own count). The cumulative count is interpolated linearly between samples and held flat
after the last one (an engine that reports no progress is taken as making none); the rate over a span is the
slope of a least-squares line through it, second by second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

SERIES_COLUMNS = (
    "second",
    "target_rate",
    "achieved_rate",
    "results_per_s",
    "processed_rate_output",
    "processed_rate_engine",
    "input_lag",
    "latency_p50_ms",
    "latency_p99_ms",
)
"""series.csv columns; rates in events/s, lag in records, latency in ms."""


class InputRows:
    """The engine's cumulative input rows over wall time (epoch ms), from its ``input_rows`` samples."""

    def __init__(self, samples: Sequence[Mapping[str, float]]) -> None:
        frame = pd.DataFrame(list(samples), columns=["t_ms", "rows"]).dropna()
        frame = frame.sort_values("t_ms", kind="stable")
        self.t_ms = frame["t_ms"].to_numpy(dtype=np.float64)
        # cumulative counters never go down; a restarted job's counter would: keep the running maximum
        self.rows = np.maximum.accumulate(frame["rows"].to_numpy(dtype=np.float64)) if len(frame) else np.zeros(0)

    def __bool__(self) -> bool:
        return self.t_ms.size >= 2

    def at(self, t_ms: np.ndarray | float) -> np.ndarray:
        """Rows consumed by ``t_ms`` (NaN before the first sample)."""
        return np.interp(np.asarray(t_ms, dtype=np.float64), self.t_ms, self.rows, left=np.nan, right=self.rows[-1])

    def rate(self, from_ms: float, until_ms: float) -> float | None:
        """Rows/s over ``[from_ms, until_ms]``: the least-squares slope of the cumulative count sampled every
        second (a fit over the whole span, so one micro-batch more or less at either end barely moves it); None
        when the samples do not reach back to ``from_ms`` or the span is under 2 s."""
        t = np.arange(from_ms, until_ms + 1, 1000.0)
        rows = self.at(t)
        if t.size < 3 or not np.isfinite(rows[0]):
            return None
        return float(np.polyfit((t - t[0]) / 1000.0, rows, 1)[0])


def per_second_series(
    load_start_ms: int,
    records: pd.DataFrame,
    pairs: pd.DataFrame,
    *,
    measured: np.ndarray,
    per_event: int,
    generator_seconds: pd.DataFrame | None = None,
    input_rows: InputRows | None = None,
    min_seconds: int = 0,
) -> pd.DataFrame:
    """The per-second series (:data:`SERIES_COLUMNS`).

    ``records`` are the judge's ordered records (with ``visible_ms``), ``pairs`` its pair frame, ``measured``
    the mask of measured pairs; ``generator_seconds`` has columns ``second, target, achieved``.

    * ``results_per_s`` — result records that became visible in that second.
    * ``processed_rate_output`` — how far the output advanced: the increase of each pair's count (its first
      record counts in full) summed over records visible in that second, / windows per event.
    * ``processed_rate_engine`` — input rows the engine consumed in that second (:class:`InputRows`).
    * ``input_lag`` — records sent by the end of that second − rows the engine had consumed by then.
    * ``latency_p50_ms``, ``latency_p99_ms`` — result latency of the measured exact pairs whose final answer
      became visible in that second (exact percentiles: a second holds few pairs).
    """
    output = _output_progress(load_start_ms, records, per_event)
    latency = _latency_by_second(load_start_ms, pairs, measured)
    last = [min_seconds - 1, *(int(part.max()) for part in (output.index, latency.index) if len(part))]
    if generator_seconds is not None and len(generator_seconds):
        last.append(int(generator_seconds["second"].max()))
    seconds = pd.RangeIndex(0, max(last) + 1, name="second")
    out = pd.DataFrame(index=seconds)
    gen = generator_seconds.set_index("second") if generator_seconds is not None and len(generator_seconds) else None
    out["target_rate"] = gen["target"].reindex(seconds) if gen is not None else np.nan
    out["achieved_rate"] = gen["achieved"].reindex(seconds) if gen is not None else np.nan
    output = output[output.index >= 0]
    out["results_per_s"] = output["results_per_s"].reindex(seconds).fillna(0).astype(np.int64)
    out["processed_rate_output"] = output["processed_rate_output"].reindex(seconds).fillna(0.0)
    out["processed_rate_engine"] = np.nan
    out["input_lag"] = np.nan
    if input_rows:
        edges = load_start_ms + 1000.0 * np.arange(len(seconds) + 1)
        consumed = input_rows.at(edges)
        out["processed_rate_engine"] = np.diff(consumed)
        if gen is not None:
            sent = out["achieved_rate"].fillna(0).cumsum().to_numpy()
            out["input_lag"] = sent - consumed[1:]
    for column in ("latency_p50_ms", "latency_p99_ms"):
        out[column] = latency[column].reindex(seconds) if column in latency else np.nan
    return out.reset_index()[list(SERIES_COLUMNS)]


def _output_progress(load_start_ms: int, records: pd.DataFrame, per_event: int) -> pd.DataFrame:
    second = np.floor_divide(records["visible_ms"].to_numpy(dtype=np.int64) - load_start_ms, 1000)
    increments = records.groupby(["window_start", "user"], sort=False)["count"].diff()
    frame = pd.DataFrame({"second": second, "inc": increments.fillna(records["count"]).to_numpy()})
    by_second = frame.groupby("second").agg(results_per_s=("inc", "size"), inc=("inc", "sum"))
    by_second["processed_rate_output"] = by_second.pop("inc") / per_event
    return by_second


def _latency_by_second(load_start_ms: int, pairs: pd.DataFrame, measured: np.ndarray) -> pd.DataFrame:
    timed = pairs.loc[measured & pairs["result_latency_ms"].notna().to_numpy()]
    second = np.floor_divide(timed["visible_ms"].to_numpy(dtype=np.int64) - load_start_ms, 1000)
    lat = pd.DataFrame({"second": second, "lat": timed["result_latency_ms"].to_numpy()})
    stats = lat.groupby("second")["lat"].quantile([0.5, 0.99]).unstack()
    if len(stats.columns) == 2:
        stats.columns = ["latency_p50_ms", "latency_p99_ms"]
    return stats


def mean_over(series: pd.Series, mask: np.ndarray) -> float | None:
    """Mean of the finite values of ``series`` where ``mask``; None when there is none."""
    values = series.to_numpy(dtype=np.float64)[np.asarray(mask, dtype=bool)]
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None
