"""JSON Schema of ``summary.json``, derived from the results model itself (:class:`RepetitionSummary` and the
dataclasses it holds), so the schema cannot drift from what the harness writes and reads.

Each field's schema follows its type hint (``bool`` → boolean, ``int`` → integer, ``float`` → number, ``str`` →
string, ``X | None`` → X or null, ``list[X]`` → array of X, ``dict[str, X]`` → object of X, a dataclass → an
object with its fields, those without a default required) and carries the field's docstring as its description
where the model has one. ``docs/schemas/summary.schema.json`` is this output, checked by a test to be current and
to accept the committed runs' summaries.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from typing import Any

from harness.results.model import RepetitionSummary

_SCALARS = {bool: "boolean", int: "integer", float: "number", str: "string"}


def summary_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a current-format ``summary.json``."""
    schema = _object(RepetitionSummary)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "summary.json",
            "description": "One engine x repetition of a bench run (format_version 2).", **schema}


def _object(cls: Any) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    docs = _field_docs(cls)
    properties, required = {}, []
    for f in dataclasses.fields(cls):
        prop = _schema(hints[f.name])
        if f.name in docs:
            prop = {"description": docs[f.name], **prop}
        properties[f.name] = prop
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
            required.append(f.name)
    return {"type": "object", "properties": properties, "required": required}


def _schema(hint: Any) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [_schema(arg) for arg in typing.get_args(hint) if arg is not type(None)]
        nullable = type(None) in typing.get_args(hint)
        return {"anyOf": [*options, {"type": "null"}]} if nullable else {"anyOf": options}
    if dataclasses.is_dataclass(hint):
        return _object(hint)
    if origin is list or hint is list:
        args = typing.get_args(hint)
        return {"type": "array", "items": _schema(args[0]) if args else {}}
    if origin is dict or hint is dict:
        args = typing.get_args(hint)
        return {"type": "object", "additionalProperties": _schema(args[1]) if args else {}}
    if hint in _SCALARS:
        return {"type": ["integer", "number"] if hint is float else _SCALARS[hint]}
    return {}


def _field_docs(cls: Any) -> dict[str, str]:
    """The string literal under each field of a dataclass's source (the model's attribute docstrings)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs
