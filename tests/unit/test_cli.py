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
        f"{bad}: foo: unknown field (check the spelling; see `bench validate --help` for the format)",
        "2 error(s); nothing was started.",
    ]
    assert "Traceback" not in done.stderr


def test_run_refuses_a_bad_scenario_before_starting_or_writing_anything(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nduration: 30s\nwarmup: 5s\nload: {rate: 1k}\nengines: [sprak]\n")
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
        "scenarios/smoke.yaml (with command-line overrides): warmup: must be shorter than duration (5s) (got 10s)"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--rate", "fast"], "Invalid value for '--rate': must be a number such as 500, 20k or 1.5M (got 'fast')"),
        (["--duration", "10"], "Invalid value for '--duration': must be a duration with a unit such as 500ms, 10s, "
                               "2m or 1h (got '10')"),
        (["--rate", "0"], "Invalid value for '--rate': must be > 0 (got '0')"),
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
