"""The report: from runs built in the test, and from frozen result directories of older formats that are never
regenerated (tests/data/report-golden: a synthetic format-1 run with a failed repetition; tests/data/format-v1-smoke:
a real smoke run of session 2, format 1), read through the loader's upgrade."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from harness.report import charts
from harness.report.document import render_report, write_report
from harness.report.fairness import fairness_differences
from harness.report.charts import ENGINE_COLOURS, engine_colours
from harness.report.plots import PLOT_FILES, _fault_spans, plot_charts, write_plots
from harness.results import create_run_dir, load_run, write_repetition, write_run_info, write_run_status
from tests.unit.test_results import FINGERPRINT, make_result, make_scenario

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "report-golden"
RUN_NAME = "20261125T120000Z-unit"


FROZEN_SMOKE = Path(__file__).resolve().parent.parent / "data" / "format-v1-smoke" / "20261125T170602Z-smoke"


def test_frozen_format_1_runs_load_and_report_their_own_figures(tmp_path: Path) -> None:
    run_dir = tmp_path / FROZEN_SMOKE.name
    shutil.copytree(FROZEN_SMOKE, run_dir)
    run = load_run(run_dir)
    spark = run.engines["spark"][0].summary
    assert spark.format_version == 2 and spark.fairness["delivery"].detail == "at-least-once (Kafka sink)"
    assert "p99_9" in spark.generator.publish_delay_ms and "p99.9" not in spark.generator.publish_delay_ms
    written = write_report(run_dir)
    text = written.read_text(encoding="utf-8")
    # the figures of the stored summaries, as REPORT.md showed them before the redesign
    assert "| spark | 3,348 ms ± 120 ms | 3,696 ms ± 489 ms |" in text
    assert "| flink | 2,240 ms ± 184 ms |" in text
    assert "| spark | yes | 894 | 894 | 0 | 0 | 0 | 0 | 0 of 0 |" in text
    for name in ("latency-cdf.png", "latency-over-time.png", "throughput-over-time.png", "resources-over-time.png"):
        assert (run_dir / name).stat().st_size > 1000


def test_report_elsewhere_links_plots_relative_to_itself(tmp_path: Path) -> None:
    run_dir = tmp_path / "results" / RUN_NAME
    shutil.copytree(GOLDEN / RUN_NAME, run_dir)
    target = write_report(run_dir, tmp_path / "REPORT.md")
    text = target.read_text(encoding="utf-8")
    assert f"](results/{RUN_NAME}/latency-cdf.png)" in text
    assert not (run_dir / "report.md").exists()


def test_combined_report_keeps_the_preface_and_every_run(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from harness.cli import cli

    first, second = tmp_path / "a" / RUN_NAME, tmp_path / "b" / RUN_NAME
    shutil.copytree(GOLDEN / RUN_NAME, first)
    shutil.copytree(GOLDEN / RUN_NAME, second)
    preface = tmp_path / "reading.md"
    preface.write_text("# Reading\n\nFlink is faster here.\n")
    target = tmp_path / "REPORT.md"
    result = CliRunner().invoke(cli, ["report", str(first), str(second), "--to", str(target), "--preface", str(preface)])
    assert result.exit_code == 0, result.output
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Reading\n\n## At a glance\n\n| engine | result latency p50 / p99 (at rate) |")
    assert "\nFlink is faster here.\n" in text.split("# Benchmark report")[0]  # the reading follows the table
    assert text.count("# Benchmark report: unit") == 2
    assert "(a/" + RUN_NAME + "/latency-cdf.png)" in text and "(b/" + RUN_NAME + "/latency-cdf.png)" in text


def test_several_runs_need_a_target(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from harness.cli import cli

    run_dir = tmp_path / RUN_NAME
    shutil.copytree(GOLDEN / RUN_NAME, run_dir)
    result = CliRunner().invoke(cli, ["report", str(run_dir), str(run_dir)], standalone_mode=False)
    assert "several run directories (or --preface) need --to FILE" in str(result.exception)


def test_golden_report_says_what_matters(tmp_path: Path) -> None:
    run_dir = tmp_path / RUN_NAME
    shutil.copytree(GOLDEN / RUN_NAME, run_dir)
    text = render_report(load_run(run_dir))
    assert "- **output_mode** differs: spark = update, flink = append. Not like for like: result latency" in text
    assert "Flink job not RUNNING within 60 s" in text
    assert text.count("engine failed: Flink job not RUNNING within 60 s") == 1  # said once, not twice
    assert "flink rep 2: incorrect" not in text  # a failed repetition is not checked
    assert "± " in text  # mean ± CI with repetitions
    assert "| spark | 2/2 |" in text and "| flink | 1/2 |" in text
    # the reading guide states today's keep-up rule, not an older one
    assert "- *sustained* (keep-up verdict, `harness/analysis/keepup.py`): processed ≥ 99% of the achieved rate" in text
    assert "50 % of its starting level" not in text


def test_equal_settings_worded_differently_do_not_differ_but_real_differences_do(tmp_path: Path) -> None:
    from harness.engines.base import FAIRNESS_KEYS, Setting

    common = {key: Setting("x", "x") for key in FAIRNESS_KEYS}
    spark = {**common, "parallelism": Setting("4", "4 (local cores / shuffle partitions)"),
             "delivery": Setting("at-least-once", "at-least-once (Kafka sink)"), "trigger": Setting("micro-batch", "")}
    flink = {**common, "parallelism": Setting("4", "4 slots"), "delivery": Setting("at-least-once", "at-least-once"),
             "trigger": Setting("per record", "per watermark")}
    scenario = make_scenario()
    run_dir = create_run_dir(tmp_path, "unit")
    write_run_info(run_dir, scenario, FINGERPRINT)
    write_repetition(run_dir, make_result("spark", scenario=scenario, fairness=spark))  # type: ignore[arg-type]
    write_repetition(run_dir, make_result("flink", scenario=scenario, fairness=flink))  # type: ignore[arg-type]
    write_run_status(run_dir, "complete")
    text = render_report(load_run(run_dir))
    assert "- **trigger** differs: spark = micro-batch, flink = per record. Not like for like: result latency, CPU." in text
    assert "**parallelism** differs" not in text and "**delivery** differs" not in text
    assert "| parallelism | 4 (local cores / shuffle partitions) | 4 slots |" in text


def test_fairness_differences_in_words() -> None:
    notes = fairness_differences({"a": {"trigger": "1s", "delivery": "exactly-once"}, "b": {"trigger": "n/a"}})
    assert notes == [
        "- **trigger** differs: a = 1s, b = n/a. Not like for like: result latency, CPU.",
        "- **delivery** differs: a = exactly-once, b = not reported. Not like for like: result latency (transactional "
        "output is visible at commit), duplicates.",
    ]


def test_unfinished_run_is_called_so(tmp_path: Path) -> None:
    run_dir = create_run_dir(tmp_path, "unit")
    write_run_info(run_dir, make_scenario(engines=("spark",)), FINGERPRINT)
    write_repetition(run_dir, make_result("spark", growth_ms_per_window=4_000))
    text = render_report(load_run(run_dir))
    assert "**unfinished**" in text
    assert "spark: not sustained at this rate: processed (from output: no input-row counts)" in text
    assert "; latency: grows by 397 ms per s" in text


def test_generator_table_falls_back_to_generator_json_for_older_summaries(tmp_path: Path) -> None:
    import json

    run_dir = tmp_path / RUN_NAME
    shutil.copytree(GOLDEN / RUN_NAME, run_dir)
    for summary_path in run_dir.glob("*/rep-*/summary.json"):
        summary = json.loads(summary_path.read_text())
        for key in ("backend", "workers", "nice"):
            summary["generator"].pop(key)
        summary_path.write_text(json.dumps(summary))
    text = render_report(load_run(run_dir))
    assert "| spark | confluent × 1 | -10 | 0.20 ms ± 0.00 ms | 1.50 ms ± 0.00 ms | 5.00 ms ± 0.00 ms |" in text

    for generator_path in run_dir.glob("spark/rep-*/generator.json"):
        generator_path.unlink()
    text = render_report(load_run(run_dir))
    assert "| spark | – | – | 0.20 ms ± 0.00 ms |" in text


def test_faults_section_puts_each_faults_figures_beside_the_claimed_guarantee(tmp_path: Path) -> None:
    import json

    from tests.unit.synthetic_runs import Rep, write_run

    run_dir = write_run(tmp_path, {"spark": [Rep()], "flink-eo": [Rep()], "flink": [Rep()]})
    measured = {"kind": "kill-engine", "at_ms": 30_000, "downtime_ms": 5_000, "injected_at_ms": 1_000_000,
                "restarted_at_ms": 1_005_000, "recovered_at_ms": 1_021_500, "error": None,
                "results_gap_ms": 24_000, "recovery_ms": 31_250, "baseline_latency_ms": 2_900.0,
                "peak_latency_ms": 27_000.0, "span_from_ms": 995_000, "span_to_ms": 1_036_250, "missing": 0,
                "wrong": 0, "duplicated_pairs": 40, "duplicate_records": 41, "late_allowed": 2_387,
                "late_dropped": 1_455}
    clean = {**measured, "duplicated_pairs": 0, "duplicate_records": 0, "recovery_ms": None}
    cases = {  # engine: (its fault, whole-run missing / duplicated / duplicate records / wrong, claimed delivery)
        "spark": (measured, (0, 1200, 1300, 0), "at-least-once"),
        "flink-eo": (clean, (0, 0, 0, 0), "exactly-once"),
        "flink": (clean, (3, 0, 0, 2), "at-least-once"),
    }
    for engine, (fault, (missing, duplicated, records, wrong), delivery) in cases.items():
        path = run_dir / engine / "rep-1" / "summary.json"
        data = json.loads(path.read_text())
        data["faults"] = [fault]
        data["correctness"].update(missing=missing, duplicated=duplicated, duplicate_records=records, wrong=wrong)
        data["fairness"]["delivery"] = f"{delivery} (as the engine states it)"  # format 1: prose
        path.write_text(json.dumps(data))
    text = render_report(load_run(run_dir))
    faults = text[text.index("## Faults"):]
    sections = {name: faults[faults.index(f"### {name}\n"):] for name in cases}
    assert "21.50 s ms" not in faults  # units said once
    assert ("| 1 | kill-engine | 30 s | 21.50 s | 24.00 s | 31.25 s | 2,900 ms | 27.00 s | 0 / 40 (41) / 0 "
            "| 2,387 / 1,455 | 0 / 1,200 (1,300) / 0 | at-least-once | at-least-once: every answer exact, 1,300 duplicate records |"
            ) in sections["spark"]
    assert ("| not recovered | 2,900 ms | 27.00 s | 0 / 0 (0) / 0 | 2,387 / 1,455 | 0 / 0 (0) / 0 | exactly-once "
            "| exactly-once: every answer exact, no duplicate |") in sections["flink-eo"]
    assert "**answers lost or wrong** (3 missing, 2 wrong) — below the claim |" in sections["flink"]

    run = load_run(run_dir)
    at = [(1_000_000 - run.engines[e][0].summary.timeline.load_start_ms) / 1000 for e in cases]
    colours = engine_colours(list(run.engines))  # each engine's own colour, the same in every plot
    names = list(cases)
    assert [(s.start, s.end, s.color, s.lane) for s in _fault_spans(run)] == [
        (at[0], at[0] + 31.25, colours[names[0]], 0), (at[1], None, colours[names[1]], 1),
        (at[2], None, colours[names[2]], 2)]  # not recovered: open
    assert colours["spark"] == ENGINE_COLOURS["spark"] and colours["flink"] == ENGINE_COLOURS["flink"]


def test_fault_spans_are_drawn_shaded_without_a_legend_entry() -> None:
    line = charts.Line("engine", [0, 10, 20, 30], [1.0, 2.0, 1.5, 1.0])
    panel = charts.Panel([line], spans=[charts.Span(5.0, 12.0, color="C0"), charts.Span(25.0, None, color="C1")])
    figure = charts.draw(charts.Chart([panel]))
    assert figure is not None
    ax = figure.axes[0]
    shades = [p.get_x() for p in ax.patches]  # a full-height shade and a bar in the span's lane each
    assert sorted(round(x, 3) for x in shades) == [5.0, 5.0, 25.0, 25.0]
    assert ax.get_xlim()[1] >= 30 and [text for text, _ in charts.legend_entries(figure)] == ["engine"]


def test_no_faults_section_without_faults(tmp_path: Path) -> None:
    from tests.unit.synthetic_runs import Rep, write_run

    text = render_report(load_run(write_run(tmp_path, {"spark": [Rep()]})))
    assert "## Faults" not in text


# ---------------------------------------------------------------------------------------------------- plots
def drawn_legends(chart: charts.Chart) -> list[str]:
    """Every legend text of the drawn chart, after checking that the artist it names has finite y data."""
    fig = charts.draw(chart)
    assert fig is not None
    texts = []
    for text, artist in charts.legend_entries(fig):
        line = artist.lines[0] if hasattr(artist, "lines") else artist  # an errorbar container: its data line
        assert line is not None, f"legend entry {text!r} names no artist"
        y = np.asarray(line.get_ydata(), dtype=float)
        assert np.isfinite(y).any(), f"legend entry {text!r} has no finite data"
        texts.append(text)
    return texts


def test_every_legend_entry_of_the_frozen_smoke_plots_has_data(tmp_path: Path) -> None:
    run_dir = tmp_path / FROZEN_SMOKE.name
    shutil.copytree(FROZEN_SMOKE, run_dir)
    plots = plot_charts(load_run(run_dir))
    assert set(plots) == set(PLOT_FILES)
    legends = {name: drawn_legends(chart) for name, chart in plots.items()}
    assert legends["latency_cdf"] == ["spark", "flink", "spark", "flink"]  # body and tail panel
    assert charts.draw(plots["latency_cdf"]).axes[1].get_yscale() == "log"
    # the p99 lines the old per-second plot named but never drew (few pairs per second)
    assert legends["latency_time"] == [f"{e} (3 reps pooled) {q}" for e in ("spark", "flink") for q in ("p50", "p99")]
    # flink's input-row counter is sampled every other second: still a drawn line
    assert "flink rep 1 processed (5 s mean)" in legends["throughput_time"]
    assert "spark rep 1 processed (5 s mean)" in legends["throughput_time"]
    resources = charts.draw(plots["resources_time"])
    assert [ax.get_title() for ax in resources.axes[:2]] == ["engine processes: CPU", "engine processes: RSS"]
    assert len(resources.axes) == 8 and legends["resources_time"].count("spark rep 1") == 8


def test_every_legend_entry_of_a_fresh_run_has_data(tmp_path: Path) -> None:
    scenario = make_scenario()
    run_dir = create_run_dir(tmp_path, "unit")
    write_run_info(run_dir, scenario, FINGERPRINT)
    for engine in ("spark", "flink"):
        write_repetition(run_dir, make_result(engine, scenario=scenario))
    run = load_run(run_dir)
    legends = {name: drawn_legends(chart) for name, chart in plot_charts(run).items()}
    assert legends["latency_time"] == ["spark p50", "spark p99", "flink p50", "flink p99"]
    # no input-row counter in these runs: the processed rate comes from the results, as a mean over a window
    assert "flink processed (from results, 10 s mean)" in legends["throughput_time"]
    assert sorted(write_plots(run)) == sorted(PLOT_FILES)
    text = write_report(run_dir).read_text(encoding="utf-8")
    assert "MiB (p99 700 MiB)" in text


def test_a_line_without_finite_points_is_neither_drawn_nor_named(tmp_path: Path) -> None:
    nan = float("nan")
    chart = charts.Chart([charts.Panel([charts.Line("has data", [0, 1, 2], [1.0, nan, 3.0]),
                                        charts.Line("all gaps", [0, 1], [nan, nan])])])
    assert drawn_legends(chart) == ["has data"]
    empty = charts.Chart([charts.Panel([charts.Line("all gaps", [0, 1], [nan, nan])])])
    assert charts.save(empty, tmp_path / "empty.png") is None and not (tmp_path / "empty.png").exists()
