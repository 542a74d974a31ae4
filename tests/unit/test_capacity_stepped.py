"""Stepped capacity trials: the search over stepped runs on fake run functions, the step geometry, each step judged
by the same analysis as a fresh trial on a synthetic two-step run, the generator's self-check per step, and the
send loop ending a load early."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness import workload
from harness.analysis.repetition import RepetitionInputs, analyse_span
from harness.capacity.search import TrialRecord, _refine_rates, stepped_search
from harness.capacity.stepped import judge_step, judge_steps, step_spans, stepped_scenario
from harness.loadgen.events import Encoder, EventPlan
from harness.loadgen.generator import GeneratorResult, SecondStats
from harness.loadgen.schedule import Pacer
from harness.loadgen.stats import SLOW_SEND_MS, SelfCheckLimits, WorkerStats, assess_span
from harness.loadgen.worker import send_loop
from harness.analysis.oracle import expected_counts
from harness.results.model import Timeline
from harness.scenario import parse_scenario, truncated
from tests.unit.test_schedule import START, FakeClock


# ------------------------------------------------------------------------------------------------ the search
class FakeSteps:
    """A stepped run function over an engine of known capacity: a step passes when its rate is at most
    ``capacity``; rates in ``load_path`` (as many times as listed) are load-path verdicts."""

    def __init__(self, capacity: float, load_path: list[float] | None = None) -> None:
        self.capacity = capacity
        self.load_path = list(load_path or [])
        self.runs: list[list[float]] = []

    def __call__(self, rates: list[float]) -> list[TrialRecord]:
        assert rates == sorted(rates) and all(r == int(r) for r in rates)
        self.runs.append(list(rates))
        out = []
        for rate in rates:
            if rate in self.load_path:
                self.load_path.remove(rate)
                out.append(TrialRecord(rate, "load-path", "generator could not drive the load"))
                break
            verdict = "pass" if rate <= self.capacity else "fail"
            out.append(TrialRecord(rate, verdict, "" if verdict == "pass" else "not sustained"))
            if verdict != "pass":
                break
        return out


@pytest.mark.parametrize("capacity", [13_000.0, 17_500.0, 30_000.0, 39_999.0])
@pytest.mark.parametrize("precision", [0.05, 0.10])
def test_the_stepped_search_brackets_a_known_capacity_within_the_precision(capacity: float, precision: float) -> None:
    fake = FakeSteps(capacity)
    found = stepped_search(fake, start=10_000, max=400_000, precision=precision, growth=2, steps_per_run=4)
    low, high = found.bracket
    assert low is not None and high is not None
    assert low <= capacity < high and (high - low) / low <= precision, found
    assert found.capacity == low and found.ended_by.startswith("precision reached")
    assert fake.runs[0] == [10_000, 20_000, 40_000, 80_000]  # climb: x2 per step, stopped at the first failure
    assert len(fake.runs) <= 3  # climb + at most two refine runs for a 2x bracket
    assert all(any(t.rate in run for run in fake.runs) for t in found.trials)


def test_the_climb_goes_on_in_a_new_run_and_stops_at_max() -> None:
    fake = FakeSteps(1e9)
    found = stepped_search(fake, start=5_000, max=100_000, precision=0.05, growth=2, steps_per_run=3)
    assert fake.runs == [[5_000, 10_000, 20_000], [40_000, 80_000, 100_000]]
    assert found.capacity == 100_000 and found.bracket == (100_000, None)
    assert found.ended_by.startswith("max reached")


def test_a_first_step_that_fails_steps_down_in_runs_of_one_step_then_refines() -> None:
    fake = FakeSteps(3_000)
    found = stepped_search(fake, start=10_000, precision=0.05, growth=2, steps_per_run=4)
    assert fake.runs[:3] == [[10_000, 20_000, 40_000, 80_000], [5_000], [2_500]]  # first step failed: halving
    assert found.capacity is not None and 3_000 / 1.05 <= found.capacity <= 3_000
    assert found.ended_by.startswith("precision reached")
    nothing = stepped_search(FakeSteps(5), start=100, precision=0.05, growth=2, steps_per_run=4)
    assert nothing.capacity is None and nothing.ended_by.startswith("no passing rate: every trial down to 12/s")


def test_a_load_path_step_is_run_once_more_in_a_new_run_then_ends_the_search() -> None:
    once = FakeSteps(1e9, load_path=[40_000])
    found = stepped_search(once, start=10_000, max=80_000, precision=0.05, growth=2, steps_per_run=4)
    assert once.runs == [[10_000, 20_000, 40_000, 80_000], [40_000, 80_000]]
    assert found.capacity == 80_000 and found.load_path_bound is None
    twice = FakeSteps(1e9, load_path=[40_000, 40_000])
    found = stepped_search(twice, start=10_000, max=80_000, precision=0.05, growth=2, steps_per_run=4)
    assert twice.runs == [[10_000, 20_000, 40_000, 80_000], [40_000, 80_000]]
    assert found.capacity == 20_000 and found.bracket == (20_000, None)
    assert found.load_path_bound == 40_000 and found.ended_by.startswith("bounded by the load path at 40,000/s")


def test_a_run_that_ended_before_judging_every_step_goes_on_from_the_next_rate() -> None:
    runs: list[list[float]] = []

    def cut_short(rates: list[float]) -> list[TrialRecord]:  # judges only the first step of every run
        runs.append(rates)
        return [TrialRecord(rates[0], "pass" if rates[0] <= 25_000 else "fail", "")]

    found = stepped_search(cut_short, start=10_000, max=400_000, precision=0.25, growth=2, steps_per_run=4)
    assert [run[0] for run in runs[:3]] == [10_000, 20_000, 40_000]
    assert found.bracket[0] is not None and found.bracket[0] <= 25_000 < found.bracket[1]


def test_refine_rates_split_the_bracket_geometrically_into_at_most_steps_per_run_rates() -> None:
    rates = _refine_rates(10_000, 20_000, 0.05, 4)
    assert len(rates) == 4 and all(10_000 < r < 20_000 for r in rates)
    ratios = np.diff(np.log([10_000, *rates, 20_000]))
    assert np.allclose(ratios, math.log(2) / 5, atol=1e-3)
    assert _refine_rates(10_000, 10_900, 0.05, 4) == [10_440]  # two parts of 4.4 %: one step
    assert _refine_rates(10, 11, 0.05, 4) == []  # nothing whole in between


# ----------------------------------------------------------------------------------------- step geometry
def base(**capacity: Any) -> dict[str, Any]:
    return {"name": "st", "duration": "25s", "warmup": "5s", "seed": 3,
            "load": {"rate": "200", "users": 20},
            "window": {"size": "5s", "watermark_delay": "1s"}, "engines": ["calibration"],
            "capacity": {"start": 200, "trial": {"duration": "23s", "warmup": "5s"}, "trials": "stepped",
                         **capacity}}


def test_each_step_measures_exactly_the_windows_of_a_fresh_trial_at_its_rate() -> None:
    sc = parse_scenario(base())
    run = stepped_scenario(sc, "calibration", [200, 400, 800])
    assert run.duration == 2 * 25_000 + 23_000 and run.warmup == 5_000  # step period: 23 s up to a whole slide
    assert [(s.at, s.rate) for s in run.load.shape.steps] == [(25_000, 400), (50_000, 800)]  # type: ignore[union-attr]
    ends = np.arange(5_000, run.duration + 5_000, 5_000)
    fresh = ends[workload.is_measured(ends, warmup_end_ms=5_000, load_end_ms=23_000, watermark_delay_ms=1_000)]
    for k, span in enumerate(step_spans(sc, 3)):
        mine = ends[workload.is_measured(ends, warmup_end_ms=span.measured_from_ms, load_end_ms=span.end_ms,
                                         watermark_delay_ms=1_000)]
        assert (mine - 25_000 * k).tolist() == fresh.tolist() == [10_000, 15_000, 20_000]


def test_a_cut_scenario_keeps_the_steps_that_began_before_the_cut() -> None:
    run = stepped_scenario(parse_scenario(base()), "calibration", [200, 400, 800])
    cut = truncated(run, 30_000)
    assert cut.duration == 30_000 and [s.rate for s in cut.load.shape.steps] == [400]  # type: ignore[union-attr]
    assert truncated(run, 20_000).load.shape.type == "constant"
    with pytest.raises(ValueError, match="cut duration"):
        truncated(run, run.duration + 1)


# ------------------------------------------------------------------------------- judging a synthetic run
T0 = 1_764_072_000_000
RATES = (200, 400)
PERIOD = 25_000


def synthetic_run(*, processed_share_step2: float = 1.0, achieved_share_step2: float = 1.0,
                  slow_step2: int = 0) -> RepetitionInputs:
    """A two-step run (200/s, then 400/s, 25 s each) of an engine that keeps up in step 1 (latency 1.5 s) and in
    step 2 consumes ``processed_share_step2`` of the input (its latency growing when below 1); the generator
    sends ``achieved_share_step2`` of step 2's load, ``slow_step2`` events per second of it late."""
    sc = stepped_scenario(parse_scenario(base()), "calibration", list(RATES))
    duration_s = sc.duration // 1000
    rate = np.array([RATES[0] if s < PERIOD // 1000 else RATES[1] for s in range(duration_s)])
    ts = np.concatenate([T0 + s * 1000 + np.arange(r) * 1000 // r for s, r in enumerate(rate)])
    user = np.arange(ts.size) % 20
    windows = workload.Windows(5_000, 5_000, 1_000)
    expected = expected_counts(user, ts, np.zeros(ts.size, bool), users=20, windows=windows)
    pairs = expected.pairs
    # behind by 3 s per s of step 2 per missing share: 0.9 s per s at a share of 0.7
    behind = np.clip((pairs["window_end"].to_numpy() - T0 - PERIOD) / 1000, 0, None) * 3 * (1 - processed_share_step2)
    append = pairs["window_end"].to_numpy() + 1_500 + (behind * 1000).astype(np.int64)
    records = pd.DataFrame({"user": pairs["user"], "window_start": pairs["window_start"],
                            "window_end": pairs["window_end"], "count": pairs["count_min"], "append_ms": append,
                            "partition": 0, "offset": np.arange(len(pairs))})
    step2 = np.arange(duration_s) >= PERIOD // 1000
    achieved = np.where(step2, (rate * achieved_share_step2).astype(int), rate)
    consumed = np.cumsum(np.where(step2, rate * processed_share_step2, rate))
    seconds = [SecondStats(s, int(rate[s]), int(achieved[s]), 5.0, slow_step2 if step2[s] else 0)
               for s in range(duration_s)]
    generator = GeneratorResult(
        start_epoch_ms=T0, duration_ms=sc.duration, warmup_ms=sc.warmup, backend="confluent", workers=1,
        partitions=1, linger_ms=5, nice=0, events_planned=int(rate.sum()), events_sent=int(achieved.sum()),
        late_events=0, flush_ts=0, target_rate=0.0, achieved_rate=0.0, publish_delay_ms={}, publish_delay_histogram="",
        seconds=seconds, valid=True, reason=None)
    rows = [{"t_ms": T0 + (s + 1) * 1000, "rows": float(c)} for s, c in enumerate(consumed)]
    return RepetitionInputs(engine="calibration", repetition=1, scenario=sc,
                            timeline=Timeline.of(T0, warmup_ms=sc.warmup, duration_ms=sc.duration),
                            records=records, expected=expected, generator=generator,
                            engine_metrics={"input_rows": [{"t_ms": T0, "rows": 0.0}, *rows]})


def test_each_step_is_judged_over_its_own_measured_windows_and_seconds() -> None:
    inputs = synthetic_run()
    spans = step_spans(inputs.scenario, 2)
    first = analyse_span(inputs, spans[0])
    second = analyse_span(inputs, spans[1])
    assert first.throughput.target_rate == pytest.approx(200) and second.throughput.target_rate == pytest.approx(400)
    assert first.throughput.processed_rate == pytest.approx(200, rel=0.01)
    assert second.throughput.processed_rate == pytest.approx(400, rel=0.01)
    assert first.result_latency.pairs == second.result_latency.pairs == 3 * 20  # 3 windows x 20 users each
    assert first.correctness is not None and first.correctness.expected == 4 * 20  # windows ending in (0, 23 s]
    verdicts = [(rate, o.verdict) for rate, _, o, _ in judge_steps(inputs, list(RATES), None, spans)]
    assert verdicts == [(200, "pass"), (400, "pass")]


def test_a_step_the_engine_cannot_keep_up_with_fails_and_the_one_before_still_passes() -> None:
    inputs = synthetic_run(processed_share_step2=0.7)
    judged = judge_steps(inputs, list(RATES), None, step_spans(inputs.scenario, 2))
    assert [o.verdict for _, _, o, _ in judged] == ["pass", "fail"]
    reason = judged[1][2].reason
    assert "not sustained" in reason and "processed" in reason and "latency" in reason


def test_a_step_the_generator_could_not_drive_is_the_load_path_never_the_engine() -> None:
    short = synthetic_run(achieved_share_step2=0.9, processed_share_step2=0.9)
    judged = judge_steps(short, list(RATES), None, step_spans(short.scenario, 2))
    assert [o.verdict for _, _, o, _ in judged] == ["pass", "load-path"]
    assert "achieved 360/s < 99% of target 400/s" in judged[1][2].reason
    slow = synthetic_run(slow_step2=6)  # 6 of 400 events a second (1.5 %) sent later than 100 ms: p99 above it
    outcome, _ = judge_step(slow, step_spans(slow.scenario, 2)[1], None)
    assert outcome.verdict == "load-path" and "p99 publish delay > 100 ms" in outcome.reason
    fine = synthetic_run(slow_step2=3)  # 0.75 %: p99 within the limit
    assert judge_step(fine, step_spans(fine.scenario, 2)[1], None)[0].verdict == "pass"


def test_a_step_the_load_did_not_complete_is_not_judged() -> None:
    inputs = synthetic_run()
    cut = dataclass_replace_timeline(inputs, 40_000)
    assert [rate for rate, *_ in judge_steps(cut, list(RATES), None, step_spans(inputs.scenario, 2))] == [200]


def dataclass_replace_timeline(inputs: RepetitionInputs, duration_ms: int) -> RepetitionInputs:
    import dataclasses

    return dataclasses.replace(inputs, scenario=truncated(inputs.scenario, duration_ms),
                               timeline=Timeline.of(T0, warmup_ms=5_000, duration_ms=duration_ms))


def test_the_span_self_check_uses_only_the_spans_seconds() -> None:
    target = np.full(20, 1000)
    ok = assess_span(target, target, np.full(20, 5.0), np.zeros(20, int), 5, SelfCheckLimits())
    assert ok == (True, None)
    late = np.full(20, 5.0)
    late[2] = 1_500.0
    valid, reason = assess_span(target, target, late, np.zeros(20, int), 5,
                                SelfCheckLimits(max_any_delay_ms=1_000.0), first_second=40)
    assert not valid and "(second 42 of the load)" in reason  # type: ignore[operator]
    assert SLOW_SEND_MS == SelfCheckLimits().max_p99_delay_ms


# ------------------------------------------------------------------------------------- ending a load early
def test_the_send_loop_sends_nothing_intended_at_or_after_the_stop() -> None:
    sc = parse_scenario({"name": "t", "duration": "4s", "warmup": "1s",
                         "window": {"size": "500ms", "watermark_delay": "0ms"}, "load": {"rate": "1k", "users": 10},
                         "engines": ["x"]}, check_engines=False)
    plan = EventPlan.from_scenario(sc, START)
    clock = FakeClock(START - 200.0)
    stats = WorkerStats(START, START + sc.warmup, START + sc.duration)
    seqs: list[int] = []

    def send(values: Any, keys: Any) -> None:
        seqs.extend(json.loads(v)["seq"] for v in values)

    send_loop(plan, range(plan.chunks), Encoder(10, 0), send, Pacer(clock, clock.sleep), stats,
              stop_at=lambda: START + 2_000.0)
    assert seqs == list(range(2_000)) and stats.sent == 2_000  # exactly the events of a 2 s load
    assert stats.measured_until_ms == START + 2_000 and stats.sent_measured == 1_000
    assert clock.now_ms < START + 2_010  # it did not wait out the rest of the schedule


def test_the_trial_mode_is_strict_in_the_scenario_and_set_from_the_command_line() -> None:
    from harness.capacity.runner import with_capacity_overrides
    from harness.errors import ScenarioError

    sc = parse_scenario(base(trials="fresh"))
    assert with_capacity_overrides(sc, trials="stepped").capacity.trials == "stepped"  # type: ignore[union-attr]
    with pytest.raises(ScenarioError, match="capacity.trials"):
        parse_scenario(base(trials="stepwise"))
    with pytest.raises(ScenarioError, match="capacity.steps_per_run"):
        parse_scenario(base(steps_per_run=1))


class View:
    """What the runner hands a LoadWatch, with only what the generator check reads."""

    def __init__(self, scenario: Any, elapsed_ms: float, sent: int, due: int) -> None:
        from harness.loadgen.generator import Progress

        self.scenario = scenario
        self.progress = Progress(elapsed_ms, sent, due, 10**9, scenario.duration, T0)


def test_a_generator_behind_its_schedule_ends_the_run_as_a_load_path_step() -> None:
    from harness.capacity.stepped import BEHIND_FOR_S, StepWatch
    from harness.run.progress import ProgressDisplay

    sc = stepped_scenario(parse_scenario(base()), "calibration", [200, 400, 800])
    watch = StepWatch("calibration", [200, 400, 800], step_spans(sc, 3), None, ProgressDisplay())
    watch.next_step = 1  # step 1 passed live; step 2 (400/s, 25-48 s) is not due for judging at 30 s
    # 4.5 s behind at 400/s in step 2: within D (1 s) + the slack for stale progress counts (4 s)
    assert watch.during_load(View(sc, 30_000, 10_000, 11_800)) is None
    assert watch.during_load(View(sc, 30_500, 10_000, 12_400)) is None  # 6 s behind: seen once, not yet long
    watch._behind_since -= BEHIND_FOR_S  # type: ignore[operator]  # ... as if the first look was 2 s ago
    assert watch.during_load(View(sc, 32_500, 10_000, 13_200)) == 34_000  # still behind: ended 1-2 s ahead
    assert watch.load_path is not None and watch.load_path[0] == 1
    assert "8.0 s behind its schedule" in watch.load_path[1]
    assert watch.during_load(View(sc, 33_000, 10_000, 14_000)) is None  # asked once
    passed = [(200.0, step_spans(sc, 3)[0], TrialOutcomeFor("pass"), None)]
    record = watch.load_path_record(passed, "trials/x")
    assert record is not None and (record.rate, record.verdict, record.figures["step"]) == (400, "load-path", 2)
    failed = [(200.0, step_spans(sc, 3)[0], TrialOutcomeFor("fail"), None)]
    assert watch.load_path_record(failed, "trials/x") is None  # a step before it failed: that one ends the search


def TrialOutcomeFor(verdict: str) -> Any:  # noqa: N802 - reads like the type it builds
    from harness.capacity.search import TrialOutcome

    return TrialOutcome(verdict, "")  # type: ignore[arg-type]
