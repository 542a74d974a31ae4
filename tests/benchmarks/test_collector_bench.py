"""How fast the collector takes in result records (it must keep up with 100k records/s) and answers the drain's
question. Measures, never asserts a time: ``.venv/bin/python -m pytest tests/benchmarks/test_collector_bench.py
--benchmark-enable``.

The ingestion path (:meth:`LiveCollector.ingest`: record checks, columns, counters) is fed fake messages with the
same accessors as confluent_kafka.Message, in batches of 10,000 like the reader's, so this measures the harness's
parsing and storage, not the broker; records/s = 10,000 / mean batch time.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from harness import workload
from harness.analysis.judge import judge
from harness.run.collector import LiveCollector
from harness.analysis.oracle import expected_counts
from harness.workload import Windows
from tests.unit.test_live_collector import FakeMessage

BATCH = 10_000
T0 = 1_764_072_000_000


def _values(n: int, first_window: int = 0, users: int = 1_000) -> list[bytes]:
    """``n`` result records as the engines write them (compact JSON), ``users`` per window, windows in order."""
    out = []
    for i in range(n):
        start = T0 + (first_window + i // users) * 10_000
        record = workload.result_record(workload.user_id(i % users, users), start, start + 10_000, 1 + i % 97)
        out.append(json.dumps(record, separators=(",", ":")).encode())
    return out


def _messages(values: list[bytes], first_offset: int = 0) -> list[FakeMessage]:
    return [FakeMessage(v, i % 4, first_offset + i, T0 + 12_000 + i % 500) for i, v in enumerate(values)]


@pytest.mark.benchmark(group="collector")
def test_ingest_genuine_batch(benchmark) -> None:  # type: ignore[no-untyped-def]
    """The common case: every record genuine, so the whole batch goes through one ``json.loads``."""
    messages = _messages(_values(BATCH))
    live = LiveCollector("unused:9092", "results", read_committed=False)
    benchmark(live.ingest, messages, 1)
    snap = live.snapshot()
    assert snap.records % BATCH == 0 and snap.records >= BATCH and snap.bad_records == 0


@pytest.mark.benchmark(group="collector")
def test_ingest_batch_with_one_bad_record(benchmark) -> None:  # type: ignore[no-untyped-def]
    """One bad record sends its batch through the record-by-record checks: the cost of a misbehaving engine."""
    values = _values(BATCH)
    values[BATCH // 2] = b'{"user":"u1","window_start":0,"window_end":10000,"count":17.9}'
    live = LiveCollector("unused:9092", "results", read_committed=False)
    benchmark(live.ingest, _messages(values), 1)
    snap = live.snapshot()
    assert snap.records % (BATCH - 1) == 0 and snap.bad_by_kind == {"count_not_integer": snap.records // (BATCH - 1)}


@pytest.mark.benchmark(group="collector")
def test_settle_state_folds_a_new_batch_against_100k_expected_pairs(benchmark) -> None:  # type: ignore[no-untyped-def]
    """One drain poll: fold the batch that arrived since the last poll into 100,000 expected pairs."""
    users = 10_000
    windows = 10
    pairs = []
    for w in range(windows):
        for u in range(users):
            start = T0 + w * 10_000
            pairs.append((workload.user_id(u, users), start, start + 10_000, 1 + u % 97, 1 + u % 97))
    expected = pd.DataFrame(pairs, columns=["user", "window_start", "window_end", "count_min", "count_max"])
    batches = [_messages(_values(BATCH, first_window=i, users=users), i * BATCH) for i in range(windows)]
    live = LiveCollector("unused:9092", "results", read_committed=False)
    live.settle_state(expected)  # the index of the expected pairs is built once, on the first poll
    fed = iter(batches)
    arrived = []

    def arrive() -> tuple[tuple[object, ...], dict[str, object]]:
        live.ingest(next(fed), 1)
        arrived.append(1)
        return (expected,), {}

    state = benchmark.pedantic(live.settle_state, setup=arrive, rounds=windows, iterations=1)
    # with --benchmark-disable pytest-benchmark runs one round: every batch that arrived is answered and final
    assert state.expected == users * windows and state.answered == state.final == users * len(arrived) > 0


@pytest.mark.benchmark(group="analysis")
def test_judge_100k_pairs(benchmark) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    n = 1_000_000
    ts = np.sort(T0 + rng.integers(0, 100_000, n))
    user = rng.integers(0, 10_000, n)
    late = np.zeros(n, bool)
    windows = Windows(10_000, 10_000, 2_000)
    expected = expected_counts(user, ts, late, users=10_000, windows=windows)
    live = LiveCollector("unused:9092", "results", read_committed=False)
    values = [
        json.dumps({"user": r.user, "window_start": r.window_start, "window_end": r.window_end, "count": r.count_min}).encode()
        for r in expected.pairs.itertuples()
    ]
    live.ingest([FakeMessage(v, 0, i, T0 + 100_000 + i) for i, v in enumerate(values)])
    frame = live.frame()
    result = benchmark(judge, frame, expected, read_committed=False)
    assert (result.pairs["status"] == "exact").all() and result.correctness.correct
