"""The windowed click count: the one statement of what every engine computes and the oracle checks.

Every engine job, the load generator, the collector and the oracle take their semantics from this module; a change
of semantics is one edit here (docs/methodology.md says the same in prose).

Input
    One JSON object per Kafka record, keyed by ``user`` (so a user's events stay on one partition)::

        {"user": "u00042", "action": "click", "ts": 1764072000123, "seq": 981, "pad": "xxxx"}

    ``ts`` is the event time in epoch milliseconds: the event's *intended* send time from the open-loop schedule,
    minus its planned disorder delay — never the time it was actually sent. ``seq`` numbers the events of a run
    from 0. ``pad`` (optional) fills the record to the scenario's payload size; engines ignore it.

Windows
    Tumbling windows of size W, or hopping windows of size W sliding by S (S divides W), as ``[start, end)``
    aligned to the epoch: an event with time ``ts`` belongs to every window with ``start <= ts < start + W`` and
    ``start % S == 0`` (W/S windows).

Watermark and lateness
    watermark = (largest ``ts`` seen) − D, D being the bounded out-of-orderness (``window.watermark_delay``).
    A window is final — its count is emitted (append mode) — when the watermark reaches its end. An event whose
    window is already final when it arrives is *late* for that window and is not counted in it. Flink fires at
    ``watermark >= end - 1 ms`` and Spark at ``watermark >= end``: a 1 ms difference, inside the latency noise.
    Events the generator makes deliberately late (``load.late``) are ``by`` earlier than their send time, more
    than W + D, so the oracle accepts a count with or without them and reports how many were dropped.

Output
    One JSON record per (window, user) on the result topic, created with ``message.timestamp.type=LogAppendTime``
    so the broker stamps when each result became visible::

        {"user": "u00042", "window_start": 1764072000000, "window_end": 1764072010000, "count": 17}

    Engines in update mode may write several records for one pair; the collector takes the last one as the
    engine's answer and the first one carrying the final count as the moment it became visible.

End of run
    After the load, the generator writes one record per partition for :data:`FLUSH_USER` with ``ts`` past the
    last window's end + D, so every partition's watermark moves past every window. Results for that user are
    bookkeeping, not load: the collector ignores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

ACTION = "click"
FLUSH_USER = "__flush__"
FLUSH_ACTION = "flush"

INPUT_FIELDS = ("user", "action", "ts", "seq")
"""Fields of an input record, in order (``pad`` optionally follows)."""

OUTPUT_FIELDS = ("user", "window_start", "window_end", "count")
"""Fields of an output record: what every engine writes, and in this order."""

PAIR_KEY = ("user", "window_start", "window_end")
"""What identifies a result: one (window, user) pair. The oracle, the judge and every result table key on it."""


def user_id(index: int | np.ndarray, users: int) -> Any:
    """User ids ``u00000`` .. ``u{users-1}``, zero-padded to at least 5 digits so they sort as numbers."""
    width = max(5, len(str(users - 1)))
    if isinstance(index, np.ndarray):
        return np.char.add("u", np.char.zfill(index.astype(str), width))
    return f"u{index:0{width}d}"


@dataclass(frozen=True)
class Windows:
    """Window geometry in milliseconds; tumbling when ``slide_ms == size_ms``."""

    size_ms: int
    slide_ms: int
    watermark_delay_ms: int

    def __post_init__(self) -> None:
        if self.size_ms <= 0 or self.slide_ms <= 0 or self.size_ms % self.slide_ms:
            raise ValueError(f"slide ({self.slide_ms} ms) must divide size ({self.size_ms} ms)")

    @property
    def per_event(self) -> int:
        """How many windows each event belongs to."""
        return self.size_ms // self.slide_ms

    def starts_of(self, ts: int) -> list[int]:
        """Starts of every window containing ``ts``, oldest first."""
        last = ts - ts % self.slide_ms
        return [last - k * self.slide_ms for k in range(self.per_event - 1, -1, -1)]

    def assign(self, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised :meth:`starts_of`: ``(row, window_start)`` arrays, one entry per (event, window)."""
        ts = np.asarray(ts, dtype=np.int64)
        last = ts - np.mod(ts, self.slide_ms)
        rows = np.repeat(np.arange(ts.size), self.per_event)
        offsets = np.tile(np.arange(self.per_event - 1, -1, -1, dtype=np.int64) * self.slide_ms, ts.size)
        return rows, np.repeat(last, self.per_event) - offsets

    def final_after(self, window_end: int) -> int:
        """Smallest largest-event-time at which the window ending at ``window_end`` is final in every engine."""
        return window_end + self.watermark_delay_ms

    def flush_ts(self, last_event_ts: int) -> int:
        """Event time of the end-of-run records: past the end of every window holding ``last_event_ts``, + D."""
        last_end = max(self.starts_of(last_event_ts)) + self.size_ms
        return self.final_after(last_end) + 1


def result_record(user: str, window_start: int, window_end: int, count: int) -> dict[str, Any]:
    """The output record, as every engine must write it."""
    return {"user": user, "window_start": window_start, "window_end": window_end, "count": count}


@dataclass(frozen=True)
class JobSpec:
    """Everything an engine job needs, handed to it as JSON (``--spec FILE``) so the job code in
    ``harness/engines/jobs`` can run in the engine's own process, locally or on a cluster."""

    bootstrap: str
    input_topic: str
    output_topic: str
    window_size_ms: int
    window_slide_ms: int
    watermark_delay_ms: int
    parallelism: int
    partitions: int
    state_dir: str
    """Checkpoints and other job state: in the run directory."""
    settings: dict[str, Any]
    """The engine's own validated settings (output mode, trigger, delivery guarantee, ...)."""

    @property
    def windows(self) -> Windows:
        return Windows(self.window_size_ms, self.window_slide_ms, self.watermark_delay_ms)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobSpec:
        return cls(**data)


# ----------------------------------------------------------------------------------------------- measured windows
def is_measured(window_end: Any, *, warmup_end_ms: int, load_end_ms: int, watermark_delay_ms: int) -> np.ndarray:
    """Which windows count in the figures (bool, one per ``window_end``, epoch ms or any common origin).

    A window counts when it ends after the warm-up (``window_end > warmup_end_ms``) and the load's own events can
    close it: an event with ``ts >= window_end + D`` lies inside the load, i.e. ``window_end + D < load_end_ms``.
    Strictly less: every event's ``ts`` is below ``load_end_ms``, so when ``window_end + D == load_end_ms`` only
    the end-of-run records close the window, and its latency would measure the flush, not the engine.
    """
    ends = np.asarray(window_end, dtype=np.int64)
    return (ends > warmup_end_ms) & (ends + watermark_delay_ms < load_end_ms)


def measured_window_count(windows: Windows, *, warmup_ms: int, duration_ms: int) -> int:
    """How many windows :func:`is_measured` counts for a load of ``duration_ms`` whose first ``warmup_ms`` are
    warm-up, starting at a multiple of the window slide (as the generator aligns it).

    Window ends are then the multiples ``k * S`` (k >= 1) of the slide counted from the load start, and the count
    is the number of k with ``k*S > warmup`` and ``k*S + D < duration`` — the same rule in closed form, so a
    day-long scenario with a 1 ms slide costs nothing to check.
    """
    slide = windows.slide_ms
    last = (duration_ms - windows.watermark_delay_ms - 1) // slide  # largest k with k*S + D < duration
    first = warmup_ms // slide + 1  # smallest k with k*S > warmup
    return max(0, last - first + 1)


def visible_ms(append_ms: np.ndarray, receive_ms: np.ndarray, *, read_committed: bool) -> np.ndarray:
    """When result records became visible to a consumer of the result topic, epoch ms: the broker append time
    (LogAppendTime), or for transactional output read ``read_committed`` the later of append and the collector's
    receive time — such a record is readable only once its transaction commits, after its append (the error
    bound of the receive time is stated and tested in :mod:`harness.run.collector`)."""
    append = np.asarray(append_ms, dtype=np.int64)
    return np.maximum(append, np.asarray(receive_ms, dtype=np.int64)) if read_committed else append


RESUME_WITHIN_MS = 1_000
"""Default horizon after an idle gap (:mod:`harness.analysis.arrival`)."""

WatermarkScope = Literal["global", "per-partition"]


@dataclass(frozen=True)
class WatermarkRule:
    """How an engine's watermark follows its input, as far as dropping late events goes."""

    scope: WatermarkScope = "global"
    idle_timeout_ms: int | None = None
    """A partition silent this long stops holding the watermark back (None: never)."""
    resume_within_ms: int = RESUME_WITHIN_MS

    def describe(self) -> str:
        """The rule in words (the report's Input path table and ``summary.json``)."""
        if self.scope == "global":
            text = "global: largest ts appended earlier on any partition − D"
        else:
            text = "per partition: largest ts earlier in the same partition − D"
        if self.idle_timeout_ms is not None:
            text += (f"; after a {self.idle_timeout_ms:,} ms gap, the other partitions' ts up to "
                     f"{self.resume_within_ms:,} ms later")
        return text

    @classmethod
    def from_watermark_setting(cls, value: str | None, *, idle_timeout_ms: int | None = None) -> WatermarkRule:
        """The rule a fairness ``watermark`` value states (:data:`harness.engines.base.FAIRNESS_KEYS`):
        ``… per partition (min over partitions)`` is per-partition; ``global``, ``per source subtask`` (a subtask
        reads several partitions and its watermark follows the largest of them) and anything else is global."""
        scope: WatermarkScope = "per-partition" if value and "per partition" in value else "global"
        return cls(scope, idle_timeout_ms)
