"""``bench compare A B`` on two capacity directories: the change per engine, overlapping ranges as "no detectable
change", the regression gate and its exit codes, and the one-line errors for inputs that cannot be compared."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.report.capacity_compare import compare_capacity, ranges_overlap, render_capacity_comparison
from harness.cli import cli
from tests.unit.capacity_dirs import FINGERPRINT, capacity_scenario, found, write_capacity_dir

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = ROOT / "tests" / "data" / "report-golden" / "20261125T120000Z-unit"
BENCH = [sys.executable, "-m", "harness.cli"]


def pair(tmp_path: Path, monkeypatch, a: dict, b: dict, **b_options) -> tuple[Path, Path]:
    first = write_capacity_dir(tmp_path / "A", a, monkeypatch)
    second = write_capacity_dir(tmp_path / "B", b, monkeypatch, **b_options)
    return first, second


def gate(a: Path, b: Path, *extra: str) -> tuple[int, str]:
    done = CliRunner().invoke(cli, ["compare", str(a), str(b), *extra])
    return done.exit_code, done.output


def test_ranges_overlap_with_touching_ends_and_open_tops() -> None:
    assert ranges_overlap([100, 110], [110, 120])
    assert not ranges_overlap([100, 110], [111, 120])
    assert ranges_overlap([100, None], [300, 320])  # A never failed above 100: B's 300 may be no change
    assert not ranges_overlap([300, 320], [100, 150])


def test_the_same_capacity_is_no_detectable_change_and_passes_the_gate(tmp_path: Path, monkeypatch) -> None:
    a, b = pair(tmp_path, monkeypatch, {"spark": [found(10_000, 10_500)]}, {"spark": [found(10_250, 10_750)]})
    code, text = gate(a, b, "--fail-on-regression", "1")
    assert code == 0, text
    assert "no detectable change" in text and "+2.5 %" in text
    assert "gate: pass (exit 0)" in text


def test_a_lower_capacity_with_brackets_apart_beyond_pct_fails_the_gate(tmp_path: Path, monkeypatch) -> None:
    a, b = pair(tmp_path, monkeypatch, {"spark": [found(10_000, 10_500)]}, {"spark": [found(8_000, 8_400)]})
    code, text = gate(a, b, "--fail-on-regression", "10")
    assert code == 1, text
    assert "REGRESSION: spark: capacity 10,000/s → 8,000/s (-20.0 %, beyond 10 %), ranges do not overlap" in text
    code, text = gate(a, b)  # without the gate: reported, exit 0
    assert code == 0 and "regressed" in text and "report only" in text


def test_a_lower_capacity_within_pct_or_with_overlapping_ranges_passes(tmp_path: Path, monkeypatch) -> None:
    a, b = pair(tmp_path, monkeypatch, {"spark": [found(10_000, 10_500)]}, {"spark": [found(9_500, 9_900)]})
    code, text = gate(a, b, "--fail-on-regression", "10")
    assert code == 0 and " lower" in text  # apart, but only 5 % lower
    a, b = pair(tmp_path / "open", monkeypatch, {"spark": [found(10_000, 10_500)]},
                {"spark": [found(10_250, None, ended="bounded by the load path at 20,500/s")]})
    code, text = gate(a, b, "--fail-on-regression", "10")
    assert code == 0 and "no detectable change" in text  # B passed A's rate and was never seen failing


def test_a_candidate_search_ended_open_below_the_baselines_capacity_cannot_be_judged(
        tmp_path: Path, monkeypatch) -> None:
    """An open bracket (the load path ended B's search) overlaps everything above it: without this rule any drop
    hid behind it as "no detectable change"."""
    for low in (8_000, 2_500):
        a, b = pair(tmp_path / str(low), monkeypatch, {"spark": [found(10_000, 10_500)]},
                    {"spark": [found(low, None, ended=f"bounded by the load path at {2 * low:,}/s")]})
        code, text = gate(a, b, "--fail-on-regression", "10")
        assert code == 3, text
        assert (f"CANNOT JUDGE: spark: the candidate's search ended at {low:,}/s without the engine failing "
                f"(bounded by the load path at {2 * low:,}/s), below the baseline's 10,000/s") in text
        assert "spark   10,000/s (1)  10,000–10,500  " in text and "no detectable change\n" not in text
    # the same drop shown by the engine itself (B failed at a rate A passed) is a regression
    a, b = pair(tmp_path / "engine", monkeypatch, {"spark": [found(10_000, None)]}, {"spark": [found(2_500, 2_700)]})
    code, text = gate(a, b, "--fail-on-regression", "10")
    assert code == 1 and "REGRESSION: spark: capacity 10,000/s → 2,500/s" in text, text


COMMITTED = ROOT / "results"


def test_the_committed_flink_pair_20k_then_10k_is_not_passed_as_no_change() -> None:
    """Two committed searches of scenarios/capacity.yaml, both ended by the load path: Flink ≥ 20k/s, then ≥ 10k/s
    on a loaded machine. The drop may be the engine's or the load path's: cannot judge, exit 3."""
    code, text = gate(COMMITTED / "20261126T011037Z-capacity-capacity", COMMITTED / "20261126T004816Z-capacity-capacity",
                      "--fail-on-regression", "10")
    assert code == 3, text
    assert "CANNOT JUDGE: flink: the candidate's search ended at 10,000/s without the engine failing" in text


def test_a_higher_capacity_is_called_higher(tmp_path: Path, monkeypatch) -> None:
    a, b = pair(tmp_path, monkeypatch, {"spark": [found(10_000, 10_500)]}, {"spark": [found(12_000, 12_500)]})
    comparison = compare_capacity([a], b, 5)
    [change] = comparison.changes
    assert change.verdict == "higher" and change.change_pct == pytest.approx(20.0) and comparison.exit_code == 0


def test_repeated_searches_compare_their_confidence_intervals(tmp_path: Path, monkeypatch) -> None:
    """Three searches a side: 10,000 ± spread vs 9,000 ± spread; apart when the spreads are small, no
    detectable change when one side's spread covers the other."""
    tight_a = [found(10_000, 10_400), found(10_100, 10_500), found(9_900, 10_300)]
    tight_b = [found(9_000, 9_400), found(9_100, 9_500), found(8_900, 9_300)]
    a, b = pair(tmp_path, monkeypatch, {"spark": tight_a}, {"spark": tight_b})
    code, text = gate(a, b, "--fail-on-regression", "5")
    assert code == 1 and "REGRESSION: spark" in text, text
    assert "10,000/s ± 248 (3)" in text  # t(0.975, 2) = 4.303 × 100 / √3
    wide_b = [found(6_000, 6_300), found(12_000, 12_500), found(9_000, 9_400)]
    a, b = pair(tmp_path / "wide", monkeypatch, {"spark": tight_a}, {"spark": wide_b})
    code, text = gate(a, b, "--fail-on-regression", "5")
    assert code == 0 and "no detectable change" in text, text


def test_an_engine_without_capacity_in_b_fails_and_without_capacity_in_a_cannot_be_judged(
        tmp_path: Path, monkeypatch) -> None:
    first_fails = "the first trial (5,000/s) already failed: x; start lower (--min)"
    a, b = pair(tmp_path, monkeypatch, {"spark": [found(10_000, 10_500)]}, {"spark": [found(None, 5_000,
                                                                                             ended=first_fails)]})
    code, text = gate(a, b, "--fail-on-regression", "10")
    assert code == 1 and f"NOT COMPARABLE: candidate: spark has no capacity ({first_fails})" in text
    code, text = gate(b, a, "--fail-on-regression", "10")
    assert code == 3 and "CANNOT JUDGE: spark: the baseline found no capacity" in text


def test_other_workload_slo_or_environment_is_not_comparable(tmp_path: Path, monkeypatch) -> None:
    base = {"spark": [found(10_000, 10_500)]}
    a, b = pair(tmp_path, monkeypatch, base, base, scenario=capacity_scenario(window="4s"))
    code, text = gate(a, b, "--fail-on-regression", "10")
    assert code == 1 and "NOT COMPARABLE: settings: scenario window.size: 5s vs 4s" in text, text
    a, b = pair(tmp_path / "slo", monkeypatch, base, base, scenario=capacity_scenario(slo="p99<=10s"))
    assert gate(a, b, "--fail-on-regression", "10")[0] == 1
    other = {**FINGERPRINT, "cpu_model": "Intel (test)"}
    a, b = pair(tmp_path / "env", monkeypatch, base, base, fingerprint=other)
    code, text = gate(a, b, "--fail-on-regression", "10")
    assert code == 1 and "environment cpu_model" in text
    assert gate(a, b, "--fail-on-regression", "10", "--allow-env-change")[0] == 0


def test_the_search_steps_may_differ_and_are_noted(tmp_path: Path, monkeypatch) -> None:
    base = {"spark": [found(10_000, 10_500)]}
    a, b = pair(tmp_path, monkeypatch, base, base, scenario=capacity_scenario(start=2000, precision="2%"))
    comparison = compare_capacity([a], b, 10)
    assert comparison.exit_code == 0 and comparison.problems == []
    assert any(note.startswith("search precision: 0.05 vs 0.02") for note in comparison.notes)
    assert "note: search start" in render_capacity_comparison(comparison)


def test_an_interrupted_candidate_is_not_comparable(tmp_path: Path, monkeypatch) -> None:
    base = {"spark": [found(10_000, 10_500)]}
    a, b = pair(tmp_path, monkeypatch, base, base, status="interrupted")
    code, text = gate(a, b, "--fail-on-regression", "10")
    assert code == 1 and "NOT COMPARABLE: candidate: status is interrupted, not complete" in text


def test_a_capacity_directory_with_a_run_directory_is_one_line_and_exit_2(tmp_path: Path, monkeypatch) -> None:
    cap = write_capacity_dir(tmp_path / "A", {"spark": [found(10_000, 10_500)]}, monkeypatch)
    run = tmp_path / "run"
    shutil.copytree(RUN_DIR, run)
    done = subprocess.run([*BENCH, "compare", str(cap), str(run), "--fail-on-regression", "5"], cwd=ROOT,
                          capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert done.stderr == (f"error: {cap} is a capacity directory (capacity.json) but {run} is not: bench compare "
                           "compares run directories with run directories, or two capacity directories\n")
    done = CliRunner().invoke(cli, ["compare", str(cap), str(cap), str(cap)], standalone_mode=False)
    assert "capacity directories are compared two at a time (A B); got 2 baselines" in str(done.exception)


def test_a_damaged_capacity_json_is_one_line_naming_the_file(tmp_path: Path, monkeypatch) -> None:
    a = write_capacity_dir(tmp_path / "A", {"spark": [found(10_000, 10_500)]}, monkeypatch)
    b = tmp_path / "B"
    b.mkdir()
    (b / "capacity.json").write_text('{"kind": "capacity", "format_version": 2, "engines": {')
    done = CliRunner().invoke(cli, ["compare", str(a), str(b)], standalone_mode=False)
    assert f"{b / 'capacity.json'}: not readable as JSON" in str(done.exception)
    assert done.exception.exit_code == 2


def test_the_range_of_several_searches_is_their_interval_at_least_as_wide_as_a_bracket() -> None:
    from harness.capacity.results import capacity_interval

    def s(capacity, high):
        return {"capacity": capacity, "bracket": [capacity, high]}

    assert capacity_interval([s(10_000, 10_500)]) == [10_000, 10_500]  # one search: its bracket
    assert capacity_interval([s(10_000, 10_500)] * 3) == [10_000, 10_500]  # no spread: the bracket's width
    low, high = capacity_interval([s(9_000, 9_400), s(10_000, 10_400), s(11_000, 11_400)])
    assert (low, high) == (pytest.approx(10_000 - 4.303 * 1000 / 3**0.5), pytest.approx(10_000 + 4.303 * 1000 / 3**0.5))
    assert capacity_interval([s(10_000, 10_500), s(10_100, None)])[1] is None  # one never failed: open above
    assert capacity_interval([s(None, 5_000)]) == [None, None]


def test_the_capacity_report_says_what_an_event_cost_the_engine_at_each_trial() -> None:
    """The committed Flink search: at 20,000/s Flink used 59 % of a core, 29 core-µs per event."""
    from harness.capacity.results import load_capacity
    from harness.report.capacity import render_capacity

    text = render_capacity(load_capacity(COMMITTED / "20261126T011037Z-capacity-capacity"))
    assert "| engine CPU per event at it (trial 2) | 29 core-µs |" in text
    assert "| 2 | 20,000/s | pass | 20,149/s | 2.81 s | 3.86 s | 59% | 29 core-µs | 949 MiB |  |" in text
