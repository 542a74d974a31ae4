"""One HdrHistogram toolkit: negatives and overflow apart, one spelling of percentile keys, bulk recording equal
to one-by-one recording."""

from __future__ import annotations

import numpy as np

from harness import histograms


def test_negative_latencies_are_counted_apart_never_clamped() -> None:
    result = histograms.record(np.array([-5.0, -1.0, 0.0, 10.0, 20.0, np.nan]))
    assert (result.negative, result.overflow, result.histogram.get_total_count()) == (2, 0, 3)
    p = histograms.percentiles(result.histogram)
    assert p["p50"] == 10 and p["max"] == 20


def test_percentile_keys_and_values() -> None:
    p = histograms.percentiles(histograms.record(np.arange(1, 1001, dtype=float)).histogram)
    assert (p["p50"], p["p90"], p["p99"], p["p99_9"], p["max"]) == (500, 900, 990, 999, 1000)
    assert set(p) == {"p50", "p90", "p99", "p99_9", "max", "mean"}


def test_bulk_recording_equals_one_by_one() -> None:
    values = np.random.default_rng(0).integers(1, 10**8, 5_000)
    bulk = histograms.new_histogram(histograms.DELAY_HIGHEST_US)
    histograms.record_into(bulk, values)
    single = histograms.new_histogram(histograms.DELAY_HIGHEST_US)
    for v in values.tolist():
        single.record_value(v)
    for q in (50, 90, 99, 99.9, 100):
        assert bulk.get_value_at_percentile(q) == single.get_value_at_percentile(q)


def test_encode_decode_round_trip_and_scale() -> None:
    h = histograms.record(np.array([1_000.0, 2_000.0]), highest=histograms.DELAY_HIGHEST_US).histogram
    back = histograms.decode(histograms.encode(h))
    assert histograms.percentiles(back, scale=1000.0)["max"] == 2.0
    assert histograms.percentiles(histograms.new_histogram(10))["p50"] is None
