"""Markdown tables, the one way every report builds them (``bench report``, ``bench history``, the capacity report).

One escaping rule for every cell, header included: ``|`` becomes ``\\|`` (shown as ``|``, not read as a column
border) and a line break becomes a space (a table row is one line).
"""

from __future__ import annotations

from collections.abc import Sequence


def cell(text: str) -> str:
    """``text`` made safe as one table cell: ``|`` escaped as ``\\|``, line breaks replaced by spaces."""
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("|", "\\|")


def row(cells: Sequence[str]) -> str:
    """One table line: ``| a | b |``, each cell escaped by :func:`cell`."""
    return "| " + " | ".join(cell(c) for c in cells) + " |"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The lines of a table: the header, its ``|---|`` rule (one column per header cell) and one line per row."""
    return [row(header), "|" + "|".join("---" for _ in header) + "|", *(row(r) for r in rows)]
