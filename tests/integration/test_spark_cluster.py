"""Cluster mode for real on a Spark standalone cluster: the smoke scenario, then ``kill-worker`` (an executor killed
mid-measurement, the engine's own recovery left to act), one cluster for both (:mod:`tests.integration.clusters`).

The scenario reaches the session's embedded broker in ``external`` mode (it stands in for an existing Kafka cluster)
and the runs go through :func:`harness.run.runner.run_scenario` like ``bench run``, so the collector, oracle, result
files and report are the ones users get. When the module ends no process of the cluster or its jobs survives.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.engines.base import Setting
from harness.infra.cluster import SparkStandalone
from tests.integration.clusters import (PARALLELISM, ClusterUnderTest, cluster_under_test, fairness, run_and_check,
                                        smoke_on)
from tests.integration.worker_faults import check_fault_run, worker_fault_scenario

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterUnderTest[SparkStandalone]]:
    with cluster_under_test(SparkStandalone(tmp_path_factory.mktemp("spark"), cores=PARALLELISM)) as shared:
        assert len(shared.seen()) >= 2  # master and worker JVMs
        yield shared


def new_applications(cluster: SparkStandalone, before: list[dict]) -> list[dict]:
    known = {app["id"] for app in before}
    return [app for app in cluster.applications() if app["id"] not in known]


def test_smoke_on_a_spark_standalone_cluster(kafka_broker: str, tmp_path: Path,
                                             spark_cluster: ClusterUnderTest[SparkStandalone]) -> None:
    cluster = spark_cluster.cluster
    before = cluster.applications()
    scenario = smoke_on(kafka_broker, {"engine": "spark", "settings": {"master": cluster.master_url}})
    _, summary = run_and_check(scenario, tmp_path / "results")
    spark_cluster.seen()
    assert fairness(summary, "deployment") == Setting(
        "cluster", f"{cluster.master_url} (client mode: the driver runs here)")
    assert fairness(summary, "parallelism") == Setting(
        str(PARALLELISM), "executor cores (spark.cores.max) / shuffle partitions")
    # the job really ran on the cluster: the master saw the application, with the cores the scenario asked for
    apps = new_applications(cluster, before)
    assert [(app["name"], app["cores"]) for app in apps] == [("streambench-windowed-count", PARALLELISM)]


def test_spark_executor_killed_the_worker_launches_another_and_every_answer_is_exact(
        kafka_broker: str, tmp_path: Path, spark_cluster: ClusterUnderTest[SparkStandalone]) -> None:
    """The executor (pkill of the JVM naming this worker) dies mid-measurement; the standalone worker launches a
    new one and the driver runs the lost tasks again there, from the checkpointed state. Every answer exact;
    a re-run task whose output was already written writes it again (Kafka sink at-least-once): counted."""
    cluster = spark_cluster.cluster
    before = cluster.applications()
    engine = {"engine": "spark", "settings": {"master": cluster.master_url},
              "kill_worker": {"command": cluster.kill_executor_command}}
    _, summary, fault = check_fault_run(worker_fault_scenario(kafka_broker, engine), tmp_path / "results")
    spark_cluster.seen()
    assert [command["role"] for command in fault["commands"]] == ["kill"]
    # the killed executor and its replacement, under two ids, of the run's one application
    [app] = new_applications(cluster, before)
    executors = [executor for executor in cluster.executors() if executor["appid"] == app["id"]]
    assert len({executor["id"] for executor in executors}) >= 2, executors
    correctness = summary["correctness"]
    assert correctness["duplicate_records"] >= correctness["duplicated"] >= fault["duplicated_pairs"] >= 0
