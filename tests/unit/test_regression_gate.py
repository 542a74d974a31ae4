"""The regression gate as CI runs it: ``bench compare BASELINE... CANDIDATE --fail-on-regression PCT``, judged by
its exit code, on run directories built in the test (tests/unit/synthetic_runs.py).

Exit codes: 0 no regression, 1 regression or not comparable, 2 usage error, 3 cannot judge, 4 no baseline left.
Every way the gate could be fooled into a pass (an engine or repetition gone, an unfinished or invalid candidate,
other settings, another machine) fails it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli import cli
from tests.unit.synthetic_runs import Rep, reps, write_run

ROOT = Path(__file__).resolve().parents[2]
PCT = "10"
"""The workflow's default threshold (nightly.yml FAIL_ON_REGRESSION)."""

BASE = {"spark": reps(3000, 3100, 2900), "flink": reps(1500, 1550, 1450)}
SAME = {"spark": reps(3080, 2920, 3050), "flink": reps(1460, 1540, 1520)}
"""A different draw of the same system: every mean within the baseline's spread."""


def gate(*runs: Path, extra: tuple[str, ...] = ()) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["compare", *map(str, runs), "--fail-on-regression", PCT, *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def baseline(tmp_path: Path, **kwargs: Any) -> Path:
    return write_run(tmp_path / "base", BASE, started="20270101T021700Z", **kwargs)


def candidate(tmp_path: Path, engines: dict[str, list[Rep]] | None = None, **kwargs: Any) -> Path:
    return write_run(tmp_path / "new", SAME if engines is None else engines, started="20270102T021700Z", **kwargs)


# ---------------------------------------------------------------------------------------------------- figures
def test_a_real_shift_fails_the_gate(tmp_path: Path) -> None:
    # Flink's result latency +40 %, far beyond the ±~100 ms spread of three repetitions
    code, output = gate(baseline(tmp_path), candidate(tmp_path, {"spark": reps(3050, 2950, 3000),
                                                                  "flink": reps(2100, 2150, 2050)}))
    assert code == 1, output
    assert "REGRESSION: flink result p50 worse by 40.0 % (> 10 %), significant at 95 %" in output
    assert "REGRESSION: spark" not in output
    assert output.rstrip().endswith("gate: FAIL (exit 1): 6 regression(s), 0 comparability problem(s)")


def test_noise_within_the_measured_spread_passes(tmp_path: Path) -> None:
    code, output = gate(baseline(tmp_path), candidate(tmp_path))
    assert code == 0, output
    assert "gate: pass (exit 0): no regression beyond 10 % that is significant at 95 %" in output
    assert "REGRESSION" not in output and "NOT COMPARABLE" not in output


def test_an_improvement_passes(tmp_path: Path) -> None:
    code, output = gate(baseline(tmp_path), candidate(tmp_path, {"spark": reps(2000, 2050, 1950),
                                                                  "flink": reps(1000, 1050, 950)}))
    assert code == 0, output
    assert "improved" in output


def test_the_baseline_compared_with_itself_passes(tmp_path: Path) -> None:
    base = baseline(tmp_path)
    code, output = gate(base, base)
    assert code == 0, output
    assert "regressed" not in output


def test_a_lower_processed_rate_and_more_cpu_fail(tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", {"spark": [Rep(processed=p, cpu=c) for p, c in ((5000, 80), (5010, 82), (4990, 78))]})
    new = write_run(tmp_path / "new", {"spark": [Rep(processed=p, cpu=c) for p, c in ((4000, 120), (4010, 118), (3990, 121))]},
                    started="20270102T021700Z")
    code, output = gate(base, new)
    assert code == 1
    assert "REGRESSION: spark processed worse by 20.0 %" in output
    assert "REGRESSION: spark engine CPU worse by" in output


def test_becoming_incorrect_or_not_sustained_fails(tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", {"spark": reps(2500, 2500, 2500)})
    wrong = write_run(tmp_path / "wrong", {"spark": reps(2500, 2500, 2500, correct=False)}, started="20270102T021700Z")
    behind = write_run(tmp_path / "behind", {"spark": reps(2500, 2500, 2500, sustained=False)},
                       started="20270103T021700Z")
    code, output = gate(base, wrong)
    assert code == 1 and "REGRESSION: spark: correct in the baseline, incorrect in the candidate" in output
    code, output = gate(base, behind)
    assert code == 1 and "REGRESSION: spark: sustained in the baseline, not sustained in the candidate" in output


# ---------------------------------------------------------------------------------------------------- an unfit candidate
def test_an_engine_of_the_baseline_missing_in_the_candidate_fails(tmp_path: Path) -> None:
    """Issue 11: B is A without its flink/ directory."""
    base = baseline(tmp_path)
    new = candidate(tmp_path)
    shutil.rmtree(new / "flink")
    code, output = gate(base, new)
    assert code == 1, output
    assert "NOT COMPARABLE: candidate: flink: no repetitions in the candidate run" in output


@pytest.mark.parametrize("status, shown", [("interrupted", "interrupted"), ("failed", "failed"),
                                           (None, "missing (unfinished run)")])
def test_a_candidate_that_did_not_complete_fails(tmp_path: Path, status: str | None, shown: str) -> None:
    code, output = gate(baseline(tmp_path), candidate(tmp_path, status=status))
    assert code == 1, output
    assert f"NOT COMPARABLE: candidate: run status is {shown}, not complete" in output


@pytest.mark.parametrize("rep, shown", [
    (Rep(p50=1500, status="failed"), "flink rep 2: failed: flink failed: synthetic"),
    (Rep(p50=1500, status="interrupted"), "flink rep 2: interrupted"),
    (Rep(p50=1500, valid=False), "flink rep 2: invalid: generator could not drive the load (synthetic)"),
])
def test_a_failed_interrupted_or_invalid_candidate_repetition_fails(tmp_path: Path, rep: Rep, shown: str) -> None:
    engines = {"spark": SAME["spark"], "flink": [SAME["flink"][0], rep, SAME["flink"][2]]}
    code, output = gate(baseline(tmp_path), candidate(tmp_path, engines))
    assert code == 1, output
    assert f"NOT COMPARABLE: candidate: {shown}" in output


def test_a_missing_candidate_repetition_fails(tmp_path: Path) -> None:
    new = candidate(tmp_path)
    shutil.rmtree(new / "spark" / "rep-3")
    code, output = gate(baseline(tmp_path), new)
    assert code == 1, output
    assert "NOT COMPARABLE: candidate: spark: repetition(s) 3 missing in the candidate run" in output


# ---------------------------------------------------------------------------------------------------- settings and environment
@pytest.mark.parametrize("changes, shown", [
    ({"load": {"rate": "400"}}, "scenario load.rate: 200 vs 400"),
    ({"load": {"disorder": {"fraction": 0.1}}}, "scenario load.disorder.fraction: 0.0 vs 0.1"),
    ({"window": {"size": "20s"}}, "scenario window.size: 10s vs 20s"),
    ({"duration": "2m"}, "scenario duration: 1m vs 2m"),
    ({"warmup": "20s"}, "scenario warmup: 10s vs 20s"),
    ({"kafka": {"partitions": 8}}, "scenario kafka.partitions: 4 vs 8"),
    ({"parallelism": 2}, "scenario parallelism: None vs 2"),
    ({"engines": [{"engine": "spark", "label": None, "settings": {"trigger": "2s"}},
                  {"engine": "flink", "label": None, "settings": {}}]}, "engine spark.settings.trigger: 0s vs 2s"),
])
def test_different_settings_fail(tmp_path: Path, changes: dict[str, Any], shown: str) -> None:
    base = baseline(tmp_path)
    code, output = gate(base, candidate(tmp_path, scenario=changes))
    assert code == 1, output
    assert f"NOT COMPARABLE: {base.name} vs the candidate: {shown}" in output


def test_settings_that_do_not_move_the_figures_may_differ(tmp_path: Path) -> None:
    changes = {"description": "other words", "seed": 99, "drain_timeout": "5m", "engine_start_timeout": "1m",
               "load": {"rate": "200.0"}}  # the same rate, spelt differently
    code, output = gate(baseline(tmp_path), candidate(tmp_path, scenario=changes))
    assert code == 0, output


def test_more_repetitions_may_differ_but_must_all_be_there(tmp_path: Path) -> None:
    base = baseline(tmp_path)
    five = {"spark": reps(3080, 2920, 3050, 3000, 3010), "flink": reps(1460, 1540, 1520, 1500, 1490)}
    code, output = gate(base, candidate(tmp_path, five))
    assert code == 0, output
    code, output = gate(base, candidate(tmp_path / "short", scenario={"repetitions": 5}))
    assert code == 1, output
    assert "NOT COMPARABLE: candidate: spark: repetition(s) 4, 5 missing in the candidate run" in output
    assert f"NOT COMPARABLE: {base.name}" not in output


@pytest.mark.parametrize("changes, shown", [
    ({"cpu_model": "Other CPU"}, "environment cpu_model: Test CPU vs Other CPU"),
    ({"cpu_logical": 4}, "environment cpu_logical: 2 vs 4"),
    ({"versions": {"flink": "2.3.0"}}, "version flink: 2.2.1 vs 2.3.0"),
    ({"versions": {"flink_kafka_connector": "5.0.0-2.2"}}, "version flink_kafka_connector: None vs 5.0.0-2.2"),
])
def test_another_environment_fails_unless_allowed(tmp_path: Path, changes: dict[str, Any], shown: str) -> None:
    base = baseline(tmp_path)
    new = candidate(tmp_path, fingerprint=changes)
    code, output = gate(base, new)
    assert code == 1, output
    assert f"NOT COMPARABLE: {base.name} vs the candidate: {shown}" in output
    code, output = gate(base, new, extra=("--allow-env-change",))
    assert code == 0, output
    assert f"note: {base.name}: {shown} (allowed by --allow-env-change)" in output


def test_host_name_and_commit_may_differ(tmp_path: Path) -> None:
    new = candidate(tmp_path, fingerprint={"hostname": "other", "git_commit": "fedcba", "git_dirty": True})
    code, output = gate(baseline(tmp_path), new)
    assert code == 0, output


# ---------------------------------------------------------------------------------------------------- cannot judge
def test_single_repetitions_cannot_be_judged(tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", {"spark": reps(2500)})
    new = write_run(tmp_path / "new", {"spark": reps(5000)}, started="20270102T021700Z")
    code, output = gate(base, new)
    assert code == 3, output
    assert "CANNOT JUDGE: spark: fewer than 2 usable values on a side (A 1, B 1): processed, result p50" in output
    assert "gate: CANNOT JUDGE (exit 3)" in output


def test_a_baseline_with_one_usable_repetition_cannot_be_judged(tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", {"spark": [Rep(2500), Rep(2500, status="failed"), Rep(2500, valid=False)]})
    new = write_run(tmp_path / "new", {"spark": reps(2500, 2510, 2490)}, started="20270102T021700Z")
    code, output = gate(base, new)
    assert code == 3, output
    assert "note: spark: 2 baseline repetition(s) failed or invalid, left out of the baseline" in output
    assert "(A 1, B 3)" in output


def test_a_baseline_without_a_usable_repetition_cannot_be_judged(tmp_path: Path) -> None:
    """Every baseline repetition invalid, the candidate's latency doubled: each figure has no A value, which once
    read as "n/a" and passed (exit 0) while one usable repetition gave exit 3."""
    base = write_run(tmp_path / "base", {"spark": reps(2500, 2500, 2500, valid=False)})
    new = write_run(tmp_path / "new", {"spark": reps(5000, 5100, 4900)}, started="20270102T021700Z")
    code, output = gate(base, new)
    assert code == 3, output
    assert "CANNOT JUDGE: spark: no usable baseline repetition" in output
    assert "gate: CANNOT JUDGE (exit 3): no usable baseline repetition for spark" in output


def test_a_candidate_with_a_fault_the_baseline_lacks_is_not_comparable(tmp_path: Path) -> None:
    fault = {"faults": [{"at": "30s", "kind": "kill-engine", "downtime": "5s"}]}
    code, output = gate(baseline(tmp_path), candidate(tmp_path, scenario=fault))
    assert code == 1, output
    assert "vs the candidate: scenario faults: [] vs [" in output


def test_a_default_written_out_compares_equal_to_it_left_out(tmp_path: Path) -> None:
    explicit = {"engines": [{"engine": "spark", "label": None, "settings": {"output_mode": "append"}},
                            {"engine": "flink", "label": None, "settings": {}}]}
    code, output = gate(baseline(tmp_path), candidate(tmp_path, scenario=explicit))
    assert code == 0, output
    changed = {"engines": [{"engine": "spark", "label": None, "settings": {"output_mode": "update"}},
                           {"engine": "flink", "label": None, "settings": {}}]}
    code, output = gate(baseline(tmp_path / "u"), candidate(tmp_path / "u", scenario=changed))
    assert code == 1 and "engine spark.settings.output_mode: append vs update" in output, output


@pytest.mark.parametrize("pct", ["nan", "inf", "-inf", "0", "-5", "ten"])
def test_a_threshold_that_is_not_a_finite_positive_percent_is_a_usage_error(tmp_path: Path, pct: str) -> None:
    base = baseline(tmp_path)
    result = CliRunner().invoke(cli, ["compare", str(base), str(base), "--fail-on-regression", pct])
    assert result.exit_code == 2, result.output
    assert "--fail-on-regression" in result.output
    assert "must be a finite number of percent > 0" in result.output or "is not a number of percent" in result.output


@pytest.mark.parametrize("field, value, shown", [
    ("valid", "false", "field valid: expected bool, got str 'false'"),
    ("result_latency", {"p50_ms": "2s"}, "field result_latency.p50_ms: expected float, got str '2s'"),
    ("repetition", True, "field repetition: expected int, got bool True"),
    ("sustained", {"sustained": "no"}, "field sustained.sustained: expected bool, got str 'no'"),
])
def test_a_summary_field_of_the_wrong_type_is_one_line_naming_file_and_field(
        tmp_path: Path, field: str, value: Any, shown: str) -> None:
    """``"valid": "false"`` once counted as true; a string where a number belongs ended in a traceback, exit 1,
    which the gate reads as "regression"."""
    base = baseline(tmp_path)
    new = candidate(tmp_path)
    path = new / "spark" / "rep-2" / "summary.json"
    data = json.loads(path.read_text())
    data[field] = {**data[field], **value} if isinstance(value, dict) else value
    path.write_text(json.dumps(data))
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "compare", str(base), str(new), "--fail-on-regression", PCT],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == f"error: {path}: not a valid repetition summary: {shown}"


def test_a_failing_candidate_is_a_failure_before_it_is_unjudgeable(tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", {"spark": reps(2500)})
    new = write_run(tmp_path / "new", {"spark": reps(2500)}, started="20270102T021700Z", status="interrupted")
    code, _ = gate(base, new)
    assert code == 1


# ---------------------------------------------------------------------------------------------------- pooled baselines
def test_pooled_baselines_judge_what_one_run_cannot(tmp_path: Path) -> None:
    """Three nightly baselines of one repetition each: alone none can judge; pooled they find a +40 % shift."""
    bases = [write_run(tmp_path / "base", {"spark": reps(p50)}, started=f"2027010{day}T021700Z")
             for day, p50 in ((1, 2500), (2, 2560), (3, 2440))]
    shifted = write_run(tmp_path / "new", {"spark": reps(3500, 3560, 3440)}, started="20270104T021700Z")
    steady = write_run(tmp_path / "new", {"spark": reps(2530, 2470, 2500)}, started="20270105T021700Z")
    assert gate(bases[0], shifted)[0] == 3
    code, output = gate(*bases, shifted)
    assert code == 1, output
    assert "A (baseline) (3 runs pooled)" in output
    assert "REGRESSION: spark result p50 worse by 40.0 %" in output
    code, output = gate(*bases, steady)
    assert code == 0, output


def test_incomparable_baselines_fail_unless_skipped(tmp_path: Path) -> None:
    old = write_run(tmp_path / "base", BASE, started="20261230T021700Z", scenario={"load": {"rate": "400"}})
    base = baseline(tmp_path)
    new = candidate(tmp_path)
    code, output = gate(old, base, new)
    assert code == 1 and "scenario load.rate: 400 vs 200" in output
    code, output = gate(old, base, new, extra=("--skip-incomparable-baselines",))
    assert code == 0, output
    assert f"left out: {old} — scenario load.rate: 400 vs 200" in output


def test_no_comparable_baseline_left_is_its_own_exit_code(tmp_path: Path) -> None:
    other = write_run(tmp_path / "base", BASE, fingerprint={"cpu_model": "Other CPU"})
    code, output = gate(other, candidate(tmp_path), extra=("--skip-incomparable-baselines",))
    assert code == 4, output
    assert "gate: NO BASELINE (exit 4)" in output


def test_skipping_baselines_does_not_excuse_an_unfit_candidate(tmp_path: Path) -> None:
    other = write_run(tmp_path / "base", BASE, fingerprint={"cpu_model": "Other CPU"})
    code, _ = gate(other, candidate(tmp_path, status="interrupted"), extra=("--skip-incomparable-baselines",))
    assert code == 1


# ---------------------------------------------------------------------------------------------------- usage
def test_without_a_threshold_compare_only_reports(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["compare", str(baseline(tmp_path)), str(candidate(tmp_path, status=None))])
    assert result.exit_code == 0, result.output
    assert "report only (no --fail-on-regression): exit 0" in result.output
    assert "NOT COMPARABLE: candidate: run status is missing" in result.output


def test_a_missing_run_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["compare", str(baseline(tmp_path)), str(tmp_path / "nope"),
                                      "--fail-on-regression", PCT])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_a_directory_that_is_not_a_run_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "compare", str(baseline(tmp_path)), str(tmp_path / "empty"),
         "--fail-on-regression", PCT],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"error: {tmp_path / 'empty'} is not a run directory: run.json is missing"


def test_the_help_documents_the_exit_codes() -> None:
    text = CliRunner().invoke(cli, ["compare", "--help"]).output
    assert "compare [OPTIONS] BASELINE... CANDIDATE" in text
    for line in ("2  usage error", "1  a regression, or the runs are not comparable", "4  no baseline left",
                 "3  cannot judge", "0  no regression"):
        assert line in text


def test_the_comparison_in_json_and_markdown_carries_the_same_decision(tmp_path: Path) -> None:
    base, new = baseline(tmp_path), candidate(tmp_path, {"spark": reps(4000, 4100, 3900), "flink": SAME["flink"]})
    text_code, text = gate(base, new)
    json_code, as_json = gate(base, new, extra=("--format", "json"))
    md_code, as_md = gate(base, new, extra=("--format", "md"))
    assert text_code == json_code == md_code == 1
    data = json.loads(as_json)
    assert data["exit_code"] == 1 and data["gate"] is True and data["threshold_pct"] == 10.0
    p50 = next(c for c in data["changes"] if c["engine"] == "spark" and c["figure"] == "result_p50")
    assert p50["verdict"] == "regressed" and p50["a"]["n"] == 3 and p50["b"]["mean"] == pytest.approx(4000.0)
    assert any(r.startswith("spark result p50 worse by") for r in data["regressions"])
    assert as_md.startswith("**gate: FAIL (exit 1):")
    assert "| spark | result p50 (ms) |" in as_md and "- REGRESSION: spark result p50 worse by" in as_md
    assert text.splitlines()[-1] == data["gate_line"]
