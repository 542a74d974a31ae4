"""The live collector against the real broker: ``bench perf collector``'s path reads every result record of a
LogAppendTime topic, with the broker's append time, and nothing else (its speed is measured by the command and
written down in docs/, never asserted here); transactional results read ``read_committed`` are received
within the stated bound of their commit."""

from __future__ import annotations

import json
import os
import time
import uuid

import numpy as np
import pytest
from confluent_kafka import Producer

from harness import workload

from harness.run import collector
from harness.run.collector import LiveCollector
from harness.kafka import create_topics
from harness.run.perf import measure_collector, result_records

pytestmark = pytest.mark.integration


def test_result_records_are_in_the_engines_output_format() -> None:
    values, keys = result_records(25, users=10)
    rows = [json.loads(v) for v in values]
    assert all(set(row) == set(workload.OUTPUT_FIELDS) for row in rows)
    assert [k.decode() for k in keys] == [row["user"] for row in rows]
    assert {row["window_end"] - row["window_start"] for row in rows} == {10_000}
    assert len({(row["user"], row["window_start"]) for row in rows}) == 25


def test_collector_reads_every_result_record_from_the_broker(kafka_broker: str) -> None:
    measured = measure_collector(50_000, partitions=3, bootstrap=kafka_broker)
    assert (measured.records, measured.partitions) == (50_000, 3)
    assert measured.not_append_time == measured.bad_records == 0
    assert measured.ingest_rps > 0 and measured.produce_rps > 0 and measured.frame_s >= 0
    assert all(np.isfinite([measured.ingest_rps, measured.produce_rps]))
    assert measured.lines()[1].startswith("collector ingest from the broker")


# ------------------------------------------------------------------------------------------------ visible time
ROUNDS = 25
PER_ROUND = 40
HOLD_S = 0.4
"""Each round's records are appended, then held invisible this long before the commit."""


def _commit_rounds(bootstrap: str, topic: str, live: LiveCollector) -> list[dict[str, float]]:
    """A transactional producer writes ROUNDS transactions of PER_ROUND result records (window_start = round ×
    10 s) and commits each HOLD_S after its records were acknowledged; the test's own clock (epoch ms) marks
    when the records were acknowledged and when commit_transaction() was called and returned."""
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"visible-{uuid.uuid4().hex[:8]}",
                         "linger.ms": 0, "log_level": 3})
    producer.init_transactions(30)
    rounds = []
    for round_ in range(ROUNDS):
        producer.begin_transaction()
        for i in range(PER_ROUND):
            user = workload.user_id(i, PER_ROUND)
            record = workload.result_record(user, round_ * 10_000, round_ * 10_000 + 10_000, 1 + i)
            producer.produce(topic, json.dumps(record).encode(), user.encode())
        producer.flush(30)
        acked_ms = time.time() * 1000
        time.sleep(HOLD_S)
        seen_before_commit = live.snapshot().records
        called_ms = time.time() * 1000
        producer.commit_transaction(30)
        returned_ms = time.time() * 1000
        rounds.append({"acked": acked_ms, "called": called_ms, "returned": returned_ms, "seen": seen_before_commit})
        time.sleep(0.05 + 0.01 * (round_ % 7))  # commits fall at different phases of the reader's fetch cycle
    return rounds


def test_transactional_results_are_received_within_the_stated_bound_of_their_commit(kafka_broker: str) -> None:
    """Records read read_committed are received within VISIBILITY_ERROR_MS of their commit: none before the
    commit_transaction() call, VISIBILITY_SHARE of them at most its upper bound after the call returned; their
    LogAppendTime is their append, not their commit. The distribution is printed (run with -s).

    The upper bound is a property of a machine that is not overloaded (see VISIBILITY_ERROR_MS): when the load
    average during the measurement exceeded the number of cores, that one check is reported as an expected
    failure with the measured distribution instead of being asserted; every other check still runs."""
    topic = "visible-results"
    create_topics(kafka_broker, {topic: 3}, log_append_time=True)
    live = LiveCollector(kafka_broker, topic, read_committed=True)
    live.start()
    try:
        rounds = _commit_rounds(kafka_broker, topic, live)
        deadline = time.monotonic() + 60
        while live.snapshot().records < ROUNDS * PER_ROUND and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        live.stop()
    load = os.getloadavg()[0]
    frame = live.frame()
    assert len(frame) == ROUNDS * PER_ROUND and live.snapshot().bad_records == 0
    assert all(r["seen"] <= k * PER_ROUND for k, r in enumerate(rounds))  # read_committed hid each open round
    round_of = (frame["window_start"] // 10_000).to_numpy()
    called, returned, acked = (np.array([r[key] for r in rounds])[round_of] for key in ("called", "returned", "acked"))
    # LogAppendTime is stamped when the records were appended (before the ack), not at the commit
    assert (frame["append_ms"].to_numpy() <= acked + 1).all()
    assert (frame["append_ms"].to_numpy() < called - HOLD_S * 1000 / 2).all()
    visible = collector.visible_ms(frame["append_ms"].to_numpy(), frame["receive_ms"].to_numpy(), read_committed=True)
    assert (visible == frame["receive_ms"].to_numpy()).all()
    low, high = collector.VISIBILITY_ERROR_MS
    assert (frame["receive_ms"].to_numpy() - np.floor(called) >= low).all()  # nothing is read before its commit
    error = frame["receive_ms"].to_numpy() - returned
    measured = (f"receive − commit returned, ms: min {error.min():.1f} p50 {np.median(error):.1f} "
                f"p90 {np.quantile(error, 0.9):.1f} max {error.max():.1f}; commit call p50 "
                f"{np.median(returned - called):.1f} ms; load average {load:.1f} on {os.cpu_count()} cores")
    print(measured)
    if np.quantile(error, collector.VISIBILITY_SHARE) > high and load > (os.cpu_count() or 1):
        pytest.xfail(f"machine overloaded, upper bound not judged: {measured}")
    assert np.quantile(error, collector.VISIBILITY_SHARE) <= high, measured
