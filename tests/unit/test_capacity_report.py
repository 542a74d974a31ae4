"""``bench report`` of a capacity directory: alone, and as a section of a combined report with runs and a
preface; from a frozen format-1 directory of a real search (tests/data/capacity-v1, read through the upgrade)
and from format-2 directories with several searches."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.capacity.search import judge_trial
from harness.capacity.results import load_capacity
from harness.cli import cli
from harness.results import ResultError
from harness.results.store import load_summary
from tests.unit.capacity_dirs import found, write_capacity_dir

DATA = Path(__file__).resolve().parents[1] / "data"
FROZEN = DATA / "capacity-v1" / "20261125T233358Z-capacity-capacity"
RUN = DATA / "report-golden" / "20261125T120000Z-unit"


def copy(target: Path) -> Path:
    shutil.copytree(FROZEN, target)
    return target


def test_the_frozen_format_1_directory_is_upgraded_with_its_real_trial_figures() -> None:
    data = load_capacity(FROZEN)
    calibration = data["engines"]["calibration"]
    assert data["format_version"] == 3 and data["repetitions"] == 1
    assert data["search"]["trials"] == "fresh"  # formats 1 and 2 only had fresh trials
    assert calibration["capacity"] == 10_000 and calibration["capacity_values"] == [10_000]
    assert calibration["capacity_ci"] is None and calibration["interval"] == [10_000, None]
    [search] = calibration["searches"]
    assert search["load_path_bound"] == 20_000 and search["ended_by"].startswith("bounded by the load path at 20,000")
    for trial in search["trials"]:  # the stored figures are those of the stored summaries, judged again
        outcome = judge_trial(load_summary(FROZEN / trial["run_dir"] / "calibration" / "rep-1" / "summary.json"), None)
        assert outcome.verdict == trial["verdict"] and outcome.figures["p99_ms"] == trial["p99_ms"]


def test_bench_report_of_a_capacity_directory_writes_the_tables_and_plot(tmp_path: Path) -> None:
    directory = copy(tmp_path / FROZEN.name)
    done = CliRunner().invoke(cli, ["report", str(directory)])
    assert done.exit_code == 0, done.output
    text = (directory / "report.md").read_text(encoding="utf-8")
    assert text.startswith("# Capacity: capacity\n\nCapacity directory `20261125T233358Z-capacity-capacity` — "
                           "status: interrupted.")
    assert "One search per engine: no confidence interval (`--repetitions N` gives one)." in text
    assert ("| sustainable throughput | 10,000/s (bracket 10,000 – not reached/s; one search: no confidence "
            "interval) |") in text
    assert "| CPU / RSS at it (trial 2) | 7% / 52 MiB |" in text
    assert "| 50% | 5,000/s | trial 1: 5,000/s (50%) | 2.12 s | 2.19 s |" in text
    assert "| 100% | 10,000/s | trial 2: 10,000/s (100%) | 2.26 s | 2.52 s |" in text
    assert "| 25% | 2,500/s | no passing trial within ±10 % (nearest: 5,000/s) | — | — |" in text
    assert "| search wall time | 364 s, 3 trial(s) |" in text
    assert "| 3 | 20,000/s | load-path | 20,375/s |" in text and "run twice, the first attempt: generator" in text
    assert "![Latency and processed rate against the offered rate](capacity.png)" in text
    assert (directory / "capacity.png").stat().st_size > 10_000


def test_a_capacity_directory_goes_into_a_combined_report_after_runs_and_preface(tmp_path: Path) -> None:
    directory = copy(tmp_path / "results" / FROZEN.name)
    run = tmp_path / "results" / RUN.name
    shutil.copytree(RUN, run)
    preface = tmp_path / "reading.md"
    preface.write_text("# Reading\n\nThe harness's own ceiling comes first.\n")
    target = tmp_path / "REPORT.md"
    done = CliRunner().invoke(cli, ["report", str(run), str(directory), "--to", str(target), "--preface", str(preface)])
    assert done.exit_code == 0, done.output
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Reading\n")
    assert text.index("# Benchmark report: unit") < text.index("# Capacity: capacity")
    assert f"](results/{FROZEN.name}/capacity.png)" in text  # relative to REPORT.md
    assert f"](results/{RUN.name}/latency-cdf.png)" in text
    assert not (directory / "report.md").exists()


def test_several_searches_show_the_mean_interval_each_value_and_which_trial(tmp_path: Path, monkeypatch) -> None:
    directory = write_capacity_dir(tmp_path / "cap", {
        "calibration": [found(40_000, None, ended="max reached")] * 2,
        "spark": [found(10_000, 10_400), found(12_000, 12_500)],
    }, monkeypatch, plot=True)
    target = tmp_path / "out.md"
    done = CliRunner().invoke(cli, ["report", str(directory), "--to", str(target)])
    assert done.exit_code == 0, done.output
    text = target.read_text(encoding="utf-8")
    spark = text[text.index("## spark"):]
    # t(0.975, 1) = 12.706; sd of (10,000, 12,000) = 1,414.2; half-width 12.706 × 1,414.2 / √2 = 12,706
    assert ("| sustainable throughput | 11,000/s ± 12,706/s, 95 % CI (Student t); the 2 searches: 10,000, "
            "12,000/s |") in spark
    assert "| range compared by `bench compare` | 0 – 23,706/s |" in spark
    assert "| share of the calibration ceiling (40,000/s) | 28% |" in spark
    assert "| 100% | 11,000/s | search 1, trial 2: 10,000/s (91%)" in spark  # a tie: the earlier trial
    assert "| 1 | 10,000/s | 10,000 – 10,400/s | 3 | 100 s | precision reached |" in spark
    assert "| search | trial | offered | verdict |" in spark
    assert "](cap/capacity.png)" in text


def test_a_search_without_a_passing_rate_is_left_out_of_the_mean_and_said(tmp_path: Path, monkeypatch) -> None:
    directory = write_capacity_dir(tmp_path / "cap", {
        "spark": [found(10_000, 10_400), found(None, 5_000, ended="the first trial (5,000/s) already failed")],
    }, monkeypatch)
    text = CliRunner().invoke(cli, ["report", str(directory)]) and (directory / "report.md").read_text()
    assert "No trial ran." not in text
    assert ("| sustainable throughput | 10,000/s no confidence interval: only one search found a capacity; the 2 "
            "searches: 10,000, none/s (1 found no passing rate, left out of the mean) |") in text


@pytest.mark.parametrize("content, words", [
    ('{"kind": "capacity", "format_version": 9}', "capacity format_version 9 is not supported"),
    ('{"kind": "run"}', 'not a capacity result (no "kind": "capacity")'),
    ('{"kind": "capacity", "format_version": 2, "engines": {"x": {}}}', "not a valid capacity result (KeyError"),
    ('{"kind": "capacity", "format_version": 1, "search": {}, "engines": {}}', "not a valid capacity result"),
    ("[1, 2", "not readable as JSON"),
])
def test_a_damaged_capacity_json_is_one_line_naming_the_file(tmp_path: Path, content: str, words: str) -> None:
    (tmp_path / "capacity.json").write_text(content)
    with pytest.raises(ResultError) as caught:
        load_capacity(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / 'capacity.json'}: {words}")
    assert "\n" not in str(caught.value)


def test_the_report_is_derived_the_same_directory_gives_the_same_text(tmp_path: Path) -> None:
    directory = copy(tmp_path / FROZEN.name)
    first = CliRunner().invoke(cli, ["report", str(directory)])
    text = (directory / "report.md").read_text()
    second = CliRunner().invoke(cli, ["report", str(directory)])
    assert first.exit_code == second.exit_code == 0
    assert (directory / "report.md").read_text() == text
    assert json.loads((directory / "capacity.json").read_text())["format_version"] == 1  # the stored file is kept


def test_an_engine_interrupted_before_its_first_trial_says_so(tmp_path: Path, monkeypatch) -> None:
    from harness.capacity.search import SearchResult
    from harness.capacity.runner import INTERRUPTED

    directory = write_capacity_dir(tmp_path / "cap", {"spark": [found(10_000, 10_400)],
                                                      "flink": [SearchResult(None, (None, None), [], INTERRUPTED)]},
                                   monkeypatch, status="interrupted")
    text = CliRunner().invoke(cli, ["report", str(directory)]) and (directory / "report.md").read_text()
    flink = text[text.index("## flink"):]
    assert "| sustainable throughput | — (no search found a passing rate) |" in flink
    assert f"| ended by | {INTERRUPTED} |" in flink and "No trial ran." in flink


def test_latency_of_a_trial_that_passed_while_catching_up_is_marked() -> None:
    from harness.report.capacity import _shares_table

    steady = {"rate": 10_000.0, "verdict": "pass", "reason": "", "p50_ms": 3_000.0, "p99_ms": 4_000.0}
    catching = {"rate": 20_000.0, "verdict": "pass", "p50_ms": 17_790.0, "p99_ms": 24_570.0,
                "reason": "passed while still catching up (processed 121% of the achieved rate or latency falling)"}
    text = "\n".join(_shares_table([(1, 1, steady), (1, 2, catching)], 20_000.0, several=False))
    assert "| 50% | 10,000/s | trial 1: 10,000/s (50%) | 3.00 s | 4.00 s |" in text
    assert "| 100% | 20,000/s | trial 2: 20,000/s (100%) — still catching up: includes its start-up | 17.79 s |" in text
