"""The open-loop, deterministic load generator (see :mod:`harness.loadgen.generator` for the phases of a run).

Public surface: :func:`run_generator` drives a scenario's load into a topic and returns a
:class:`GeneratorResult`; :func:`producer_perf` measures the raw producer path; :class:`EventPlan`,
:func:`generate_chunk` and :func:`iter_chunks` make the same events without Kafka (the oracle's input).
"""

from harness.loadgen.events import CHUNK_MS, EventBatch, EventPlan, generate_chunk, iter_chunks
from harness.loadgen.generator import GeneratorResult, Progress, SecondStats, aligned_start, run_generator
from harness.loadgen.perf import producer_perf
from harness.loadgen.schedule import RateSchedule
from harness.loadgen.stats import SelfCheckLimits

__all__ = [
    "CHUNK_MS",
    "EventBatch",
    "EventPlan",
    "GeneratorResult",
    "Progress",
    "RateSchedule",
    "SecondStats",
    "SelfCheckLimits",
    "aligned_start",
    "generate_chunk",
    "iter_chunks",
    "producer_perf",
    "run_generator",
]
