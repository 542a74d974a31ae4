"""Human units in scenario files and on the command line: ``100k`` events/s, ``10s``, ``2m``, ``1KiB``, ``5%``.

Durations are held as integer milliseconds everywhere in the harness (event time is epoch milliseconds), so a
window size and a timestamp can be compared without float error.

Every ``format_*`` is exact: ``parse(format(x)) == x`` for every value the matching ``parse`` returns, so a
scenario written out in human units (``Scenario.dump()``, ``run.json``, command-line overrides) reads back as the
same numbers. Decimal arithmetic keeps ``"1.1k"`` at 1100, not 1100.0000000000002.

The pydantic field types :data:`Millis`, :data:`Rate`, :data:`Bytes` and :data:`Percent` live here, so engine
settings models and the scenario model share them without importing each other.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_NUMBER = r"(?P<num>[0-9]+(?:\.[0-9]+)?)"
_DURATION_RE = re.compile(_NUMBER + r"\s*(?P<unit>ms|s|m|h)", re.IGNORECASE)
_COUNT_RE = re.compile(_NUMBER + r"\s*(?P<unit>[kKmM]?)")
_SIZE_RE = re.compile(_NUMBER + r"\s*(?P<unit>B|KiB|MiB|kB|MB)?")
_PERCENT_RE = re.compile(_NUMBER + r"\s*%")

_DURATION_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000}
_COUNT = {"": 1, "k": 1_000, "m": 1_000_000}
_SIZE = {None: 1, "B": 1, "kB": 1_000, "MB": 1_000_000, "KiB": 1_024, "MiB": 1_048_576}

MAX_RATE = 100_000_000
"""Highest rate (events/s) any rate field accepts: far beyond what one broker and one generator host can carry
(this machine drives ~100k/s), so a larger number is a typo, not an experiment."""


def parse_duration_ms(value: object) -> int:
    """``"10s"`` → 10000, ``"2m"`` → 120000, ``"1.5s"`` → 1500, ``"250ms"`` → 250. A bare number is rejected:
    a duration without a unit is the commonest way to mistake seconds for milliseconds."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"must be a duration with a unit such as 500ms, 10s, 2m or 1h (got {value!r})")
    match = _DURATION_RE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"must be a duration with a unit such as 500ms, 10s, 2m or 1h (got {value!r})")
    millis = Decimal(match["num"]) * _DURATION_MS[match["unit"].lower()]
    if millis != millis.to_integral_value():
        raise ValueError(f"must be a whole number of milliseconds (got {value!r})")
    return int(millis)


def format_duration_ms(millis: int) -> str:
    """The shortest exact human form: 120000 → ``"2m"``, 1500 → ``"1500ms"``."""
    for unit in ("h", "m", "s"):
        factor = _DURATION_MS[unit]
        if millis and millis % factor == 0:
            return f"{millis // factor}{unit}"
    return f"{millis}ms"


def parse_count(value: object) -> float:
    """``"100k"`` → 100000, ``"1.5M"`` → 1500000, ``250`` → 250 (a rate in events/s or a count)."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number such as 500, 20k or 1.5M (got {value!r})")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = _COUNT_RE.fullmatch(value.strip())
        if match is not None:
            return float(Decimal(match["num"]) * _COUNT[match["unit"].lower()])
    raise ValueError(f"must be a number such as 500, 20k or 1.5M (got {value!r})")


def parse_rate(value: object) -> float:
    """A rate in events/s (:func:`parse_count`), refused when not finite or above :data:`MAX_RATE`; the sign is
    left to the field (a step may go to 0, the base rate may not)."""
    rate = parse_count(value)
    if not math.isfinite(rate):
        raise ValueError(f"must be a finite number of events/s such as 500, 20k or 1.5M (got {rate})")
    if rate > MAX_RATE:
        raise ValueError(
            f"must be at most {format_count(MAX_RATE)} events/s, far beyond what one broker and one generator "
            f"host carry; check the number (got {format_count(rate)})"
        )
    return rate


def format_count(value: float) -> str:
    """20000 → ``"20k"``, 1500000 → ``"1.5M"``, 250 → ``"250"``, 1234567 → ``"1234567"``: a k/M suffix when it
    leaves at most two decimals, else every digit; always exact (``parse_count(format_count(x)) == x``)."""
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    exact = Decimal(repr(value))  # the shortest decimal that reads back as this float
    for suffix, factor in (("M", 1_000_000), ("k", 1_000)):
        scaled = exact / factor
        if value >= factor and scaled == scaled.quantize(Decimal("0.01")):
            return _plain(scaled) + suffix
    return _plain(exact)


def _plain(number: Decimal) -> str:
    """Positional notation without trailing zeros: ``Decimal("2E+1")`` → ``"20"``, ``1.50`` → ``"1.5"``."""
    text = format(number.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_size(value: object) -> int:
    """Bytes: ``100``, ``"100B"``, ``"1KiB"``, ``"2kB"``."""
    if isinstance(value, bool):
        raise ValueError(f"must be a size such as 100, 100B or 1KiB (got {value!r})")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _SIZE_RE.fullmatch(value.strip())
        if match is not None:
            size = Decimal(match["num"]) * _SIZE[match["unit"]]
            if size == size.to_integral_value():
                return int(size)
    raise ValueError(f"must be a size in bytes such as 100, 100B or 1KiB (got {value!r})")


def parse_percent(value: object) -> float:
    """``"5%"`` → 0.05 (a fraction), strictly between 0 % and 100 %. A bare number is rejected: ``0.05`` and
    ``5`` would both be plausible readings."""
    match = _PERCENT_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"must be a percentage such as 5% or 2.5% (got {value!r})")
    percent = Decimal(match["num"])
    if not 0 < percent < 100:
        raise ValueError(f"must be between 0% and 100%, both excluded (got {value!r})")
    return float(percent / 100)


def format_percent(fraction: float) -> str:
    """0.05 → ``"5%"``, 0.025 → ``"2.5%"``; exact (``parse_percent(format_percent(x)) == x``)."""
    return _plain(Decimal(repr(float(fraction))) * 100) + "%"


Millis = Annotated[int, BeforeValidator(parse_duration_ms), PlainSerializer(format_duration_ms, when_used="json")]
"""A duration: ``"10s"`` in files, integer milliseconds in code."""

Rate = Annotated[float, BeforeValidator(parse_rate), PlainSerializer(format_count, when_used="json")]
"""Events per second: ``"20k"`` in files, a float in code; finite and at most :data:`MAX_RATE`."""

Bytes = Annotated[int, BeforeValidator(parse_size)]
"""A size: ``"1KiB"`` or ``100`` in files, integer bytes in code."""

Percent = Annotated[float, BeforeValidator(parse_percent), PlainSerializer(format_percent, when_used="json")]
"""A percentage: ``"5%"`` in files, the fraction (0.05) in code; 0 % < p < 100 %."""
