"""How fast the generator's producer path can go, without pacing: ``bench`` compares it with Kafka's own
``ProducerPerformance`` to show the generator is not the bottleneck of a run."""

from __future__ import annotations

import time

import numpy as np

from harness.loadgen.events import Encoder
from harness.loadgen.producer import BackendName, make_backend, resolve_backend

PERF_USERS = 1000


def producer_perf(
    bootstrap: str,
    topic: str,
    records: int,
    record_size: int,
    partitions: int,
    *,
    backend: str = "auto",
    linger_ms: int = 5,
    include_encoding: bool = False,
) -> float:
    """Send ``records`` event records of at least ``record_size`` bytes to ``topic`` as fast as possible with
    the generator's producer settings; return records/s from the first send to the last acknowledgement.

    The records are encoded beforehand (like ProducerPerformance's prebuilt payload) unless
    ``include_encoding``, which times the generator's full per-record path (encode + send). ``partitions`` is
    checked against the topic, so a comparison runs on the same layout as ProducerPerformance's.
    """
    name: BackendName = resolve_backend(backend)
    producer = make_backend(name, bootstrap, topic, linger_ms=linger_ms)
    try:
        found = producer.partitions()
        if found != partitions:
            raise ValueError(f"topic {topic!r} has {found} partitions, expected {partitions}")
        encoder = Encoder(PERF_USERS, record_size)
        rng = np.random.default_rng(0)
        user = rng.integers(0, PERF_USERS, records, dtype=np.int64)
        ts = np.full(records, time.time_ns() // 1_000_000, dtype=np.int64)
        seq = np.arange(records, dtype=np.int64)
        batch = 1000
        if include_encoding:
            started = time.perf_counter()
            for i in range(0, records, batch):
                producer.send(*encoder.encode(user[i : i + batch], ts[i : i + batch], seq[i : i + batch]))
        else:
            values, keys = encoder.encode(user, ts, seq)
            started = time.perf_counter()
            for i in range(0, records, batch):
                producer.send(values[i : i + batch], keys[i : i + batch])
        producer.flush(300.0)
        return records / (time.perf_counter() - started)
    finally:
        producer.close()
