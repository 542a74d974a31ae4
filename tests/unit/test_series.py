"""The per-second series and the engine's processed rate from cumulative input rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.analysis.judge import judge, ordered, visible_ms
from harness.analysis.oracle import Expected
from harness.analysis.series import InputRows, per_second_series
from harness.workload import is_measured


def test_input_rows_interpolate_between_samples_and_hold_after_the_last() -> None:
    rows = InputRows([{"t_ms": 1_000, "rows": 0}, {"t_ms": 3_000, "rows": 4_000}, {"t_ms": 5_000, "rows": 6_000}])
    assert rows.at(2_000) == 2_000 and rows.at(4_000) == 5_000 and rows.at(9_000) == 6_000
    assert np.isnan(rows.at(500))
    steady = InputRows([{"t_ms": 1_000, "rows": 0}, {"t_ms": 5_000, "rows": 6_000}])
    assert steady.rate(1_000, 5_000) == pytest.approx(1_500.0)  # 6 000 rows in 4 s
    assert rows.rate(500, 5_000) is None  # the samples do not reach back that far
    assert not InputRows([{"t_ms": 1, "rows": 1}])  # one sample is no rate


def test_a_counter_that_restarts_never_counts_backwards() -> None:
    rows = InputRows([{"t_ms": 0, "rows": 0}, {"t_ms": 1_000, "rows": 500}, {"t_ms": 2_000, "rows": 100}])
    assert rows.at(2_000) == 500


def test_spark_like_micro_batches_give_the_input_rate_not_a_capacity_figure() -> None:
    # 1 000 rows/s offered; batches end every 2 s each consuming what arrived, each taking 100 ms to process:
    # per-batch processedRowsPerSecond would say 20 000/s; the wall-time rate is 1 000/s
    samples = [{"t_ms": t, "rows": (t - 100)} for t in range(2_100, 60_100, 2_000)]
    assert InputRows(samples).rate(10_000, 50_000) == pytest.approx(1_000.0)


def test_per_second_series_counts_results_output_progress_and_input_lag() -> None:
    recs = pd.DataFrame([("u1", 0, 3, 10_500, 0, 0), ("u1", 0, 5, 12_100, 0, 1), ("u2", 0, 4, 12_300, 1, 0)],
                        columns=["user", "window_start", "count", "append_ms", "partition", "offset"])
    recs["window_end"] = recs["window_start"] + 10_000
    exp = pd.DataFrame([("u1", 0, 5, 5, 9_000.0), ("u2", 0, 4, 4, 9_000.0)],
                       columns=["user", "window_start", "count_min", "count_max", "max_ts"])
    exp["window_end"] = 10_000
    pairs = judge(recs, Expected(exp, 9, 0, 1), read_committed=False).pairs
    measured = is_measured(pairs["window_end"], warmup_end_ms=0, load_end_ms=13_000, watermark_delay_ms=2_000)
    ordered_recs = ordered(recs).assign(visible_ms=lambda f: visible_ms(f, read_committed=False))
    generator = pd.DataFrame({"second": range(14), "target": 1, "achieved": 1})
    rows = InputRows([{"t_ms": 0, "rows": 0}, {"t_ms": 14_000, "rows": 7}])
    series = per_second_series(0, ordered_recs, pairs, measured=measured, per_event=1, generator_seconds=generator,
                               input_rows=rows, min_seconds=14).set_index("second")
    assert len(series) == 14
    assert series.loc[10, "results_per_s"] == 1 and series.loc[10, "processed_rate_output"] == 3
    assert series.loc[12, "results_per_s"] == 2 and series.loc[12, "processed_rate_output"] == 6
    assert series.loc[12, "latency_p50_ms"] == pytest.approx(2_200)
    assert series.loc[3, "processed_rate_engine"] == pytest.approx(0.5)
    assert series.loc[13, "input_lag"] == pytest.approx(14 - 7)  # 14 sent by then, 7 consumed
