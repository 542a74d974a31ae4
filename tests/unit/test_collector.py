"""The live collector's ingestion path with fake consumer messages."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from harness import collector
from harness.collector import LiveCollector
from harness.oracle import expected_counts
from harness.workload import FLUSH_USER, Windows

W = Windows(10_000, 10_000, 2_000)


class FakeMessage:
    """Quacks like confluent_kafka.Message for what the collector reads."""

    def __init__(self, value: bytes, partition: int, offset: int, ts: int, ts_type: int = 2) -> None:
        self._value, self._partition, self._offset, self._ts = value, partition, offset, (ts_type, ts)

    def error(self) -> None:
        return None

    def value(self) -> bytes:
        return self._value

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return self._ts


def message(user: str, start: int, count: int, append: int, partition: int = 0, offset: int = 0, **kw: int) -> FakeMessage:
    value = json.dumps({"user": user, "window_start": start, "window_end": start + 10_000, "count": count}).encode()
    return FakeMessage(value, partition, offset, append, **kw)


# ------------------------------------------------------------------------------------------------ live
def test_ingest_snapshot_frame_and_received_final() -> None:
    live = LiveCollector("unused:9092", "results", read_committed=False)
    live.ingest(
        [
            message("u1", 0, 3, 11_000, 0, 0),
            message("u2", 0, 2, 12_000, 1, 0),
            message(FLUSH_USER, 0, 1, 13_000, 1, 1),
            FakeMessage(b"not json", 1, 2, 13_000),
        ]
    )
    expected = pd.DataFrame(
        {
            "user": ["u1", "u2", "u3"],
            "window_start": [0, 0, 0],
            "window_end": [10_000] * 3,
            "count_min": [5, 2, 0],
            "count_max": [5, 2, 1],
        }
    )
    assert live.received_final(expected) == (1, 2)  # u3 holds only late events: not expected
    live.ingest([message("u1", 0, 5, 12_500, 0, 1, ts_type=1)])
    assert live.received_final(expected) == (2, 2)
    snap = live.snapshot()
    assert (snap.records, snap.flush_records, snap.bad_records, snap.not_append_time) == (3, 1, 1, 1)
    assert snap.recent_p50_ms == 2_000 and snap.last_append_ms == 13_000
    frame = live.frame()
    assert list(frame.columns) == list(collector.RECORD_COLUMNS)
    assert len(frame) == 4 and frame["count"].tolist() == [3, 2, 1, 5]


def test_ring_of_recent_latencies_keeps_the_newest() -> None:
    live = LiveCollector("unused:9092", "results", read_committed=False, recent=4)
    live.ingest([message("u1", 0, 1, 10_000 + i * 100, 0, i) for i in range(10)])
    live.ingest([message("u1", 0, 1, 20_000, 0, 10)])
    snap = live.snapshot()
    assert snap.recent_p50_ms == pytest.approx(np.percentile([800, 900, 10_000, 700], 50))


def test_reader_thread_runs_on_a_fake_consumer_and_stops() -> None:
    batches = [[message("u1", 0, 1, 11_000, 0, 0)], [message("u2", 0, 1, 11_500, 0, 1)]]

    class FakeConsumer:
        closed = False

        def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
            return batches.pop(0) if batches else []

        def close(self) -> None:
            FakeConsumer.closed = True

    live = LiveCollector("unused:9092", "results", read_committed=True, consumer_factory=FakeConsumer)
    live.start()
    deadline = time.monotonic() + 5
    while live.snapshot().records < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    live.stop()
    assert live.snapshot().records == 2 and FakeConsumer.closed
