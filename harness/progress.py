"""What a person sees while a run goes: a live panel on a terminal (rich), plain lines otherwise (CI, pipes)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table


@dataclass(frozen=True)
class Status:
    """One frame of the display. Rates in events/s, latencies in ms, times in seconds."""

    engine: str = ""
    repetition: str = ""
    phase: str = "starting"
    elapsed_s: float = 0.0
    total_s: float = 0.0
    target_rate: float = 0.0
    achieved_rate: float = 0.0
    sent: int = 0
    results: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None


def _fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


class ProgressDisplay:
    """Call :meth:`update` as often as convenient; the display throttles itself. Use as a context manager."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None, plain_every_s: float = 5.0) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.plain_every_s = plain_every_s
        self.status = Status()
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
        self.status = replace(self.status, **changes)  # type: ignore[arg-type]
        if self._live is not None:
            self._live.update(self._render())
            return
        now = time.monotonic()
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
        parts = [f"[{s.engine}{' ' + s.repetition if s.repetition else ''}] {s.phase}"]
        if s.total_s:
            parts.append(f"{s.elapsed_s:.0f}/{s.total_s:.0f}s")
        if s.target_rate:
            parts.append(f"rate {s.achieved_rate:,.0f}/{s.target_rate:,.0f} ev/s")
        if s.sent:
            parts.append(f"sent {s.sent:,}")
        parts.append(f"results {s.results:,}")
        parts.append(f"latency p50 {_fmt_ms(s.p50_ms)} p99 {_fmt_ms(s.p99_ms)}")
        return " | ".join(parts)

    def _render(self) -> Table:
        s = self.status
        table = Table(show_header=False, box=None, padding=(0, 2))
        table.add_row("engine", f"[bold]{s.engine}[/bold] {s.repetition}")
        table.add_row("phase", s.phase)
        if s.total_s:
            table.add_row("elapsed", f"{s.elapsed_s:.0f} / {s.total_s:.0f} s")
        table.add_row("rate", f"{s.achieved_rate:,.0f} achieved / {s.target_rate:,.0f} target events/s")
        table.add_row("sent", f"{s.sent:,} events")
        table.add_row("results", f"{s.results:,} records")
        table.add_row("result latency", f"p50 {_fmt_ms(s.p50_ms)}   p99 {_fmt_ms(s.p99_ms)}")
        return table
