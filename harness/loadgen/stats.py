"""The generator's self-check: achieved send rate per second and publish delay, and whether the run is valid.

Publish delay = actual send time − intended send time, where "sent" is the moment the record is handed to the
Kafka client (as in OpenMessaging Benchmark; the client's own batching and the broker are the system's part).
It is recorded in **microseconds** in an HdrHistogram (1 µs .. 1 h, 3 significant digits) and reported in
milliseconds. Only events intended in the measured period (after the warm-up) enter the histogram and the
checks; the per-second series covers the whole load.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hdrh.histogram import HdrHistogram

from harness import histograms

HIST_MAX_US = histograms.DELAY_HIGHEST_US


def new_histogram() -> HdrHistogram:
    return histograms.new_histogram(HIST_MAX_US)


@dataclass
class WorkerStats:
    """What one worker measured; filled by its send loop (:meth:`record` per batch), sent to the parent once at
    the end and merged there (:meth:`merge`)."""

    start_epoch_ms: int
    measured_from_ms: int
    """Epoch ms from which events count as measured (start + warm-up)."""
    measured_until_ms: int
    """Epoch ms at which the load ends (start + duration)."""
    sent: int = 0
    sent_measured: int = 0
    """Records whose actual send time fell within the measured period."""
    late: int = 0
    """Deliberately late events sent."""
    max_ts: int | None = None
    sent_per_second: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Records sent in each second of *actual* send time since the start."""
    delay_max_per_second: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    """Largest publish delay (ms) of the events *intended* in each second."""
    slow_per_second: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Events *intended* in each second whose publish delay exceeded :data:`SLOW_SEND_MS`: the p99 check of a
    part of the load (a step of a stepped capacity run, :func:`assess_span`) without a histogram per second."""
    histogram: HdrHistogram = field(default_factory=new_histogram)

    def record(self, intended_ms: np.ndarray, sent_ms: np.ndarray, ts: np.ndarray) -> None:
        """Account one batch of events just handed to the client (called from the send loop)."""
        if intended_ms.size == 0:
            return
        self.sent += int(intended_ms.size)
        self.sent_measured += int(
            np.count_nonzero((sent_ms >= self.measured_from_ms) & (sent_ms < self.measured_until_ms))
        )
        top = int(ts.max())
        self.max_ts = top if self.max_ts is None else max(self.max_ts, top)
        delay_ms = sent_ms - intended_ms
        sent_sec = np.floor((sent_ms - self.start_epoch_ms) / 1000.0).astype(np.int64)
        intended_sec = np.floor((intended_ms - self.start_epoch_ms) / 1000.0).astype(np.int64)
        self.sent_per_second = _add_bins(self.sent_per_second, sent_sec, None)
        self.delay_max_per_second = _max_bins(self.delay_max_per_second, intended_sec, delay_ms)
        slow = delay_ms > SLOW_SEND_MS
        if slow.any():
            self.slow_per_second = _add_bins(self.slow_per_second, intended_sec[slow], None)
        measured = intended_ms >= self.measured_from_ms
        if measured.any():
            _record_all(self.histogram, delay_ms[measured])

    def merge(self, other: WorkerStats) -> None:
        self.sent += other.sent
        self.sent_measured += other.sent_measured
        self.late += other.late
        if other.max_ts is not None:
            self.max_ts = other.max_ts if self.max_ts is None else max(self.max_ts, other.max_ts)
        size = max(self.sent_per_second.size, other.sent_per_second.size)
        self.sent_per_second = _pad(self.sent_per_second, size) + _pad(other.sent_per_second, size)
        size = max(self.delay_max_per_second.size, other.delay_max_per_second.size)
        self.delay_max_per_second = np.maximum(
            _pad(self.delay_max_per_second, size), _pad(other.delay_max_per_second, size)
        )
        size = max(self.slow_per_second.size, other.slow_per_second.size)
        self.slow_per_second = _pad(self.slow_per_second, size) + _pad(other.slow_per_second, size)
        self.histogram.add(other.histogram)

    # HdrHistogram objects do not pickle; workers ship the standard compressed encoding instead.
    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["histogram"] = self.histogram.encode()
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        encoded = state.pop("histogram")
        self.__dict__.update(state)
        self.histogram = HdrHistogram.decode(encoded)  # type: ignore[arg-type]


def delay_percentiles_ms(histogram: HdrHistogram) -> dict[str, float]:
    """``p50, p90, p99, p99_9, max`` (the keys of :mod:`harness.histograms`) in milliseconds; 0 when empty."""
    values = histograms.percentiles(histogram, scale=1000.0)
    return {key: float(values[key] or 0.0) for key in (*histograms.PERCENTILES, "max")}


def encode_histogram(histogram: HdrHistogram) -> str:
    """The histogram in HdrHistogram's standard base64 form (for the result file)."""
    return histograms.encode(histogram)


SLOW_SEND_MS = 100.0
"""Publish delay above which a send counts as slow (:attr:`WorkerStats.slow_per_second`); equal to
:attr:`SelfCheckLimits.max_p99_delay_ms`'s default, so a part of the load fails the p99 check exactly when more
than 1 % of its events were slow."""


@dataclass(frozen=True)
class SelfCheckLimits:
    """When the generator's own numbers make a run invalid."""

    min_rate_ratio: float = 0.99
    """Achieved / target events in the measured period must reach this."""
    max_p99_delay_ms: float = SLOW_SEND_MS
    """p99 publish delay in the measured period must stay below this (5 % of the default watermark delay):
    beyond it, latencies carry a visible share of generator delay."""
    max_delay_growth_ms: float = 100.0
    """Mean per-second max delay of the last third of the measured period minus that of the first third."""
    max_any_delay_ms: float | None = None
    """No event anywhere in the load (warm-up included) may be sent later than this after its intended time:
    ``D − disorder.max_delay`` (set by the generator from the scenario). Beyond it an on-time event can arrive
    after its window closed, be dropped as late, and the engine be blamed for the load path's delay."""


def assess(
    target_measured: int,
    achieved_measured: int,
    measured_ms: int,
    percentiles: dict[str, float],
    delay_max_per_second: np.ndarray,
    warmup_s: int,
    limits: SelfCheckLimits,
) -> tuple[bool, str | None]:
    """``(valid, reason)`` from the measured period (and the whole load for ``max_any_delay_ms``); called once
    after the load."""
    reason = (_any_delay(delay_max_per_second, 0, limits)
              or _rate(target_measured, achieved_measured, measured_ms, limits)
              or _delay_growth(delay_max_per_second[warmup_s:], limits))
    if reason is None and percentiles["p99"] > limits.max_p99_delay_ms:
        reason = (
            f"generator could not drive the load: p99 publish delay {percentiles['p99']:,.1f} ms > "
            f"{limits.max_p99_delay_ms:g} ms in steady state (hint: more producer.workers, or fewer CPUs for "
            "the engines)"
        )
    return reason is None, reason


def assess_span(
    target: np.ndarray,
    achieved: np.ndarray,
    delay_max: np.ndarray,
    slow: np.ndarray,
    settle_s: int,
    limits: SelfCheckLimits,
    first_second: int = 0,
) -> tuple[bool, str | None]:
    """The self-check of :func:`assess` over one part of the load (a step of a stepped capacity run), from the
    per-second series of its seconds (``target``, ``achieved``, ``delay_max``, ``slow``: events slower than
    :data:`SLOW_SEND_MS`), the first ``settle_s`` of them its warm-up. The p99 criterion holds when at most 1 %
    of the measured seconds' events were slower than :data:`SLOW_SEND_MS` (= ``max_p99_delay_ms`` by default),
    which is "p99 ≤ the limit" without a histogram per second. ``first_second`` (the part's first second of the
    load) only names seconds in the reason. Called after the load, once per part."""
    measured = slice(settle_s, None)
    intended = int(np.sum(target[measured]))
    reason = (_any_delay(delay_max, first_second, limits)
              or _rate(intended, int(np.sum(achieved[measured])), 1000 * (target.size - settle_s), limits)
              or _delay_growth(delay_max[measured], limits))
    slow_n = int(np.sum(slow[measured]))
    if reason is None and intended and slow_n > (1.0 - 0.99) * intended:
        reason = (
            f"generator could not drive the load: {slow_n / intended:.1%} of the events were sent more than "
            f"{SLOW_SEND_MS:g} ms late (p99 publish delay > {SLOW_SEND_MS:g} ms) in steady state"
        )
    return reason is None, reason


def _any_delay(delay_max_per_second: np.ndarray, first_second: int, limits: SelfCheckLimits) -> str | None:
    if limits.max_any_delay_ms is None or not delay_max_per_second.size:
        return None
    worst = float(delay_max_per_second.max())
    if worst <= limits.max_any_delay_ms:
        return None
    second = first_second + int(delay_max_per_second.argmax())
    return (
        f"generator could not drive the load: an event was sent {worst:,.0f} ms after its intended time "
        f"(second {second} of the load), more than watermark delay − max disorder = "
        f"{limits.max_any_delay_ms:,.0f} ms: on-time events may have turned late"
    )


def _rate(target: int, achieved: int, measured_ms: int, limits: SelfCheckLimits) -> str | None:
    seconds = measured_ms / 1000.0
    if target > 0 and achieved < limits.min_rate_ratio * target:
        return (
            f"generator could not drive the load: achieved {achieved / seconds:,.0f}/s < "
            f"{limits.min_rate_ratio:.0%} of target {target / seconds:,.0f}/s in steady state"
        )
    return None


def _delay_growth(series: np.ndarray, limits: SelfCheckLimits) -> str | None:
    if series.size < 3:
        return None
    third = series.size // 3
    first, last = float(series[:third].mean()), float(series[-third:].mean())
    if last - first <= limits.max_delay_growth_ms:
        return None
    return (
        f"publish delay keeps growing: per-second max publish delay went from {first:,.1f} ms (first third "
        f"of the measured period) to {last:,.1f} ms (last third), more than "
        f"{limits.max_delay_growth_ms:g} ms: generator could not drive the load"
    )


# --------------------------------------------------------------------------------------------------- helpers
def _pad(values: np.ndarray, size: int) -> np.ndarray:
    if values.size >= size:
        return values
    return np.concatenate((values, np.zeros(size - values.size, dtype=values.dtype)))


def _add_bins(bins: np.ndarray, index: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    index = np.maximum(index, 0)
    counts = np.bincount(index, weights=weights).astype(bins.dtype)
    size = max(bins.size, counts.size)
    return _pad(bins, size) + _pad(counts, size)


def _max_bins(bins: np.ndarray, index: np.ndarray, values: np.ndarray) -> np.ndarray:
    index = np.maximum(index, 0)
    bins = _pad(bins, int(index.max()) + 1)
    np.maximum.at(bins, index, values)
    return bins


def _record_all(histogram: HdrHistogram, delay_ms: np.ndarray) -> None:
    """Record many delays at once (see :func:`harness.histograms.record_into`); delays below 1 µs are recorded as
    1 µs, above the range as its top."""
    histograms.record_into(histogram, np.clip(np.rint(delay_ms * 1000.0), 1, HIST_MAX_US).astype(np.int64))
