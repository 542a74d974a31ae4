"""The nightly regression gate as CI runs it: ``bench compare results/baseline NEW --fail-on-regression PCT`` on
stored result directories (written with the harness's own result writers from synthetic repetitions, the baseline
copied to ``results/baseline`` the way the README's refresh procedure does), judged by its exit code.

A real shift beyond the spread of the repetitions fails (exit 1); noise within the measured spread passes (exit 0).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from harness.cli import cli
from harness.results import create_run_dir, write_repetition, write_run_info, write_run_status
from tests.unit.test_results import FINGERPRINT, make_result, make_scenario

ENGINES = ("spark", "flink")
PCT = "10"
"""The workflow's default threshold (nightly.yml FAIL_ON_REGRESSION)."""


def store_run(base: Path, name: str, latencies: dict[str, list[float]], *, cpu: dict[str, float] | None = None,
              seed: int = 1) -> Path:
    """A complete run on disk: per engine one repetition per latency (ms), like `bench run` writes it."""
    reps = {len(values) for values in latencies.values()}
    assert len(reps) == 1
    scenario = make_scenario(repetitions=reps.pop(), engines=ENGINES)
    run_dir = create_run_dir(base, name)
    write_run_info(run_dir, scenario, FINGERPRINT)
    for engine in ENGINES:
        for rep, latency in enumerate(latencies[engine], start=1):
            result = make_result(engine, rep, scenario=scenario, latency_ms=latency, jitter_ms=50,
                                 seed=seed * 100 + rep, cpu=(cpu or {}).get(engine, 80.0))
            write_repetition(run_dir, result)
    write_run_status(run_dir, "complete")
    return run_dir


def baseline(tmp_path: Path) -> Path:
    """The stored baseline: three repetitions per engine, copied to results/baseline (a committed directory)."""
    run = store_run(tmp_path / "runs", "nightly", {"spark": [3000, 3100, 2900], "flink": [1500, 1550, 1450]})
    stored = tmp_path / "results" / "baseline"
    shutil.copytree(run, stored)
    return stored


def gate(base: Path, new: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["compare", str(base), str(new), "--fail-on-regression", PCT])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_a_real_shift_fails_the_gate(tmp_path: Path) -> None:
    stored = baseline(tmp_path)
    # Flink's result latency +40 %, far beyond the ±~100 ms spread of three repetitions
    new = store_run(tmp_path / "runs", "nightly", {"spark": [3050, 2950, 3000], "flink": [2100, 2150, 2050]}, seed=2)
    code, output = gate(stored, new)
    assert code == 1, output
    assert "REGRESSION: flink result p50 worse by" in output
    assert "REGRESSION: spark" not in output
    assert "regression beyond 10 % and beyond the measured noise" in output


def test_noise_within_the_measured_spread_passes(tmp_path: Path) -> None:
    stored = baseline(tmp_path)
    # every mean within the baseline's own spread: a different draw of the same system
    new = store_run(tmp_path / "runs", "nightly", {"spark": [3080, 2920, 3050], "flink": [1460, 1540, 1520]}, seed=3)
    code, output = gate(stored, new)
    assert code == 0, output
    assert "no regression (threshold 10 % beyond the measured noise)" in output
    assert "REGRESSION" not in output


def test_an_improvement_passes(tmp_path: Path) -> None:
    stored = baseline(tmp_path)
    new = store_run(tmp_path / "runs", "nightly", {"spark": [2000, 2050, 1950], "flink": [1000, 1050, 950]}, seed=4)
    code, output = gate(stored, new)
    assert code == 0, output
    assert "improved" in output


def test_the_gate_compares_the_baseline_with_itself_as_unchanged(tmp_path: Path) -> None:
    stored = baseline(tmp_path)
    code, output = gate(stored, stored)
    assert code == 0, output
    assert "regressed" not in output


def test_a_missing_run_directory_is_a_usage_error(tmp_path: Path) -> None:
    stored = baseline(tmp_path)
    result = CliRunner().invoke(cli, ["compare", str(stored), str(tmp_path / "nope"), "--fail-on-regression", PCT])
    assert result.exit_code == 2
    assert "does not exist" in result.output
