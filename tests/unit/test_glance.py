"""The at-a-glance table, from committed run and capacity directories: a row per engine with the figures a user
decides on, each read from the stored results, and where they came from."""

from __future__ import annotations

from pathlib import Path

from harness.capacity.results import load_capacity
from harness.report.glance import glance_section
from harness.results import load_run

RESULTS = Path(__file__).resolve().parents[2] / "results"


def rows(lines: list[str]) -> dict[str, list[str]]:
    out = {}
    for line in lines:
        if line.startswith("| **"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            out[cells[0].strip("*")] = cells[1:]
    return out


def test_the_committed_runs_at_a_glance() -> None:
    runs = [load_run(RESULTS / name) for name in ("20261125T165952Z-high_rate", "20261126T011723Z-failure")]
    capacities = [(RESULTS / name, load_capacity(RESULTS / name))
                  for name in ("20261126T004816Z-capacity-capacity", "20261126T011037Z-capacity-capacity")]
    lines = glance_section(runs, capacities)
    assert lines[0] == "## At a glance"
    table = rows(lines)
    spark, flink, flink_eo = table["spark"], table["flink"], table["flink-eo"]
    assert spark[0] == "3.92 s / 4.59 s at 60,000/s (high_rate)" and flink[0] == "2.27 s / 2.42 s at 60,000/s (high_rate)"
    # of two Flink searches both ended by the load path, the higher bound; Spark's only one
    assert flink[1] == ("≥ 20,000/s (bounded by the load path at 40,000/s; `20261126T011037Z-capacity-capacity`)")
    assert spark[1].startswith("≥ 40,000/s (bounded by the load path at 80,000/s")
    assert spark[2].endswith("core-µs at 60,000/s (high_rate)") and spark[3].endswith("MiB")
    assert spark[4] == "exact in 2 of 2 runs"
    assert flink[5] == "at-least-once / 200 duplicate pair(s)" and flink_eo[5] == "exactly-once / no duplicate"
    assert flink_eo[0] == "–"  # it ran only with a fault: no steady-state latency
    assert flink_eo[6].endswith(" s")
    assert table["calibration"][0] == "–" and table["calibration"][1].startswith("≥ 40,000/s")
    assert any(line.startswith("Machine: AMD EPYC, 2 logical CPUs. From: `20261125T165952Z-high_rate`") for line in lines)


def test_a_run_report_opens_with_the_table_of_its_engines() -> None:
    from harness.report.document import render_report

    text = render_report(load_run(RESULTS / "20261125T165952Z-high_rate"))
    assert text.index("## At a glance") < text.index("## Warnings")
    assert "| **spark** | 3.92 s / 4.59 s at 60,000/s (high_rate) |" in text


def test_every_plot_gives_an_engine_its_own_colour_and_says_where_it_comes_from() -> None:
    from harness.report.charts import ENGINE_COLOURS, engine_colours
    from harness.report.plots import plot_charts

    run = load_run(RESULTS / "20261125T165952Z-high_rate")
    charts = plot_charts(run)
    stamp = "run 20261125T165952Z-high_rate · scenario high_rate · AMD EPYC, 2 CPUs · 2026-11-25"
    assert {chart.stamp for chart in charts.values()} == {stamp}
    styles = {line.label: line.style["color"] for line in charts["latency_cdf"].panels[0].lines}
    assert styles == {"spark": ENGINE_COLOURS["spark"], "flink": ENGINE_COLOURS["flink"]}
    # the same in the capacity plot's order (flink first there) and for labels of plug-in engines
    assert engine_colours(["flink", "spark"]) == {"flink": ENGINE_COLOURS["flink"], "spark": ENGINE_COLOURS["spark"]}
    others = engine_colours(["capped", "liar", "spark"])
    assert others["spark"] == ENGINE_COLOURS["spark"] and len(set(others.values())) == 3
    assert engine_colours(["liar"])["liar"] == engine_colours(["spark", "liar"])["liar"]  # chosen by its name


def test_history_whiskers_stop_at_zero() -> None:
    from harness.analysis.stats import Estimate
    from harness.report import history

    class Point:  # the two fields _history_panel reads
        def __init__(self, estimate: Estimate) -> None:
            self.figures = {"spark": {"result_p50": estimate}}
            self.note = ""

    points = [Point(Estimate(mean=100.0, half_width=300.0, n=3, stdev=120.0)),
              Point(Estimate(mean=200.0, half_width=50.0, n=3, stdev=20.0))]
    panel = history._history_panel(points, history.FIGURE_BY_KEY["result_p50"], [0, 1], {0.0: "a", 1.0: "b"}, ())
    [line] = panel.lines
    below, above = line.yerr
    assert list(below) == [100.0, 50.0] and list(above) == [300.0, 50.0]
