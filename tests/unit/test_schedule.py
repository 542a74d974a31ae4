"""Rate shapes and the pacer, driven by a fake clock (no test sleeps)."""

from __future__ import annotations

import json
import math
import pickle
from typing import Any

import numpy as np
import pytest

from harness.loadgen.events import Encoder, EventPlan
from harness.loadgen.schedule import Pacer, RateSchedule
from harness.loadgen.stats import (
    SelfCheckLimits,
    WorkerStats,
    _record_all,
    assess,
    delay_percentiles_ms,
    new_histogram,
)
from harness.loadgen.worker import send_loop
from harness.scenario import LoadConfig, parse_scenario

START = 1_764_072_000_000


class FakeClock:
    """Epoch ms that only moves when the code under test sleeps (or the test says so)."""

    def __init__(self, now_ms: float) -> None:
        self.now_ms = now_ms
        self.slept_s: list[float] = []

    def __call__(self) -> float:
        return self.now_ms

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.slept_s.append(seconds)
        self.now_ms += seconds * 1000.0


def schedule_of(duration_ms: int, **load: Any) -> RateSchedule:
    return RateSchedule.from_load(LoadConfig.model_validate(load), duration_ms)


def drive(schedule: RateSchedule) -> np.ndarray:
    """Run the pacer over the whole schedule with a fake clock; return each event's send time (epoch ms)."""
    clock = FakeClock(START - 50.0)
    pacer = Pacer(clock, clock.sleep)
    intended = START + schedule.intended_offsets(0, schedule.total_events)
    sent = np.empty_like(intended)
    i = 0
    while i < intended.size:
        stop, now = pacer.next_due(intended, i)
        sent[i:stop] = now
        i = stop
    return sent


def per_second(sent_ms: np.ndarray, seconds: int) -> list[int]:
    return np.bincount(((sent_ms - START) // 1000).astype(np.int64), minlength=seconds).tolist()


# ------------------------------------------------------------------------------------------------ every shape
def test_constant_sends_one_event_every_interval() -> None:
    schedule = schedule_of(5_000, rate=1000)
    sent = drive(schedule)
    assert schedule.total_events == 5000
    np.testing.assert_allclose(sent - START, np.arange(5000, dtype=np.float64))
    assert per_second(sent, 5) == [1000] * 5
    assert schedule.per_second().tolist() == [1000] * 5


def test_steps_change_rate_at_their_offsets() -> None:
    schedule = schedule_of(
        6_000, rate=1000, shape={"type": "steps", "steps": [{"at": "2s", "rate": 3000}, {"at": "4s", "rate": 0},
                                                           {"at": "5s", "rate": 500}]}
    )
    expected = [1000, 1000, 3000, 3000, 0, 500]
    assert per_second(drive(schedule), 6) == expected
    assert schedule.per_second().tolist() == expected
    assert schedule.peak_rate == 3000


def test_steps_at_zero_replace_the_base_rate() -> None:
    schedule = schedule_of(2_000, rate=1000, shape={"type": "steps", "steps": [{"at": "0s", "rate": 200}]})
    assert schedule.per_second().tolist() == [200, 200]


def test_ramp_follows_the_integral_of_a_linear_rate() -> None:
    # 1000/s rising to 3000/s over 4 s, then flat: N(t) = t + t²/4000 (t in ms) for t <= 4000.
    schedule = schedule_of(6_000, rate=1000, shape={"type": "ramp", "to": 3000, "over": "4s"})
    sent = drive(schedule)
    assert per_second(sent, 6) == [1250, 1750, 2250, 2750, 3000, 3000]
    i = np.arange(0, 8_000, dtype=np.float64)  # the events of the rising part: N(4000) = 8000
    t = schedule.intended_offsets(0, i.size)
    np.testing.assert_allclose(t + t * t / 4000.0, i, atol=1e-6)


def test_ramp_without_over_spans_the_whole_duration() -> None:
    schedule = schedule_of(4_000, rate=1000, shape={"type": "ramp", "to": 0})
    # 1000/s falling linearly to 0 at 4 s: 875, 625, 375, 125
    assert schedule.per_second().tolist() == [875, 625, 375, 125]
    assert per_second(drive(schedule), 4) == [875, 625, 375, 125]


def test_bursts_start_every_period_after_the_first() -> None:
    schedule = schedule_of(
        4_000, rate=1000, shape={"type": "burst", "rate": 5000, "every": "1s", "length": "200ms"}
    )
    sent = drive(schedule)
    assert per_second(sent, 4) == [1000, 1800, 1800, 1800]
    in_burst = (sent - START) % 1000 < 200
    # 200 ms at 5000/s in each of the 3 bursts
    assert int(in_burst[sent - START >= 1000].sum()) == 3 * 1000
    assert schedule.peak_rate == 5000


def test_sine_follows_the_integral_of_the_sine() -> None:
    # 1000 + 500 sin(2π t / 4 s): each quarter period adds ±500·4/(2π) ≈ 318.3 to the mean of 1000
    schedule = schedule_of(8_000, rate=1000, shape={"type": "sine", "amplitude": 500, "period": "4s"})
    bump = 500 * 4 / (2 * math.pi)
    analytic = [1000 + bump, 1000 + bump, 1000 - bump, 1000 - bump] * 2
    got = per_second(drive(schedule), 8)
    assert np.abs(np.array(got) - np.array(analytic)).max() <= 1.0
    assert schedule.per_second().tolist() == got
    assert schedule.peak_rate == pytest.approx(1500, rel=1e-4)


def test_sine_with_full_amplitude_reaches_zero_without_going_negative() -> None:
    schedule = schedule_of(4_000, rate=1000, shape={"type": "sine", "amplitude": 1000, "period": "4s"})
    offsets = schedule.intended_offsets(0, schedule.total_events)
    assert np.all(np.diff(offsets) > 0)
    assert schedule.total_events == 4000


# --------------------------------------------------------------------------------------------- slicing
@pytest.mark.parametrize(
    "shape",
    [
        "constant",
        {"type": "steps", "steps": [{"at": "1s", "rate": 0}, {"at": "1500ms", "rate": 777}]},
        {"type": "ramp", "to": 12345, "over": "2s"},
        {"type": "burst", "rate": 9000, "every": "700ms", "length": "130ms"},
        {"type": "sine", "amplitude": 3000, "period": "1300ms"},
    ],
)
def test_slices_partition_the_events_and_hold_their_intended_times(shape: Any) -> None:
    schedule = schedule_of(3_000, rate=3333, shape=shape)
    edges = [0, 1, 99, 100, 250, 1000, 1001, 1499, 1500, 2222, 3000]
    ranges = [schedule.index_range(a, b) for a, b in zip(edges, edges[1:])]
    assert ranges[0][0] == 0 and ranges[-1][1] == schedule.total_events
    assert all(prev[1] == nxt[0] for prev, nxt in zip(ranges, ranges[1:]))
    for (a, b), (first, stop) in zip(zip(edges, edges[1:]), ranges):
        offsets = schedule.intended_offsets(first, stop)
        assert np.all(offsets >= a - 1e-6) and np.all(offsets < b + 1e-6)
    everything = schedule.intended_offsets(0, schedule.total_events)
    assert np.all(np.diff(everything) >= 0)
    np.testing.assert_allclose(schedule.cumulative(everything), np.arange(everything.size), atol=1e-6)


# ------------------------------------------------------------------------------------------------- pacer
def test_pacer_waits_until_due_and_never_sends_early() -> None:
    clock = FakeClock(START)
    pacer = Pacer(clock, clock.sleep)
    intended = START + np.array([10.0, 10.0, 25.0])
    stop, now = pacer.next_due(intended, 0)
    assert (stop, now) == (2, START + 10.0)
    assert clock.slept_s == [pytest.approx(0.010)]
    stop, now = pacer.next_due(intended, 2)
    assert (stop, now) == (3, START + 25.0)


def test_pacer_hands_out_the_backlog_in_bounded_batches_when_behind() -> None:
    clock = FakeClock(START + 1000.0)  # a second behind: nothing is waited for
    pacer = Pacer(clock, clock.sleep, max_batch=300)
    intended = START + np.arange(1000, dtype=np.float64)
    batches = []
    i = 0
    while i < intended.size:
        stop, _ = pacer.next_due(intended, i)
        batches.append(stop - i)
        i = stop
    assert batches == [300, 300, 300, 100]
    assert clock.slept_s == []


def test_pacer_keeps_waiting_when_a_sleep_returns_early() -> None:
    clock = FakeClock(START)
    naps: list[float] = []

    def short_sleep(seconds: float) -> None:  # an OS sleep may return before the time asked for
        naps.append(seconds)
        clock.now_ms += seconds * 1000.0 / 2

    pacer = Pacer(clock, short_sleep)
    stop, now = pacer.next_due(START + np.array([8.0]), 0)
    assert stop == 1 and now >= START + 8.0
    assert len(naps) > 1


def test_wait_until_sleeps_to_the_start() -> None:
    clock = FakeClock(START - 1500.0)
    Pacer(clock, clock.sleep).wait_until(START)
    assert clock.now_ms == pytest.approx(START)


# ------------------------------------------------------------------------------- send loop and self-check
def run_send_loop(rate: str, cost_ms_per_record: float, workers: int = 1) -> tuple[WorkerStats, list[int]]:
    """The worker send loop over a 4 s load with a fake clock; sending a record costs ``cost_ms_per_record``."""
    sc = parse_scenario({"name": "t", "duration": "4s", "warmup": "1s", "window": {"size": "500ms", "watermark_delay": "0ms"},
                         "load": {"rate": rate, "users": 10}, "engines": ["x"]}, check_engines=False)
    plan = EventPlan.from_scenario(sc, START)
    clock = FakeClock(START - 200.0)
    seqs: list[int] = []
    total = WorkerStats(START, START + sc.warmup, START + sc.duration)
    for worker in range(workers):  # one after the other on one fake clock: each must keep its own schedule
        clock.now_ms = START - 200.0
        stats = WorkerStats(START, START + sc.warmup, START + sc.duration)

        def send(values: Any, keys: Any) -> None:
            seqs.extend(json.loads(v)["seq"] for v in values)
            clock.now_ms += cost_ms_per_record * len(values)

        send_loop(plan, range(worker, plan.chunks, workers), Encoder(10, 0), send, Pacer(clock, clock.sleep), stats)
        total.merge(pickle.loads(pickle.dumps(stats)))  # as shipped from a worker process
    return total, seqs


def test_send_loop_sends_every_event_once_on_schedule() -> None:
    stats, seqs = run_send_loop("5k", cost_ms_per_record=0.001, workers=3)
    assert sorted(seqs) == list(range(20_000)) and stats.sent == 20_000
    assert stats.sent_per_second.tolist() == [5000] * 4
    assert stats.sent_measured == 15_000
    percentiles = delay_percentiles_ms(stats.histogram)
    assert stats.histogram.get_total_count() == 15_000  # the warm-up second is not in the histogram
    assert percentiles["max"] < 1.0
    valid, reason = assess(15_000, stats.sent_measured, 3000, percentiles, stats.delay_max_per_second, 1,
                           SelfCheckLimits())
    assert valid and reason is None


def test_send_loop_that_cannot_keep_up_is_invalid() -> None:
    # 0.4 ms per record holds 2500/s: half of the 5000/s asked for, so the publish delay grows and the rate falls
    stats, seqs = run_send_loop("5k", cost_ms_per_record=0.4)
    assert sorted(seqs) == list(range(20_000))  # open loop: everything is still sent, late
    percentiles = delay_percentiles_ms(stats.histogram)
    valid, reason = assess(15_000, stats.sent_measured, 3000, percentiles, stats.delay_max_per_second, 1,
                           SelfCheckLimits())
    assert not valid
    assert reason is not None and reason.startswith("generator could not drive the load: achieved 2,500/s < 99% "
                                                    "of target 5,000/s")
    assert stats.delay_max_per_second[-1] > stats.delay_max_per_second[1] + 1000


def test_growing_delay_and_large_p99_are_invalid_even_at_full_rate() -> None:
    quiet = {"p50": 1.0, "p90": 1.0, "p99": 2.0, "p99_9": 3.0, "max": 4.0}
    growing = np.array([0, 5, 10, 50, 100, 150, 200, 250, 300, 350], dtype=float)
    valid, reason = assess(900, 900, 9000, quiet, growing, 1, SelfCheckLimits())
    assert not valid and reason is not None and reason.startswith("publish delay keeps growing: ")
    noisy = {**quiet, "p99": 250.0}
    valid, reason = assess(900, 900, 9000, noisy, np.full(10, 5.0), 1, SelfCheckLimits())
    assert not valid and reason is not None and "p99 publish delay 250.0 ms > 100 ms" in reason


def test_bulk_histogram_recording_equals_recording_one_by_one() -> None:
    rng = np.random.default_rng(5)
    delays_ms = rng.lognormal(mean=0.0, sigma=3.0, size=20_000)
    bulk, single = new_histogram(), new_histogram()
    _record_all(bulk, delays_ms)
    for us in np.clip(np.rint(delays_ms * 1000), 1, None).astype(np.int64).tolist():
        single.record_value(us)
    for p in (50, 90, 99, 99.9, 100):
        assert bulk.get_value_at_percentile(p) == single.get_value_at_percentile(p)


def test_pacer_wakes_at_most_once_per_min_interval_and_delays_by_at_most_that() -> None:
    clock = FakeClock(START)
    wakes: list[float] = []

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        wakes.append(clock.now_ms)

    pacer = Pacer(clock, sleep, min_interval_ms=1.0)
    intended = START + np.arange(0, 100, 0.05)  # 20k events/s for 100 ms
    i, delays, batches = 0, [], 0
    while i < intended.size:
        stop, now = pacer.next_due(intended, i)
        delays.extend(now - intended[i:stop])
        batches += 1
        i = stop
    assert batches <= 101  # one wake-up per millisecond, not one per event (2000)
    assert min(delays) >= 0 and max(delays) <= 1.0 + 1e-9


def test_one_late_send_anywhere_in_the_load_invalidates_the_run() -> None:
    quiet = {"p50": 1.0, "p90": 1.0, "p99": 2.0, "p99_9": 3.0, "max": 4.0}
    spike = np.full(10, 5.0)
    spike[0] = 1_500.0  # one event of the warm-up sent 1.5 s late: a 2 s watermark with 1 s disorder leaves 1 s
    limits = SelfCheckLimits(max_any_delay_ms=1_000.0)
    valid, reason = assess(900, 900, 9000, quiet, spike, 2, limits)
    assert not valid and "1,500 ms after its intended time (second 0" in reason
    assert assess(900, 900, 9000, quiet, spike, 2, SelfCheckLimits())[0]  # the measured-period checks alone pass


def test_the_whole_load_limit_is_the_watermark_delay_minus_the_disorder() -> None:
    from harness.loadgen.generator import default_limits
    from harness.scenario import parse_scenario

    sc = parse_scenario({"name": "x", "duration": "30s", "load": {"rate": 10, "disorder": {"fraction": 0.1,
                         "max_delay": "500ms"}}, "window": {"size": "5s", "watermark_delay": "2s"},
                         "engines": ["spark"]})
    assert default_limits(sc).max_any_delay_ms == 1_500.0
