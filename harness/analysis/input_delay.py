"""The input path's own delay: input append time − intended send time, per load event.

The harness creates the input topic with ``message.timestamp.type=LogAppendTime``, so every input record carries
the moment the broker appended it. After the drain — outside the measured period, while no engine result is
awaited any more — :func:`read_append_times` reads the input topic back once (only the broker timestamp and the
event's ``seq``), and :func:`summarize_input_delay` turns that into percentiles: for each load event of the
measured period, ``append_ms − floor(intended_ms)``, where ``intended_ms`` follows from ``seq`` and the schedule
(:meth:`harness.loadgen.schedule.RateSchedule.offsets_of`). That is the generator's publish delay plus the
producer's batching and the broker's append, i.e. what an engine could not have read earlier. The intended time
is floored because the append time is a whole millisecond (floor of the true time), so on one clock the delay is
never negative (resolution: 1 ms); a negative value means two clocks disagree (external cluster) and is counted apart.

End-of-run records (``seq`` ≥ the load's event count) are not load and are skipped.

The same read-back shows the order the events really **arrived** in (partition, offset, append time):
:func:`arrived_late` finds the on-time events the engine's own watermark rule may have dropped because of that
order (:mod:`harness.analysis.arrival`), so the judge can allow them like deliberately late ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME

from harness import histograms
from harness.analysis.arrival import NO_TS as _NO_TS
from harness.analysis.arrival import WatermarkRule, may_drop
from harness.kafka.consume import iter_batches
from harness.loadgen.schedule import RateSchedule
from harness.results.model import InputDelaySummary

_SEQ = re.compile(rb'"seq": (\d+)')
"""The ``seq`` field as :class:`harness.loadgen.events.Encoder` writes it (json.dumps separators)."""
_USER_TS = re.compile(rb'"user": "([^"]*)", "action": "[^"]*", "ts": (-?\d+), "seq"')
"""``user`` and ``ts``, written just before ``seq`` (:class:`harness.loadgen.events.Encoder`)."""


@dataclass(frozen=True, eq=False)
class InputAppendTimes:
    """What the read-back of one input topic found: parallel arrays, one entry per record carrying a ``seq`` and
    an append time (end-of-run records included; the summary skips them)."""

    seq: np.ndarray
    """int64 ``seq`` of each record."""
    append_ms: np.ndarray
    """int64 broker append time (epoch ms) of each record."""
    not_append_time: int = 0
    """Records whose timestamp was not LogAppendTime (the topic was not created by this harness version)."""
    unreadable: int = 0
    """Records without a ``seq`` field."""
    ts: np.ndarray | None = None
    """int64 event time of each record (None: not read)."""
    user: np.ndarray | None = None
    """The user of each record (str objects; None: not read)."""
    partition: np.ndarray | None = None
    """int32 input partition of each record (None: not read)."""
    offset: np.ndarray | None = None
    """int64 offset of each record in its partition (None: not read)."""


def read_append_times(bootstrap: str, topic: str) -> InputAppendTimes:
    """Read ``topic`` from the beginning to its end offsets as they are when called (after the load: that is
    everything) and keep each record's ``seq`` and broker timestamp. Called by the runner after the drain; a
    batch at a time with no per-record object, as a run can hold millions of input records."""
    seqs: list[np.ndarray] = []
    appends: list[np.ndarray] = []
    times: list[np.ndarray] = []
    users: list[np.ndarray] = []
    partitions: list[np.ndarray] = []
    offsets: list[np.ndarray] = []
    not_append = unreadable = 0
    for batch in iter_batches(bootstrap, topic):
        stamps = [message.timestamp() for message in batch]
        values = [message.value() or b"" for message in batch]
        found = [_SEQ.search(value) for value in values]
        keep = [kind == TIMESTAMP_LOG_APPEND_TIME and match is not None
                for (kind, _), match in zip(stamps, found)]
        not_append += sum(kind != TIMESTAMP_LOG_APPEND_TIME for kind, _ in stamps)
        unreadable += sum(kind == TIMESTAMP_LOG_APPEND_TIME and match is None
                          for (kind, _), match in zip(stamps, found))
        seqs.append(np.array([int(m.group(1)) for m, k in zip(found, keep) if k], dtype=np.int64))
        appends.append(np.array([ts for (_, ts), k in zip(stamps, keep) if k], dtype=np.int64))
        fields = [_USER_TS.search(value) for value, k in zip(values, keep) if k]
        times.append(np.array([int(f.group(2)) if f else _NO_TS for f in fields], dtype=np.int64))
        users.append(np.array([f.group(1).decode() if f else "" for f in fields], dtype=object))
        kept = [message for message, k in zip(batch, keep) if k]
        partitions.append(np.array([m.partition() for m in kept], dtype=np.int32))
        offsets.append(np.array([m.offset() for m in kept], dtype=np.int64))
    empty = np.empty(0, dtype=np.int64)
    return InputAppendTimes(
        np.concatenate(seqs) if seqs else empty, np.concatenate(appends) if appends else empty,
        not_append, unreadable,
        ts=np.concatenate(times) if times else empty,
        user=np.concatenate(users) if users else np.empty(0, dtype=object),
        partition=np.concatenate(partitions) if partitions else np.empty(0, dtype=np.int32),
        offset=np.concatenate(offsets) if offsets else empty,
    )


def arrived_late(times: InputAppendTimes, *, watermark_delay_ms: int, total_events: int,
                 deliberately_late: np.ndarray | None = None, rule: WatermarkRule | None = None) -> np.ndarray:
    """Boolean mask over ``times``: load events (``seq`` < ``total_events``, not ``deliberately_late``) that
    ``rule`` (default: global) lets the engine drop because of the order they were appended in
    (:func:`harness.analysis.arrival.may_drop`). Without partitions and offsets (an older read-back), every record counts
    as one partition in append order. Pure."""
    if times.ts is None or not len(times.ts):
        return np.zeros(len(times.seq), dtype=bool)
    n = len(times.ts)
    partition = times.partition if times.partition is not None else np.zeros(n, dtype=np.int32)
    offset = times.offset if times.offset is not None else np.argsort(
        np.argsort(times.append_ms, kind="stable"), kind="stable")
    late = may_drop(partition, offset, times.append_ms, times.ts, rule=rule or WatermarkRule(),
                    watermark_delay_ms=watermark_delay_ms)
    late &= times.seq < total_events
    if deliberately_late is not None:
        late &= ~deliberately_late
    return late


def summarize_input_delay(times: InputAppendTimes, schedule: RateSchedule, *, load_start_ms: int,
                          warmup_ms: int) -> InputDelaySummary:
    """Percentiles of ``append_ms − floor(intended_ms)`` over the load events intended in the measured period;
    pure (the analysis calls it once per repetition)."""
    load = times.seq < schedule.total_events
    seq, append = times.seq[load], times.append_ms[load]
    offsets = schedule.offsets_of(seq)
    measured = offsets >= warmup_ms
    intended = load_start_ms + np.floor(offsets[measured]).astype(np.int64)
    # in µs, as the publish delay: a whole-ms delay of 0 is then recorded as 1 µs (the histogram's lowest value),
    # not as 1 ms
    delay_us = (append[measured] - intended).astype(np.float64) * 1000.0
    recorded = histograms.record(delay_us, histograms.DELAY_HIGHEST_US)
    return InputDelaySummary(
        events=int(recorded.histogram.get_total_count()),
        negative=recorded.negative,
        not_append_time=times.not_append_time,
        delay_ms=histograms.percentiles(recorded.histogram, scale=1000.0),
    )
