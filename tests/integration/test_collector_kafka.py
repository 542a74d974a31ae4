"""The live collector against the real broker: ``bench perf collector``'s path reads every result record of a
LogAppendTime topic, with the broker's append time, and nothing else. Its speed is measured by the command and
written down in the README, never asserted here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness import workload
from harness.perf import measure_collector, result_records

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
