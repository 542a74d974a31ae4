"""kill-worker for real: one Spark executor or the Flink TaskManager of a local cluster killed mid-measurement, the
engine's own recovery left to act, and the answers checked by the oracle.

The clusters are those of :mod:`harness.infra.cluster` on 127.0.0.1 (one at a time: each costs a core or more), the
scenario reaches the session's broker in ``external`` mode, and the run goes through
:func:`harness.run.runner.run_scenario` like ``bench run``, with the kill commands the clusters provide in each engine
entry's ``kill_worker`` block. Kept short (CI budget): 50 s of load at 2k events/s, 5 s windows with 2 s watermark
delay, the fault 20 s in with 5 s of downtime. Run under the shared lock (see COMMON.md).
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from harness.infra.cluster import FlinkSession, SparkStandalone
from harness.engines.jobs.flink_sql_job import CLUSTER_RESTART_STRATEGY
from harness.run.progress import ProgressDisplay
from harness.report.document import write_report
from harness.run.runner import run_scenario
from harness.scenario import parse_scenario
from tests.integration.test_cluster import assert_engine_side_valid, survivors

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARALLELISM = 2
FAULT_AT_S = 20


def scenario(bootstrap: str, engine: dict[str, Any]) -> Any:
    """50 s at 2k events/s over 200 users, 5 s windows, 2 s watermark delay, measured from 10 s on; one
    kill-worker at 20 s with 5 s of downtime (the JVMs come back within about 10-30 s, so results resume well
    before the load ends); Kafka external (the session's broker)."""
    return parse_scenario({
        "name": "worker-faults-test",
        "duration": "50s",
        "warmup": "10s",
        "drain_timeout": "90s",
        "seed": 11,
        "load": {"rate": "2k", "users": 200, "distribution": "uniform"},
        "window": {"size": "5s", "watermark_delay": "2s"},
        "kafka": {"mode": "external", "bootstrap": bootstrap, "partitions": PARALLELISM},
        "engines": [engine],
        "faults": [{"at": f"{FAULT_AT_S}s", "kind": "kill-worker", "downtime": "5s"}],
    })


def run(scenario: Any, out: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """Run; assert it completed with every answer exact and the fault injected with its commands succeeding.
    Returns the run dir, the summary and the fault record."""
    outcome = run_scenario(scenario, out, display=ProgressDisplay(live=False))
    assert outcome.status == "complete", outcome.failures
    [label] = [entry.name for entry in scenario.engines]
    summary = json.loads((outcome.run_dir / label / "rep-1" / "summary.json").read_text())
    assert summary["status"] == "ok", summary["error"]
    assert_engine_side_valid(summary)
    correctness = summary["correctness"]
    assert correctness["expected"] > 0 and correctness["correct"] is True, correctness["problems"]
    [fault] = summary["faults"]
    print(f"\n{label}: {json.dumps(fault, indent=1)}")  # the measured figures, for the record (-s)
    assert fault["kind"] == "kill-worker" and fault["error"] is None, fault["error"]
    assert all(command["exit_code"] == 0 for command in fault["commands"]), fault["commands"]
    assert fault["recovered_at_ms"] is not None and fault["recovered_at_ms"] > fault["injected_at_ms"]
    assert fault["missing"] == fault["wrong"] == 0
    assert fault["results_gap_ms"] is not None and fault["peak_latency_ms"] is not None
    report = write_report(outcome.run_dir).read_text()
    assert f"| kill-worker | {FAULT_AT_S} s |" in report
    return outcome.run_dir, summary, fault


def test_spark_executor_killed_the_worker_launches_another_and_every_answer_is_exact(
        kafka_broker: str, tmp_path: Path) -> None:
    """The executor (pkill of the JVM naming this worker) dies mid-measurement; the standalone worker launches a
    new one and the driver runs the lost tasks again there, from the checkpointed state. Every answer exact;
    a re-run task whose output was already written writes it again (Kafka sink at-least-once): counted."""
    cluster = SparkStandalone(tmp_path, cores=PARALLELISM)
    with cluster:
        engine = {"engine": "spark", "settings": {"master": cluster.master_url},
                  "kill_worker": {"command": cluster.kill_executor_command}}
        _, summary, fault = run(scenario(kafka_broker, engine), tmp_path / "results")
        executors = cluster.executors()
        pids = cluster.pids()
    assert [command["role"] for command in fault["commands"]] == ["kill"]
    # the killed executor and its replacement, under two ids, of the one application
    assert len({executor["appid"] for executor in executors}) == 1
    assert len({executor["id"] for executor in executors}) >= 2, executors
    correctness = summary["correctness"]
    assert correctness["duplicate_records"] >= correctness["duplicated"] >= fault["duplicated_pairs"] >= 0
    assert survivors(pids, tmp_path) == []


def test_flink_taskmanager_killed_and_restarted_the_job_restores_exactly_once(
        kafka_broker: str, tmp_path: Path) -> None:
    """The TaskManager is SIGKILLed and started again 5 s later; the JobManager declares it lost, and the job's
    restart strategy restores it from its latest checkpoint on the new TaskManager's slots. Exactly-once (Kafka
    transactions, read read_committed): every pair answered exactly once, no duplicate record."""
    cluster = FlinkSession(tmp_path, slots=PARALLELISM)
    with cluster:
        first_taskmanager = set(cluster.pids())
        engine = {"engine": "flink",
                  "settings": {"jobmanager": cluster.rest_address, "delivery": "exactly-once",
                               "checkpoint_interval": "2s", "config": CLUSTER_RESTART_STRATEGY},
                  "kill_worker": {"command": cluster.kill_taskmanager_command,
                                  "restart": cluster.restart_taskmanager_command}}
        run_dir, summary, fault = run(scenario(kafka_broker, engine), tmp_path / "results")
        job_id = json.loads((run_dir / "flink" / "rep-1" / "engine-metrics.json").read_text())["job_id"]
        checkpoints = _get_json(f"{cluster.rest_url}/jobs/{job_id}/checkpoints")
        failures = _get_json(f"{cluster.rest_url}/jobs/{job_id}/exceptions")["exceptionHistory"]["entries"]
        restarted = [pid for pid in cluster.pids() if pid not in first_taskmanager]
        pids = cluster.pids()
    assert [command["role"] for command in fault["commands"]] == ["kill", "restart"]
    assert fault["restarted_at_ms"] - fault["injected_at_ms"] >= 5_000
    assert failures and all(entry["timestamp"] >= fault["injected_at_ms"] for entry in failures)
    assert checkpoints["counts"]["restored"] >= 1 and checkpoints["latest"]["restored"] is not None
    assert restarted, "the restart command's TaskManager is one of the cluster's processes"
    assert summary["read_committed"] is True
    correctness = summary["correctness"]
    assert correctness["duplicated"] == correctness["duplicate_records"] == 0
    assert fault["duplicated_pairs"] == fault["duplicate_records"] == 0
    assert survivors(pids, tmp_path) == []


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the local cluster's REST endpoint
        return json.load(response)
