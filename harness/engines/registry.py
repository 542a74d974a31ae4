"""Engines by name: the built-in ones, or any ``module:Class`` path to an :class:`Engine` subclass.

Built-in engines are imported only when used, so ``bench validate`` and ``bench engines`` stay fast.
"""

from __future__ import annotations

import importlib

from harness.engines.base import Engine

BUILTIN: dict[str, str] = {
    "calibration": "harness.engines.python_count:CalibrationEngine",
    "spark": "harness.engines.spark:SparkEngine",
    "flink": "harness.engines.flink:FlinkEngine",
    "flink-python": "harness.engines.flink:FlinkPythonEngine",
}
"""Registered name → import path. ``bench engines`` lists these."""


def resolve_engine(name: str) -> type[Engine]:
    """The engine class for a registered name or a ``module:Class`` path; :class:`LookupError` says why not."""
    path = BUILTIN.get(name)
    if path is None:
        if ":" not in name:
            known = ", ".join(sorted(BUILTIN))
            raise LookupError(f"unknown engine {name!r}; registered engines: {known}; or give a module:Class path")
        path = name
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise LookupError(f"cannot import module {module_name!r} for engine {name!r}: {exc}") from None
    engine_class = getattr(module, class_name, None)
    if engine_class is None:
        raise LookupError(f"module {module_name!r} has no class {class_name!r}")
    if not (isinstance(engine_class, type) and issubclass(engine_class, Engine)):
        raise LookupError(f"{path} is not a subclass of harness.engines.base.Engine")
    return engine_class


def registered_engines() -> dict[str, type[Engine] | LookupError]:
    """Every built-in engine, resolved (or the reason it cannot be loaded)."""
    found: dict[str, type[Engine] | LookupError] = {}
    for name in sorted(BUILTIN):
        try:
            found[name] = resolve_engine(name)
        except LookupError as exc:
            found[name] = exc
    return found
