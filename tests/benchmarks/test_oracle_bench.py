"""Oracle speed (pytest-benchmark). CI runs each once (``--benchmark-disable`` in pyproject); measure with
``pytest tests/benchmarks --benchmark-enable``. Sizes are kept small enough for CI; docs/measurements.md gives the 10M
figure measured by hand with ``expected_for_run`` on a 100 s × 100k/s scenario."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from harness.analysis.judge import judge
from harness.analysis.oracle import Expected, expected_for_run
from harness.scenario import Scenario, parse_scenario

START = 1_764_072_000_000


def scenario(events_per_s: str, window: dict[str, str]) -> Scenario:
    return parse_scenario(
        {"name": "bench", "duration": "10s", "load": {"rate": events_per_s, "users": 1000, "distribution": "zipf",
                                                       "disorder": {"fraction": 0.1, "max_delay": "1s"},
                                                       "late": {"fraction": 0.001, "by": "20s"}},
         "window": window, "engines": ["x"]},
        check_engines=False,
    )


# 2 s windows: a valid scenario measures >= 3 windows in its 10 s; hopping by 200 ms puts each event in 10 windows
@pytest.mark.parametrize("window", [{"size": "2s"}, {"size": "2s", "slide": "200ms"}], ids=["tumbling", "hopping"])
def test_expected_counts_1m_events(benchmark: Any, window: dict[str, str]) -> None:
    sc = scenario("100k", window)
    expected: Expected = benchmark(expected_for_run, sc, START)
    assert expected.events == 1_000_000


def test_judge_an_exact_output_with_updates(benchmark: Any) -> None:
    expected = expected_for_run(scenario("100k", {"size": "2s", "slide": "200ms"}), START)
    final = expected.pairs[["user", "window_start", "window_end", "count_min"]].rename(columns={"count_min": "count"})
    early = final.assign(count=final["count"] // 2)  # an update-mode engine: a partial count, then the final one
    output = pd.concat([early, final], ignore_index=True)
    output = output.assign(append_ms=range(len(output)), partition=0, offset=range(len(output)))
    judgement = benchmark(judge, output, expected, read_committed=False)
    assert judgement.correctness.correct and judgement.correctness.records == 2 * len(final)
