"""The calibration engine and the known-truth test engines end to end: the real broker (the session's embedded one,
reached in ``external`` mode), the real generator, collector, oracle and result files, through
:func:`harness.run.runner.run_scenario` as ``bench run`` does. The engines share one run (the session's
``known_truth`` fixture: tests/integration/known_truth_run.py, 16 s at 2k events/s, 2 s windows, D = 1 s), so the
truth of every figure is known: exact counts, an extra latency of ``delay_ms``, every Nth result wrong, a capped
consumption rate, transactions committed a known delay after their writes, malformed records."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import psutil
import pytest

from harness.engines.base import FAIRNESS_KEYS, HARNESS_FAIRNESS_KEYS
from harness.engines.python_count import TRANSACTIONS_FILE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

from tests.integration.known_truth_run import (
    CAPACITY,
    COMMIT_DELAY_MS,
    D_MS,
    DELAY_MS,
    PARTITIONS,
    RATE,
    WRONG_EVERY,
    KnownTruthRun,
    run_known_truth,
)


def test_calibration_counts_exactly_and_reports_its_input_rows(known_truth: KnownTruthRun) -> None:
    summary, rep_dir = known_truth.summary("calibration"), known_truth.rep_dir("calibration")
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
    run = run_known_truth(kafka_broker, tmp_path, ["calibration"],
                          isolation={"load_path": load_cpu, "engine": engine_cpu})
    summary, rep_dir = run.summary("calibration"), run.rep_dir("calibration")
    assert summary["correctness"]["correct"] is True, summary["correctness"]["problems"]
    metrics = json.loads((rep_dir / "engine-metrics.json").read_text())
    assert metrics["isolation_threads_moved"] == 0  # started through ManagedProcess: on its CPU from the start
    assert metrics["isolation_threads_outside"] == 0  # and every thread it started since inherited it
    assert summary["fairness"]["cpus"]["value"] == f"engine {engine_cpu} / load path {load_cpu}"
    assert os.sched_getaffinity(0) == before  # the harness is unpinned after the run


def test_delay_ms_shows_as_that_much_more_result_latency(known_truth: KnownTruthRun) -> None:
    summary = known_truth.summary("delayed")
    assert summary["correctness"]["correct"] is True
    p50 = summary["result_latency"]["p50_ms"]
    # measured on the 2-core development machine: D + 3,000 + 20..65 ms
    assert D_MS + DELAY_MS < p50 < D_MS + DELAY_MS + 1_000


def test_wrong_every_makes_exactly_every_nth_pair_wrong_by_one(known_truth: KnownTruthRun) -> None:
    summary = known_truth.summary("liar")
    correctness = summary["correctness"]
    assert correctness["correct"] is False
    assert correctness["records"] == correctness["expected"] > 100
    assert correctness["wrong"] == correctness["records"] // WRONG_EVERY
    assert correctness["wrong_difference_sum"] == correctness["wrong"]  # each one too high by exactly 1
    assert correctness["missing"] == correctness["extra"] == 0
    assert correctness["exact"] == correctness["expected"] - correctness["wrong"]


def test_capacity_caps_the_processed_rate_and_the_backlog_shows_as_latency(known_truth: KnownTruthRun) -> None:
    summary = known_truth.summary("capped")
    throughput = summary["throughput"]
    assert throughput["achieved_rate"] == pytest.approx(RATE, rel=0.02)
    assert throughput["processed_rate_engine"] == pytest.approx(CAPACITY, rel=0.05)
    # 500 records/s pile up: a window ending t s into the load waits ~t/3 s more (2-5 s for the measured windows)
    assert summary["result_latency"]["p50_ms"] > D_MS + 2_000
    assert summary["correctness"]["correct"] is True  # it catches up in the drain


def transactions(rep_dir: Path) -> pd.DataFrame:
    lines = (rep_dir / "work" / TRANSACTIONS_FILE).read_text().splitlines()
    return pd.DataFrame([json.loads(line) for line in lines])


def test_transactional_output_is_read_committed_exact_and_logged_per_window(known_truth: KnownTruthRun) -> None:
    summary, rep_dir = known_truth.summary("txn"), known_truth.rep_dir("txn")
    assert summary["correctness"]["correct"] is True
    assert summary["fairness"]["delivery"]["value"].startswith("exactly-once")
    log = transactions(rep_dir)
    pairs = pd.read_csv(rep_dir / "pairs.csv.gz")
    per_window = pairs.groupby("window_start").size()
    assert dict(zip(log["window_start"], log["records"])) == per_window.to_dict()
    assert ((log["commit_ms"] - log["write_ms"]) >= COMMIT_DELAY_MS).all()
    assert (log["write_ms"] >= log["final_ms"]).all()


def test_collector_survives_every_kind_of_malformed_result(known_truth: KnownTruthRun) -> None:
    # malformed records come before the genuine record of the same pair, so the genuine one is the last answer
    summary = known_truth.summary("garbage")
    assert summary["collector"]["error"] is None
    assert summary["collector"]["bad_records"] > 0
    assert summary["correctness"]["correct"] is True
