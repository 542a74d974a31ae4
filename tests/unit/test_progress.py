"""The live display: rates over a sliding window (steady at a steady load although the generator reports in
steps), the phase with its time left, results against the expected pairs, and a fresh status per repetition."""

from __future__ import annotations

import io

import pytest

from harness.run.progress import RATE_WINDOW_S, ProgressDisplay, SlidingRate


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_sliding_rate_is_steady_when_counts_arrive_in_uneven_steps() -> None:
    """2,000 ev/s reported about twice a second, the counts lagging by up to 300 ms (a one-second rate here
    jumps between about 1,000 and 3,000 ev/s)."""
    rate = SlidingRate(5.0)
    seen = []
    for i in range(60):
        t = i * 0.5 + (0.3 if i % 3 == 0 else 0.0)  # reports arrive late now and then
        rate.add(t, 2000 * i * 0.5)
        if t >= 5.5:
            seen.append(rate.rate())
    assert min(seen) > 1_850 and max(seen) < 2_150


def test_sliding_rate_forgets_what_is_older_than_its_window_and_starts_over_on_a_smaller_count() -> None:
    rate = SlidingRate(5.0)
    for t in range(0, 11):
        rate.add(float(t), 1000.0 * t if t <= 5 else 5000.0 + 3000.0 * (t - 5))
    assert rate.rate() == pytest.approx(3000.0)  # only the last 5 s, at 3,000/s
    rate.add(11.0, 10.0)
    assert rate.rate() == 0.0


def test_plain_line_shows_the_window_rate_time_left_and_results_against_the_expected_pairs() -> None:
    clock, out = Clock(), io.StringIO()
    display = ProgressDisplay(out, live=False, clock=clock, plain_every_s=1e9)
    display.update(engine="flink", repetition="rep 1/1", phase="warm-up", phase_left_s=10.0, expected=2_400)
    for i in range(1, 21):
        clock.now += 0.5
        display.update(phase="measuring", phase_left_s=30.0 - i * 0.5, sent=1000 * i + (500 if i % 2 else 0),
                       due=1000 * i, results=5 * i)
    line = display.plain_line()
    assert line.startswith("[flink rep 1/1] measuring, 20 s left | ")
    assert "rate 2,000/2,000 ev/s" in line
    assert "results 100 records (2,400 pairs expected)" in line
    display.update(phase="draining", phase_left_s=59.6, answered=2_000, expected=2_400)
    assert "draining, 60 s left" in display.plain_line()
    assert "results 100 records, 2,000/2,400 pairs answered" in display.plain_line()
    display.update(phase="stopping engine")
    assert display.plain_line().startswith("[flink rep 1/1] stopping engine | ")  # no stale time left


def test_a_new_repetition_starts_from_a_fresh_status() -> None:
    clock = Clock()
    display = ProgressDisplay(io.StringIO(), live=False, clock=clock)
    display.update(engine="spark", repetition="rep 1/2", phase="draining", answered=10, expected=10, sent=500)
    clock.now += RATE_WINDOW_S
    display.update(sent=10_500)
    display.update(engine="spark", repetition="rep 2/2", phase="creating topics", sent=0, results=0)
    s = display.status
    assert (s.answered, s.expected, s.achieved_rate, s.phase_left_s) == (None, 0, 0.0, None)


def test_plain_output_prints_a_line_per_phase_not_per_drain_poll() -> None:
    clock, out = Clock(), io.StringIO()
    display = ProgressDisplay(out, live=False, clock=clock, plain_every_s=5.0)
    display.update(engine="spark", repetition="rep 1/1", phase="draining", phase_left_s=60.0)
    for answered in range(0, 100, 10):
        clock.now += 0.25
        display.update(phase="draining", phase_left_s=60.0 - clock.now + 100.0, answered=answered, expected=100)
    assert len(out.getvalue().splitlines()) == 1


def test_the_live_panel_shows_the_same_fields() -> None:
    clock, out = Clock(), io.StringIO()
    with ProgressDisplay(out, live=True, clock=clock) as display:
        display.update(engine="spark", repetition="rep 1/1", phase="measuring", phase_left_s=12.0, expected=50,
                       sent=0, due=0)
        clock.now += 5.0
        display.update(sent=10_000, due=10_000, results=20)
    text = out.getvalue()
    assert "measuring, 12 s left" in text and "20 records (50 pairs expected)" in text
    assert "2,000 achieved / 2,000 target events/s (last 5 s)" in text
