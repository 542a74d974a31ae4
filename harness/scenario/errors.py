"""Error wording: pydantic's ``ValidationError`` becomes one ``field.path: what is wrong (got X)`` line per
problem, and a cross-field validator carries several such lines out in a :class:`CrossFieldErrors`."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class CrossFieldErrors(ValueError):
    """Carries several ``field: message`` lines out of a validator (pydantic keeps only the message)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("; ".join(lines))


_UNION_TAGS = {"constant", "steps", "ramp", "burst", "sine"}


def error_lines(exc: ValidationError) -> list[str]:
    """One ``field.path: what is wrong (got X)`` line per error in ``exc``; a :class:`CrossFieldErrors` gives its
    own lines, under the path of the model that raised it."""
    lines: list[str] = []
    for error in exc.errors():
        ctx_error = error.get("ctx", {}).get("error")
        if isinstance(ctx_error, CrossFieldErrors):
            prefix = _loc(error["loc"])
            lines.extend(f"{prefix}.{line}" if prefix else line for line in ctx_error.lines)
            continue
        loc = _loc(error["loc"])
        lines.append(f"{loc or '(top level)'}: {_message(error)}")
    return lines


def _loc(loc: tuple[Any, ...]) -> str:
    """``('load', 'shape', 'steps', 'steps', 0, 'rate')`` → ``load.shape.steps.0.rate``: pydantic puts the
    union member's tag after the union field; the field named like a tag stays."""
    parts: list[str] = []
    previous = None
    for part in loc:
        text = str(part)
        if not (previous == "shape" and text in _UNION_TAGS) and not text.startswith("function-"):
            parts.append(text)
        previous = text
    return ".".join(parts)


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {})
    got = error.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; docs/scenarios.md describes the format)"
    bounds = {
        "greater_than": f"must be > {_show(ctx.get('gt'))}",
        "greater_than_equal": f"must be >= {_show(ctx.get('ge'))}",
        "less_than": f"must be < {_show(ctx.get('lt'))}",
        "less_than_equal": f"must be <= {_show(ctx.get('le'))}",
        "too_short": f"must have at least {ctx.get('min_length')} item(s)",
        "literal_error": f"must be one of {ctx.get('expected')}",
        "union_tag_invalid": f"type must be one of {ctx.get('expected_tags')}",
        "union_tag_not_found": "needs a type: one of 'constant', 'steps', 'ramp', 'burst', 'sine'",
        "int_parsing": "must be a whole number",
        "int_type": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_parsing": "must be a number",
        "float_type": "must be a number",
        "finite_number": "must be a finite number",
        "string_type": "must be a string",
        "bool_parsing": "must be true or false",
        "bool_type": "must be true or false",
        "dict_type": "must be a mapping",
        "list_type": "must be a list",
        "model_type": "must be a mapping",
        "model_attributes_type": "must be a mapping",
    }
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} entries (got {ctx.get('actual_length')})"
    if kind in bounds:
        return f"{bounds[kind]} (got {_show(got)})"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return message


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return kind_of(value)
    return repr(value) if isinstance(value, str) else str(value)


def kind_of(value: Any) -> str:
    """What a value is, in the words of the messages: ``a mapping``, ``a list``, ``nothing``, else its type's name."""
    return {dict: "a mapping", list: "a list", type(None): "nothing"}.get(type(value), type(value).__name__)
