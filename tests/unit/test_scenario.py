"""Scenario validation: every bad input gets one exact, field-named line."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from harness import results
from harness.errors import ScenarioError
from harness.scenario import (
    MAX_NAME_LENGTH,
    BurstShape,
    Slo,
    StepsShape,
    apply_overrides,
    load_scenario,
    parse_scenario,
    parse_slo,
)
from harness.units import parse_count

FAKE = "tests.unit.fake_engine:FakeEngine"
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.yaml"))

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
    ({"duraton": "10m"}, "s.yaml: duraton: unknown field (check the spelling; docs/scenarios.md describes the format)"),
    ({"duration": 60}, "s.yaml: duration: must be a duration with a unit such as 500ms, 10s, 2m or 1h (got 60)"),
    ({"name": DELETE}, "s.yaml: name: required field is missing"),
    ({"warmup": "2m"}, "s.yaml: warmup: must be shorter than duration (1m) (got 2m)"),
    ({"warmup": "55s"},
     "s.yaml: duration: measures 0 window(s), at least 3 are needed (a window counts when it ends after warmup and at least window.watermark_delay before the load ends); make duration longer than 82s, or shorten warmup or window.size (got 1m)"),
    ({"window.size": "10s", "window.slide": "3s"}, "s.yaml: window: slide (3s) must divide size (10s)"),
    ({"load.disorder": {"fraction": 0.1, "max_delay": "3s"}},
     "s.yaml: load.disorder.max_delay: must be less than window.watermark_delay (2s), else disordered events are late (an event exactly D behind is late for Flink, which fires a window at its end − 1 ms); use load.late for late events (got 3s)"),
    ({"load.disorder": {"fraction": 0.1, "max_delay": "2s"}},  # equal to D: late by design for Flink
     "s.yaml: load.disorder.max_delay: must be less than window.watermark_delay (2s), else disordered events are late (an event exactly D behind is late for Flink, which fires a window at its end − 1 ms); use load.late for late events (got 2s)"),
    ({"window.size": "5s", "window.slide": "1ms"},
     "s.yaml: window: slide (1ms) puts every event in 5,000 windows of 5s; at most 100 are allowed (each engine and the oracle keep a count per window): make slide at least 50ms"),
    ({"kafka.partitions": 1024},
     "s.yaml: kafka.partitions: 1024 partitions would run every engine at parallelism 1024 (one task per partition; at most 256); set parallelism (at most 256) explicitly (got 1024)"),
    ({"load.users": True}, "s.yaml: load.users: must be a whole number (got True)"),
    ({"kafka.partitions": "4"}, "s.yaml: kafka.partitions: must be a whole number (got '4')"),
    ({"kafka.keep_topics": "yes"}, "s.yaml: kafka.keep_topics: must be true or false (got 'yes')"),
    ({"engines": [{"engine": FAKE, "label": "run.json"}]},
     "s.yaml: engines.0.label: names a file or directory the run directory holds itself (capacity.json, capacity.md, capacity.png, kafka, kafka-clients.log, latency-cdf.png, latency-over-time.png, report.md, resources-over-time.png, run-status.json, run.json, throughput-over-time.png, trials, work); choose another label (got 'run.json')"),
    ({"engines": [{"engine": FAKE, "label": f"e{i}"} for i in range(17)]},
     "s.yaml: engines: must have at most 16 entries (got 17)"),
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
     "s.yaml: engines.0.settings.mdoe: unknown field (check the spelling; docs/scenarios.md describes the format)"),
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
    ({"kafka.keep_topics": True},
     "s.yaml: kafka: keep_topics is only for mode external: the embedded broker's topics go with its temporary data directory at the end of the run; remove keep_topics"),
    ({"kafka.bootstrap": "h:9092", "kafka.keep_topics": "yes"}, "s.yaml: kafka.keep_topics: must be true or false (got 'yes')"),
    ({"kafka.bootstrap": "h:9092", "kafka.keep_topics": 1}, "s.yaml: kafka.keep_topics: must be true or false (got 1)"),
    # values that cannot hurt (issue 12): every rate field is finite and at most 100M/s
    ({"load.rate": float("inf")},
     "s.yaml: load.rate: must be a finite number of events/s such as 500, 20k or 1.5M (got inf)"),
    ({"load.rate": float("nan")},
     "s.yaml: load.rate: must be a finite number of events/s such as 500, 20k or 1.5M (got nan)"),
    ({"load.rate": 10**12},
     "s.yaml: load.rate: must be at most 100M events/s, far beyond what one broker and one generator host carry; check the number (got 1000000M)"),
    ({"load.shape": {"type": "steps", "steps": [{"at": "10s", "rate": float("inf")}]}},
     "s.yaml: load.shape.steps.0.rate: must be a finite number of events/s such as 500, 20k or 1.5M (got inf)"),
    ({"load.shape": {"type": "ramp", "to": "101M"}},
     "s.yaml: load.shape.to: must be at most 100M events/s, far beyond what one broker and one generator host carry; check the number (got 101M)"),
    ({"load.shape": {"type": "burst", "rate": float("nan"), "every": "10s", "length": "1s"}},
     "s.yaml: load.shape.rate: must be a finite number of events/s such as 500, 20k or 1.5M (got nan)"),
    ({"load.shape": {"type": "sine", "amplitude": float("-inf"), "period": "10s"}},
     "s.yaml: load.shape.amplitude: must be a finite number of events/s such as 500, 20k or 1.5M (got -inf)"),
    ({"load.zipf_exponent": float("inf")}, "s.yaml: load.zipf_exponent: must be a finite number (got inf)"),
    ({"load.disorder": {"fraction": float("nan"), "max_delay": "1s"}},
     "s.yaml: load.disorder.fraction: must be a finite number (got nan)"),
    ({"capacity": {"growth": float("inf")}}, "s.yaml: capacity.growth: must be a finite number (got inf)"),
    ({"capacity": {"max": "1000M"}},
     "s.yaml: capacity.max: must be at most 100M events/s, far beyond what one broker and one generator host carry; check the number (got 1000M)"),
    ({"load.users": 300_000_000},
     "s.yaml: load.users: must be <= 1000000: every generator worker and the oracle hold all user names in memory (about 240 MB per million users per process); use fewer users (got 300000000)"),
    ({"load.payload_size": "1MiB"},
     "s.yaml: load.payload_size: must be <= 999000 bytes: a record, key and framing included, must fit the producer's message.max.bytes (1,000,000 in librdkafka) (got 1048576)"),
    ({"load.producer": {"workers": 0}}, "s.yaml: load.producer.workers: must be >= 1 or auto (got 0)"),
    ({"name": "a" * 65},
     "s.yaml: name: must be at most 64 characters: it goes into the run directory's name and every Kafka topic name (at most 249 characters) (got 65 characters)"),
    ({"engines": [{"engine": FAKE, "label": "x" * 65}]},
     "s.yaml: engines.0.label: must be at most 64 characters: it goes into Kafka topic names (at most 249 characters); shorten it (got 65 characters)"),
    ({"engines": ["tests.unit.fake_engine:" + "E" * 65]},
     "s.yaml: engines.0.label: without a label, the engine's name must be at most 64 characters: it goes into Kafka topic names (at most 249 characters); give a label (got 65 characters)"),
    ({"engines": [{"engine": FAKE, "label": "my flink"}]},
     "s.yaml: engines.0.label: must start with a letter or digit and hold only letters, digits, '.', '_' or '-': it names result directories and Kafka topics (got 'my flink')"),
    ({"engines": ["tests.unit.fake_engine:Fäke"]},
     "s.yaml: engines.0.label: without a label, the engine's name must start with a letter or digit and hold only letters, digits, '.', '_' or '-': it names result directories and Kafka topics; give a label (got 'Fäke')"),
    ({"engines": [{"engine": FAKE, "label": "Flink"}, {"engine": FAKE, "label": "flink"}]},
     "s.yaml: engines.1.label: collides with engines.0 ('Flink'): Kafka topic names do not tell '.' from '_', and some file systems do not tell upper from lower case; choose another label (got 'flink')"),
    ({"engines": [{"engine": FAKE, "label": "flink.eo"}, {"engine": FAKE, "label": "flink_eo"}]},
     "s.yaml: engines.1.label: collides with engines.0 ('flink.eo'): Kafka topic names do not tell '.' from '_', and some file systems do not tell upper from lower case; choose another label (got 'flink_eo')"),
    # measured windows: at least 3 (ends after warm-up, end + D strictly before the end of the load)
    ({"duration": "42s", "warmup": "10s"},
     "s.yaml: duration: measures 2 window(s), at least 3 are needed (a window counts when it ends after warmup and at least window.watermark_delay before the load ends); make duration longer than 42s, or shorten warmup or window.size (got 42s)"),
    ({"duration": "21s", "warmup": "10s", "window.slide": "5s"},
     "s.yaml: duration: measures 1 window(s), at least 3 are needed (a window counts when it ends after warmup and at least window.watermark_delay before the load ends); make duration longer than 27s, or shorten warmup or window.slide (got 21s)"),
    # capacity block
    ({"capacity": {"start": "10k", "max": "5k"}}, "s.yaml: capacity.max: must be >= capacity.start (10k) (got 5k)"),
    ({"capacity": {"precision": "0%"}}, "s.yaml: capacity.precision: must be between 0% and 100%, both excluded (got '0%')"),
    ({"capacity": {"precision": "100%"}}, "s.yaml: capacity.precision: must be between 0% and 100%, both excluded (got '100%')"),
    ({"capacity": {"precision": 0.05}}, "s.yaml: capacity.precision: must be a percentage such as 5% or 2.5% (got 0.05)"),
    ({"capacity": {"growth": 1}}, "s.yaml: capacity.growth: must be > 1 (got 1)"),
    ({"capacity": {"repetitions": 0}}, "s.yaml: capacity.repetitions: must be >= 1 (got 0)"),
    ({"capacity": {"slo": "p95<=10s"}},
     "s.yaml: capacity.slo: must be a latency objective such as p99<=10s: p50, p90, p99 or p99.9, then <=, then a duration (got 'p95<=10s')"),
    ({"capacity": {"slo": "p99<=10"}},
     "s.yaml: capacity.slo: must be a duration with a unit such as 500ms, 10s, 2m or 1h (got '10')"),
    ({"capacity": {"slo": {"percentile": 99, "limit_ms": 10000}}},
     "s.yaml: capacity.slo: must be a latency objective such as p99<=10s: p50, p90, p99 or p99.9, then <=, then a duration (got {'percentile': 99, 'limit_ms': 10000})"),
    ({"capacity": {"trial": {"duration": "30s", "warmup": "30s"}}},
     "s.yaml: capacity.trial.warmup: must be shorter than capacity.trial.duration (30s) (got 30s)"),
    ({"capacity": {"trial": {"duration": "40s", "warmup": "10s"}}},
     "s.yaml: capacity.trial.duration: measures 2 window(s), at least 3 are needed (a window counts when it ends after capacity.trial.warmup and at least window.watermark_delay before the load ends); make capacity.trial.duration longer than 42s, or shorten capacity.trial.warmup or window.size (got 40s)"),
    ({"capacity": {"trail": {"duration": "1m"}}},
     "s.yaml: capacity.trail: unknown field (check the spelling; docs/scenarios.md describes the format)"),
    # faults
    ({"faults": [{"at": "5s", "kind": "kill-engine"}]},
     "s.yaml: faults.0.at: must fall in the measured period, at or after warmup (10s) (got 5s)"),
    ({"faults": [{"at": "32s", "kind": "kill-engine"}]},
     "s.yaml: faults.0.at: leaves no room to recover before the load ends: at + downtime + 2 x (window.size + window.watermark_delay) = 61s must be <= duration (1m); move it earlier, shorten downtime or lengthen duration (got 32s)"),
    ({"faults": [{"at": "10s", "kind": "kill-engine", "downtime": "1s"}, {"at": "30s", "kind": "kill-engine", "downtime": "1s"}]},
     "s.yaml: faults.1.at: must come after faults.0 has recovered: at >= its at + downtime + 2 x (window.size + window.watermark_delay) = 35s; faults go in time order (got 30s)"),
    ({"faults": [{"at": "10s", "kind": "kill-worker"}]},
     "s.yaml: engines.0.kill_worker: is required by faults.0 (kill-worker): the shell command that kills one worker of FakeEngine's cluster, e.g. {command: 'docker compose kill -s KILL flink-taskmanager', restart: 'docker compose start flink-taskmanager'} (restart optional); the harness cannot reach into a cluster it did not start"),
    ({"faults": [{"at": "10s", "kind": "restart-broker"}], "kafka.bootstrap": "kafka:9092"},
     "s.yaml: faults.0.kind: restart-broker needs the embedded broker (kafka.mode: embedded): the harness never stops an external cluster; use kill-engine (got 'restart-broker')"),
    ({"faults": [{"at": "10s", "kind": "restart"}]},
     "s.yaml: faults.0.kind: must be one of 'kill-engine', 'kill-worker' or 'restart-broker' (got 'restart')"),
    ({"faults": [{"at": "10s", "kind": "kill-engine", "downtime": "0s"}]},
     "s.yaml: faults.0.downtime: must be > 0 (got 0)"),
]


@pytest.mark.parametrize("changes, expected", BAD_CASES, ids=[line.split(": ")[1] for _, line in BAD_CASES])
def test_bad_scenario_gives_exact_error_line(changes: dict[str, Any], expected: str) -> None:
    assert errors_of(scenario_with(**changes)) == [expected]


def test_every_error_is_reported_not_just_the_first() -> None:
    lines = errors_of(scenario_with(**{"load.rate": 0, "kafka.partitions": 0, "typo": 1}))
    assert lines == [
        "s.yaml: load.rate: must be > 0 (got 0)",
        "s.yaml: kafka.partitions: must be >= 1 (got 0)",
        "s.yaml: typo: unknown field (check the spelling; docs/scenarios.md describes the format)",
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


@pytest.mark.parametrize("text, line, key", [
    ("name: x\nduration: 60s\nload: {rate: 5k}\nengines: [calibration]\nduration: 2m\n", 5, "duration"),
    ("name: x\nduration: 60s\nload: {rate: 5k, rate: 6k}\nengines: [calibration]\n", 3, "rate"),
])
def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path: Path, text: str, line: int, key: str) -> None:
    """Plain YAML keeps the last of two equal keys silently: the run would differ from what the file says first."""
    path = tmp_path / "twice.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    [message] = caught.value.lines
    assert message.startswith(f"{path}: not valid YAML at line {line}, column ")
    assert message.endswith(f"the key {key!r} is given twice (first at line {2 if key == 'duration' else 3}); keep one")


def test_validate_says_it_imports_a_plugin_engines_module(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "plugin.yaml"
    path.write_text("name: x\nduration: 60s\nload: {rate: 5k}\nengines: ['tests.integration.custom_engine:Nope']\n")
    done = subprocess.run([sys.executable, "-m", "harness.cli", "validate", str(path)], capture_output=True,
                          text=True, timeout=120, cwd=SCENARIOS.parent)
    assert done.returncode == 2
    assert done.stderr.startswith("# importing tests.integration.custom_engine (a module:Class engine) to check its "
                                  "settings\n")
    assert "module 'tests.integration.custom_engine' has no class 'Nope'" in done.stderr


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
    with pytest.raises(ValidationError, match="frozen"):
        scenario.seed = 3  # type: ignore[misc]


def test_the_shipped_scenarios_are_found_wherever_pytest_runs() -> None:
    # the parametrisation below takes its paths from this file, not the working directory: an empty list would
    # make it pass without checking anything
    assert {"smoke", "nightly", "sliding", "cluster-example"} <= {path.stem for path in SHIPPED}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_scenarios_are_valid(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert scenario.measured_windows >= 3


def test_smoke_measures_five_windows() -> None:
    assert load_scenario(SCENARIOS / "smoke.yaml").measured_windows == 5


# ------------------------------------------------------------------------------------------ exact overrides
def test_overrides_are_exact_and_reach_run_json(tmp_path: Path) -> None:
    scenario = apply_overrides(parse_scenario(GOOD, source="s"), rate=1_234_567, duration=61_234, source="s")
    assert scenario.load.rate == 1_234_567 and scenario.duration == 61_234
    path = results.write_run_info(tmp_path, scenario, {})
    stored = json.loads(path.read_text())["scenario"]
    assert stored["load"]["rate"] == "1234567" and parse_count(stored["load"]["rate"]) == 1_234_567
    assert stored["duration"] == "61234ms"


@pytest.mark.parametrize("rate", [1_234_567, 999_999, 1_000_001, 33_333.5, 0.25, 20_000, 1_500_000])
def test_a_resolved_scenario_reads_back_as_the_same_numbers(rate: float) -> None:
    scenario = parse_scenario(scenario_with(**{"load.rate": rate}), source="s")
    again = parse_scenario(scenario.dump(), source="s")
    assert again.load.rate == rate and again == scenario


# ---------------------------------------------------------------------------------------------------- limits
def test_generator_workers_are_capped_at_four_per_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert parse_scenario(scenario_with(**{"load.producer": {"workers": 8}}), source="s").load.producer.workers == 8
    assert errors_of(scenario_with(**{"load.producer": {"workers": 9}})) == [
        "s.yaml: load.producer.workers: must be <= 8 (4 per CPU of this host, 2 CPUs, never more than 64): more "
        "processes only take turns on the CPUs; use auto (got 9)"
    ]
    monkeypatch.setattr("os.cpu_count", lambda: 128)
    assert errors_of(scenario_with(**{"load.producer": {"workers": 65}})) == [
        "s.yaml: load.producer.workers: must be <= 64 (4 per CPU of this host, 128 CPUs, never more than 64): more "
        "processes only take turns on the CPUs; use auto (got 65)"
    ]


def test_the_longest_names_still_make_legal_topic_names() -> None:
    # topic names are built in harness/run/runner.py as bench-<run dir name>-<label>-r<N>-in/-out, the run directory
    # being <UTC stamp>-<scenario>[-N]; leave room for a capacity- prefix and 3-digit numbers
    name, label = "n" * MAX_NAME_LENGTH, "L" * MAX_NAME_LENGTH
    scenario = parse_scenario(scenario_with(name=name, engines=[{"engine": FAKE, "label": label}]), source="s")
    topic = f"bench-20261125T120000Z-capacity-{scenario.name}-999-{scenario.engines[0].name}-r100-out"
    assert len(topic) <= 249


def test_the_limits_themselves_are_accepted() -> None:
    scenario = parse_scenario(
        scenario_with(**{"load.rate": "100M", "load.users": 1_000_000, "load.payload_size": 999_000}), source="s"
    )
    assert (scenario.load.rate, scenario.load.users, scenario.load.payload_size) == (1e8, 1_000_000, 999_000)


# ----------------------------------------------------------------------------------------- capacity, faults
def test_capacity_block_resolves_with_defaults_and_reads_back() -> None:
    capacity = {"max": "80k", "precision": "2.5%", "slo": "p99.9 <= 1500ms", "trial": {"duration": "55s"}}
    scenario = parse_scenario(scenario_with(capacity=capacity), source="s")
    assert scenario.capacity is not None
    assert (scenario.capacity.start, scenario.capacity.max, scenario.capacity.precision) == (5_000, 80_000, 0.025)
    assert scenario.capacity.slo == Slo(percentile=99.9, limit_ms=1_500)
    assert (scenario.capacity.trial.duration, scenario.capacity.trial.warmup) == (55_000, 20_000)
    assert scenario.capacity.growth == 2 and scenario.capacity.repetitions == 1 and scenario.capacity.calibrate
    dumped = scenario.dump()["capacity"]
    assert dumped["precision"] == "2.5%" and dumped["slo"] == "p99.9<=1500ms" and dumped["max"] == "80k"
    assert parse_scenario(scenario.dump(), source="s") == scenario


def test_no_capacity_and_no_faults_by_default() -> None:
    scenario = parse_scenario(GOOD, source="s")
    assert scenario.capacity is None and scenario.faults == []
    assert parse_scenario(scenario.dump(), source="s") == scenario


@pytest.mark.parametrize(
    "text, percentile, limit_ms",
    [("p50<=2s", 50.0, 2_000), ("p90<=500ms", 90.0, 500), ("p99<=10s", 99.0, 10_000), ("p99.9<=1m", 99.9, 60_000)],
)
def test_slo_text(text: str, percentile: float, limit_ms: int) -> None:
    slo = parse_slo(text)
    assert (slo.percentile, slo.limit_ms) == (percentile, limit_ms) and str(slo) == text


def test_faults_in_the_measured_period_with_room_to_recover_are_accepted() -> None:
    # duration 60 s, warm-up 10 s, room to recover 2 x (10 s + 2 s) = 24 s after each downtime; every bound is met
    # with equality: the first at == warmup, the second at == 10 + 1 + 24 s, and 35 + 1 + 24 s == duration
    faults = [{"at": "10s", "kind": "kill-engine", "downtime": "1s"}, {"at": "35s", "kind": "restart-broker", "downtime": "1s"}]
    scenario = parse_scenario(scenario_with(faults=faults), source="s")
    assert [(f.at, f.kind, f.downtime) for f in scenario.faults] == [
        (10_000, "kill-engine", 1_000), (35_000, "restart-broker", 1_000)
    ]
    assert scenario.dump()["faults"][1] == {"at": "35s", "kind": "restart-broker", "downtime": "1s"}


CLUSTER_ENGINES = [
    {"engine": "spark", "settings": {"master": "spark://spark-master:7077", "bind_address": "0.0.0.0"}},
    {"engine": "flink", "settings": {"jobmanager": "flink-jobmanager:8081"}},
]
KILL_TM = {"command": "docker compose kill -s KILL flink-taskmanager", "restart": "docker compose start flink-taskmanager"}


def test_kill_worker_needs_the_kill_command_of_every_engine() -> None:
    engines = copy.deepcopy(CLUSTER_ENGINES)
    data = scenario_with(engines=engines, faults=[{"at": "20s", "kind": "kill-worker"}])
    assert [line.split(": is required")[0] for line in errors_of(data)] == [
        "s.yaml: engines.0.kill_worker", "s.yaml: engines.1.kill_worker"]
    engines[1]["kill_worker"] = KILL_TM
    assert errors_of(data) == [
        "s.yaml: engines.0.kill_worker: is required by faults.0 (kill-worker): the shell command that kills one "
        "worker of spark's cluster, e.g. {command: 'docker compose kill -s KILL flink-taskmanager', restart: "
        "'docker compose start flink-taskmanager'} (restart optional); the harness cannot reach into a cluster it "
        "did not start"
    ]
    engines[0]["kill_worker"] = {"command": "pkill -KILL -f '[C]oarseGrainedExecutorBackend'"}
    scenario = parse_scenario(data, source="s")
    assert scenario.engines[0].kill_worker is not None and scenario.engines[0].kill_worker.restart is None
    assert scenario.dump()["engines"][1]["kill_worker"] == {**KILL_TM, "timeout": "1m"}


def test_kill_worker_refuses_a_built_in_engine_that_runs_locally() -> None:
    engines = [{**copy.deepcopy(CLUSTER_ENGINES[0]), "kill_worker": {"command": "true"}},
               {"engine": "flink", "kill_worker": KILL_TM}]
    data = scenario_with(engines=engines, faults=[{"at": "20s", "kind": "kill-worker"}])
    assert errors_of(data) == [
        "s.yaml: faults.0.kind: kill-worker needs every engine on a cluster (settings.master: spark://host:port or "
        "settings.jobmanager: host:port), but engines.1 (flink) runs locally; use kill-engine (got 'kill-worker')"
    ]


def test_a_module_class_engine_with_a_kill_command_may_have_kill_worker_faults() -> None:
    """Whether a third-party engine runs on a cluster is its own business: its kill_worker block says so."""
    data = scenario_with(faults=[{"at": "20s", "kind": "kill-worker"}])
    data["engines"][0] = {"engine": data["engines"][0], "kill_worker": {"command": "true", "timeout": "5s"}}
    assert parse_scenario(data, source="s").engines[0].kill_worker.timeout == 5_000  # type: ignore[union-attr]


@pytest.mark.parametrize("block, expected", [
    ({"command": "  "}, "engines.0.kill_worker.command: must be a shell command, not blank"),
    ({"command": "true", "restart": ""}, "engines.0.kill_worker.restart: must be a shell command, not blank"),
    ({"restart": "true"}, "engines.0.kill_worker.command: required field is missing"),
    ({"command": "true", "timeout": "0s"}, "engines.0.kill_worker.timeout: must be > 0 (got 0)"),
    ({"command": "true", "kill": "x"}, "engines.0.kill_worker.kill: unknown field"),
])
def test_kill_worker_block_is_strict(block: dict[str, Any], expected: str) -> None:
    data = scenario_with()
    data["engines"][0] = {"engine": data["engines"][0], "kill_worker": block}
    [line] = errors_of(data)
    assert line.startswith(f"s.yaml: {expected}"), line


def test_kill_engine_is_refused_for_an_engine_on_a_cluster() -> None:
    engines = ["calibration", {"engine": "flink", "settings": {"jobmanager": "flink-jobmanager:8081"}}]
    data = scenario_with(engines=engines, faults=[{"at": "20s", "kind": "kill-engine"}])
    assert errors_of(data) == [
        "s.yaml: faults.0.kind: kill-engine kills and restarts the engine's local job processes; engines.1 (flink) "
        "runs on a cluster, where that is not implemented; run the engines locally for this fault (got 'kill-engine')"
    ]


def test_the_documented_scenario_example_is_valid() -> None:
    readme = (SCENARIOS.parent / "docs" / "scenarios.md").read_text()
    section = readme[readme.index("# Scenario format"):]
    start = section.index("```yaml") + len("```yaml")
    example = yaml.safe_load(section[start:section.index("```", start)])
    example["description"] = "the README's example"
    scenario = parse_scenario(example, source="docs/scenarios.md", check_engines=False)  # mypkg.engines is an example
    assert scenario.capacity is not None and scenario.capacity.slo == parse_slo("p99<=10s")
    assert [fault.kind for fault in scenario.faults] == ["kill-engine"]
