"""Result records checked one batch at a time: which are genuine, parsed into columns, and which are bad, by kind.

**Bad records.** Collection never stops on input. A genuine record is one UTF-8 JSON object with exactly the
fields ``user`` (a non-empty string), ``window_start``, ``window_end``, ``count`` (JSON integers, not floats such
as 17.0 or 17.9, not booleans, not strings, within 0 .. 2^53, and ``window_end > window_start``; whether the
window exists is judged later, where an unknown window is "extra"). Any other record is counted under the first
kind of :data:`BAD_KINDS` that applies, its raw value is kept when it is among the first :data:`BAD_SAMPLES` bad
records or the first of its kind (truncated to :data:`BAD_SAMPLE_BYTES`, non-printable characters escaped), and
the genuine records of the same batch are kept as usual. Duplicate keys in one object: the last one wins, as in
most JSON readers.

:func:`parse_batch` is the fast path for a batch of genuine records, :func:`classify_each` (through
:func:`classify_record`) the slow path that judges each record; :class:`harness.run.collector.LiveCollector` uses
both and keeps the samples (:func:`sample_value`).
"""

from __future__ import annotations

import json
import re
from operator import itemgetter

import numpy as np

from harness.workload import OUTPUT_FIELDS

MAX_RESULT_INT = 2**53
"""Largest window bound or count accepted: the largest integer every JSON reader holds exactly."""

BAD_KINDS: dict[str, str] = {
    "empty": "the record has no value (empty or a tombstone)",
    "not_json": "the value is not UTF-8 JSON (or is nested too deeply to read)",
    "several_values": "two or more JSON values in one record (apart by whitespace or a comma), e.g. two objects",
    "not_object": "the JSON value is not an object (an array, number, string, true/false or null)",
    "missing_field": "one of user, window_start, window_end, count is absent",
    "extra_field": "a field other than user, window_start, window_end, count is present",
    "bad_user": "user is not a non-empty string of valid Unicode",
    "window_not_integer": "window_start or window_end is not a JSON integer (float, string, boolean, null, ...)",
    "window_out_of_range": "window_start or window_end is below 0 or above 2^53",
    "window_not_ordered": "window_end is not after window_start",
    "count_not_integer": "count is not a JSON integer (17.9 and 17.0 are floats; true, \"17\" and null are not numbers)",
    "count_out_of_range": "count is below 0 or above 2^53",
}
"""Kinds of bad record, in the order they are checked (a record is counted under the first that applies)."""

BAD_SAMPLES = 5
"""Raw values kept: the first this many bad records, plus the first of every other kind."""
BAD_SAMPLE_BYTES = 200
"""Bytes of a bad record's value kept in its sample."""

Columns = tuple[list[str], np.ndarray, np.ndarray, np.ndarray]
"""Parsed genuine records: users, window_start, window_end, count (int64 arrays)."""

_FIELDS = itemgetter(*OUTPUT_FIELDS)
_FIRST_BYTE = itemgetter(0)
_OPEN_BRACE = ord("{")
_DECODER = json.JSONDecoder()
_JSON_WHITESPACE = " \t\n\r"
_SEPARATOR = re.compile(r"[ \t\n\r]*(?:,[ \t\n\r]*)?")


def parse_batch(values: list[bytes]) -> Columns | None:
    """Fast path for a batch in which every value is a genuine result record spelled as engines write it
    (starting with ``{``): one ``json.loads`` for all and column-wise checks. None when any value is not genuine
    or starts otherwise (then :func:`classify_record` judges each); columns it returns are exactly what
    :func:`classify_record` gives record by record."""
    # Values are joined by "\n,". A raw newline cannot stand inside a JSON string, so no value can leak into the
    # next through an open string; every value must start with "{", and an accepted row is a flat object, so
    # each joining comma is followed by an object and sits between two array elements, never inside an object.
    # N values then give N rows only if each value holds exactly one object: success means one record each.
    if set(map(_FIRST_BYTE, values)) != {_OPEN_BRACE}:
        return None
    try:
        rows = json.loads(b"[" + b"\n,".join(values) + b"]")
    except (ValueError, RecursionError):
        return None
    if len(rows) != len(values) or set(map(type, rows)) != {dict} or set(map(len, rows)) != {len(OUTPUT_FIELDS)}:
        return None
    try:
        users = [row["user"] for row in rows]
        starts = [row["window_start"] for row in rows]
        ends = [row["window_end"] for row in rows]
        counts = [row["count"] for row in rows]
    except KeyError:
        return None
    if set(map(type, users)) != {str} or set(map(type, starts + ends + counts)) != {int} or not all(users):
        return None
    try:
        "".join(users).encode("utf-8")  # a lone surrogate ("\ud800") is valid JSON but not text
        start, end, count = (np.array(column, dtype=np.int64) for column in (starts, ends, counts))
    except (UnicodeEncodeError, OverflowError):
        return None
    if not (_in_range(start) and _in_range(end) and _in_range(count) and bool((end > start).all())):
        return None
    return users, start, end, count


def classify_record(value: bytes | None) -> tuple[str, None] | tuple[None, tuple[str, int, int, int]]:
    """``(kind, None)`` for a bad record (a key of :data:`BAD_KINDS`), ``(None, (user, window_start,
    window_end, count))`` for a genuine one (the slow path: one record at a time)."""
    if not value:
        return "empty", None
    try:
        text = value.decode("utf-8", "surrogatepass").strip(_JSON_WHITESPACE)
        obj, end = _DECODER.raw_decode(text)
    except (ValueError, RecursionError):
        return "not_json", None
    if end != len(text):
        return ("several_values" if _more_values(text, end) else "not_json"), None
    if type(obj) is not dict:
        return "not_object", None
    if any(name not in obj for name in OUTPUT_FIELDS):
        return "missing_field", None
    if len(obj) != len(OUTPUT_FIELDS):
        return "extra_field", None
    user, start, stop, count = _FIELDS(obj)
    if type(user) is not str or not user or not _is_text(user):
        return "bad_user", None
    if type(start) is not int or type(stop) is not int:
        return "window_not_integer", None
    if not (0 <= start <= MAX_RESULT_INT and 0 <= stop <= MAX_RESULT_INT):
        return "window_out_of_range", None
    if stop <= start:
        return "window_not_ordered", None
    if type(count) is not int:
        return "count_not_integer", None
    if not 0 <= count <= MAX_RESULT_INT:
        return "count_out_of_range", None
    return None, (user, start, stop, count)


def _more_values(text: str, position: int) -> bool:
    """Whether ``text[position:]`` is one or more further JSON values, each after whitespace or one comma."""
    while True:
        position = _SEPARATOR.match(text, position).end()  # type: ignore[union-attr]  # matches the empty string
        try:
            _, position = _DECODER.raw_decode(text, position)
        except (ValueError, RecursionError):
            return False
        if position == len(text):
            return True


def _in_range(values: np.ndarray) -> bool:
    return bool((values >= 0).all() and (values <= MAX_RESULT_INT).all())


def _is_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def classify_each(values: list[bytes]) -> tuple[Columns, list[int], list[tuple[int, str]]]:
    """Slow path: every value judged on its own; the genuine ones as columns with their indices, the bad ones
    as (index, kind)."""
    rows: list[tuple[str, int, int, int]] = []
    keep: list[int] = []
    bad: list[tuple[int, str]] = []
    for index, value in enumerate(values):
        kind, row = classify_record(value)
        if row is None:
            bad.append((index, kind))  # type: ignore[arg-type]
        else:
            rows.append(row)
            keep.append(index)
    users = [row[0] for row in rows]
    start, end, count = (np.array([row[i] for row in rows], dtype=np.int64) for i in (1, 2, 3))
    return (users, start, end, count), keep, bad


def sample_value(value: bytes | None) -> str:
    """A bad record's value for the report: its first :data:`BAD_SAMPLE_BYTES` bytes as text, invalid UTF-8
    as ``\\xNN`` and non-printable characters escaped, so it is safe in JSON, Markdown and a terminal."""
    text = (value or b"")[:BAD_SAMPLE_BYTES].decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)

