"""The `bench` command as a user meets it: exact error text, exit codes, nothing started or written on bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = Path(sys.executable).with_name("bench")


def bench(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BENCH), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_version_and_engines() -> None:
    assert bench("--version").stdout.strip() == "bench, version 0.1.0"
    names = [line.split()[0] for line in bench("engines").stdout.splitlines()]
    assert names == ["calibration", "flink", "flink-python", "spark"]


def test_validate_prints_the_resolved_scenario() -> None:
    done = bench("validate", "scenarios/smoke.yaml")
    assert done.returncode == 0
    assert done.stdout.startswith("# scenarios/smoke.yaml: valid\nname: smoke\n")
    assert "watermark_delay: 2s" in done.stdout and "parallelism: null" in done.stdout


def test_validate_reports_every_error_one_line_per_field_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nduration: 10s\nwarmup: 20s\nload: {rate: -5}\nengines: [sprak]\nfoo: 1\n")
    done = bench("validate", str(bad))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{bad}: load.rate: must be > 0 (got -5)",
        f"{bad}: foo: unknown field (check the spelling; docs/scenarios.md describes the format)",
        "2 error(s); nothing was started.",
    ]
    assert "Traceback" not in done.stderr


def test_run_refuses_a_bad_scenario_before_starting_or_writing_anything(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nduration: 40s\nwarmup: 5s\nload: {rate: 1k}\nengines: [sprak]\n")
    out = tmp_path / "results"
    done = bench("run", str(bad), "--out", str(out))
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        f"{bad}: engines.0.engine: unknown engine 'sprak'; registered engines: calibration, flink, flink-python, spark; "
        "or give a module:Class path"
    )
    assert not out.exists()


def test_overrides_are_validated_like_the_file(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = bench("run", "scenarios/smoke.yaml", "--duration", "5s", "--out", str(out))
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        "scenarios/smoke.yaml (with command-line overrides): warmup: must be shorter than duration (5s) (got 15s)"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--rate", "fast"], "Invalid value for '--rate': must be a number such as 500, 20k or 1.5M (got 'fast')"),
        (["--duration", "10"], "Invalid value for '--duration': must be a duration with a unit such as 500ms, 10s, "
                               "2m or 1h (got '10')"),
        (["--rate", "0"], "Invalid value for '--rate': must be > 0 (got '0')"),
        (["--rate", "200M"], "Invalid value for '--rate': must be at most 100M events/s, far beyond what one broker "
                             "and one generator host carry; check the number (got 200M)"),
    ],
)
def test_bad_option_values(args: list[str], message: str) -> None:
    done = bench("run", "scenarios/smoke.yaml", *args)
    assert done.returncode == 2
    assert message in done.stderr


def test_missing_scenario_file() -> None:
    done = bench("validate", "scenarios/nope.yaml")
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == "scenarios/nope.yaml: cannot read the scenario file: No such file or directory"


def test_values_that_cannot_hurt_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nduration: 1m\nwarmup: 10s\n"
        "load: {rate: .inf, users: 300000000, payload_size: 2MiB, shape: {type: ramp, to: .nan}}\n"
        "engines: [{engine: flink, label: Flink}, flink]\n"
    )
    lines = [
        f"{bad}: load.rate: must be a finite number of events/s such as 500, 20k or 1.5M (got inf)",
        f"{bad}: load.shape.to: must be a finite number of events/s such as 500, 20k or 1.5M (got nan)",
        f"{bad}: load.users: must be <= 1000000: every generator worker and the oracle hold all user names in memory "
        "(about 240 MB per million users per process); use fewer users (got 300000000)",
        f"{bad}: load.payload_size: must be <= 999000 bytes: a record, key and framing included, must fit the "
        "producer's message.max.bytes (1,000,000 in librdkafka) (got 2097152)",
    ]
    done = bench("validate", str(bad))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [*lines, "4 error(s); nothing was started."]
    out = tmp_path / "results"
    done = bench("run", str(bad), "--out", str(out))
    assert done.returncode == 2 and done.stderr.splitlines()[:4] == lines
    assert not out.exists()


def test_colliding_labels_and_too_few_windows_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nduration: 40s\nwarmup: 10s\nload: {rate: 1k}\n"
                   "engines: [{engine: flink, label: Flink}, flink]\n")
    done = bench("validate", str(bad))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{bad}: duration: measures 2 window(s), at least 3 are needed (a window counts when it ends after warmup "
        "and at least window.watermark_delay before the load ends); make duration longer than 42s, or shorten "
        "warmup or window.size (got 40s)",
        f"{bad}: engines.1.label: collides with engines.0 ('Flink'): Kafka topic names do not tell '.' from '_', "
        "and some file systems do not tell upper from lower case; choose another label (got 'flink')",
        "2 error(s); nothing was started.",
    ]


def test_run_rate_override_is_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`bench run --rate 1234567` hands the runner 1,234,567 events/s, and run.json records that number."""
    import json

    from click.testing import CliRunner

    import harness.run.runner
    from harness import results
    from harness.cli import cli
    from harness.run.runner import RunOutcome
    from harness.units import parse_count

    seen = []

    def fake_run(scenario, out, **_):  # type: ignore[no-untyped-def]
        seen.append(scenario)
        results.write_run_info(out, scenario, {})
        return RunOutcome(out, "complete", [])

    monkeypatch.setattr(harness.run.runner, "run_scenario", fake_run)
    done = CliRunner().invoke(
        cli, ["run", str(ROOT / "scenarios" / "smoke.yaml"), "--rate", "1234567", "--duration", "61234ms",
              "--out", str(tmp_path)]
    )
    assert done.exit_code == 0, done.output
    [scenario] = seen
    assert scenario.load.rate == 1_234_567 and scenario.duration == 61_234
    stored = json.loads((tmp_path / "run.json").read_text())["scenario"]
    assert parse_count(stored["load"]["rate"]) == 1_234_567 and stored["duration"] == "61234ms"


def test_bench_run_hands_a_scenarios_faults_to_every_engine_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`bench run` no longer refuses `faults:`: each engine × repetition run gets them (what an engine run does
    with them, on the real broker and engines, is tested in tests/integration/test_faults.py)."""
    import contextlib

    from click.testing import CliRunner

    import harness.run.engine_run
    import harness.run.runner
    from harness.cli import cli
    from harness.run.kafka_service import KafkaEndpoint

    seen: list[tuple[str, list[tuple[str, int, int]]]] = []

    def fake_engine_run(self: harness.run.engine_run.EngineRun) -> str:
        seen.append((self.label, [(f.kind, f.at, f.downtime) for f in self.scenario.faults]))
        return "ok"

    @contextlib.contextmanager
    def no_broker(config, work_dir):  # type: ignore[no-untyped-def]
        yield KafkaEndpoint(bootstrap="127.0.0.1:1", mode="external")

    monkeypatch.setattr(harness.run.engine_run.EngineRun, "run", fake_engine_run)
    monkeypatch.setattr(harness.run.runner, "kafka_service", no_broker)
    monkeypatch.setattr(harness.run.runner.jvm, "classpath", lambda name: [])
    scenario = tmp_path / "faults.yaml"
    scenario.write_text(
        "name: faults\nduration: 60s\nwarmup: 10s\nload: {rate: 100}\nwindow: {size: 5s, watermark_delay: 1s}\n"
        "engines: [calibration, {engine: calibration, label: again}]\n"
        "faults: [{at: 20s, kind: kill-engine, downtime: 3s}]\n"
    )
    done = CliRunner().invoke(cli, ["run", str(scenario), "--out", str(tmp_path / "results")])
    assert done.exit_code == 0, done.output
    assert "fault injection is not available" not in done.output
    assert seen == [("calibration", [("kill-engine", 20_000, 3_000)]), ("again", [("kill-engine", 20_000, 3_000)])]


def test_without_java_run_says_so_in_one_line_exit_2_before_a_run_directory_exists(tmp_path: Path) -> None:
    """The embedded broker and the JVM engines need Java: without it nothing starts, no directory is written (it
    once wrote a run directory and ran the oracle before failing with exit 1)."""
    import os

    bin_dir = tmp_path / "bin"  # a PATH with Python but no java
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    env = {**{k: v for k, v in os.environ.items() if k != "JAVA_HOME"}, "PATH": str(bin_dir),
           "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", "scenarios/smoke.yaml", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == ("error: java not found: install Java 17+ (Debian: apt-get install "
                                   "openjdk-17-jre-headless) or set JAVA_HOME")
    assert not out.exists()
