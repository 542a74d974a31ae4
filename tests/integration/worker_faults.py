"""``kill-worker`` for real, shared by the cluster modules: one Spark executor or the Flink TaskManager of a local
cluster killed mid-measurement, the engine's own recovery left to act, and the answers checked by the oracle.

The kill commands are the ones the clusters of :mod:`harness.infra.cluster` provide, in the engine entry's
``kill_worker`` block. Kept short (CI budget): 50 s of load at 2k events/s, 5 s windows with 2 s watermark delay, the
fault 20 s in with 5 s of downtime.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.report.document import write_report
from harness.scenario import parse_scenario
from tests.integration.clusters import PARALLELISM, run_on_cluster

FAULT_AT_S = 20


def worker_fault_scenario(bootstrap: str, engine: dict[str, Any]) -> Any:
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


def check_fault_run(scenario: Any, out: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """Run; assert it completed with every answer exact and the fault injected with its commands succeeding.
    Returns the run dir, the summary and the fault record."""
    outcome, summary = run_on_cluster(scenario, out)
    correctness = summary["correctness"]
    assert correctness["expected"] > 0 and correctness["correct"] is True, correctness["problems"]
    [fault] = summary["faults"]
    print(f"\n{summary['engine']}: {json.dumps(fault, indent=1)}")  # the measured figures, for the record (-s)
    assert fault["kind"] == "kill-worker" and fault["error"] is None, fault["error"]
    assert all(command["exit_code"] == 0 for command in fault["commands"]), fault["commands"]
    assert fault["recovered_at_ms"] is not None and fault["recovered_at_ms"] > fault["injected_at_ms"]
    assert fault["missing"] == fault["wrong"] == 0
    assert fault["results_gap_ms"] is not None and fault["peak_latency_ms"] is not None
    report = write_report(outcome.run_dir).read_text()
    assert f"| kill-worker | {FAULT_AT_S} s |" in report
    return outcome.run_dir, summary, fault
