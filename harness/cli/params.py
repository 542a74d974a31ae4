"""The command line's own value types: rates, durations, percents, SLOs and regression thresholds, each read by
the parser that reads the same value in a scenario (imported when used, so ``bench --help`` stays fast)."""

from __future__ import annotations

import click


class ParsedType(click.ParamType):
    """A command-line value read by one of the parsers of :mod:`harness.units` / :mod:`harness.scenario` (imported
    when used, so ``bench --help`` stays fast); the parser's ``ValueError`` becomes click's usage error."""

    def __init__(self, name: str, parser: str, *, ready: type | None = None, positive: bool = False) -> None:
        self.name = name
        self._module, self._function = parser.split(":")
        self._ready = ready
        """Values of this type are already parsed (defaults, values passed in from Python) and kept as they are."""
        self._positive = positive

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if self._ready is not None and isinstance(value, self._ready):
            return value
        import importlib

        parse = getattr(importlib.import_module(self._module), self._function)
        try:
            parsed = parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if self._positive and parsed <= 0:
            self.fail(f"must be > 0 (got {value!r})", param, ctx)
        return parsed


RATE = ParsedType("rate", "harness.units:parse_rate", positive=True)
"""``50k``, ``1.5M``, ``2000`` events/s; refused when not finite or above ``harness.units.MAX_RATE``."""
DURATION = ParsedType("duration", "harness.units:parse_duration_ms", ready=int)
"""``10s``, ``2m``, ``500ms`` → milliseconds."""
PERCENT = ParsedType("percent", "harness.units:parse_percent", ready=float)
"""``5%``, ``2.5%`` → the fraction (0.05)."""
SLO = ParsedType("slo", "harness.scenario:parse_slo")
"""``p99<=10s`` → :class:`harness.scenario.Slo`."""


class ThresholdPct(click.ParamType):
    """A regression threshold in percent: a finite number > 0 (``nan`` or ``inf`` would switch the gate off)."""

    name = "pct"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        import math

        try:
            pct = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of percent, e.g. 10", param, ctx)
        if not math.isfinite(pct) or pct <= 0:
            self.fail(f"must be a finite number of percent > 0, e.g. 10 (got {value!r})", param, ctx)
        return pct


THRESHOLD_PCT = ThresholdPct()
