"""``bench capacity`` without engines: the trial scenarios, the engine order, the command-line overrides and their
errors, and the files written from a finished search."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.capacity.results import capacity_json
from harness.capacity.search import SearchResult, TrialRecord
from harness.capacity.runner import (
    CapacityOutcome,
    EngineSearch,
    engines_to_search,
    trial_scenario,
    with_capacity_overrides,
)
from harness.cli import cli
from harness.errors import ScenarioError
from harness.report.capacity import plot_capacity, render_capacity, write_capacity_files
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


def stored(tmp_path: Path) -> dict:
    """capacity.json's content for :func:`outcome`, through JSON as it is stored."""
    return json.loads(json.dumps(capacity_json(outcome(tmp_path), scenario(), dt.datetime(2026, 11, 25))))


def test_capacity_json_gives_each_engine_its_capacity_bracket_share_and_trials(tmp_path: Path) -> None:
    data = stored(tmp_path)
    assert data["format_version"] == 3 and data["repetitions"] == 1
    assert data["search"]["trials"] == "fresh" and data["search"]["steps_per_run"] is None
    assert data["calibration_capacity"] == 40_000
    spark = data["engines"]["spark"]
    assert spark["capacity"] == 10_000 and spark["capacity_values"] == [10_000] and spark["capacity_ci"] is None
    assert spark["interval"] == [10_000, 11_000]  # one search: its bracket
    assert spark["fraction_of_calibration"] == 0.25
    [search] = spark["searches"]
    assert search["bracket"] == [10_000, 11_000]
    assert search["wall_s"] == 400.0 and len(search["trials"]) == 8
    assert search["trials"][3] == {"rate": 20_000, "verdict": "fail", "reason": "not sustained: input lag grows",
                                   "p50_ms": 30_000, "p99_ms": 45_000, "processed_rate": 16_000,
                                   "achieved_rate": 20_000, "cpu_mean_percent": 200, "rss_max_bytes": 100 * 2**20}
    assert data["engines"]["calibration"]["searches"][0]["load_path_bound"] == 80_000
    assert data["engines"]["calibration"]["interval"] == [40_000, None]  # never failed above: open


def test_capacity_md_shows_latency_at_shares_of_the_capacity_naming_the_trial(tmp_path: Path) -> None:
    text = render_capacity(stored(tmp_path))
    assert ("| sustainable throughput | 10,000/s (bracket 10,000 – 11,000/s; one search: no confidence interval) |"
            in text)
    assert "| share of the calibration ceiling (40,000/s) | 25% |" in text
    assert "| CPU / RSS at it (trial 3) | 100% / 100 MiB |" in text
    for row in ("| 25% | 2,500/s | trial 1: 2,500/s (25%) | 2.50 s | 3.75 s |",
                "| 50% | 5,000/s | trial 2: 5,000/s (50%) | 2.60 s | 3.90 s |",
                "| 75% | 7,500/s | trial 8: 7,500/s (75%) | 2.70 s | 4.05 s |",
                "| 100% | 10,000/s | trial 3: 10,000/s (100%) | 3.00 s | 4.50 s |"):
        assert row in text
    calibration = text[text.index("## calibration"):text.index("## spark")]
    assert "| 50% | 20,000/s | trial 2: 20,000/s (50%)" in calibration
    assert "| 75% | 30,000/s | no passing trial within ±10 % (nearest: 20,000/s) | — | — |" in calibration
    assert "| sustainable throughput | 40,000/s (bracket 40,000 – not reached/s;" in text
    assert "| ended by | bounded by the load path at 80,000/s: achieved 80% |" in text
    assert "| search wall time | 400 s, 8 trial(s) |" in text
    assert "One search per engine: no confidence interval" in text


def test_capacity_png_is_written(tmp_path: Path) -> None:
    path = plot_capacity(stored(tmp_path), tmp_path / "capacity.png")
    assert path.stat().st_size > 10_000


# ------------------------------------------------------------------------------------------------- the trials
def test_a_load_path_verdict_is_run_once_more_and_the_second_attempt_stands(tmp_path: Path, monkeypatch) -> None:
    import harness.capacity.runner as runner
    from harness.capacity.search import TrialOutcome
    from harness.run.progress import ProgressDisplay

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


def test_repeated_searches_run_in_rounds_and_give_a_mean_with_a_t_interval(tmp_path: Path, monkeypatch) -> None:
    """Three searches per engine with a fake trial whose capacity differs per search: the searches run like the
    repetitions of `bench run` (every engine once per round), the later searches' trials are named -s2, -s3,
    and capacity.json holds the mean, the 95 % t interval and each search's value."""
    import harness.capacity.runner as runner
    from harness.capacity.search import TrialOutcome
    from harness.capacity.results import load_capacity
    from harness.run.progress import ProgressDisplay
    from harness.analysis.stats import t975

    truth = {("calibration", ""): 9000, ("calibration", "-s2"): 9000, ("calibration", "-s3"): 9000,
             ("spark", ""): 3000, ("spark", "-s2"): 3300, ("spark", "-s3"): 2900}
    order: list[str] = []

    def fake_run(one, run_dir: Path, display) -> TrialOutcome:
        engine, rate, *search = run_dir.name.split("-")
        suffix = f"-{search[0]}" if search else ""
        if not order or order[-1] != engine + suffix:
            order.append(engine + suffix)
        ok = float(rate) <= truth[(engine, suffix)]
        return TrialOutcome("pass" if ok else "fail", "" if ok else "not sustained", {"p99_ms": 1000.0})

    monkeypatch.setattr(runner, "_run", fake_run)
    monkeypatch.setattr("harness.results.environment_fingerprint", lambda **_: {"cpu_model": "test"})
    done = runner.run_capacity(scenario(repetitions=3, start=1000, precision="1%"), tmp_path,
                               display=ProgressDisplay(live=False))
    write_capacity_files(done.out_dir)  # as `bench capacity` does once run_capacity has written capacity.json
    assert order == ["calibration", "spark", "calibration-s2", "spark-s2", "calibration-s3", "spark-s3"]
    assert [(s.engine, s.search) for s in done.searches] == [("calibration", 1), ("spark", 1), ("calibration", 2),
                                                              ("spark", 2), ("calibration", 3), ("spark", 3)]
    spark = load_capacity(done.out_dir)["engines"]["spark"]
    values = spark["capacity_values"]
    assert [abs(v - t) / t <= 0.01 for v, t in zip(values, (3000, 3300, 2900))] == [True] * 3
    mean = sum(values) / 3
    sd = (sum((v - mean) ** 2 for v in values) / 2) ** 0.5
    assert spark["capacity"] == pytest.approx(mean)
    assert spark["capacity_ci"] == pytest.approx(t975(2) * sd / 3**0.5)
    assert spark["interval"][0] == pytest.approx(mean - spark["capacity_ci"])
    text = (done.out_dir / "capacity.md").read_text()
    assert "3 searches per engine: the capacity is their mean" in text
    assert f"± {spark['capacity_ci']:,.0f}/s, 95 % CI (Student t); the 3 searches: " in text
    assert "| search | capacity | bracket | trials | wall time | ended by |" in text


def test_repetitions_are_validated_strictly_in_the_scenario_and_on_the_command_line() -> None:
    with pytest.raises(ScenarioError, match=r"capacity.repetitions"):
        scenario(repetitions=0)
    with pytest.raises(ScenarioError, match=r"capacity.repetitions"):
        scenario(repetitions="three")
    assert with_capacity_overrides(scenario(), repetitions=4).capacity.repetitions == 4
    done = CliRunner().invoke(cli, ["capacity", str(SHIPPED), "--repetitions", "0"])
    assert done.exit_code == 2 and "--repetitions" in done.output


def test_the_cli_prints_each_search_and_the_mean_with_its_interval(tmp_path: Path, monkeypatch) -> None:
    import yaml

    import harness.capacity.runner as runner
    from harness.capacity.search import TrialOutcome

    truth = iter([2000, 2600])  # spark's capacity in its first and second search (calibration is off)
    limit = {"": 0.0}

    def fake_run(one, run_dir: Path, display) -> TrialOutcome:
        if run_dir.name == "spark-1000" or run_dir.name == "spark-1000-s2":
            limit[""] = next(truth)
        ok = one.load.rate <= limit[""]
        return TrialOutcome("pass" if ok else "fail", "" if ok else "not sustained", {})

    monkeypatch.setattr(runner, "_run", fake_run)
    monkeypatch.setattr("harness.results.environment_fingerprint", lambda **_: {})
    path = tmp_path / "cap.yaml"
    path.write_text(yaml.safe_dump(scenario(calibrate=False, start=1000).dump()))
    done = CliRunner().invoke(cli, ["capacity", str(path), "--engines", "spark", "--repetitions", "2",
                                    "--precision", "10%", "--out", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert any(line.startswith("spark search 1: 2,000/s") for line in lines)
    assert any(line.startswith("spark search 2: 2,500/s") for line in lines)  # 2,500 passes, 2,750 fails
    # mean 2,250; t(0.975, 1) = 12.706 × sd 353.6 / √2 = 12.706 × 250 = 3,176.5
    assert "spark: 2,250/s ± 3,176/s (95 % CI)" in lines


def test_an_unsettled_trial_runs_once_more_with_a_longer_warmup_and_then_stands_or_fails(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    import harness.capacity.runner as runner
    from harness.capacity.search import TrialOutcome
    from harness.run.progress import ProgressDisplay

    def trials_with(second: TrialOutcome) -> tuple[TrialOutcome, list[tuple[int, int, str]]]:
        attempts: list[tuple[int, int, str]] = []
        verdicts = iter([TrialOutcome("unsettled", "latency falling 1,000 ms per s", {}), second])

        def fake_run(one, run_dir: Path, display) -> TrialOutcome:
            attempts.append((one.warmup, one.duration, run_dir.name))
            return next(verdicts)

        monkeypatch.setattr(runner, "_run", fake_run)
        trials = runner._Trials(scenario(), "spark", tmp_path / "trials", ProgressDisplay(live=False))
        return trials(20_000), attempts

    trial = scenario().capacity.trial
    settled, attempts = trials_with(TrialOutcome("pass", "", {}))
    longer = trial.duration  # one trial duration more of warm-up, the same measured span
    assert attempts == [(trial.warmup, trial.duration, "spark-20000"),
                        (trial.warmup + longer, trial.duration + longer, "spark-20000-again")]
    assert settled.verdict == "pass" and settled.figures["first_attempt"]["verdict"] == "unsettled"
    never, _ = trials_with(TrialOutcome("unsettled", "latency falling 900 ms per s", {}))
    assert never.verdict == "fail" and never.reason.startswith("did not settle even with the longer warm-up")
