"""`bench capacity` end to end with the real broker, generator and collector: the known-truth engine throttled to
C events/s is found within ±5 % of C at 5 % precision, every trial is a normal run directory, the files of the
search are written, and `bench report` / `bench compare` read the directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.results import load_run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BENCH = Path(sys.executable).with_name("bench")
CAPACITY = 3300
"""Events/s the throttled engine can consume (its token bucket); the generator drives 4,000/s with ease."""


TRIAL_S = 15
"""Seconds of load per trial (3 s of it warm-up): 2 s windows, D = 2 s (the generator self-check allows D −
max disorder behind its schedule: 1 s made a busy machine's 4,000/s step a load-path verdict), five measured
windows."""


START = 3100
GROWTH = 1.1
"""The search starts just below C and grows by 10 %, so it needs few trials (CI budget) and none falls within
1 % of C, where a verdict would rest on the token bucket's last percent: 3,100 passes, 3,410 fails (processed
96.8 %), and one bisection (3,251: passes) leaves a bracket within 5 %."""


def known_capacity_scenario(path: Path, bootstrap: str) -> Path:
    """15 s trials on 2 s windows (5 measured windows after a 3 s warm-up), from :data:`START` by
    :data:`GROWTH`."""
    scenario = {
        "name": "capacity-known",
        "duration": f"{TRIAL_S}s", "warmup": "3s", "seed": 3,
        "load": {"rate": "2k", "users": 200, "payload_size": 100},
        "window": {"size": "2s", "watermark_delay": "2s"},
        "kafka": {"mode": "external", "bootstrap": bootstrap, "partitions": 2},  # the session's shared broker
        "engines": [{"engine": "tests.engines:KnownTruthEngine", "label": "capped",
                     "settings": {"capacity": CAPACITY}}],
        "capacity": {"start": START, "growth": GROWTH, "precision": "5%", "trial": {"duration": f"{TRIAL_S}s", "warmup": "3s"},
                     "calibrate": False},
    }
    path.write_text(yaml.safe_dump(scenario))
    return path


def test_the_throttled_engine_is_found_within_5_percent_of_its_known_capacity(kafka_broker: str,
                                                                              tmp_path: Path) -> None:
    scenario = known_capacity_scenario(tmp_path / "known.yaml", kafka_broker)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(BENCH), "capacity", str(scenario), "--out", str(tmp_path / "out")], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [out_dir] = (tmp_path / "out").iterdir()
    found = json.loads((out_dir / "capacity.json").read_text())["engines"]["capped"]
    [search] = found["searches"]  # capacity.repetitions 1: one search
    low, high = search["bracket"]
    assert found["capacity"] == low and high is not None and (high - low) / low <= 0.05, search["ended_by"]
    assert abs(found["capacity"] - CAPACITY) / CAPACITY <= 0.05, found
    assert search["ended_by"].startswith("precision reached") and search["load_path_bound"] is None
    verdicts = {t["rate"]: t["verdict"] for t in search["trials"]}
    assert verdicts[3100] == "pass" and verdicts[3410] == "fail"
    assert all(v in ("pass", "fail") for v in verdicts.values())  # the generator drove every rate
    for t in search["trials"]:  # every trial is a normal run directory, judged from its summary
        [rep] = load_run(out_dir / t["run_dir"]).engines["capped"]
        assert rep.summary.throughput.target_rate == t["rate"]
        assert (t["verdict"] == "pass") == (rep.summary.sustained.sustained is True)
    assert "| sustainable throughput |" in (out_dir / "capacity.md").read_text()
    assert (out_dir / "capacity.png").stat().st_size > 10_000
    # the stored directory is what `bench report` and `bench compare` read (no further trial runs)
    report = subprocess.run([str(BENCH), "report", str(out_dir)], cwd=ROOT, capture_output=True, text=True, env=env)
    assert report.returncode == 0 and "| sustainable throughput |" in (out_dir / "report.md").read_text(), report.stderr
    same = subprocess.run([str(BENCH), "compare", str(out_dir), str(out_dir), "--fail-on-regression", "5"], cwd=ROOT,
                          capture_output=True, text=True, env=env)
    assert same.returncode == 0 and "no detectable change" in same.stdout, same.stdout + same.stderr


def test_stepped_trials_find_the_throttled_engine_within_5_percent_with_one_engine_per_run(kafka_broker: str,
                                                                                          tmp_path: Path) -> None:
    """The same engine and capacity block with ``capacity.trials: stepped``: one broker and engine per run, every
    step judged like a trial; the climb's run ends early, soon after its first failing step."""
    scenario = known_capacity_scenario(tmp_path / "known.yaml", kafka_broker)
    data = yaml.safe_load(scenario.read_text())
    data["capacity"]["trials"] = "stepped"
    scenario.write_text(yaml.safe_dump(data))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(BENCH), "capacity", str(scenario), "--out", str(tmp_path / "out")], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [out_dir] = (tmp_path / "out").iterdir()
    stored = json.loads((out_dir / "capacity.json").read_text())
    assert stored["format_version"] == 3 and stored["search"]["trials"] == "stepped"
    found = stored["engines"]["capped"]
    [search] = found["searches"]
    low, high = search["bracket"]
    assert found["capacity"] == low and high is not None and (high - low) / low <= 0.05, search["ended_by"]
    assert abs(found["capacity"] - CAPACITY) / CAPACITY <= 0.05, found
    assert search["ended_by"].startswith("precision reached") and search["load_path_bound"] is None
    trials = search["trials"]
    assert [(t["rate"], t["verdict"], t["step"]) for t in trials[:2]] == [(3100, "pass", 1), (3410, "fail", 2)]
    assert all(v["verdict"] in ("pass", "fail") for v in trials)  # the generator drove every step
    runs = sorted({t["run_dir"] for t in trials})
    assert len(runs) < len(trials)  # fewer engine starts than trials: the point of stepping
    climb = out_dir / trials[0]["run_dir"]
    [rep] = load_run(climb).engines["capped"]
    planned = 4 * TRIAL_S * 1_000  # four climbing rates 3,100 × 1.1^k; the load ended after the 3,410 step failed
    assert rep.summary.timeline.load_end_ms - rep.summary.timeline.load_start_ms < planned
    assert rep.summary.correctness is not None and rep.summary.correctness.correct  # cut cleanly: every pair exact
    steps = json.loads((climb / "capped" / "rep-1" / "steps.json").read_text())
    assert [(s["rate"], s["verdict"]) for s in steps] == [(3100, "pass"), (3410, "fail")]
    assert steps[1]["summary"]["sustained"]["sustained"] is False
    assert "stepped trials" in (out_dir / "capacity.md").read_text()
