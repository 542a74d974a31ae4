"""bench compare's parts: Welch's test against a published example, the smallest detectable change, the verdict
of one figure, the settings and fingerprint rules, and the figure registry shared with the report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.analysis.stats import welch
from harness.report import figures

from harness.report import results_tables as report
from harness.report.compare import (
    EXIT_USAGE,
    FINGERPRINT_KEYS,
    CompareInputError,
    environment_differences,
    judge,
    setting_differences,
)
from harness.report.compare import compare as compare_runs
from harness.report.compare_text import render
from harness.report.figures import FIGURE_BY_KEY
from tests.unit.synthetic_runs import GOLDEN, reps, write_run

ROOT = Path(__file__).resolve().parents[2]

# Wikipedia "Welch's t-test", example 1: t = -2.46, df = 24.99, p = 0.021 (A2 - A1 = +2.17)
A1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
A2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]


def test_welch_matches_the_published_example() -> None:
    test = welch(A1, A2)
    assert test is not None
    assert test.difference / test.standard_error == pytest.approx(2.46, abs=0.005)
    assert test.df == pytest.approx(24.99, abs=0.01)
    assert test.critical_t == 2.064  # t(0.975, 24): df rounded down, the conservative side
    assert test.significant


def test_welch_needs_two_values_a_side() -> None:
    assert welch([1.0], [1.0, 2.0]) is None
    assert welch([1.0, 2.0], []) is None


def test_the_smallest_detectable_change_is_where_significance_starts() -> None:
    """Shifting B moves the difference, not the spread: just below the detectable change the test says noise,
    just above it says significant."""
    a = [1000.0, 1030.0, 970.0, 1010.0]
    b = [1005.0, 985.0, 1020.0]
    detectable = welch(a, b).detectable  # type: ignore[union-attr]
    base = sum(b) / len(b) - sum(a) / len(a)
    below = welch(a, [v - base + 0.99 * detectable for v in b])
    above = welch(a, [v - base + 1.01 * detectable for v in b])
    assert below is not None and not below.significant
    assert above is not None and above.significant


def test_no_spread_on_either_side_makes_any_difference_significant() -> None:
    assert welch([5.0, 5.0], [5.0, 5.0]).significant is False  # type: ignore[union-attr]
    assert welch([5.0, 5.0], [6.0, 6.0]).significant is True  # type: ignore[union-attr]


def test_judge_direction_for_rates_and_latencies() -> None:
    rate, latency = FIGURE_BY_KEY["processed_rate"], FIGURE_BY_KEY["result_p50"]
    lower = judge("spark", rate, [1000, 1010, 990], [800, 810, 790], 5)
    assert lower.verdict == "regressed" and round(lower.worse_pct or 0) == 20
    assert judge("spark", rate, [800, 810, 790], [1000, 1010, 990], 5).verdict == "improved"
    assert judge("spark", latency, [800, 810, 790], [1000, 1010, 990], 5).verdict == "regressed"


@pytest.mark.parametrize("a, b, verdict", [
    ([2500, 3100, 2200], [2900, 2300, 3000], "within noise"),  # a shift inside the spread
    ([2500, 2502, 2498], [2600, 2602, 2598], "below threshold"),  # significant, +4 % < 10 %
    ([2500], [5000], "cannot judge"),
    ([2500, 2500], [], "cannot judge"),  # measured in A, not in B
    ([], [2500, 2500], "n/a"),  # a figure the baseline did not have
])
def test_judge_verdicts(a: list[float], b: list[float], verdict: str) -> None:
    change = judge("spark", FIGURE_BY_KEY["result_p50"], a, b, 10)
    assert change.verdict == verdict


def test_settings_are_compared_resolved() -> None:
    scenario = {"name": "x", "duration": "60s", "warmup": "10s", "load": {"rate": "5k"}, "window": {"size": "10s"},
                "engines": ["spark"]}
    same = {**scenario, "name": "y", "duration": "1m", "load": {"rate": 5000}, "window": {"size": "10000ms"}}
    assert setting_differences(scenario, same) == []
    other = {**scenario, "load": {"rate": "6k"}, "engines": [{"engine": "spark", "settings": {"trigger": "2s"}}]}
    assert setting_differences(scenario, other) == [
        "scenario load.rate: 5k vs 6k",
        "engine spark.settings.trigger: 0s vs 2s",  # the engine's default written out
    ]


def test_fingerprint_keys_cover_cpu_cores_and_versions() -> None:
    assert set(FINGERPRINT_KEYS) >= {"cpu_model", "cpu_logical", "versions"}
    a = {"cpu_model": "X", "cpu_logical": 2, "versions": {"spark": "4.2.0"}, "hostname": "a", "python": "3.11.7"}
    b = {**a, "hostname": "b", "python": "3.11.9"}
    assert environment_differences(a, b) == []
    assert environment_differences(a, {**b, "versions": {"spark": "4.2.1"}}) == ["version spark: 4.2.0 vs 4.2.1"]


def test_a_comparison_shows_the_detectable_change_per_figure(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {"spark": reps(2500, 2550, 2450)})
    b = write_run(tmp_path / "b", {"spark": reps(2500, 2700, 2300)}, started="20270102T021700Z")
    comparison = compare_runs([a], b, 10)
    text = render(comparison)
    p50 = next(c for c in comparison.changes if c.figure.key == "result_p50")
    assert p50.detectable_pct is not None and p50.detectable_pct > 10
    assert f"±{p50.detectable_pct:.1f} %" in text
    assert "note: spark: a 10 % change of result p50" in text
    assert comparison.exit_code == 0


def test_report_and_compare_share_one_figure_registry() -> None:
    assert report.FIGURE_BY_KEY is figures.FIGURE_BY_KEY
    assert report.figure_estimate is figures.figure_estimate


def test_compare_does_not_import_the_renderer() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, harness.report.compare, harness.report.history; print('harness.report.document' in sys.modules)"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    assert done.stdout.strip() == "False"


def test_a_stored_run_with_a_failed_repetition_never_passes_as_candidate() -> None:
    """The frozen golden run (flink rep 2 failed) against itself: identical figures, but the gate fails."""
    comparison = compare_runs([GOLDEN], GOLDEN, 10)
    assert comparison.exit_code == 1
    assert comparison.problems == ["candidate: flink rep 2: failed: Flink job not RUNNING within 60 s"]
    assert comparison.regressions == []


def test_a_baseline_given_twice_counts_once(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {"spark": reps(2500)})
    b = write_run(tmp_path / "b", {"spark": reps(2500, 2510)}, started="20270102T021700Z")
    comparison = compare_runs([a, a], b, 10)
    assert len(comparison.baselines) == 1 and comparison.exit_code == 3  # one value in A: cannot judge


def test_an_unreadable_summary_is_a_usage_error_naming_the_run(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {"spark": reps(2500, 2510)})
    (a / "spark" / "rep-2" / "summary.json").write_text("{truncated")
    with pytest.raises(CompareInputError) as err:
        compare_runs([a], a, 10)
    assert str(err.value).startswith(str(a))  # the loader's words (damaged JSON), naming the file in the run
    assert err.value.exit_code == EXIT_USAGE == 2


def test_engine_cost_is_core_microseconds_per_processed_event() -> None:
    """0.5 core at 2,000 events/s is 250 core-µs per event; compared like every figure, lower is better."""
    import dataclasses

    from harness.report.figures import engine_cost
    from harness.results import ResourceStats
    from tests.unit.test_results import make_result

    summary = make_result("spark").summary
    stats = ResourceStats(cpu_mean_percent=50.0, cpu_max_percent=60.0, rss_max_bytes=None, samples=30)
    assert summary.engine_core_us_per_event is not None  # stored by the analysis
    assert engine_cost(summary) == summary.engine_core_us_per_event
    older = dataclasses.replace(summary, resources={"spark": stats}, engine_core_us_per_event=None,
                                throughput=dataclasses.replace(summary.throughput, processed_rate=2_000.0))
    assert engine_cost(older) == pytest.approx(250.0)  # a summary written before it was stored: the same rule
    assert engine_cost(dataclasses.replace(older, resources={})) is None
    assert FIGURE_BY_KEY["engine_cost"].lower_is_better and "engine_cost" in compare_keys()


def compare_keys() -> tuple[str, ...]:
    from harness.report.compare import COMPARED

    return COMPARED
