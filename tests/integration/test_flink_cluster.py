"""Cluster mode for real on a Flink session cluster: the smoke scenario, jobs that cannot outlive ``bench``, then
``kill-worker`` (the TaskManager killed and restarted mid-measurement, the job restored exactly-once), one cluster
for all three (:mod:`tests.integration.clusters`).

The scenario reaches the session's embedded broker in ``external`` mode and the runs go through
:func:`harness.run.runner.run_scenario` like ``bench run``. When the module ends no process of the cluster, of its
restarted TaskManager or of any job client survives.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.engines.base import EngineContext
from harness.engines.flink import FlinkEngine, FlinkSettings
from harness.engines.jobs.flink_sql_job import CLUSTER_RESTART_STRATEGY
from harness.infra.cluster import FlinkSession
from harness.kafka import create_topics
from harness.workload import JobSpec
from tests.integration.clusters import (PARALLELISM, ROOT, ClusterUnderTest, cluster_under_test, fairness,
                                        run_and_check, smoke_on)
from tests.integration.worker_faults import check_fault_run, worker_fault_scenario

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def flink_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterUnderTest[FlinkSession]]:
    with cluster_under_test(FlinkSession(tmp_path_factory.mktemp("flink"), slots=PARALLELISM)) as shared:
        assert len(shared.seen()) >= 2  # JobManager and TaskManager JVMs
        yield shared


def job_state(cluster: FlinkSession, name: str) -> str:
    [job] = [job for job in cluster.jobs() if job["name"] == name]
    return str(job["state"])


def test_smoke_on_a_flink_session_cluster(kafka_broker: str, tmp_path: Path,
                                          flink_cluster: ClusterUnderTest[FlinkSession]) -> None:
    cluster = flink_cluster.cluster
    before = {job["jid"] for job in cluster.jobs()}
    scenario = smoke_on(kafka_broker, {"engine": "flink", "settings": {"jobmanager": cluster.rest_address}})
    _, summary = run_and_check(scenario, tmp_path / "results")
    flink_cluster.seen()
    deployment = fairness(summary, "deployment")
    assert deployment.value == "cluster" and deployment.detail.startswith(f"session cluster at {cluster.rest_address};")
    # the job really ran on the cluster, and the engine cancelled it there when it stopped
    assert [job["state"] for job in cluster.jobs() if job["jid"] not in before] == ["CANCELED"]


# ------------------------------------------------------------------------------ Flink jobs cannot outlive bench
def start_standin(cluster: FlinkSession, bootstrap: str, work: Path) -> tuple[subprocess.Popen[str], str, int]:
    """A ``bench`` stand-in process running the flink engine against the cluster until killed; returns it, the job
    name and the process group of its ``flink run`` client, once the job runs."""
    suffix = uuid.uuid4().hex[:8]
    topics = (f"sae-in-{suffix}", f"sae-out-{suffix}")
    create_topics(bootstrap, {topics[0]: PARALLELISM})
    create_topics(bootstrap, {topics[1]: 1}, log_append_time=True)
    bench = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.flink_bench_standin", cluster.rest_address, bootstrap, *topics,
         str(work)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    assert bench.stdout is not None
    line = bench.stdout.readline()  # the stand-in's own wait_ready bounds this
    assert line.startswith("READY "), f"stand-in bench failed (exit {bench.poll()}); see {work}/flink-job.log"
    _, name, group = line.split()
    return bench, name, int(group)


def wait_for_state(cluster: FlinkSession, name: str, wanted: str, timeout: float = 120.0) -> str:
    """Poll the cluster until the job named ``name`` is in state ``wanted``; its last state either way."""
    deadline = time.monotonic() + timeout
    state = job_state(cluster, name)
    while state != wanted and time.monotonic() < deadline:
        time.sleep(0.5)
        state = job_state(cluster, name)
    return state


def test_flink_session_jobs_do_not_outlive_bench(kafka_broker: str, tmp_path: Path,
                                                 flink_cluster: ClusterUnderTest[FlinkSession]) -> None:
    """kill -9 of bench: its flink client is terminated by the process guard and cancels the job (-sae). kill -9
    of everything (bench, guard, client): the job is left running, and the next start cancels it as a leftover."""
    cluster = flink_cluster.cluster
    bench, name, _ = start_standin(cluster, kafka_broker, tmp_path / "first")
    assert job_state(cluster, name) == "RUNNING"
    bench.send_signal(signal.SIGKILL)
    bench.wait()
    assert wait_for_state(cluster, name, "CANCELED") == "CANCELED"

    bench, leftover, group = start_standin(cluster, kafka_broker, tmp_path / "second")
    os.killpg(group, signal.SIGKILL)  # the client dies without its shutdown hook: nothing cancels the job
    bench.send_signal(signal.SIGKILL)
    bench.wait()
    time.sleep(3)
    assert job_state(cluster, leftover) == "RUNNING"

    suffix = uuid.uuid4().hex[:8]
    create_topics(kafka_broker, {f"next-in-{suffix}": PARALLELISM})
    spec = JobSpec(kafka_broker, f"next-in-{suffix}", f"next-out-{suffix}", 10_000, 10_000, 2_000, PARALLELISM,
                   PARALLELISM, str(tmp_path / "third" / "state"), {})
    engine = FlinkEngine(FlinkSettings(jobmanager=cluster.rest_address, checkpoint_interval="off"),
                         EngineContext(spec, tmp_path / "third"))
    try:
        engine.start()
        assert engine.leftovers_cancelled == [leftover]
        engine.wait_ready(240)  # the leftover's slots are free again
        flink_cluster.seen()
    finally:
        engine.stop()
    assert wait_for_state(cluster, leftover, "CANCELED") == "CANCELED"
    assert wait_for_state(cluster, engine.job_name, "CANCELED") == "CANCELED"


# ------------------------------------------------------------------------------ kill-worker (last: it restarts the TM)
def test_flink_taskmanager_killed_and_restarted_the_job_restores_exactly_once(
        kafka_broker: str, tmp_path: Path, flink_cluster: ClusterUnderTest[FlinkSession]) -> None:
    """The TaskManager is SIGKILLed and started again 5 s later; the JobManager declares it lost, and the job's
    restart strategy restores it from its latest checkpoint on the new TaskManager's slots. Exactly-once (Kafka
    transactions, read read_committed): every pair answered exactly once, no duplicate record."""
    cluster = flink_cluster.cluster
    first_taskmanager = set(flink_cluster.seen())
    engine = {"engine": "flink",
              "settings": {"jobmanager": cluster.rest_address, "delivery": "exactly-once",
                           "checkpoint_interval": "2s", "config": CLUSTER_RESTART_STRATEGY},
              "kill_worker": {"command": cluster.kill_taskmanager_command,
                              "restart": cluster.restart_taskmanager_command}}
    run_dir, summary, fault = check_fault_run(worker_fault_scenario(kafka_broker, engine), tmp_path / "results")
    job_id = json.loads((run_dir / "flink" / "rep-1" / "engine-metrics.json").read_text())["job_id"]
    checkpoints = _get_json(f"{cluster.rest_url}/jobs/{job_id}/checkpoints")
    failures = _get_json(f"{cluster.rest_url}/jobs/{job_id}/exceptions")["exceptionHistory"]["entries"]
    restarted = [pid for pid in flink_cluster.seen() if pid not in first_taskmanager]
    assert [command["role"] for command in fault["commands"]] == ["kill", "restart"]
    assert fault["restarted_at_ms"] - fault["injected_at_ms"] >= 5_000
    assert failures and all(entry["timestamp"] >= fault["injected_at_ms"] for entry in failures)
    assert checkpoints["counts"]["restored"] >= 1 and checkpoints["latest"]["restored"] is not None
    assert restarted, "the restart command's TaskManager is one of the cluster's processes"
    assert summary["read_committed"] is True
    correctness = summary["correctness"]
    assert correctness["duplicated"] == correctness["duplicate_records"] == 0
    assert fault["duplicated_pairs"] == fault["duplicate_records"] == 0


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the local cluster's REST endpoint
        return json.load(response)
