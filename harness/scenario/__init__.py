"""Scenario files: what load to drive, which windowed count to run, on which Kafka, with which engines.

- :mod:`~harness.scenario.strict` — the strict base model and the limits on values, each with its reason;
- :mod:`~harness.scenario.load` — the ``load`` section: rate, shapes, disorder, late events, producer;
- :mod:`~harness.scenario.sections` — the ``window``, ``kafka`` and ``engines`` sections;
- :mod:`~harness.scenario.blocks` — the optional ``capacity`` (with its SLO) and ``faults`` blocks;
- :mod:`~harness.scenario.model` — :class:`Scenario` itself and the cross-field checks between its parts;
- :mod:`~harness.scenario.loading` — reading a file, command-line overrides, a load cut short;
- :mod:`~harness.scenario.errors` — the wording: one ``field.path: what is wrong (got X)`` line per problem.
"""

from __future__ import annotations

from harness.scenario.blocks import CapacityConfig, CapacityTrial, Fault, FaultKind, Slo, parse_slo
from harness.scenario.load import (
    BurstShape,
    ConstantShape,
    Disorder,
    Late,
    LoadConfig,
    Producer,
    RampShape,
    Shape,
    SineShape,
    Step,
    StepsShape,
)
from harness.scenario.loading import apply_overrides, load_scenario, parse_scenario, truncated
from harness.scenario.model import Scenario, recovery_room_ms
from harness.scenario.sections import EngineEntry, KafkaConfig, KillWorker, WindowConfig
from harness.scenario.strict import (
    MAX_NAME_LENGTH,
    MAX_PAYLOAD_BYTES,
    MAX_USERS,
    MAX_WORKERS,
    MIN_MEASURED_WINDOWS,
    WORKERS_PER_CPU,
    StrictModel,
    max_workers,
)
from harness.units import Bytes, Millis, Rate  # re-exported: engine settings models once imported them from here

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_PAYLOAD_BYTES",
    "MAX_USERS",
    "MAX_WORKERS",
    "MIN_MEASURED_WINDOWS",
    "WORKERS_PER_CPU",
    "BurstShape",
    "Bytes",
    "CapacityConfig",
    "CapacityTrial",
    "ConstantShape",
    "Disorder",
    "EngineEntry",
    "Fault",
    "FaultKind",
    "KafkaConfig",
    "KillWorker",
    "Late",
    "LoadConfig",
    "Millis",
    "Producer",
    "RampShape",
    "Rate",
    "Scenario",
    "Shape",
    "SineShape",
    "Slo",
    "Step",
    "StepsShape",
    "StrictModel",
    "WindowConfig",
    "apply_overrides",
    "load_scenario",
    "max_workers",
    "parse_scenario",
    "parse_slo",
    "recovery_room_ms",
    "truncated",
]
