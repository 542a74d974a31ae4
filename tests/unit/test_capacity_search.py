"""The capacity search on fake trial functions: which rates it tries, the bracket, when it stops, SLO handling in
the trial verdict, and that the load path's limit is never reported as the engine's capacity."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.capacity.search import SearchResult, TrialOutcome, judge_trial, search
from harness.results import summary_from_json
from harness.results.model import upgrade
from harness.scenario import parse_slo

GOLDEN_SUMMARY = (Path(__file__).resolve().parents[1] / "data" / "report-golden" / "20261125T120000Z-unit"
                  / "spark" / "rep-1" / "summary.json")


def engine_with_capacity(capacity: float, *, load_path: float | None = None, error_at: float | None = None):
    """A fake trial: passes at or below ``capacity``; ``load-path`` at or above ``load_path``; records calls."""
    calls: list[float] = []

    def trial(rate: float) -> TrialOutcome:
        calls.append(rate)
        if error_at is not None and rate >= error_at:
            return TrialOutcome("error", "collector failed")
        if load_path is not None and rate >= load_path:
            return TrialOutcome("load-path", "achieved 90% of the target")
        if rate <= capacity:
            return TrialOutcome("pass", "")
        return TrialOutcome("fail", "not sustained: input lag grows")

    return trial, calls


def run(capacity: float, **kwargs) -> tuple[SearchResult, list[float]]:
    fake = {k: kwargs.pop(k) for k in ("load_path", "error_at") if k in kwargs}
    trial, calls = engine_with_capacity(capacity, **fake)
    options = {"start": 1000, "max": None, "precision": 0.05, "growth": 2.0, **kwargs}
    return search(trial, **options), calls


def test_grows_until_the_first_failure_then_bisects_to_the_precision() -> None:
    result, calls = run(3500)
    assert calls[:3] == [1000, 2000, 4000]  # geometric growth; 4000 is the first failure
    assert calls[3:] == [3000, 3500, 3750, 3625]  # bisection between 2000 and 4000
    assert result.capacity == 3500
    assert result.bracket == (3500, 3625)
    assert (3625 - 3500) / 3500 <= 0.05
    assert result.ended_by.startswith("precision reached")
    assert [t.verdict for t in result.trials] == ["pass", "pass", "fail", "pass", "pass", "fail", "fail"]
    assert result.load_path_bound is None


@pytest.mark.parametrize("capacity", [1234, 3500, 7777, 12_000, 45_678])
def test_the_capacity_is_always_within_the_precision_of_the_truth(capacity: float) -> None:
    result, calls = run(capacity, precision=0.05)
    assert result.capacity is not None and result.capacity <= capacity
    low, high = result.bracket
    assert low == result.capacity and high is not None and high > capacity
    assert (high - low) / low <= 0.05
    assert len(calls) == len(set(calls))  # no rate is tried twice


def test_a_coarser_precision_takes_fewer_trials() -> None:
    fine, fine_calls = run(3500, precision=0.02)
    coarse, coarse_calls = run(3500, precision=0.2)
    assert len(coarse_calls) < len(fine_calls)
    low, high = coarse.bracket
    assert (high - low) / low <= 0.2


def test_max_reached_while_still_passing_ends_the_search_with_an_open_bracket() -> None:
    result, calls = run(1_000_000, max=5000)
    assert calls == [1000, 2000, 4000, 5000]  # the last step is clipped to max
    assert result.capacity == 5000
    assert result.bracket == (5000, None)
    assert result.ended_by.startswith("max reached")


def test_a_start_that_already_fails_steps_down_until_it_brackets_the_capacity() -> None:
    """An engine of capacity 300/s searched from 1,000/s: halving 1,000 → 500 → 250 (passes), then bisecting
    (it once ended after one trial with "start lower (--min)")."""
    result, calls = run(300)
    assert calls[:3] == [1000, 500, 250]
    assert result.capacity is not None and 300 / 1.05 <= result.capacity <= 300
    low, high = result.bracket
    assert low == result.capacity and high is not None and (high - low) / low <= 0.05
    assert result.ended_by.startswith("precision reached")


def test_an_engine_below_the_lowest_step_has_no_capacity_and_says_how_low_it_went() -> None:
    result, calls = run(5)
    assert calls == [1000, 500, 250, 125, 62, 31, 16]
    assert result.capacity is None and result.bracket == (None, 16)
    assert result.ended_by.startswith("no passing rate: every trial down to 16/s failed")


def test_the_load_path_ends_the_search_and_is_never_the_capacity() -> None:
    result, calls = run(50_000, load_path=6000)
    assert calls == [1000, 2000, 4000, 8000]
    assert result.capacity == 4000  # the highest rate that passed, not the rate the load path could not drive
    assert result.load_path_bound == 8000
    assert result.bracket == (4000, None)  # the engine never failed: its limit is not known
    assert result.ended_by.startswith("bounded by the load path at 8,000/s")


def test_the_load_path_during_bisection_keeps_the_bracket_found_so_far() -> None:
    calls: list[float] = []

    def trial(rate: float) -> TrialOutcome:  # the generator stumbles at 3000/s only (noise on a busy machine)
        calls.append(rate)
        if rate == 3000:
            return TrialOutcome("load-path", "publish delay p99 2 s")
        return TrialOutcome("pass" if rate <= 3500 else "fail", "")

    result = search(trial, start=1000, precision=0.05, growth=2.0)
    assert calls == [1000, 2000, 4000, 3000]
    assert result.capacity == 2000
    assert result.bracket == (2000, 4000)
    assert result.load_path_bound == 3000


def test_a_trial_that_cannot_be_judged_ends_the_search() -> None:
    result, calls = run(50_000, error_at=4000)
    assert calls == [1000, 2000, 4000]
    assert result.capacity == 2000
    assert "could not be judged" in result.ended_by and result.load_path_bound is None


def test_whole_rates_stop_the_bisection_when_the_bracket_cannot_be_split() -> None:
    result, calls = run(2, start=1, precision=0.01)
    assert result.capacity == 2 and result.bracket == (2, 3)
    assert "cannot be split" in result.ended_by


def test_a_growth_that_rounds_to_the_same_rate_still_advances() -> None:
    result, calls = run(3, start=1, growth=1.2, precision=0.5)
    assert calls[:4] == [1, 2, 3, 4]
    assert result.capacity == 3


def test_bad_parameters_are_refused() -> None:
    trial, _ = engine_with_capacity(1)
    with pytest.raises(ValueError, match="growth > 1"):
        search(trial, start=1, precision=0.05, growth=1.0)


# ------------------------------------------------------------------------------------------------ trial verdict
def golden(**changes) -> object:
    summary = summary_from_json(upgrade(json.loads(GOLDEN_SUMMARY.read_text())))
    return dataclasses.replace(summary, **changes)


def test_a_valid_sustained_correct_trial_passes_and_carries_its_figures() -> None:
    summary = golden()
    assert summary.valid and summary.sustained.sustained and summary.correctness.correct  # the template
    outcome = judge_trial(summary, None)
    assert outcome.verdict == "pass" and outcome.reason == ""
    assert outcome.figures["p99_ms"] == summary.result_latency.p99_ms
    assert outcome.figures["cpu_mean_percent"] == summary.resources["spark"].cpu_mean_percent


def test_the_slo_fails_a_trial_whose_percentile_is_above_the_limit() -> None:
    summary = golden()
    p99 = summary.result_latency.p99_ms
    assert judge_trial(summary, parse_slo(f"p99<={int(p99) + 1}ms")).verdict == "pass"
    outcome = judge_trial(summary, parse_slo(f"p99<={int(p99) - 1}ms"))
    assert outcome.verdict == "fail"
    assert outcome.reason.startswith(f"SLO p99<={int(p99) - 1}ms: result latency p99 was")


def test_not_sustained_or_incorrect_fails_with_the_criteria_in_words() -> None:
    summary = golden()
    behind = dataclasses.replace(summary.sustained, sustained=False, failed=["input lag: grows by 900 records/s"])
    assert judge_trial(golden(sustained=behind), None).reason == "not sustained: input lag: grows by 900 records/s"
    wrong = dataclasses.replace(summary.correctness, correct=False, wrong=3)
    outcome = judge_trial(golden(correctness=wrong), None)
    assert outcome.verdict == "fail" and "3 wrong" in outcome.reason


def test_a_generator_that_could_not_drive_the_load_is_the_load_path_not_a_failure() -> None:
    summary = golden()
    generator = dataclasses.replace(summary.generator, valid=False, reason="achieved 80% of the target rate")
    behind = dataclasses.replace(summary.sustained, sustained=False, failed=["processed: 80%"])
    outcome = judge_trial(golden(generator=generator, valid=False, invalid_reasons=[generator.reason],
                                 sustained=behind), None)
    assert outcome.verdict == "load-path"
    assert outcome.reason == "achieved 80% of the target rate"


def test_an_engine_failure_fails_the_trial_and_other_invalid_runs_cannot_be_judged() -> None:
    failed = judge_trial(golden(status="failed", error="boom", valid=False, invalid_reasons=["engine failed: boom"]),
                         None)
    assert failed.verdict == "fail" and failed.reason == "engine failed: boom"
    broken = judge_trial(golden(valid=False, invalid_reasons=["collector failed: x"]), None)
    assert broken.verdict == "error" and broken.reason == "collector failed: x"
    ours = judge_trial(golden(status="failed", error="harness error: KeyError: 'x'", valid=False,
                              invalid_reasons=["engine failed: harness error: KeyError: 'x'"]), None)
    assert ours.verdict == "error" and ours.reason == "harness error: KeyError: 'x'"


def test_behind_with_falling_latency_is_unsettled_not_a_failure() -> None:
    """Spark at 20k/s on a cold JVM: processed 47 % of the rate in the measured period while its latency fell
    1,000 ms per s (the start-up backlog being worked off): the rate was not judged yet."""
    summary = golden()
    catching_up = dataclasses.replace(summary.sustained, sustained=False, latency_slope_ms_per_s=-999.6,
                                      failed=["processed: 9,466/s is 47.3% of the achieved 20,000/s"])
    outcome = judge_trial(golden(sustained=catching_up), None)
    assert outcome.verdict == "unsettled"
    assert outcome.reason.startswith("latency falling 1,000 ms per s: still working off its start-up; not sustained")
    rising = dataclasses.replace(catching_up, latency_slope_ms_per_s=400.0)
    assert judge_trial(golden(sustained=rising), None).verdict == "fail"


def test_a_pass_while_still_catching_up_says_its_latency_includes_the_start_up() -> None:
    """Spark at 10k/s in a 15 s warm-up trial: processed 131 % of the rate, latency falling: it kept up, but its
    latency figures are not steady state; the trial passes and says so."""
    summary = golden()
    catching_up = dataclasses.replace(summary.sustained, sustained=True, processed_ratio=1.31,
                                      latency_slope_ms_per_s=-200.0)
    outcome = judge_trial(golden(sustained=catching_up), None)
    assert outcome.verdict == "pass" and outcome.reason.startswith("passed while still catching up (processed 131%")
    settled = dataclasses.replace(catching_up, processed_ratio=1.0, latency_slope_ms_per_s=2.0)
    assert judge_trial(golden(sustained=settled), None).reason == ""
