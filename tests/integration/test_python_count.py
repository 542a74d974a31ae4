"""The calibration engine and the known-truth test engines end to end: the real broker (the session's embedded one,
reached in ``external`` mode), the real generator, collector, oracle and result files, through
:func:`harness.run.runner.run_scenario` as ``bench run`` does. Each run is 20 s of load at 2k events/s with 5 s windows
and D = 1 s, so the truth of every figure is known: exact counts, an extra latency of ``delay_ms``, every Nth result
wrong, transactions committed a known delay after their writes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest

from harness.engines.base import FAIRNESS_KEYS, HARNESS_FAIRNESS_KEYS
from harness.engines.jobs.python_count_job import MALFORMED_KINDS
from harness.engines.python_count import TRANSACTIONS_FILE
from harness.run.progress import ProgressDisplay
from harness.run.runner import run_scenario
from harness.scenario import parse_scenario

pytestmark = [pytest.mark.integration, pytest.mark.slow]

D_MS = 1_000
PARTITIONS = 4
KNOWN_TRUTH = "tests.engines:KnownTruthEngine"


def scenario(bootstrap: str, engine: dict[str, Any] | str, *, drain_timeout: str = "30s",
             **extra: Any) -> Any:
    """25 s of load (5 s warm-up) at 2k/s over 200 users, 5 s tumbling windows, D = 1 s: three measured windows."""
    return parse_scenario({
        **extra,
        "name": "pycount",
        "duration": "25s",
        "warmup": "5s",
        "seed": 7,
        "drain_timeout": drain_timeout,
        "load": {"rate": "2k", "users": 200, "disorder": {"fraction": 0.1, "max_delay": "500ms"},
                 "payload_size": 100},
        "window": {"size": "5s", "watermark_delay": f"{D_MS}ms"},
        "kafka": {"mode": "external", "bootstrap": bootstrap, "partitions": PARTITIONS},
        "engines": [engine],
    }, source="test_python_count")


def run(bootstrap: str, out: Path, engine: dict[str, Any] | str, **options: Any) -> tuple[dict[str, Any], Path]:
    """Run one engine; return its summary.json and its repetition directory."""
    chosen = scenario(bootstrap, engine, **options)
    outcome = run_scenario(chosen, out, display=ProgressDisplay(live=False))
    assert outcome.status == "complete", outcome.failures
    rep_dir = outcome.run_dir / chosen.engines[0].name / "rep-1"
    summary = json.loads((rep_dir / "summary.json").read_text())
    assert summary["status"] == "ok", summary["error"]
    return summary, rep_dir


def test_calibration_counts_exactly_and_reports_its_input_rows(kafka_broker: str, tmp_path: Path) -> None:
    summary, rep_dir = run(kafka_broker, tmp_path, "calibration")
    correctness = summary["correctness"]
    assert correctness["correct"] is True, correctness["problems"]
    assert correctness["exact"] == correctness["expected"] == correctness["records"] > 0
    assert correctness["missing"] == correctness["wrong"] == correctness["extra"] == correctness["duplicated"] == 0
    assert summary["valid"] is True, summary["invalid_reasons"]
    latency = summary["result_latency"]
    assert latency["pairs"] > 0 and latency["negative"] == 0
    assert D_MS <= latency["p50_ms"] <= latency["p99_ms"]  # D is part of every result latency
    metrics = json.loads((rep_dir / "engine-metrics.json").read_text())
    sent = summary["throughput"]["events_sent"]
    assert metrics["input_rows"][-1]["rows"] == sent + PARTITIONS  # + one end-of-run record per partition
    assert metrics["late_dropped"] == 0
    assert summary["throughput"]["processed_rate_source"] == "engine input rows"
    assert summary["throughput"]["processed_rate_engine"] == pytest.approx(summary["throughput"]["achieved_rate"],
                                                                           rel=0.05)
    assert set(summary["fairness"]) == {*FAIRNESS_KEYS, *HARNESS_FAIRNESS_KEYS}
    assert summary["fairness"]["cpus"]["value"].startswith("shared ")
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if str(rep_dir) in " ".join(p.info["cmdline"] or [])]
    assert leftovers == []


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="isolation needs two CPUs")
def test_isolation_runs_the_engine_on_its_own_cpus_to_the_end(kafka_broker: str, tmp_path: Path) -> None:
    load_cpu, engine_cpu = sorted(os.sched_getaffinity(0))[:2]
    before = os.sched_getaffinity(0)
    summary, rep_dir = run(kafka_broker, tmp_path, "calibration",
                           isolation={"load_path": load_cpu, "engine": engine_cpu})
    assert summary["correctness"]["correct"] is True, summary["correctness"]["problems"]
    metrics = json.loads((rep_dir / "engine-metrics.json").read_text())
    assert metrics["isolation_threads_moved"] == 0  # started through ManagedProcess: on its CPU from the start
    assert metrics["isolation_threads_outside"] == 0  # and every thread it started since inherited it
    assert summary["fairness"]["cpus"]["value"] == f"engine {engine_cpu} / load path {load_cpu}"
    assert os.sched_getaffinity(0) == before  # the harness is unpinned after the run


def test_delay_ms_shows_as_that_much_more_result_latency(kafka_broker: str, tmp_path: Path) -> None:
    summary, _ = run(kafka_broker, tmp_path, {"engine": KNOWN_TRUTH, "label": "delayed",
                                              "settings": {"delay_ms": 3_000}})
    assert summary["correctness"]["correct"] is True
    p50 = summary["result_latency"]["p50_ms"]
    # measured on the 2-core development machine: D + 3,000 + 20..65 ms
    assert D_MS + 3_000 < p50 < D_MS + 3_000 + 1_000


def test_wrong_every_makes_exactly_every_nth_pair_wrong_by_one(kafka_broker: str, tmp_path: Path) -> None:
    summary, _ = run(kafka_broker, tmp_path, {"engine": KNOWN_TRUTH, "label": "liar",
                                              "settings": {"wrong_every": 10}})
    correctness = summary["correctness"]
    assert correctness["correct"] is False
    assert correctness["records"] == correctness["expected"] > 100
    assert correctness["wrong"] == correctness["records"] // 10
    assert correctness["wrong_difference_sum"] == correctness["wrong"]  # each one too high by exactly 1
    assert correctness["missing"] == correctness["extra"] == 0
    assert correctness["exact"] == correctness["expected"] - correctness["wrong"]


def test_capacity_caps_the_processed_rate_and_the_backlog_shows_as_latency(kafka_broker: str, tmp_path: Path) -> None:
    summary, _ = run(kafka_broker, tmp_path, {"engine": KNOWN_TRUTH, "label": "capped",
                                              "settings": {"capacity": 1_500}})
    throughput = summary["throughput"]
    assert throughput["achieved_rate"] == pytest.approx(2_000, rel=0.02)
    assert throughput["processed_rate_engine"] == pytest.approx(1_500, rel=0.05)
    # 500 records/s pile up: a window ending t s into the load waits ~t/3 s more (~3.3 s and ~5 s here)
    assert summary["result_latency"]["p50_ms"] > D_MS + 2_000
    assert summary["correctness"]["correct"] is True  # it catches up in the drain


COMMIT_DELAY_MS = 1_500


@pytest.fixture(scope="module")
def transactional_run(kafka_broker: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """One run of the known-truth engine writing each window in a transaction committed 1.5 s after its writes."""
    engine = {"engine": KNOWN_TRUTH, "label": "txn",
              "settings": {"transactional": True, "commit_delay_ms": COMMIT_DELAY_MS}}
    return run(kafka_broker, tmp_path_factory.mktemp("txn"), engine)


def transactions(rep_dir: Path) -> pd.DataFrame:
    lines = (rep_dir / "work" / TRANSACTIONS_FILE).read_text().splitlines()
    return pd.DataFrame([json.loads(line) for line in lines])


def test_transactional_output_is_read_committed_exact_and_logged_per_window(
    transactional_run: tuple[dict[str, Any], Path],
) -> None:
    summary, rep_dir = transactional_run
    assert summary["correctness"]["correct"] is True
    assert summary["fairness"]["delivery"]["value"].startswith("exactly-once")
    log = transactions(rep_dir)
    pairs = pd.read_csv(rep_dir / "pairs.csv.gz")
    per_window = pairs.groupby("window_start").size()
    assert dict(zip(log["window_start"], log["records"])) == per_window.to_dict()
    assert ((log["commit_ms"] - log["write_ms"]) >= COMMIT_DELAY_MS).all()
    assert (log["write_ms"] >= log["final_ms"]).all()


def test_collector_survives_every_kind_of_malformed_result(kafka_broker: str, tmp_path: Path) -> None:
    # malformed records come before the genuine record of the same pair, so the genuine one is the last answer
    engine = {"engine": KNOWN_TRUTH, "label": "garbage", "settings": {"malformed": list(MALFORMED_KINDS)}}
    summary, _ = run(kafka_broker, tmp_path, engine, drain_timeout="10s")
    assert summary["collector"]["error"] is None
    assert summary["collector"]["bad_records"] > 0
    assert summary["correctness"]["correct"] is True
