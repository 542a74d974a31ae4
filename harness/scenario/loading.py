"""Loading scenarios: :func:`load_scenario` reads a YAML file, turns every problem into one line
``FILE: field.path: what is wrong (got X)`` and raises them all together in a :class:`ScenarioError`;
command-line overrides and a load cut short give a new scenario from an old one."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from harness.engines.registry import resolve_engine
from harness.errors import ScenarioError
from harness.scenario.errors import error_lines, kind_of
from harness.scenario.load import ConstantShape, StepsShape
from harness.scenario.model import Scenario
from harness.units import format_duration_ms


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader refusing a key given twice in one mapping (plain YAML keeps the last one silently: a
    second ``duration:`` further down would run another experiment than the first one says)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:  # type: ignore[override]
        first: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                mark = first.setdefault(key, key_node.start_mark)
            except TypeError:  # an unhashable key: the constructor below says so
                continue
            if mark is not key_node.start_mark:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice (first at line {mark.line + 1}); keep one",
                    key_node.start_mark)
        return super().construct_mapping(node, deep)


def load_scenario(path: str | Path, *, check_engines: bool = True) -> Scenario:
    """Read, validate and resolve a scenario file; raise :class:`ScenarioError` listing every problem.

    With ``check_engines`` each engine is resolved in the registry and its ``settings`` validated against the
    engine's own settings model, so a typo in an engine setting is caught before anything starts.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot read the scenario file: {exc.strerror or exc}"]) from None
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise ScenarioError([f"{path}: not valid YAML{at}: {getattr(exc, 'problem', exc)}"]) from None
    return parse_scenario(data, source=str(path), check_engines=check_engines)


def parse_scenario(data: Any, *, source: str = "<scenario>", check_engines: bool = True) -> Scenario:
    """Validate an already-parsed mapping (see :func:`load_scenario`)."""
    if not isinstance(data, dict):
        raise ScenarioError(
            [f"{source}: must be a mapping of fields (name, duration, load, ...), got {kind_of(data)}"]
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError([f"{source}: {line}" for line in error_lines(exc)]) from None
    if check_engines:
        lines = _engine_setting_errors(scenario)
        if lines:
            raise ScenarioError([f"{source}: {line}" for line in lines])
    return scenario


def truncated(scenario: Scenario, duration_ms: int) -> Scenario:
    """The scenario with its load cut to ``duration_ms`` (steps starting at or after it dropped): what a run
    whose load was ended early (:data:`harness.loadgen.generator.StopCallback`) actually ran. Not validated
    again: the cut is a fact of the run, not a choice (it may measure fewer windows than a scenario must)."""
    if not 0 < duration_ms <= scenario.duration:
        raise ValueError(f"cut duration must be in (0, {scenario.duration}] ms (got {duration_ms})")
    shape = scenario.load.shape
    if isinstance(shape, StepsShape):
        kept = [step for step in shape.steps if step.at < duration_ms]
        shape = shape.model_copy(update={"steps": kept}) if kept else ConstantShape(type="constant")
    load = scenario.load.model_copy(update={"shape": shape})
    return scenario.model_copy(update={"duration": int(duration_ms), "load": load})


def apply_overrides(
    scenario: Scenario,
    *,
    rate: float | None = None,
    duration: int | None = None,
    repetitions: int | None = None,
    engines: list[str] | None = None,
    isolation: str | None = None,
    source: str = "<scenario>",
) -> Scenario:
    """The scenario with command-line overrides applied and validated again (cross-field checks included), so
    ``--duration 5s`` is rejected the same way as ``duration: 5s`` in the file. ``isolation`` is
    ``LOAD_PATH_CPUS:ENGINE_CPUS`` (``0:1``) or ``off``.

    Values go in exactly: ``rate`` as the number itself and ``duration`` in its exact text form, so
    ``--rate 1234567`` runs 1,234,567 events/s and ``run.json`` says so (``format_count`` is exact as well).
    """
    if rate is None and duration is None and repetitions is None and engines is None and isolation is None:
        return scenario
    data: dict[str, Any] = copy.deepcopy(scenario.dump())
    if isolation is not None:
        data["isolation"] = _isolation_override(isolation, source)
    if rate is not None:
        data["load"]["rate"] = float(rate)
    if duration is not None:
        data["duration"] = format_duration_ms(duration)
    if repetitions is not None:
        data["repetitions"] = repetitions
    if engines is not None:
        by_name = {entry.name: entry for entry in scenario.engines}
        chosen: list[Any] = []
        for name in engines:
            entry = by_name.get(name)
            chosen.append(entry.model_dump(mode="json") if entry is not None else name)
        data["engines"] = chosen
    return parse_scenario(data, source=f"{source} (with command-line overrides)")


def _isolation_override(text: str, source: str) -> dict[str, str] | None:
    """``--isolation 0:1`` → ``{load_path: "0", engine: "1"}``; ``off`` → None (the CPU lists are checked by the
    model, like the file's)."""
    if text.strip().lower() == "off":
        return None
    load_path, colon, engine = text.partition(":")
    if not colon:
        raise ScenarioError([f"{source}: --isolation: must be LOAD_PATH_CPUS:ENGINE_CPUS (e.g. 0:1 or 0-1:2-3) or "
                             f"off (got {text!r})"])
    return {"load_path": load_path.strip(), "engine": engine.strip()}


def _engine_setting_errors(scenario: Scenario) -> list[str]:
    lines: list[str] = []
    for index, entry in enumerate(scenario.engines):
        try:
            engine_class = resolve_engine(entry.engine)
        except LookupError as exc:
            lines.append(f"engines.{index}.engine: {exc}")
            continue
        try:
            engine_class.Settings.model_validate(entry.settings)
        except ValidationError as exc:
            lines.extend(f"engines.{index}.settings.{line}" for line in error_lines(exc))
    return lines
