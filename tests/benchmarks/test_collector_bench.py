"""How fast the collector takes in result records (it must keep up with 100k records/s). Measures, never asserts
a time: ``.venv/bin/python -m pytest tests/benchmarks/test_collector_bench.py --benchmark-enable``.

The ingestion path is fed fake messages with the same accessors as confluent_kafka.Message, so this measures
parsing and storage, not the broker; records/s = 10 000 / mean batch time.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness import collector
from harness.collector import LiveCollector
from harness.oracle import expected_counts
from harness.workload import Windows
from tests.unit.test_collector import FakeMessage

BATCH = 10_000


def _messages(n: int = BATCH) -> list[FakeMessage]:
    out = []
    for i in range(n):
        start = 1_764_072_000_000 + (i // 1000) * 10_000
        value = json.dumps(
            {"user": f"u{i % 1000:05d}", "window_start": start, "window_end": start + 10_000, "count": i % 97}
        ).encode()
        out.append(FakeMessage(value, i % 4, i, start + 12_000 + i % 500))
    return out


@pytest.mark.benchmark(group="collector")
def test_ingest_batch_parse(benchmark) -> None:  # type: ignore[no-untyped-def]
    messages = _messages()
    live = LiveCollector("unused:9092", "results", read_committed=False)
    benchmark(live.ingest, messages)
    assert live.snapshot().records % BATCH == 0 and live.snapshot().records >= BATCH


@pytest.mark.benchmark(group="collector")
def test_json_per_record_baseline(benchmark) -> None:  # type: ignore[no-untyped-def]
    values = [m.value() for m in _messages()]
    rows = benchmark(lambda: [json.loads(v) for v in values])
    assert len(rows) == BATCH


@pytest.mark.benchmark(group="collector")
def test_json_batch_baseline(benchmark) -> None:  # type: ignore[no-untyped-def]
    values = [m.value() for m in _messages()]
    rows = benchmark(lambda: json.loads(b"[" + b",".join(values) + b"]"))
    assert len(rows) == BATCH


@pytest.mark.benchmark(group="analysis")
def test_pair_outcomes_100k_pairs(benchmark) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    n = 1_000_000
    ts = np.sort(1_764_072_000_000 + rng.integers(0, 100_000, n))
    user = rng.integers(0, 10_000, n)
    late = np.zeros(n, bool)
    windows = Windows(10_000, 10_000, 2_000)
    pairs = expected_counts(user, ts, late, users=10_000, windows=windows).pairs
    live = LiveCollector("unused:9092", "results", read_committed=False)
    values = [
        json.dumps({"user": r.user, "window_start": r.window_start, "window_end": r.window_end, "count": r.count_min}).encode()
        for r in pairs.itertuples()
    ]
    live.ingest([FakeMessage(v, 0, i, 1_764_072_100_000 + i) for i, v in enumerate(values)])
    frame = live.frame()
    result = benchmark(collector.pair_outcomes, frame, pairs)
    assert (result["status"] == "exact").all()
