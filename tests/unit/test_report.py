"""The report: golden markdown from a stored run directory (tests/data/report-golden), plots, warnings.

Regenerate the stored run and the golden report after an intended change (then review the diff):
``.venv/bin/python -m tests.unit.test_report``
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from harness.report import fairness_differences, render_report, write_report
from harness.results import create_run_dir, load_run, write_repetition, write_run_info, write_run_status
from tests.unit.test_results import FINGERPRINT, make_result, make_scenario

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "report-golden"
RUN_NAME = "20261125T120000Z-unit"


def test_report_matches_the_golden_file(tmp_path: Path) -> None:
    run_dir = tmp_path / RUN_NAME
    shutil.copytree(GOLDEN / RUN_NAME, run_dir)
    written = write_report(run_dir)
    assert written == run_dir / "report.md"
    assert written.read_text(encoding="utf-8") == (GOLDEN / "report.md").read_text(encoding="utf-8")
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
    assert text.startswith("# Reading\n\nFlink is faster here.\n")
    assert text.count("# Benchmark report: unit") == 2
    assert "(a/" + RUN_NAME + "/latency-cdf.png)" in text and "(b/" + RUN_NAME + "/latency-cdf.png)" in text


def test_several_runs_need_a_target(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from harness.cli import cli

    run_dir = tmp_path / RUN_NAME
    shutil.copytree(GOLDEN / RUN_NAME, run_dir)
    result = CliRunner().invoke(cli, ["report", str(run_dir), str(run_dir)], standalone_mode=False)
    assert "several run directories (or --preface) need --to FILE" in str(result.exception)


def test_golden_report_says_what_matters() -> None:
    text = (GOLDEN / "report.md").read_text(encoding="utf-8")
    assert "- **output_mode** differs: spark = update, flink = append." in text
    assert "flink rep 2: engine failed: Flink job not RUNNING within 60 s" in text
    assert "flink rep 2: incorrect" not in text  # a failed repetition is not checked
    assert "± " in text  # mean ± CI with repetitions
    assert "| spark | 2/2 |" in text and "| flink | 1/2 |" in text


def test_fairness_differences_in_words() -> None:
    notes = fairness_differences({"a": {"trigger": "1s", "delivery": "exactly-once"}, "b": {"trigger": "n/a"}})
    assert notes == [
        "- **trigger** differs: a = 1s, b = n/a. Figures influenced by it are not like for like.",
        "- **delivery** differs: a = exactly-once, b = not reported. Figures influenced by it are not like for like.",
    ]


def test_unfinished_run_is_called_so(tmp_path: Path) -> None:
    run_dir = create_run_dir(tmp_path, "unit")
    write_run_info(run_dir, make_scenario(engines=("spark",)), FINGERPRINT)
    write_repetition(run_dir, make_result("spark", growth_ms_per_window=4_000))
    text = render_report(load_run(run_dir))
    assert "**unfinished**" in text
    assert "spark: not sustained: result latency grew by" in text


def build_golden() -> None:
    """Write the stored run directory and its golden report (run by hand; see the module docstring)."""
    if GOLDEN.exists():
        shutil.rmtree(GOLDEN)
    GOLDEN.mkdir(parents=True)
    scenario = make_scenario(repetitions=2)
    run_dir = create_run_dir(GOLDEN, "unit", now=dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.timezone.utc))
    write_run_info(run_dir, scenario, FINGERPRINT)
    spark_fair = {"output_mode": "update", "trigger": "processingTime 1s", "watermark": "2s", "parallelism": "2"}
    flink_fair = {"output_mode": "append", "trigger": "n/a", "watermark": "2s", "parallelism": "2"}
    write_repetition(run_dir, make_result("spark", 1, scenario=scenario, latency_ms=3100, seed=1, fairness=spark_fair))
    write_repetition(run_dir, make_result("flink", 1, scenario=scenario, latency_ms=2200, seed=2, fairness=flink_fair, cpu=60))
    write_repetition(run_dir, make_result("spark", 2, scenario=scenario, latency_ms=3300, seed=3, fairness=spark_fair))
    write_repetition(
        run_dir,
        make_result(
            "flink", 2, scenario=scenario, seed=4, fairness=flink_fair, status="failed",
            error="Flink job not RUNNING within 60 s",
        ),
    )
    write_run_status(run_dir, "complete")
    (run_dir / "run-status.json").write_text(
        (run_dir / "run-status.json").read_text().replace(
            dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"), "2026-11-25"
        )
    )
    (GOLDEN / "report.md").write_text(render_report(load_run(run_dir), _golden_links()), encoding="utf-8")


def _golden_links() -> dict[str, str]:
    return {
        "latency_cdf": "latency-cdf.png",
        "latency_time": "latency-over-time.png",
        "throughput_time": "throughput-over-time.png",
        "resources_time": "resources-over-time.png",
    }


if __name__ == "__main__":
    build_golden()


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
