"""Human units in scenario files and on the command line: ``100k`` events/s, ``10s``, ``2m``, ``1KiB``.

Durations are held as integer milliseconds everywhere in the harness (event time is epoch milliseconds), so a
window size and a timestamp can be compared without float error.
"""

from __future__ import annotations

import re

_NUMBER = r"(?P<num>[0-9]+(?:\.[0-9]+)?)"
_DURATION_RE = re.compile(_NUMBER + r"\s*(?P<unit>ms|s|m|h)", re.IGNORECASE)
_COUNT_RE = re.compile(_NUMBER + r"\s*(?P<unit>[kKmM]?)")
_SIZE_RE = re.compile(_NUMBER + r"\s*(?P<unit>B|KiB|MiB|kB|MB)?")

_DURATION_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000}
_COUNT = {"": 1, "k": 1_000, "m": 1_000_000}
_SIZE = {None: 1, "B": 1, "kB": 1_000, "MB": 1_000_000, "KiB": 1_024, "MiB": 1_048_576}


def parse_duration_ms(value: object) -> int:
    """``"10s"`` → 10000, ``"2m"`` → 120000, ``"1.5s"`` → 1500, ``"250ms"`` → 250. A bare number is rejected:
    a duration without a unit is the commonest way to mistake seconds for milliseconds."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"must be a duration with a unit such as 500ms, 10s, 2m or 1h (got {value!r})")
    match = _DURATION_RE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"must be a duration with a unit such as 500ms, 10s, 2m or 1h (got {value!r})")
    millis = float(match["num"]) * _DURATION_MS[match["unit"].lower()]
    if millis != int(millis):
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
            return float(match["num"]) * _COUNT[match["unit"].lower()]
    raise ValueError(f"must be a number such as 500, 20k or 1.5M (got {value!r})")


def format_count(value: float) -> str:
    """20000 → ``"20k"``, 1500000 → ``"1.5M"``, 250 → ``"250"``."""
    for suffix, factor in (("M", 1_000_000), ("k", 1_000)):
        if value >= factor and (value / factor) * 1000 == int((value / factor) * 1000):
            return f"{value / factor:g}{suffix}"
    return f"{value:g}"


def parse_size(value: object) -> int:
    """Bytes: ``100``, ``"100B"``, ``"1KiB"``, ``"2kB"``."""
    if isinstance(value, bool):
        raise ValueError(f"must be a size such as 100, 100B or 1KiB (got {value!r})")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _SIZE_RE.fullmatch(value.strip())
        if match is not None:
            size = float(match["num"]) * _SIZE[match["unit"]]
            if size == int(size):
                return int(size)
    raise ValueError(f"must be a size in bytes such as 100, 100B or 1KiB (got {value!r})")
