"""bench compare: a real shift beyond the spread regresses; noise within the spread and single runs do not."""

from __future__ import annotations

from pathlib import Path

from harness.compare import compare, judge
from harness.report import FIGURE_BY_KEY
from harness.results import create_run_dir, write_repetition, write_run_info, write_run_status
from harness.stats import estimate
from tests.unit.test_results import FINGERPRINT, make_result, make_scenario


def write_run(base: Path, name: str, latencies: list[float], *, seed: int = 1, drop_pairs: int = 0) -> Path:
    scenario = make_scenario(repetitions=len(latencies), engines=("spark",))
    run_dir = create_run_dir(base, name)
    write_run_info(run_dir, scenario, FINGERPRINT)
    for rep, latency in enumerate(latencies, start=1):
        result = make_result(
            "spark", rep, scenario=scenario, latency_ms=latency, jitter_ms=50, seed=seed + rep, drop_pairs=drop_pairs
        )
        write_repetition(run_dir, result)
    write_run_status(run_dir, "complete")
    return run_dir


def test_real_shift_beyond_the_spread_fails(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", [2500, 2550, 2450])
    b = write_run(tmp_path, "b", [3500, 3550, 3450])
    text, regressed = compare(a, b, fail_on_regression_pct=10)
    assert regressed
    assert "REGRESSION: spark result p50 worse by" in text


def test_noise_within_the_spread_passes(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", [2500, 3100, 2200])
    b = write_run(tmp_path, "b", [2900, 2300, 3000])
    text, regressed = compare(a, b, fail_on_regression_pct=10)
    assert not regressed, text
    assert "no regression" in text


def test_shift_below_the_threshold_passes(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", [2500, 2502, 2498])
    b = write_run(tmp_path, "b", [2600, 2602, 2598])  # +4 %: beyond the tiny spread, below 10 %
    _, regressed = compare(a, b, fail_on_regression_pct=10)
    assert not regressed


def test_single_repetitions_are_never_judged(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", [2500])
    b = write_run(tmp_path, "b", [5000])
    text, regressed = compare(a, b, fail_on_regression_pct=10)
    assert not regressed
    assert "not judged" in text and "use repetitions >= 2" in text


def test_becoming_incorrect_is_a_regression(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", [2500, 2500])
    b = write_run(tmp_path, "b", [2500, 2500], drop_pairs=2)
    text, regressed = compare(a, b, fail_on_regression_pct=10)
    assert regressed and "REGRESSION: spark: correct in A, incorrect in B" in text


def test_without_a_threshold_compare_only_reports(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", [2500, 2550, 2450])
    b = write_run(tmp_path, "b", [3500, 3550, 3450])
    _, regressed = compare(a, b, fail_on_regression_pct=None)
    assert not regressed


def test_judge_direction_for_rates() -> None:
    figure = FIGURE_BY_KEY["processed_rate"]
    change = judge("spark", figure, estimate([1000, 1010, 990]), estimate([800, 810, 790]), 5)
    assert change.verdict == "regressed" and round(change.worse_pct) == 20
    better = judge("spark", figure, estimate([800, 810, 790]), estimate([1000, 1010, 990]), 5)
    assert better.verdict == "improved"
