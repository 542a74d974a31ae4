"""Deterministic events: every event of a run follows from (scenario, seed, start time), slice by slice.

The load is cut into slices of :data:`CHUNK_MS` of intended time. Slice ``c`` holds the events intended within
``[c·CHUNK_MS, (c+1)·CHUNK_MS)`` (their ``seq`` follows from the schedule alone) and draws its randomness from
its own generator ``np.random.default_rng([seed, c])``. So a slice can be made by any worker process, in any
order, and the generator (which encodes and sends it) and the oracle (which counts it) see the same events
whatever the number of workers.

Per event, in this order of draws (changing a fraction does not change which user an event has):

- ``user``: uniform over ``users``, or Zipf — user index ``k`` (0-based) with probability ∝ ``1/(k+1)^s``, so
  ``u00000`` is the hottest key;
- kind: a ``late.fraction`` of events are deliberately late, ``ts = intended − late.by``; a
  ``disorder.fraction`` (of the rest of the unit interval) are out of order, ``ts = intended − d`` with ``d``
  uniform over the whole milliseconds ``1 .. disorder.max_delay``; the others have ``ts = intended``.

``intended`` here is the epoch millisecond of the intended send time, ``start_epoch_ms + floor(t_i)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from harness import workload
from harness.loadgen.schedule import RateSchedule
from harness.scenario import Scenario

CHUNK_MS = 100
"""Intended-time length of one slice: small enough that a slice is cheap to make just before it is due."""


@dataclass(frozen=True, eq=False)
class EventPlan:
    """Everything that determines the events of one run. Built once (:meth:`from_scenario`) by the generator
    and by the oracle; picklable, so worker processes get the same plan."""

    schedule: RateSchedule
    seed: int
    start_epoch_ms: int
    users: int
    zipf_cdf: np.ndarray | None
    """Cumulative Zipf probabilities by user index, or None for uniform."""
    disorder_fraction: float
    disorder_max_ms: int
    late_fraction: float
    late_by_ms: int
    payload_size: int

    @classmethod
    def from_scenario(cls, scenario: Scenario, start_epoch_ms: int) -> EventPlan:
        load = scenario.load
        cdf = None
        if load.distribution == "zipf":
            weights = 1.0 / np.power(np.arange(1, load.users + 1, dtype=np.float64), load.zipf_exponent)
            cdf = np.cumsum(weights)
            cdf /= cdf[-1]
        return cls(
            schedule=RateSchedule.from_load(load, scenario.duration),
            seed=scenario.seed,
            start_epoch_ms=int(start_epoch_ms),
            users=load.users,
            zipf_cdf=cdf,
            disorder_fraction=load.disorder.fraction,
            disorder_max_ms=load.disorder.max_delay,
            late_fraction=load.late.fraction,
            late_by_ms=load.late.by,
            payload_size=load.payload_size,
        )

    @property
    def chunks(self) -> int:
        """Number of slices covering the load."""
        return -(-self.schedule.duration_ms // CHUNK_MS)

    @property
    def total_events(self) -> int:
        return self.schedule.total_events

    @property
    def earliest_ts(self) -> int:
        """A lower bound of every event's ``ts`` (the oracle sizes its tables with it)."""
        return self.start_epoch_ms - max(self.late_by_ms if self.late_fraction > 0 else 0, self.disorder_max_ms)

    @property
    def last_intended_ms(self) -> int:
        """Epoch ms of the last event's intended time: the largest ``ts`` of the run (delays only lower ts)."""
        last = self.schedule.intended_offsets(self.total_events - 1, self.total_events)
        return self.start_epoch_ms + int(np.floor(last[0])) if last.size else self.start_epoch_ms


@dataclass(frozen=True, eq=False)
class EventBatch:
    """The events of one slice, as arrays in ``seq`` order."""

    chunk: int
    seq: np.ndarray
    """int64, consecutive."""
    intended_ms: np.ndarray
    """float64 epoch ms: the exact intended send time (publish delay is measured against it)."""
    ts: np.ndarray
    """int64 epoch ms: event time."""
    user: np.ndarray
    """int64 user index (``workload.user_id`` names it)."""
    late: np.ndarray
    """bool: deliberately late."""
    disordered: np.ndarray
    """bool: out of order within the watermark delay."""

    def __len__(self) -> int:
        return int(self.seq.size)


def generate_chunk(plan: EventPlan, chunk: int) -> EventBatch:
    """The events of slice ``chunk``; called by a worker shortly before the slice is due, and by the oracle."""
    schedule = plan.schedule
    t0 = chunk * CHUNK_MS
    t1 = min(t0 + CHUNK_MS, schedule.duration_ms)
    first, stop = schedule.index_range(t0, t1)
    n = max(stop - first, 0)
    # Rounding in N⁻¹ may put an event a hair outside its slice; keep it inside so slices stay ordered.
    offsets = np.clip(schedule.intended_offsets(first, first + n), t0, np.nextafter(float(t1), 0.0))
    rng = np.random.default_rng([plan.seed, chunk])
    if plan.zipf_cdf is None:
        user = rng.integers(0, plan.users, n, dtype=np.int64)
    else:
        user = np.searchsorted(plan.zipf_cdf, rng.random(n), side="right").astype(np.int64)
        np.minimum(user, plan.users - 1, out=user)  # a draw of exactly the last cdf value (1.0 after rounding)
    kind = rng.random(n)
    late = kind < plan.late_fraction
    disordered = (kind >= plan.late_fraction) & (kind < plan.late_fraction + plan.disorder_fraction)
    delay = rng.integers(1, plan.disorder_max_ms + 1, n, dtype=np.int64) if plan.disorder_max_ms > 0 else None
    intended_ms = plan.start_epoch_ms + offsets
    ts = plan.start_epoch_ms + np.floor(offsets).astype(np.int64)
    if delay is not None:
        ts = np.where(disordered, ts - delay, ts)
    ts = np.where(late, ts - plan.late_by_ms, ts)
    seq = np.arange(first, first + n, dtype=np.int64)
    return EventBatch(chunk, seq, intended_ms, ts, user, late, disordered)


def iter_chunks(plan: EventPlan, chunks: range | None = None) -> Iterator[EventBatch]:
    """Slices in order (all of them by default)."""
    for chunk in chunks if chunks is not None else range(plan.chunks):
        yield generate_chunk(plan, chunk)


# ------------------------------------------------------------------------------------------------------ encoding
_POWERS_OF_TEN = 10 ** np.arange(1, 19, dtype=np.int64)
_PAD_OVERHEAD = len(', "pad": ""')
_HEAD = '{"user": "'
_MID = f'", "action": "{workload.ACTION}", "ts": '


class Encoder:
    """Turns event arrays into Kafka record values and keys, exactly as ``harness.workload`` documents:
    ``{"user": "u00042", "action": "click", "ts": 1764072000123, "seq": 981}`` (json.dumps' separators), with a
    ``"pad"`` of ``x`` added when ``payload_size`` asks for bigger records; key = the user id in UTF-8.

    Built once per worker; :meth:`encode` is called per batch of due events, so encoding cost is spread over the
    send loop instead of delaying the first events of each slice.
    """

    def __init__(self, users: int, payload_size: int) -> None:
        self.names = [workload.user_id(i, users) for i in range(users)]
        self.keys = [name.encode() for name in self.names]
        self.payload_size = payload_size
        # Length of a record without pad, less the digits of ts and seq.
        self._fixed = len(_value(self.names[0], 0, 0)) - 2

    def pad_lengths(self, ts: np.ndarray, seq: np.ndarray) -> np.ndarray | None:
        """Characters of ``x`` per event, or None when no event needs a pad."""
        if self.payload_size <= 0:
            return None
        length = self._fixed + _digits(ts) + _digits(seq)
        need = self.payload_size > length
        if not need.any():
            return None
        return np.where(need, np.maximum(self.payload_size - length - _PAD_OVERHEAD, 0), -1)

    def encode(
        self, user: np.ndarray, ts: np.ndarray, seq: np.ndarray
    ) -> tuple[list[bytes], list[bytes]]:
        """``(values, keys)`` for events given as parallel arrays."""
        names, keys = self.names, self.keys
        users = user.tolist()
        pads = self.pad_lengths(ts, seq)
        if pads is None:
            values = [
                f'{_HEAD}{names[u]}{_MID}{t}, "seq": {s}}}'.encode()
                for u, t, s in zip(users, ts.tolist(), seq.tolist())
            ]
        else:
            values = [
                _value(names[u], t, s, p).encode()
                for u, t, s, p in zip(users, ts.tolist(), seq.tolist(), pads.tolist())
            ]
        return values, [keys[u] for u in users]


def _value(name: str, ts: int, seq: int, pad: int = -1) -> str:
    if pad < 0:
        return f'{{"user": "{name}", "action": "{workload.ACTION}", "ts": {ts}, "seq": {seq}}}'
    return f'{{"user": "{name}", "action": "{workload.ACTION}", "ts": {ts}, "seq": {seq}, "pad": "{"x" * pad}"}}'


def flush_value(partition: int, ts: int, seq: int) -> bytes:
    """The end-of-run record for one partition (``workload.FLUSH_USER``); not load, engines count it under a user
    the collector ignores."""
    del partition  # the partition is set explicitly on the record, not carried in it
    return (
        f'{{"user": "{workload.FLUSH_USER}", "action": "{workload.FLUSH_ACTION}", "ts": {ts}, "seq": {seq}}}'
    ).encode()


def _digits(values: np.ndarray) -> np.ndarray:
    """Decimal digits of non-negative integers (a minus sign counts as one more)."""
    values = np.asarray(values, dtype=np.int64)
    return 1 + np.searchsorted(_POWERS_OF_TEN, np.abs(values), side="right") + (values < 0)
