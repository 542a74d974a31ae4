"""What the cluster-mode tests share: one local cluster per test module, the shortened smoke scenario, the checks
every cluster run must pass, and the no-survivors check.

Each cluster (:mod:`harness.infra.cluster`, on 127.0.0.1 with free ports) is started once per module and serves its
smoke run, its fault runs and its lifecycle tests in turn (starting one costs tens of seconds of a 2-core machine);
only one runs at a time, since each costs a core or more. When the module ends the cluster is stopped and no process
it or any of its jobs started may survive: every pid a test saw is recorded with :meth:`ClusterUnderTest.seen`
and checked at teardown, beside anything naming the cluster's work directory.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

import psutil

from harness.engines.base import Setting
from harness.infra.cluster import FlinkSession, SparkStandalone
from harness.report.document import write_report
from harness.run.progress import ProgressDisplay
from harness.run.runner import RunOutcome, apply_overrides, run_scenario
from harness.scenario import load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[2]
PARALLELISM = 2

C = TypeVar("C", SparkStandalone, FlinkSession)


class ClusterUnderTest(Generic[C]):
    """A started cluster shared by a module's tests, and the pids they saw (for the survivors check)."""

    def __init__(self, cluster: C) -> None:
        self.cluster = cluster
        self.pids: set[int] = set()

    def seen(self) -> list[int]:
        """Record the cluster's live processes now; returns them."""
        pids = self.cluster.pids()
        self.pids.update(pids)
        return pids


@contextmanager
def cluster_under_test(cluster: C) -> Iterator[ClusterUnderTest[C]]:
    """Start ``cluster``, yield it, stop it, then fail if any process it (or a test on it) started survives."""
    shared = ClusterUnderTest(cluster)
    with cluster:
        shared.seen()
        yield shared
        shared.seen()
    left = survivors(sorted(shared.pids), cluster.work_dir)
    assert left == [], f"processes of the {cluster.name} survived its stop: {left}"


def smoke_on(bootstrap: str, engine: dict[str, Any]) -> Any:
    """The smoke scenario, shortened to four measured windows (16 s load, 6 s of it warm-up, 2 s windows, D = 1.5 s),
    with Kafka external and one engine pointed at its cluster."""
    data = copy.deepcopy(load_scenario(ROOT / "scenarios" / "smoke.yaml").dump())
    data["kafka"] = {"mode": "external", "bootstrap": bootstrap, "partitions": PARALLELISM}
    data["engines"] = [engine]
    data["warmup"] = "6s"
    data["window"] = {"size": "2s", "watermark_delay": "1500ms"}
    scenario = parse_scenario(data, source="smoke.yaml (cluster test)")
    return apply_overrides(scenario, duration=16_000, source="smoke.yaml (cluster test)")


def run_on_cluster(scenario: Any, out: Path) -> tuple[RunOutcome, dict[str, Any]]:
    """Run like ``bench run``; assert it completed, the repetition is ok and nothing engine-side made it invalid.
    Returns the outcome and the summary of the scenario's one engine."""
    outcome = run_scenario(scenario, out, display=ProgressDisplay(live=False))
    assert outcome.status == "complete", outcome.failures
    [label] = [entry.name for entry in scenario.engines]
    summary = json.loads((outcome.run_dir / label / "rep-1" / "summary.json").read_text())
    assert summary["status"] == "ok", summary["error"]
    assert_engine_side_valid(summary)
    return outcome, summary


def run_and_check(scenario: Any, out: Path) -> tuple[Path, dict[str, Any]]:
    """Run, then check what every cluster run must show: complete, exact counts, the deployment recorded and the
    two-clock note of external Kafka in the fingerprint and the report. Returns the run dir and the summary."""
    outcome, summary = run_on_cluster(scenario, out)
    correctness = summary["correctness"]
    assert correctness["expected"] > 0
    assert correctness["exact"] == correctness["expected"], correctness["problems"]
    assert correctness["correct"]

    fingerprint = json.loads((outcome.run_dir / "run.json").read_text())["fingerprint"]
    assert fingerprint["clock"].startswith("two clocks: LogAppendTime is the broker host's clock")
    report = write_report(outcome.run_dir).read_text()
    assert fingerprint["clock"] in report
    return outcome.run_dir, summary


GENERATOR_TIMING = ("generator could not drive the load", "publish delay keeps growing")


def assert_engine_side_valid(summary: dict[str, Any]) -> None:
    """Nothing but the generator's own timing may make a cluster run invalid.

    A standalone cluster is four JVMs (master, worker, executor, driver) and a session cluster two, on the same two
    cores as the broker, the generator and the collector; when they starve the generator the run is rightly marked
    invalid (seen in CI: p99 publish delay 127 ms at 2k/s while Spark compiled its first batches). That is the
    machine, not cluster mode, so it is reported as a warning here; the generator's self-check is asserted on a
    quiet machine in ``test_generator_kafka``. Any other reason (no results, CreateTime results, engine failure)
    fails the test."""
    others = [reason for reason in summary["invalid_reasons"] if not reason.startswith(GENERATOR_TIMING)]
    assert not others, others
    if not summary["valid"]:
        warnings.warn(f"cluster run invalid by the generator's self-check: {summary['invalid_reasons']}", stacklevel=2)


def fairness(summary: dict[str, Any], key: str) -> Setting:
    """A fairness setting as stored in summary.json."""
    return Setting.of(summary["fairness"][key])


def survivors(pids: list[int], work_dir: Path) -> list[str]:
    """Processes still alive: by pid, or anything with the cluster's work directory in its command line."""
    left = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{pid} {proc.name()}")
        except psutil.NoSuchProcess:
            continue
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(work_dir) in cmdline and proc.pid != os.getpid():
            left.append(f"{proc.pid} {cmdline[:200]}")
    return left
