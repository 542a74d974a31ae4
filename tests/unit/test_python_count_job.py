"""The calibration job's counting, watermark and lateness on hand-made events (pure, no Kafka); its writer and
throttle with fakes and a fake clock; the engine classes' settings, fairness and metrics."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness import workload
from harness.engines.base import FAIRNESS_KEYS, EngineContext
from harness.engines.jobs.python_count_job import BATCH, CountJob, TokenBucket
from harness.engines.jobs.python_count_output import MALFORMED_KINDS, ResultWriter, encode_result, malformed_value
from harness.engines.jobs.python_count_state import FinalWindow, WindowCounter, parse_batch
from harness.engines.python_count import CalibrationEngine, CalibrationSettings
from harness.engines.registry import resolve_engine
from harness.loadgen.events import EventPlan, iter_chunks
from harness.analysis.judge import judge
from harness.analysis.oracle import expected_for_run
from harness.scenario import parse_scenario
from tests.engines import KnownTruthEngine, KnownTruthSettings

TUMBLING = workload.Windows(size_ms=10, slide_ms=10, watermark_delay_ms=2)
HOPPING = workload.Windows(size_ms=10, slide_ms=5, watermark_delay_ms=2)


def feed(counter: WindowCounter, *batches: list[tuple[str, int]]) -> list[list[FinalWindow]]:
    """Each batch of (user, ts) through the counter; the windows each batch made final."""
    out = []
    for batch in batches:
        users = [user for user, _ in batch]
        ts = [t for _, t in batch]
        out.append(counter.process(users, ts))
    return out


def as_tuples(windows: list[FinalWindow]) -> list[tuple[int, int, dict[str, int]]]:
    return [(w.start, w.end, w.counts) for w in windows]


# ------------------------------------------------------------------------------------------------ counting
def test_tumbling_window_is_final_exactly_when_the_watermark_reaches_its_end() -> None:
    counter = WindowCounter(TUMBLING)
    first, almost, reached = feed(
        counter,
        [("a", 0), ("b", 3), ("a", 9), ("a", 10)],
        [("b", 11)],  # watermark 11 - 2 = 9: [0, 10) not final yet
        [("a", 12)],  # watermark 10 = end: final
    )
    assert first == [] and almost == []
    assert counter.watermark == 10
    assert as_tuples(reached) == [(0, 10, {"a": 2, "b": 1})]


def test_events_of_the_batch_that_closes_a_window_still_count_in_it() -> None:
    # the watermark moves after a batch (as between Spark's micro-batches): ts 8 arrives with ts 15
    counter = WindowCounter(TUMBLING)
    [closed] = feed(counter, [("a", 1), ("a", 15), ("b", 8)])
    assert as_tuples(closed) == [(0, 10, {"a": 1, "b": 1})]


def test_hopping_event_counts_in_every_window_and_windows_close_oldest_first() -> None:
    counter = WindowCounter(HOPPING)  # windows [-5, 5), [0, 10), [5, 15), ...
    opened, closed = feed(counter, [("a", 3), ("a", 7), ("b", 12)], [("c", 30)])
    assert as_tuples(opened) == [(-5, 5, {"a": 1}), (0, 10, {"a": 2})]  # watermark 12 - 2 = 10
    assert as_tuples(closed) == [(5, 15, {"a": 1, "b": 1}), (10, 20, {"b": 1})]
    assert counter.watermark == 28


def test_an_event_late_for_every_window_is_dropped_and_counted_as_late() -> None:
    counter = WindowCounter(TUMBLING)
    first, second, third = feed(counter, [("a", 5), ("a", 22)], [("b", 9), ("b", 21)], [("c", 40)])
    assert as_tuples(first) == [(0, 10, {"a": 1})]
    assert second == []
    assert counter.late_dropped == 1  # b at 9: [0, 10) was already final
    assert as_tuples(third) == [(20, 30, {"a": 1, "b": 1})]


def test_an_event_late_for_its_older_hopping_window_still_counts_in_the_newer_one() -> None:
    counter = WindowCounter(HOPPING)
    first, second, third = feed(counter, [("a", 1), ("a", 12)], [("b", 7)], [("z", 40)])
    # watermark 10 closed [-5, 5) and [0, 10); b at 7 belongs to [0, 10) (final) and [5, 15) (open)
    assert as_tuples(first) == [(-5, 5, {"a": 1}), (0, 10, {"a": 1})]
    assert counter.late_dropped == 0
    assert as_tuples(third) == [(5, 15, {"a": 1, "b": 1}), (10, 20, {"a": 1})]
    assert second == []


def test_the_watermark_is_held_back_by_the_partition_that_is_furthest_behind() -> None:
    counter = WindowCounter(TUMBLING)
    assert counter.process(["a", "b"], [3, 25], [0, 1]) == []  # partition 0 is at 3: watermark 1
    assert counter.watermark == 1
    # partition 1 ran ahead: its event at 9 would be late with one watermark over all partitions (25 - 2 = 23)
    assert counter.process(["c"], [9], [0]) == []
    closed = counter.process(["a"], [12], [0])  # partition 0 reaches 12: watermark 10
    assert as_tuples(closed) == [(0, 10, {"a": 1, "c": 1})]
    assert counter.late_dropped == 0


def test_a_partition_that_has_delivered_nothing_does_not_hold_the_watermark_back() -> None:
    counter = WindowCounter(TUMBLING)
    closed = counter.process(["a", "a"], [1, 15], [2, 2])
    assert as_tuples(closed) == [(0, 10, {"a": 1})]


def test_flush_records_are_not_counted_but_move_the_watermark() -> None:
    counter = WindowCounter(TUMBLING)
    first, flushed = feed(counter, [("a", 4), (workload.FLUSH_USER, 6)], [(workload.FLUSH_USER, 100)])
    assert first == []
    assert as_tuples(flushed) == [(0, 10, {"a": 1})]
    assert counter.watermark == 98


def test_the_watermark_never_goes_back_and_an_older_batch_closes_nothing() -> None:
    counter = WindowCounter(TUMBLING)
    feed(counter, [("a", 15)])
    assert counter.watermark == 13
    assert feed(counter, [("a", 14)]) == [[]]
    assert counter.watermark == 13
    assert counter.advance(5) == [] and counter.watermark == 13


def test_a_window_is_emitted_once_and_its_state_is_freed() -> None:
    counter = WindowCounter(TUMBLING)
    batches = feed(counter, [("a", 1)], [("a", 12)], [("a", 13)], [("a", 35)])
    assert [[w.start for w in batch] for batch in batches] == [[], [0], [], [10]]  # [20, 30) had no event
    assert list(counter._buckets) == [30]


def test_counts_equal_the_oracle_for_generated_disordered_events_with_late_ones() -> None:
    scenario = parse_scenario(
        {"name": "t", "duration": "12s", "load": {"rate": "4k", "users": 50,
                                                   "late": {"fraction": 0.01, "by": "8s"},
                                                   "disorder": {"fraction": 0.2, "max_delay": "900ms"}},
         "window": {"size": "2s", "slide": "500ms", "watermark_delay": "1s"}, "engines": ["x"]},
        check_engines=False,
    )
    start = 1_764_072_000_000
    window = scenario.window
    counter = WindowCounter(workload.Windows(window.size, window.slide_ms, window.watermark_delay))
    names = workload.user_id(np.arange(50), 50)
    final: list[FinalWindow] = []
    last_ts = start
    for batch in iter_chunks(EventPlan.from_scenario(scenario, start)):
        final += counter.process([str(names[u]) for u in batch.user], batch.ts.tolist())
        last_ts = max(last_ts, int(batch.ts.max()))
    final += counter.process([workload.FLUSH_USER], [counter.windows.flush_ts(last_ts)])
    rows = [(user, w.start, w.end, count) for w in final for user, count in w.counts.items()]
    output = pd.DataFrame(rows, columns=["user", "window_start", "window_end", "count"])
    output = output.assign(append_ms=0, partition=0, offset=range(len(output)))
    diff = judge(output, expected_for_run(scenario, start), read_committed=False).correctness
    assert diff.correct, diff.problems[:5]
    assert diff.records == len(rows) > 1000 and diff.duplicated == 0
    assert counter.late_dropped > 0 and diff.late_dropped == counter.late_dropped


# ------------------------------------------------------------------------------------------------ parsing
def test_parse_batch_reads_user_and_ts_of_generator_records() -> None:
    values = [b'{"user": "u00001", "action": "click", "ts": 17, "seq": 0, "pad": "xx"}',
              b'{"user": "u00002", "action": "click", "ts": 18, "seq": 1}']
    assert parse_batch(values) == (["u00001", "u00002"], [17, 18], None)


def test_parse_batch_skips_bad_values_one_by_one() -> None:
    values = [b'{"user": "a", "ts": 1}', b"not json", b'{"user": "b"}',
              b'{"user": "c", "ts": 2},{"user": "d", "ts": 3}', b'{"user": "e", "ts": 4}']
    assert parse_batch(values) == (["a", "e"], [1, 4], [0, 4])


# ------------------------------------------------------------------------------------------------ output
def is_result(value: bytes) -> bool:
    """A result record exactly as harness.workload defines it."""
    try:
        row = json.loads(value)
    except ValueError:
        return False
    if not isinstance(row, dict) or tuple(row) != workload.OUTPUT_FIELDS or not isinstance(row["user"], str):
        return False
    return all(type(row[key]) is int for key in workload.OUTPUT_FIELDS[1:])


def test_results_are_compact_json_of_the_workload_record() -> None:
    value = encode_result("u00042", 0, 10_000, 17)
    assert value == b'{"user":"u00042","window_start":0,"window_end":10000,"count":17}'
    assert is_result(value)


@pytest.mark.parametrize("user", ["u00042", 'say "hi"', "back\\slash", "üser", "tab\tnew\nline", ""])
@pytest.mark.parametrize("count", [0, 17, 2**40])
def test_results_are_byte_for_byte_what_json_dumps_writes(user: str, count: int) -> None:
    reference = json.dumps(workload.result_record(user, -10_000, 1_764_072_000_000, count), separators=(",", ":"))
    assert encode_result(user, -10_000, 1_764_072_000_000, count) == reference.encode()


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_every_malformed_kind_is_not_a_result_record(kind: str) -> None:
    assert not is_result(malformed_value(kind, "u00042", 0, 10_000, 17))


def test_two_objects_parse_as_two_records_when_joined_with_commas() -> None:
    value = malformed_value("two-objects", "u1", 0, 10, 3)
    assert len(json.loads(b"[" + value + b"]")) == 2


def test_unknown_malformed_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown malformed kind 'nope'"):
        malformed_value("nope", "u1", 0, 10, 3)


class FakeProducer:
    """Records what a confluent-kafka Producer was asked to do, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def produce(self, topic: str, value: bytes, key: bytes) -> None:
        self.calls.append(("produce", (key.decode(), value)))

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float | None = None) -> int:
        self.calls.append(("flush", None))
        return 0

    def begin_transaction(self) -> None:
        self.calls.append(("begin", None))

    def commit_transaction(self) -> None:
        self.calls.append(("commit", None))

    def abort_transaction(self, timeout: float) -> None:
        self.calls.append(("abort", None))

    def values(self) -> list[bytes]:
        return [args[1] for name, args in self.calls if name == "produce"]


class FakeClock:
    def __init__(self, now: float = 1_000_000) -> None:
        self.now = now

    def ms(self) -> int:
        return int(self.now)

    def seconds(self) -> float:
        return self.now


WINDOW = FinalWindow(0, 10_000, {"a": 1, "b": 2, "c": 3})


def test_writer_writes_at_once_by_default() -> None:
    producer = FakeProducer()
    ResultWriter(producer, "out").submit([WINDOW], final_ms=5)
    assert producer.values() == [encode_result(u, 0, 10_000, c) for u, c in WINDOW.counts.items()]


def test_writer_holds_results_for_delay_ms_after_the_window_was_final() -> None:
    producer, clock = FakeProducer(), FakeClock(1_000)
    writer = ResultWriter(producer, "out", delay_ms=3_000, clock_ms=clock.ms)
    writer.submit([WINDOW], final_ms=1_000)
    clock.now = 3_999
    writer.pump()
    assert producer.values() == []
    clock.now = 4_000
    writer.pump()
    assert len(producer.values()) == 3


def test_writer_makes_every_nth_result_one_too_high() -> None:
    producer = FakeProducer()
    writer = ResultWriter(producer, "out", wrong_every=2)
    writer.submit([WINDOW, FinalWindow(10_000, 20_000, {"a": 5})], final_ms=0)
    counts = [json.loads(v)["count"] for v in producer.values()]
    assert counts == [1, 3, 3, 6]  # 2nd and 4th are +1
    assert writer.results == 4


def test_writer_puts_malformed_records_before_the_genuine_ones_of_a_window() -> None:
    producer = FakeProducer()
    ResultWriter(producer, "out", malformed=["not-json", "count-null"]).submit([WINDOW], final_ms=0)
    values = producer.values()
    assert values[:2] == [b"not json {", b'{"user":"a","window_start":0,"window_end":10000,"count":null}']
    assert [is_result(v) for v in values[2:]] == [True, True, True]


def test_transactional_writer_commits_commit_delay_after_the_writes_and_logs_both_times() -> None:
    producer, clock, log = FakeProducer(), FakeClock(1_000), io.StringIO()
    writer = ResultWriter(producer, "out", transactional=True, commit_delay_ms=500, transactions_log=log,
                          clock_ms=clock.ms)
    writer.submit([WINDOW, FinalWindow(10_000, 20_000, {"a": 5})], final_ms=1_000)
    assert [name for name, _ in producer.calls] == ["begin", "produce", "produce", "produce", "flush"]
    clock.now = 1_499
    writer.pump()
    assert "commit" not in [name for name, _ in producer.calls]
    clock.now = 1_500
    writer.pump()  # commits the first window, then opens the second one's transaction
    names = [name for name, _ in producer.calls]
    assert names[5:] == ["commit", "begin", "produce", "flush"]
    line = json.loads(log.getvalue())
    assert line == {"window_start": 0, "window_end": 10_000, "records": 3, "final_ms": 1_000, "write_ms": 1_000,
                    "commit_ms": 1_500}
    writer.close()
    assert producer.calls[-2:] == [("abort", None), ("flush", None)]


def test_token_bucket_allows_rate_per_second_in_bursts_of_at_most_burst() -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(1_000, burst=100, clock=clock.seconds)
    assert bucket.allowance() == 100
    bucket.take(100)
    assert bucket.allowance() == 0 and bucket.wait_s() == pytest.approx(0.001)
    clock.now = 0.05
    assert bucket.allowance() == 50
    clock.now = 10.0
    assert bucket.allowance() == 100  # idle time does not pile up beyond the burst


class FakeMessage:
    def __init__(self, value: bytes, partition: int = 0) -> None:
        self._value = value
        self._partition = partition

    def error(self) -> None:
        return None

    def value(self) -> bytes:
        return self._value

    def partition(self) -> int:
        return self._partition


class FakeConsumer:
    """Hands out the queued values as messages; ``taken`` records how many each poll+consume turn took."""

    def __init__(self, values: list[bytes], partitions: list[int] | None = None) -> None:
        self.queue = [FakeMessage(v, p) for v, p in zip(values, partitions or [0] * len(values))]
        self.taken: list[int] = []

    def poll(self, timeout: float) -> FakeMessage | None:
        if not self.queue:
            return None
        self.taken.append(1)
        return self.queue.pop(0)

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        out, self.queue = self.queue[:num_messages], self.queue[num_messages:]
        self.taken[-1] += len(out)
        return out


def spec(**settings: Any) -> workload.JobSpec:
    return workload.JobSpec(bootstrap="127.0.0.1:1", input_topic="in", output_topic="out", window_size_ms=10,
                            window_slide_ms=10, watermark_delay_ms=2, parallelism=4, partitions=4,
                            state_dir="/nonexistent", settings=settings)


def event(user: str, ts: int) -> bytes:
    return json.dumps({"user": user, "action": "click", "ts": ts, "seq": 0}).encode()


def test_job_step_counts_a_batch_writes_final_windows_and_a_metrics_sample() -> None:
    consumer = FakeConsumer([event("a", 1), event("b", 2), event("a", 13)])
    producer, metrics = FakeProducer(), io.StringIO()
    job = CountJob(spec(), consumer, ResultWriter(producer, "out"), metrics)
    job.step()
    assert consumer.taken == [3]
    assert sorted(producer.values()) == [encode_result("a", 0, 10, 1), encode_result("b", 0, 10, 1)]
    sample = json.loads(metrics.getvalue())
    assert (sample["rows"], sample["results"], sample["watermark_ms"]) == (3, 2, 11)


def test_job_takes_event_time_per_partition_from_the_messages() -> None:
    values = [event("a", 1), event("b", 30), event("a", 13)]
    consumer, producer = FakeConsumer(values, partitions=[0, 1, 0]), FakeProducer()
    job = CountJob(spec(), consumer, ResultWriter(producer, "out"), None)
    job.step()
    assert job.counter.watermark == 11  # partition 0 at 13, not partition 1 at 30
    assert producer.values() == [encode_result("a", 0, 10, 1)]


def test_job_step_under_capacity_takes_no_more_than_the_bucket_allows() -> None:
    consumer = FakeConsumer([event("a", i) for i in range(1_000)])
    job = CountJob(spec(capacity=2_000), consumer, ResultWriter(FakeProducer(), "out"), None)
    job.step()
    assert consumer.taken == [100]  # burst = capacity / 20
    assert job.rows == 100


def test_job_without_capacity_takes_up_to_a_full_batch() -> None:
    consumer = FakeConsumer([event("a", i) for i in range(BATCH + 5)])
    job = CountJob(spec(), consumer, ResultWriter(FakeProducer(), "out"), None)
    job.step()
    job.step()
    assert consumer.taken == [BATCH, 5]


# ------------------------------------------------------------------------------------------------ engines
def context(tmp_path: Path, **settings: Any) -> EngineContext:
    return EngineContext(spec=spec(**settings), run_dir=tmp_path)


def test_calibration_is_registered_and_exposes_no_knobs() -> None:
    assert resolve_engine("calibration") is CalibrationEngine
    assert CalibrationSettings.model_fields == {}
    with pytest.raises(ValueError, match="delay_ms"):
        CalibrationSettings.model_validate({"delay_ms": 5})


def test_fairness_names_every_key_and_transactions_switch_delivery(tmp_path: Path) -> None:
    plain = CalibrationEngine(CalibrationSettings(), context(tmp_path)).fairness()
    assert set(plain) == set(FAIRNESS_KEYS)
    assert (plain["delivery"], plain["parallelism"], plain["partitions"], plain["checkpointing"]) == (
        "at-least-once", "1", "4", "off")
    txn = KnownTruthEngine(KnownTruthSettings(transactional=True), context(tmp_path))
    assert txn.read_committed is True
    assert txn.fairness()["delivery"] == "exactly-once (transactions)"
    assert txn.fairness()["deployment"] == "local (test engine KnownTruthEngine: transactional=True)"
    assert CalibrationEngine(CalibrationSettings(), context(tmp_path)).read_committed is False


def test_job_spec_carries_the_knobs_and_side_channel_paths(tmp_path: Path) -> None:
    engine = KnownTruthEngine(KnownTruthSettings(delay_ms=3000), context(tmp_path))
    settings = engine.job_spec().settings
    assert settings["delay_ms"] == 3000 and settings["capacity"] is None
    assert settings["metrics_file"] == str(tmp_path / "python-count-metrics.jsonl")
    assert settings["transactional_id"].startswith("bench-python-count-")


def test_known_truth_settings_are_strict_and_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="unknown kind\\(s\\) 'nope'; choose from not-json"):
        KnownTruthSettings(malformed=["nope"])
    with pytest.raises(ValueError, match="commit_delay_ms is only for transactional output"):
        KnownTruthSettings(commit_delay_ms=100)
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        KnownTruthSettings.model_validate({"delay": 5})
    with pytest.raises(ValueError, match="greater than 0"):
        KnownTruthSettings(capacity=0)


def test_metrics_give_input_rows_and_the_last_counters(tmp_path: Path) -> None:
    engine = CalibrationEngine(CalibrationSettings(), context(tmp_path))
    lines = [{"t_ms": 1_000, "rows": 0, "late_dropped": 0, "results": 0, "watermark_ms": None, "bad_input": 0},
             {"t_ms": 2_000, "rows": 5_000, "late_dropped": 1, "results": 10, "watermark_ms": 7, "bad_input": 0},
             {"t_ms": 2_500, "rows": 6_000, "late_dropped": 2, "results": 20, "watermark_ms": 9, "bad_input": 0}]
    engine.metrics_path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"t_ms": 3')
    metrics = engine.metrics()
    assert metrics["input_rows"] == [{"t_ms": 1_000, "rows": 0}, {"t_ms": 2_000, "rows": 5_000},
                                     {"t_ms": 2_500, "rows": 6_000}]
    assert (metrics["late_dropped"], metrics["results"]) == (2, 20)
