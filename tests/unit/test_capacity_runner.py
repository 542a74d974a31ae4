"""``bench capacity`` without engines: the trial scenarios, the engine order, the command-line overrides and their
errors, and the files written from a finished search."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.capacity import SearchResult, TrialRecord
from harness.capacity_report import capacity_json, capacity_markdown, plot_capacity
from harness.capacity_runner import (
    CapacityOutcome,
    EngineSearch,
    engines_to_search,
    trial_scenario,
    with_capacity_overrides,
)
from harness.cli import cli
from harness.errors import ScenarioError
from harness.scenario import CapacityConfig, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "scenarios" / "capacity.yaml"


def scenario(**capacity):
    return parse_scenario({
        "name": "cap", "duration": "40s", "warmup": "10s", "load": {"rate": "2k", "users": 100},
        "window": {"size": "5s", "watermark_delay": "2s"}, "engines": ["calibration", "spark"],
        "faults": [{"at": "10s", "kind": "kill-engine"}],
        "capacity": {"trial": {"duration": "25s", "warmup": "5s"}, **capacity},
    })


def test_a_trial_is_one_engine_at_one_constant_rate_for_the_trial_duration() -> None:
    trial = trial_scenario(scenario(), "spark", 12_345)
    assert trial.load.rate == 12_345 and trial.load.shape.type == "constant"
    assert (trial.duration, trial.warmup, trial.repetitions) == (25_000, 5_000, 1)
    assert [entry.name for entry in trial.engines] == ["spark"]
    assert trial.faults == []  # faults belong to `bench run`, not to a capacity trial


def test_the_calibration_engine_is_searched_first_unless_switched_off() -> None:
    assert engines_to_search(scenario(), None) == ["calibration", "spark"]
    assert engines_to_search(scenario(), ["spark"]) == ["calibration", "spark"]
    assert engines_to_search(scenario(calibrate=False), ["spark"]) == ["spark"]


def test_command_line_overrides_go_into_the_capacity_block_and_are_validated() -> None:
    changed = with_capacity_overrides(scenario(), start=3000, max=9000, precision=0.1, trial_duration=30_000)
    config = changed.capacity
    assert (config.start, config.max, config.precision, config.trial.duration) == (3000, 9000, 0.1, 30_000)
    with pytest.raises(ScenarioError) as caught:
        with_capacity_overrides(scenario(), trial_duration=6_000, source="x.yaml")
    assert caught.value.lines == [
        "x.yaml (with command-line overrides): capacity.trial.duration: measures 0 window(s), at least 3 are "
        "needed (a window counts when it ends after capacity.trial.warmup and at least window.watermark_delay "
        "before the load ends); make capacity.trial.duration longer than 22s, or shorten capacity.trial.warmup "
        "or window.size (got 6s)"
    ]


def test_a_scenario_without_a_capacity_block_gets_the_defaults() -> None:
    plain = parse_scenario({"name": "p", "duration": "60s", "load": {"rate": "1k"}, "engines": ["calibration"]})
    assert with_capacity_overrides(plain, start=100).capacity == CapacityConfig(start=100)


def test_the_cli_refuses_a_bad_precision_and_slo_before_anything_starts() -> None:
    runner = CliRunner()
    done = runner.invoke(cli, ["capacity", str(SHIPPED), "--precision", "0.05"])
    assert done.exit_code == 2 and "must be a percentage" in done.output
    done = runner.invoke(cli, ["capacity", str(SHIPPED), "--slo", "p95<=1s"])
    assert done.exit_code == 2 and "must be a latency objective such as p99<=10s" in done.output


def test_the_shipped_capacity_scenario_searches_calibration_then_both_jvm_engines() -> None:
    shipped = load_scenario(SHIPPED)
    assert engines_to_search(shipped, None) == ["calibration", "spark", "flink"]
    assert trial_scenario(shipped, "flink", shipped.capacity.start).measured_windows >= 3


# ---------------------------------------------------------------------------------------------------- outputs
def trial(rate: float, verdict: str, p50: float, reason: str = "") -> TrialRecord:
    figures = {"p50_ms": p50, "p99_ms": p50 * 1.5, "processed_rate": rate if verdict == "pass" else rate * 0.8,
               "achieved_rate": rate, "cpu_mean_percent": rate / 100, "rss_max_bytes": 100 * 2**20}
    return TrialRecord(rate, verdict, reason, figures)  # type: ignore[arg-type]


def outcome(tmp_path: Path) -> CapacityOutcome:
    calibration = SearchResult(40_000, (40_000, None), [trial(10_000, "pass", 2100), trial(20_000, "pass", 2200),
                               trial(40_000, "pass", 2300), trial(80_000, "load-path", 9000, "achieved 80%")],
                               "bounded by the load path at 80,000/s: achieved 80%", 80_000)
    engine = SearchResult(
        10_000, (10_000, 11_000),
        [trial(2_500, "pass", 2500), trial(5_000, "pass", 2600), trial(10_000, "pass", 3000),
         trial(20_000, "fail", 30_000, "not sustained: input lag grows"), trial(15_000, "fail", 20_000, "x"),
         trial(12_000, "fail", 9000, "x"), trial(11_000, "fail", 8000, "x"), trial(7_500, "pass", 2700)],
        "precision reached")
    return CapacityOutcome(tmp_path, CapacityConfig(start=2500), [
        EngineSearch("calibration", calibration, 200.0, calibration=True), EngineSearch("spark", engine, 400.0)],
        "complete")


def test_capacity_json_gives_each_engine_its_capacity_bracket_share_and_trials(tmp_path: Path) -> None:
    data = json.loads(json.dumps(capacity_json(outcome(tmp_path), scenario(), dt.datetime(2026, 11, 25))))
    assert data["calibration_capacity"] == 40_000
    spark = data["engines"]["spark"]
    assert spark["capacity"] == 10_000 and spark["bracket"] == [10_000, 11_000]
    assert spark["fraction_of_calibration"] == 0.25
    assert spark["wall_s"] == 400.0 and len(spark["trials"]) == 8
    assert spark["trials"][3] == {"rate": 20_000, "verdict": "fail", "reason": "not sustained: input lag grows",
                                  "p50_ms": 30_000, "p99_ms": 45_000, "processed_rate": 16_000,
                                  "achieved_rate": 20_000, "cpu_mean_percent": 200, "rss_max_bytes": 100 * 2**20}
    assert data["engines"]["calibration"]["load_path_bound"] == 80_000


def test_capacity_md_shows_latency_at_shares_of_the_capacity_where_trials_exist(tmp_path: Path) -> None:
    text = capacity_markdown(json.loads(json.dumps(capacity_json(outcome(tmp_path), scenario(),
                                                                 dt.datetime(2026, 11, 25)))))
    assert "| sustainable throughput | 10,000/s (bracket 10,000 – 11,000/s) |" in text
    assert "| share of the calibration ceiling (40,000/s) | 25% |" in text
    assert "| CPU / RSS at it | 100% / 100 MiB |" in text
    for row in ("| 25% | 2,500/s (25%) | 2.50 s | 3.75 s |", "| 50% | 5,000/s (50%) | 2.60 s | 3.90 s |",
                "| 75% | 7,500/s (75%) | 2.70 s | 4.05 s |", "| 100% | 10,000/s (100%) | 3.00 s | 4.50 s |"):
        assert row in text
    calibration = text[text.index("## calibration"):text.index("## spark")]
    assert "| 50% | 20,000/s (50%)" in calibration and "| 75% |" not in calibration  # no trial near 30,000/s
    assert "| sustainable throughput | 40,000/s (bracket 40,000 – not reached/s) |" in text
    assert "| ended by | bounded by the load path at 80,000/s: achieved 80% |" in text


def test_capacity_png_is_written(tmp_path: Path) -> None:
    data = json.loads(json.dumps(capacity_json(outcome(tmp_path), scenario(), dt.datetime(2026, 11, 25))))
    path = plot_capacity(data, tmp_path / "capacity.png")
    assert path.stat().st_size > 10_000


# ------------------------------------------------------------------------------------------------- the trials
def test_a_load_path_verdict_is_run_once_more_and_the_second_attempt_stands(tmp_path: Path, monkeypatch) -> None:
    import harness.capacity_runner as runner
    from harness.capacity import TrialOutcome
    from harness.progress import ProgressDisplay

    attempts: list[tuple[float, str]] = []
    verdicts = iter([TrialOutcome("load-path", "publish delay p99 120 ms", {"p99_ms": 1.0}),
                     TrialOutcome("pass", "", {"p99_ms": 2.0})])

    def fake_run(one, run_dir: Path, display) -> TrialOutcome:
        attempts.append((one.load.rate, run_dir.name))
        return next(verdicts)

    monkeypatch.setattr(runner, "_run", fake_run)
    trials = runner._Trials(scenario(), "spark", tmp_path / "trials", ProgressDisplay(live=False))
    outcome = trials(3250)
    assert attempts == [(3250, "spark-3250"), (3250, "spark-3250-again")]
    assert outcome.verdict == "pass" and outcome.figures["p99_ms"] == 2.0
    assert outcome.figures["first_attempt"] == {"verdict": "load-path", "reason": "publish delay p99 120 ms",
                                                "run_dir": "trials/spark-3250"}
    assert [(r.rate, r.verdict) for r in trials.records] == [(3250, "pass")]


def test_repeated_searches_are_refused_until_they_exist(tmp_path: Path) -> None:
    from harness.capacity_runner import run_capacity
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match=r"capacity.repetitions: .* set it to 1 \(got 3\)"):
        run_capacity(scenario(repetitions=3), tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing was started or written
