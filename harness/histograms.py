"""HdrHistograms, one toolkit for the whole harness: the generator's publish delay (µs) and the latencies (ms).

Percentile keys are spelled one way everywhere: ``p50, p90, p99, p99_9, max`` (and ``mean``). Values that do
not fit (negative, above the range) are counted apart, never clamped. Histograms are stored in HdrHistogram's
standard compressed base64 form (:func:`encode` / :func:`decode`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hdrh.histogram import HdrHistogram

DIGITS = 3
"""Significant digits of every histogram."""
LATENCY_HIGHEST_MS = 7 * 24 * 3_600_000
"""Latency histograms: 1 ms .. 7 days."""
DELAY_HIGHEST_US = 3_600_000_000
"""Publish-delay histograms: 1 µs .. 1 h."""

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99_9": 99.9}
"""Reported percentiles, by key."""


def new_histogram(highest: int) -> HdrHistogram:
    return HdrHistogram(1, highest, DIGITS)


@dataclass(frozen=True)
class Recorded:
    histogram: HdrHistogram
    """The values in [0, highest]."""
    negative: int
    """Values below 0 (not recorded: for latencies they mean the clocks disagree)."""
    overflow: int
    """Values above the highest trackable value (not recorded)."""


def record(values: np.ndarray, highest: int = LATENCY_HIGHEST_MS) -> Recorded:
    """Record many values at once (NaN skipped, rounded to integers), one ``record_value(v, count)`` per distinct
    value; negatives and overflow are counted apart."""
    arr = np.asarray(values, dtype=np.float64)
    ints = np.rint(arr[np.isfinite(arr)]).astype(np.int64)
    negative = int((ints < 0).sum())
    overflow = int((ints > highest).sum())
    histogram = new_histogram(highest)
    record_into(histogram, ints[(ints >= 0) & (ints <= highest)])
    return Recorded(histogram, negative, overflow)


def record_into(histogram: HdrHistogram, values: np.ndarray) -> None:
    """Add integer values within the histogram's range. Values are first truncated to the histogram's own bucket
    (at 3 significant digits HdrHistogram keeps 2048 sub-buckets: exact below 2048, then steps of
    2^(⌊log2 v⌋−10)), so the result is identical to recording one by one, with one call per distinct bucket."""
    ints = np.maximum(np.asarray(values, dtype=np.int64), 1)
    shift = np.maximum(np.floor(np.log2(ints)).astype(np.int64) - 10, 0)
    uniques, counts = np.unique((ints >> shift) << shift, return_counts=True)
    for value, count in zip(uniques.tolist(), counts.tolist()):
        histogram.record_value(value, count)


def percentiles(histogram: HdrHistogram, scale: float = 1.0) -> dict[str, float | None]:
    """``p50, p90, p99, p99_9, max, mean`` divided by ``scale`` (1000 turns µs into ms); None when empty."""
    if histogram.get_total_count() == 0:
        return {key: None for key in (*PERCENTILES, "max", "mean")}
    out: dict[str, float | None] = {
        key: histogram.get_value_at_percentile(p) / scale for key, p in PERCENTILES.items()
    }
    out["max"] = histogram.get_max_value() / scale
    out["mean"] = histogram.get_mean_value() / scale
    return out


def encode(histogram: HdrHistogram) -> str:
    encoded = histogram.encode()
    return encoded.decode() if isinstance(encoded, bytes) else str(encoded)


def decode(text: str) -> HdrHistogram:
    return HdrHistogram.decode(text.strip().encode())
