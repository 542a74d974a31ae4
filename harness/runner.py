"""``bench run``: the phases of a benchmark run, one engine at a time.

For each repetition, for each engine (interleaved, so a slow drift of the machine spreads over all engines)::

    fresh topics → start engine → ready → load (warm-up + measured) → end-of-run records → drain (deadline)
    → engine metrics → stop engine → check against the oracle → write the result

Every engine gets byte-identical input (same seed; the start is aligned to the window slide so the same events
fall in the same windows). A failing engine is recorded with its error and log tail and the next one still runs.
Ctrl-C stops everything cleanly, keeps what was measured and marks the run interrupted.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from harness.errors import ScenarioError
from harness.scenario import Scenario, parse_scenario
from harness.units import format_count, format_duration_ms


def apply_overrides(
    scenario: Scenario,
    *,
    rate: float | None = None,
    duration: int | None = None,
    repetitions: int | None = None,
    engines: list[str] | None = None,
    source: str = "<scenario>",
) -> Scenario:
    """The scenario with command-line overrides applied and validated again (cross-field checks included), so
    ``--duration 5s`` is rejected the same way as ``duration: 5s`` in the file."""
    if rate is None and duration is None and repetitions is None and engines is None:
        return scenario
    data: dict[str, Any] = copy.deepcopy(scenario.dump())
    if rate is not None:
        data["load"]["rate"] = format_count(rate)
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
    try:
        return parse_scenario(data, source=f"{source} (with command-line overrides)")
    except ScenarioError:
        raise
