"""What every scenario model refuses, and the limits on values that could only hurt.

The model is strict: an unknown key is an error (pydantic ignores them by default; a benchmark that silently
ignores ``duraton: 10m`` runs the wrong experiment).

Values that could only hurt are refused before anything starts, each limit with its reason beside it:
rates (:data:`harness.units.MAX_RATE`), users (:data:`MAX_USERS`), record size (:data:`MAX_PAYLOAD_BYTES`),
generator workers (:func:`max_workers`), name and label lengths (:data:`MAX_NAME_LENGTH`), windows per event
(:data:`MAX_WINDOWS_PER_EVENT`), engines per scenario (:data:`MAX_ENGINES`), parallelism
(:data:`MAX_PARALLELISM`), labels the run directory uses itself (:data:`RESERVED_LABELS`), and a run that
measures fewer than :data:`MIN_MEASURED_WINDOWS` windows. Types are strict: ``users: true`` or ``partitions: "4"``
is an error, not 1 or 4.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict


MIN_MEASURED_WINDOWS = 3
"""Fewest windows a run (and a capacity trial) must measure: below that, percentiles and the latency trend of
the sustained check rest on one or two windows."""

MAX_USERS = 1_000_000
"""Most users a load may have: every generator worker and the oracle build every user name in memory, about
240 MB and 2 s per million users per process (measured; 10M took 2.2 GB and 23 s per process)."""

MAX_PAYLOAD_BYTES = 999_000
"""Largest ``load.payload_size``: a record, key and framing included, must stay within librdkafka's
``message.max.bytes`` (1,000,000; the broker's default limit is 1,048,588)."""

MAX_NAME_LENGTH = 64
"""Longest scenario name and engine label: both go into every Kafka topic name
(``bench-<UTC stamp>-<name>[-N]-<label>-r<N>-in``, at most 249 characters) and into directory names (at most
255 bytes); 64 + 64 leaves room for the stamp, a ``capacity-`` prefix and trial numbers."""

MAX_WINDOWS_PER_EVENT = 100
"""Most windows one event may fall in (``window.size / window.slide``): every engine and the oracle keep and
update that many counts per event; 5 s windows sliding by 1 ms would be 5,000 per event."""

MAX_ENGINES = 16
"""Most engine entries in one scenario: they run one after another, each with its own start, load and drain."""

MAX_PARALLELISM = 256
"""Highest parallelism an engine is run with (explicit ``parallelism``, or one task per Kafka partition)."""

RESERVED_LABELS = frozenset({
    "run.json", "run-status.json", "report.md", "kafka", "kafka-clients.log", "trials", "capacity.json",
    "capacity.md", "capacity.png", "latency-cdf.png", "latency-over-time.png", "throughput-over-time.png",
    "resources-over-time.png", "work",
})
"""Names a run or capacity directory uses for its own files: an engine label names a directory beside them."""

MAX_WORKERS = 64
WORKERS_PER_CPU = 4


def max_workers() -> int:
    """Most generator worker processes allowed on this host: :data:`WORKERS_PER_CPU` per CPU, never more than
    :data:`MAX_WORKERS`; more processes than that only take turns on the CPUs."""
    return min(MAX_WORKERS, WORKERS_PER_CPU * (os.cpu_count() or 1))


class StrictModel(BaseModel):
    """Unknown keys are errors, numbers are finite (``.inf`` and ``.nan`` are refused, not written to ``run.json``
    as ``null``), and models are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)
