"""What a person sees while a run goes: a live panel on a terminal (rich), plain lines otherwise (CI, pipes)."""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table


RATE_WINDOW_S = 5.0
"""The live rates are averaged over this many seconds: the generator reports its counts in steps about twice a
second, so a rate over one second jumps (3,001 → 999 → 2,000 ev/s at a steady 2k/s)."""


class SlidingRate:
    """The rate of a cumulative count over the last ``window_s`` seconds (of the caller's clock)."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, t: float, count: float) -> None:
        """Record ``count`` (cumulative) at time ``t``; a count below the last one starts over (a new run)."""
        if self._samples and count < self._samples[-1][1]:
            self._samples.clear()
        self._samples.append((t, count))
        # keep the newest sample at or before the window's start, so the window is always fully spanned
        while len(self._samples) >= 2 and self._samples[1][0] <= t - self.window_s:
            self._samples.popleft()

    def rate(self) -> float:
        """Units per second over the span held (at most about ``window_s``); 0 before two samples."""
        if len(self._samples) < 2:
            return 0.0
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0


@dataclass(frozen=True)
class Status:
    """One frame of the display. Rates in events/s, latencies in ms, times in seconds."""

    engine: str = ""
    repetition: str = ""
    phase: str = "starting"
    phase_left_s: float | None = None
    """Time left in the phase (warm-up, measuring: until its end; draining: until the deadline); None: unknown."""
    elapsed_s: float = 0.0
    total_s: float = 0.0
    sent: int = 0
    """Events sent so far (cumulative): the achieved rate is its :class:`SlidingRate`."""
    due: int = 0
    """Events the schedule intends by now (cumulative): the target rate is its :class:`SlidingRate`."""
    target_rate: float = 0.0
    achieved_rate: float = 0.0
    results: int = 0
    """Result records received."""
    answered: int | None = None
    """Expected (window, user) pairs answered so far, when known (while draining)."""
    expected: int = 0
    """(window, user) pairs the run must answer (0: not known)."""
    p50_ms: float | None = None
    p99_ms: float | None = None


def _fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def _phase(s: Status) -> str:
    return s.phase if s.phase_left_s is None else f"{s.phase}, {max(s.phase_left_s, 0):.0f} s left"


def _results(s: Status) -> str:
    text = f"{s.results:,} records"
    if s.expected and s.answered is not None:
        return f"{text}, {s.answered:,}/{s.expected:,} pairs answered"
    return f"{text} ({s.expected:,} pairs expected)" if s.expected else text


class ProgressDisplay:
    """Call :meth:`update` as often as convenient; the display throttles itself. Use as a context manager."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None, plain_every_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.plain_every_s = plain_every_s
        self.clock = clock
        self.status = Status()
        self._sent_rate = SlidingRate()
        self._due_rate = SlidingRate()
        self._last_plain = 0.0
        self._last_phase = ""
        self._live: Live | None = None

    def __enter__(self) -> ProgressDisplay:
        if self.live:
            self._live = Live(self._render(), console=Console(file=self.stream), refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(None, None, None)
            self._live = None

    def update(self, **changes: object) -> None:
        """Change fields of :class:`Status`. A new ``engine`` or ``repetition`` starts from a fresh status; a new
        ``phase`` without ``phase_left_s`` has no time left shown; ``sent`` and ``due`` also update the rates (over
        :data:`RATE_WINDOW_S`)."""
        now = self.clock()
        if "engine" in changes or "repetition" in changes:
            self.status = Status()
            self._sent_rate, self._due_rate = SlidingRate(), SlidingRate()
        if "phase" in changes and "phase_left_s" not in changes:
            changes = {**changes, "phase_left_s": None}
        if "sent" in changes or "due" in changes:
            self._sent_rate.add(now, float(changes.get("sent", self.status.sent)))  # type: ignore[arg-type]
            self._due_rate.add(now, float(changes.get("due", self.status.due)))  # type: ignore[arg-type]
            changes = {**changes, "achieved_rate": self._sent_rate.rate(), "target_rate": self._due_rate.rate()}
        self.status = replace(self.status, **changes)  # type: ignore[arg-type]
        if self._live is not None:
            self._live.update(self._render())
            return
        phase_changed = self.status.phase != self._last_phase
        if phase_changed or now - self._last_plain >= self.plain_every_s:
            self._last_plain = now
            self._last_phase = self.status.phase
            print(self.plain_line(), file=self.stream, flush=True)

    def message(self, text: str) -> None:
        """A line that stays (phase results, warnings)."""
        if self._live is not None:
            self._live.console.print(text)
        else:
            print(text, file=self.stream, flush=True)

    def plain_line(self) -> str:
        s = self.status
        parts = [f"[{s.engine}{' ' + s.repetition if s.repetition else ''}] {_phase(s)}"]
        if s.total_s:
            parts.append(f"{s.elapsed_s:.0f}/{s.total_s:.0f}s")
        if s.target_rate:
            parts.append(f"rate {s.achieved_rate:,.0f}/{s.target_rate:,.0f} ev/s")
        if s.sent:
            parts.append(f"sent {s.sent:,}")
        parts.append(f"results {_results(s)}")
        parts.append(f"latency p50 {_fmt_ms(s.p50_ms)} p99 {_fmt_ms(s.p99_ms)}")
        return " | ".join(parts)

    def _render(self) -> Table:
        s = self.status
        table = Table(show_header=False, box=None, padding=(0, 2))
        table.add_row("engine", f"[bold]{s.engine}[/bold] {s.repetition}")
        table.add_row("phase", _phase(s))
        if s.total_s:
            table.add_row("elapsed", f"{s.elapsed_s:.0f} / {s.total_s:.0f} s")
        table.add_row("rate", f"{s.achieved_rate:,.0f} achieved / {s.target_rate:,.0f} target events/s "
                              f"(last {RATE_WINDOW_S:.0f} s)")
        table.add_row("sent", f"{s.sent:,} events")
        table.add_row("results", _results(s))
        table.add_row("result latency", f"p50 {_fmt_ms(s.p50_ms)}   p99 {_fmt_ms(s.p99_ms)}")
        return table
