"""`bench run` end to end with the real broker and both real engines: the README's main command, and a run in
which one engine is killed mid-run while the other's result stands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BENCH = Path(sys.executable).with_name("bench")


def bench(*args: str, cwd: Path = ROOT, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([str(BENCH), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def only_run_dir(out: Path) -> Path:
    [run_dir] = [path for path in out.iterdir() if path.is_dir()]
    return run_dir


def summary(run_dir: Path, engine: str) -> dict:
    return json.loads((run_dir / engine / "rep-1" / "summary.json").read_text())


def test_smoke_scenario_both_engines_correct_with_positive_latency_and_report(tmp_path: Path) -> None:
    done = bench("run", "scenarios/smoke.yaml", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_dir = only_run_dir(tmp_path)
    assert json.loads((run_dir / "run-status.json").read_text())["status"] == "complete"
    for engine in ("spark", "flink"):
        result = summary(run_dir, engine)
        assert result["status"] == "ok", result.get("error")
        correctness = result["correctness"]
        assert correctness["correct"] is True, correctness
        assert correctness["exact"] == correctness["expected"] > 0
        assert correctness["missing"] == correctness["wrong"] == correctness["extra"] == 0
        latency = result["result_latency"]
        assert latency["pairs"] > 0 and latency["negative"] == 0
        # result latency includes the watermark delay D = 2 s by construction
        assert 2_000 <= latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
        assert result["generator"]["valid"] is True, result["generator"]
    report = (run_dir / "report.md").read_text()
    for needle in ("## Results", "| spark |", "| flink |", "Fairness", "latency-cdf.png", "## Environment"):
        assert needle in report
    assert all((run_dir / png).stat().st_size > 1000 for png in ("latency-cdf.png", "throughput-over-time.png"))


def test_killed_engine_is_recorded_as_failed_and_the_next_engine_still_runs(kafka_broker: str,
                                                                             tmp_path: Path) -> None:
    """A real Spark job SIGKILLed mid-run, then the next engine (the calibration engine: what is checked is that
    the run goes on, not which engine follows); on the session's shared broker, 2 s windows."""
    scenario = yaml.safe_load((ROOT / "scenarios" / "smoke.yaml").read_text())
    scenario["duration"] = "16s"
    scenario["warmup"] = "6s"
    scenario["window"] = {"size": "2s", "watermark_delay": "1500ms"}
    scenario["kafka"] = {"mode": "external", "bootstrap": kafka_broker, "partitions": 4}
    scenario["engines"] = [
        {"engine": "tests.integration.killed_engine:KilledSparkEngine", "label": "spark-killed"},
        "calibration",
    ]
    path = tmp_path / "killed.yaml"
    path.write_text(yaml.safe_dump(scenario))
    out = tmp_path / "results"
    done = bench("run", str(path), "--out", str(out))
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    run_dir = only_run_dir(out)
    killed = summary(run_dir, "spark-killed")
    assert killed["status"] == "failed"
    assert "exited with code" in killed["error"]
    assert killed["log_tail"], "the failed engine's log tail is kept"
    after = summary(run_dir, "calibration")
    assert after["status"] == "ok" and after["correctness"]["correct"] is True
    report = (run_dir / "report.md").read_text()
    assert "spark-killed" in report and "failed" in report.lower()


def test_ctrl_c_stops_cleanly_keeps_what_was_measured_and_marks_the_run_interrupted(tmp_path: Path) -> None:
    import signal
    import time

    import psutil

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [str(BENCH), "run", "scenarios/smoke.yaml", "--engines", "flink", "--out", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    seen = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 300
        for line in proc.stdout:
            seen.append(line)
            if "measuring" in line or time.monotonic() > deadline:
                break
        assert any("measuring" in line for line in seen), "".join(seen[-20:])
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, "".join(seen[-10:]) + rest[-2000:]
    run_dir = only_run_dir(tmp_path)
    assert json.loads((run_dir / "run-status.json").read_text())["status"] == "interrupted"
    result = summary(run_dir, "flink")
    assert result["status"] == "interrupted"
    assert "interrupted before the repetition finished" in result["invalid_reasons"]
    samples = (run_dir / "flink" / "rep-1" / "resources.csv").read_text().splitlines()
    assert len(samples) > 5 and any(",flink," in line for line in samples)  # what was measured is kept
    assert (run_dir / "report.md").exists()
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if str(run_dir) in " ".join(p.info["cmdline"] or [])]
    assert leftovers == []
