"""The open-loop schedule: when each event is *intended* to be sent, and a pacer that waits for that moment.

Every rate shape of the scenario (constant, steps, ramp, burst, sine) is turned into a piecewise-linear rate
``r(t)`` over ``[0, duration)`` (milliseconds from the start of the load). Its integral ``N(t)`` is the number of
events intended by time ``t``; event ``i`` (``seq = i``) is intended at ``t_i = sup{t : N(t) <= i}``, i.e. where
``N`` reaches ``i`` — so event 0 goes at ``t = 0``, as in OpenMessaging Benchmark's ``UniformRateLimiter``. The
events intended within ``[t0, t1)`` are exactly ``ceil(N(t0)) .. ceil(N(t1)) - 1``: a slice of the load can be
computed on its own, vectorised, by any worker, and all slices together give every event once.

Sine is the only curved shape; it is approximated by linear pieces of at most ``period / 256`` (error below
2e-5 of the amplitude), so one exact inversion (a quadratic per piece) serves every shape.

:class:`Pacer` is the rate limiter of the send loop: called before each batch, it waits (through an injectable
``clock``/``sleep``, so tests use a fake clock) until the next intended time is due and then hands out every
event that is due. It never waits for the system under test: a generator that falls behind sends the backlog at
once and its publish delay (actual − intended send time) shows it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.scenario import (
    BurstShape,
    ConstantShape,
    LoadConfig,
    RampShape,
    SineShape,
    StepsShape,
)

SINE_PIECES_PER_PERIOD = 256
"""Linear pieces per sine period (error ≤ (π/256)²/8 ≈ 1.9e-5 × amplitude)."""

MAX_PIECES = 2_000_000
"""Cap on linear pieces (a very short sine period over a long run gets coarser pieces, never unbounded memory)."""


@dataclass(frozen=True, eq=False)
class RateSchedule:
    """A piecewise-linear rate over ``[0, duration_ms)``; built once per run by :meth:`from_load`.

    Arrays, one entry per piece: ``starts`` (ms), ``rates`` (events/ms at the piece start), ``slopes``
    (events/ms²); ``cum`` has one more entry: events intended before each piece start, and in total.
    """

    duration_ms: int
    starts: np.ndarray
    rates: np.ndarray
    slopes: np.ndarray
    cum: np.ndarray

    # ------------------------------------------------------------------------------------------------ building
    @classmethod
    def from_load(cls, load: LoadConfig, duration_ms: int) -> RateSchedule:
        """The schedule of a scenario's ``load`` section over its whole ``duration`` (warm-up included)."""
        return cls.from_pieces(_pieces(load, duration_ms), duration_ms)

    @classmethod
    def constant(cls, rate_per_s: float, duration_ms: int) -> RateSchedule:
        return cls.from_pieces([(0.0, rate_per_s, rate_per_s)], duration_ms)

    @classmethod
    def from_pieces(cls, pieces: list[tuple[float, float, float]], duration_ms: int) -> RateSchedule:
        """Pieces ``(start_ms, rate_at_start, rate_at_end)`` in events/s, each ending where the next starts (the
        last at ``duration_ms``). Zero-length pieces are dropped."""
        if duration_ms <= 0:
            raise ValueError(f"duration must be > 0 ms (got {duration_ms})")
        starts = np.array([p[0] for p in pieces] + [float(duration_ms)], dtype=np.float64)
        if starts[0] != 0 or np.any(np.diff(starts) < 0):
            raise ValueError("pieces must start at 0 and be ordered")
        r0 = np.array([p[1] for p in pieces], dtype=np.float64) / 1000.0
        r1 = np.array([p[2] for p in pieces], dtype=np.float64) / 1000.0
        if np.any(r0 < 0) or np.any(r1 < 0):
            raise ValueError("rates must be >= 0")
        lengths = np.diff(starts)
        keep = lengths > 0
        starts, r0, r1, lengths = starts[:-1][keep], r0[keep], r1[keep], lengths[keep]
        slopes = (r1 - r0) / lengths
        areas = (r0 + r1) / 2.0 * lengths
        cum = np.concatenate(([0.0], np.cumsum(areas)))
        return cls(duration_ms, starts, r0, slopes, cum)

    # ------------------------------------------------------------------------------------------------- queries
    @property
    def total_events(self) -> int:
        """Events intended in ``[0, duration)``: ``ceil(N(duration))``."""
        return int(math.ceil(self.cum[-1] - 1e-9))

    @property
    def peak_rate(self) -> float:
        """Largest rate in events/s (piece ends included)."""
        ends = self.rates + self.slopes * np.diff(np.append(self.starts, self.duration_ms))
        return float(max(self.rates.max(), ends.max()) * 1000.0)

    def rate_at(self, t_ms: np.ndarray | float) -> np.ndarray:
        """Intended rate in events/s at offsets ``t_ms``."""
        t = np.asarray(t_ms, dtype=np.float64)
        piece = np.clip(np.searchsorted(self.starts, t, side="right") - 1, 0, self.starts.size - 1)
        return (self.rates[piece] + self.slopes[piece] * (t - self.starts[piece])) * 1000.0

    def cumulative(self, t_ms: np.ndarray | float) -> np.ndarray:
        """``N(t)``: events intended before offset ``t_ms`` (a real number; clipped to ``[0, duration]``)."""
        t = np.clip(np.asarray(t_ms, dtype=np.float64), 0.0, float(self.duration_ms))
        piece = np.clip(np.searchsorted(self.starts, t, side="right") - 1, 0, self.starts.size - 1)
        x = t - self.starts[piece]
        return self.cum[piece] + self.rates[piece] * x + 0.5 * self.slopes[piece] * x * x

    def index_range(self, t0_ms: float, t1_ms: float) -> tuple[int, int]:
        """Event indices ``[first, stop)`` intended within ``[t0_ms, t1_ms)``; called once per slice."""
        n0, n1 = self.cumulative(np.array([t0_ms, t1_ms]))
        # The 1e-9 guards against N(t) landing a hair above an integer through rounding, which would move
        # an event between neighbouring slices; both neighbours compute the same boundary, so it stays exact.
        return int(math.ceil(n0 - 1e-9)), min(int(math.ceil(n1 - 1e-9)), self.total_events)

    def intended_offsets(self, first: int, stop: int) -> np.ndarray:
        """Intended send times (ms from load start, float64) of events ``first .. stop-1``: ``N⁻¹(i)``."""
        return self.offsets_of(np.arange(first, stop, dtype=np.float64))

    def offsets_of(self, seq: np.ndarray) -> np.ndarray:
        """Intended send times (ms from load start, float64) of the events with these indices (``seq``), in any
        order: ``N⁻¹(i)``. Used for slices (:meth:`intended_offsets`) and for records read back from the input
        topic (:mod:`harness.analysis.input_delay`)."""
        k = np.asarray(seq, dtype=np.float64)
        piece = np.clip(np.searchsorted(self.cum, k, side="right") - 1, 0, self.starts.size - 1)
        d = k - self.cum[piece]
        b = self.rates[piece]
        # Solve a x² + b x − d = 0 with a = slope / 2; x = 2d / (b + sqrt(b² + 4ad)) is the numerically stable
        # root for rising, falling and flat pieces alike.
        root = np.sqrt(np.maximum(b * b + 2.0 * self.slopes[piece] * d, 0.0))
        denom = b + root
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(denom > 0, 2.0 * d / denom, 0.0)
        ends = np.append(self.starts[1:], float(self.duration_ms))
        return np.minimum(self.starts[piece] + np.maximum(x, 0.0), ends[piece])

    def per_second(self) -> np.ndarray:
        """Events intended in each whole second ``[s, s+1)`` of the load (the target series)."""
        edges = np.arange(0, self.duration_ms + 1000, 1000, dtype=np.float64)
        firsts = np.ceil(self.cumulative(np.minimum(edges, self.duration_ms)) - 1e-9)
        firsts = np.minimum(firsts, self.total_events)
        return np.diff(firsts).astype(np.int64)


def _pieces(load: LoadConfig, duration_ms: int) -> list[tuple[float, float, float]]:
    """Linear pieces ``(start_ms, rate_at_start, rate_at_end)`` in events/s for a scenario's shape."""
    base = load.rate
    shape = load.shape
    if isinstance(shape, ConstantShape):
        return [(0.0, base, base)]
    if isinstance(shape, StepsShape):
        pieces = [(0.0, base, base)]
        pieces += [(float(step.at), step.rate, step.rate) for step in shape.steps if step.at < duration_ms]
        return pieces
    if isinstance(shape, RampShape):
        over = shape.over if shape.over is not None else duration_ms
        if over >= duration_ms:
            return [(0.0, base, base + (shape.to - base) * duration_ms / over)]
        return [(0.0, base, shape.to), (float(over), shape.to, shape.to)]
    if isinstance(shape, BurstShape):
        pieces = [(0.0, base, base)]
        for start in range(shape.every, duration_ms, shape.every):
            pieces.append((float(start), shape.rate, shape.rate))
            if start + shape.length < duration_ms:
                pieces.append((float(start + shape.length), base, base))
        return pieces
    if isinstance(shape, SineShape):
        step = max(shape.period / SINE_PIECES_PER_PERIOD, duration_ms / MAX_PIECES, 1.0)
        knots = np.arange(0.0, duration_ms, step)
        ends = np.append(knots[1:], float(duration_ms))

        def rate(t: np.ndarray) -> np.ndarray:
            # amplitude <= rate is validated; the clip only absorbs rounding at the troughs
            return np.maximum(base + shape.amplitude * np.sin(2.0 * np.pi * t / shape.period), 0.0)

        return list(zip(knots.tolist(), rate(knots).tolist(), rate(ends).tolist()))
    raise TypeError(f"unknown load shape {type(shape).__name__}")


# ------------------------------------------------------------------------------------------------------ pacing
Clock = Callable[[], float]
"""Returns the current time in epoch milliseconds (float)."""

Sleep = Callable[[float], None]
"""Sleeps for the given number of seconds."""


class Pacer:
    """The send loop's rate limiter. Before each batch the loop calls :meth:`next_due`, which waits until the
    first pending event's intended time and returns how many events are due now (at least one).

    ``clock`` and ``sleep`` are injected: the real ones in the generator, a fake clock in tests (whose sleep
    advances the fake time), so pacing is tested without sleeping.
    """

    def __init__(self, clock: Clock, sleep: Sleep, *, max_batch: int = 512, min_interval_ms: float = 0.0) -> None:
        self.clock = clock
        self.sleep = sleep
        # At most one wake-up per ``min_interval_ms``: waking for every event (50 µs apart at 20k/s) spent most
        # of a core on the wake-ups and tiny batches, CPU the engines under test need on a small machine. The
        # cost is a publish delay of at most this interval, which is measured and reported like any other.
        self.min_interval_ms = min_interval_ms
        self._last_wake = float("-inf")
        # A bounded batch keeps the per-event send-time interpolation fine-grained and progress flowing,
        # even when the generator is far behind.
        self.max_batch = max_batch

    def next_due(self, intended_ms: np.ndarray, start: int) -> tuple[int, float]:
        """Block until ``intended_ms[start]`` (epoch ms) is due; return ``(stop, now)``: events
        ``start .. stop-1`` are due at ``now``. Never returns early and never skips an event."""
        now = self.clock()
        first = max(float(intended_ms[start]), self._last_wake + self.min_interval_ms)
        while now < first:
            self.sleep((first - now) / 1000.0)
            now = self.clock()
        self._last_wake = now
        stop = int(np.searchsorted(intended_ms, now, side="right"))
        return max(start + 1, min(stop, start + self.max_batch)), now

    def wait_until(self, epoch_ms: float) -> None:
        """Block until ``epoch_ms``; called once before the load starts."""
        now = self.clock()
        while now < epoch_ms:
            self.sleep((epoch_ms - now) / 1000.0)
            now = self.clock()
