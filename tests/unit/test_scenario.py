"""Scenario validation: every bad input gets one exact, field-named line."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ScenarioError
from harness.scenario import BurstShape, StepsShape, load_scenario, parse_scenario

FAKE = "tests.unit.fake_engine:FakeEngine"

GOOD: dict[str, Any] = {
    "name": "t",
    "duration": "60s",
    "warmup": "10s",
    "load": {"rate": "10k"},
    "engines": [FAKE],
}


def scenario_with(**changes: Any) -> dict[str, Any]:
    """GOOD with dotted-path changes: ``scenario_with(**{"load.rate": -5})``; value ``DELETE`` removes."""
    data = copy.deepcopy(GOOD)
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    return data


DELETE = object()


def errors_of(data: Any) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, source="s.yaml")
    return caught.value.lines


BAD_CASES = [
    ({"load.rate": -5}, "s.yaml: load.rate: must be > 0 (got -5)"),
    ({"load.rate": "fast"}, "s.yaml: load.rate: must be a number such as 500, 20k or 1.5M (got 'fast')"),
    ({"duraton": "10m"}, "s.yaml: duraton: unknown field (check the spelling; see `bench validate --help` for the format)"),
    ({"duration": 60}, "s.yaml: duration: must be a duration with a unit such as 500ms, 10s, 2m or 1h (got 60)"),
    ({"name": DELETE}, "s.yaml: name: required field is missing"),
    ({"warmup": "2m"}, "s.yaml: warmup: must be shorter than duration (1m) (got 2m)"),
    ({"warmup": "55s"}, "s.yaml: duration: the measured period (duration - warmup = 5s) must cover at least one window (10s)"),
    ({"window.size": "10s", "window.slide": "3s"}, "s.yaml: window: slide (3s) must divide size (10s)"),
    ({"load.disorder": {"fraction": 0.1, "max_delay": "3s"}},
     "s.yaml: load.disorder.max_delay: must not exceed window.watermark_delay (2s), else disordered events are late; use load.late for late events (got 3s)"),
    ({"load.distribution": "pareto"}, "s.yaml: load.distribution: must be one of 'uniform' or 'zipf' (got 'pareto')"),
    ({"load.shape": "square"},
     "s.yaml: load.shape: type must be one of 'constant', 'steps', 'ramp', 'burst', 'sine' (got a mapping)"),
    ({"load.shape": {"type": "burst", "rate": "50k", "every": "10s", "length": "10s"}},
     "s.yaml: load.shape: length (10s) must be shorter than every (10s)"),
    ({"load.shape": {"type": "sine", "amplitude": "20k", "period": "30s"}},
     "s.yaml: load: shape.amplitude (20k) must not exceed rate (10k): the rate would go negative"),
    ({"load.late": {"fraction": 0.01, "by": "5s"}},
     "s.yaml: load.late.by: must exceed window.size + window.watermark_delay (12s) so late events are surely late (got 5s)"),
    ({"kafka.mode": "external"},
     "s.yaml: kafka: mode external needs bootstrap: host:port[,host:port...] of the existing cluster"),
    ({"kafka.partitions": 0}, "s.yaml: kafka.partitions: must be >= 1 (got 0)"),
    ({"engines": []}, "s.yaml: engines: must have at least 1 item(s) (got a list)"),
    ({"engines": ["sprak"]},
     "s.yaml: engines.0.engine: unknown engine 'sprak'; registered engines: calibration, flink, flink-python, spark; or give a module:Class path"),
    ({"engines": [{"engine": FAKE, "settings": {"mode": "medium"}}]},
     "s.yaml: engines.0.settings.mode: must be one of 'fast' or 'slow' (got 'medium')"),
    ({"engines": [{"engine": FAKE, "settings": {"mdoe": "fast"}}]},
     "s.yaml: engines.0.settings.mdoe: unknown field (check the spelling; see `bench validate --help` for the format)"),
    ({"engines": ["tests.unit.fake_engine:NotAnEngine"]},
     "s.yaml: engines.0.engine: tests.unit.fake_engine:NotAnEngine is not a subclass of harness.engines.base.Engine"),
    ({"engines": [FAKE, FAKE]}, "s.yaml: engines.1: engine 'FakeEngine' is listed twice; give one a distinct label"),
    ({"name": "My Run"}, "s.yaml: name: must be lower-case letters, digits, '_' or '-' (got 'My Run')"),
    ({"load.users": 0}, "s.yaml: load.users: must be >= 1 (got 0)"),
    ({"load.disorder": {"fraction": 1.5, "max_delay": "1s"}}, "s.yaml: load.disorder.fraction: must be <= 1 (got 1.5)"),
    ({"seed": -1}, "s.yaml: seed: must be >= 0 (got -1)"),
    ({"load.shape": {"type": "steps", "steps": [{"at": "30s", "rate": "1k"}, {"at": "10s", "rate": "2k"}]}},
     "s.yaml: load.shape: step offsets (at) must be strictly increasing"),
    ({"load.producer": {"nice": -30}}, "s.yaml: load.producer.nice: must be >= -20 (got -30)"),
    ({"kafka.bootstrap": "h:9092", "kafka.mode": "embedded"},
     "s.yaml: kafka: bootstrap is only for mode external; remove it to use the embedded broker"),
]


@pytest.mark.parametrize("changes, expected", BAD_CASES, ids=[line.split(": ")[1] for _, line in BAD_CASES])
def test_bad_scenario_gives_exact_error_line(changes: dict[str, Any], expected: str) -> None:
    assert errors_of(scenario_with(**changes)) == [expected]


def test_every_error_is_reported_not_just_the_first() -> None:
    lines = errors_of(scenario_with(**{"load.rate": 0, "kafka.partitions": 0, "typo": 1}))
    assert lines == [
        "s.yaml: load.rate: must be > 0 (got 0)",
        "s.yaml: kafka.partitions: must be >= 1 (got 0)",
        "s.yaml: typo: unknown field (check the spelling; see `bench validate --help` for the format)",
    ]


def test_not_a_mapping() -> None:
    assert errors_of(["a"]) == ["s.yaml: must be a mapping of fields (name, duration, load, ...), got a list"]


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ScenarioError) as caught:
        load_scenario(missing)
    assert caught.value.lines == [f"{missing}: cannot read the scenario file: No such file or directory"]


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nload: {rate: 5\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(bad)
    assert caught.value.lines[0].startswith(f"{bad}: not valid YAML at line 3")


def test_defaults_and_units_resolve() -> None:
    scenario = parse_scenario(scenario_with(**{"load.rate": "1.5M", "window.slide": "5s"}), source="s.yaml")
    assert scenario.load.rate == 1_500_000
    assert scenario.duration == 60_000 and scenario.warmup == 10_000 and scenario.measured_ms == 50_000
    assert scenario.window.size == 10_000 and scenario.window.slide_ms == 5_000 and scenario.window.hopping
    assert scenario.window.watermark_delay == 2_000
    assert scenario.kafka.mode == "embedded" and scenario.kafka.partitions == 4
    dumped = scenario.dump()
    assert dumped["duration"] == "1m" and dumped["load"]["rate"] == "1.5M" and dumped["window"]["slide"] == "5s"


def test_shape_shorthand_and_models() -> None:
    steps = {"type": "steps", "steps": [{"at": "0s", "rate": "1k"}, {"at": "30s", "rate": "5k"}]}
    assert isinstance(parse_scenario(scenario_with(**{"load.shape": steps}), source="s").load.shape, StepsShape)
    burst = {"type": "burst", "rate": "50k", "every": "20s", "length": "2s"}
    assert isinstance(parse_scenario(scenario_with(**{"load.shape": burst}), source="s").load.shape, BurstShape)
    assert parse_scenario(scenario_with(**{"load.shape": "constant"}), source="s").load.shape.type == "constant"


def test_external_mode_inferred_from_bootstrap() -> None:
    scenario = parse_scenario(scenario_with(**{"kafka.bootstrap": "10.0.0.5:9092"}), source="s")
    assert scenario.kafka.mode == "external" and scenario.kafka.bootstrap == "10.0.0.5:9092"


def test_engine_labels_allow_same_engine_twice() -> None:
    engines = [{"engine": FAKE, "label": "fast"}, {"engine": FAKE, "label": "slow", "settings": {"mode": "slow"}}]
    scenario = parse_scenario(scenario_with(engines=engines), source="s")
    assert [entry.name for entry in scenario.engines] == ["fast", "slow"]


def test_scenario_is_frozen() -> None:
    scenario = parse_scenario(GOOD, source="s")
    with pytest.raises(Exception):
        scenario.seed = 3  # type: ignore[misc]


@pytest.mark.parametrize("path", sorted(Path("scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_scenarios_are_valid(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
