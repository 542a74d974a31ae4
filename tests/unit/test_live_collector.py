"""The live collector's reader with fake consumer messages: bad records by kind (hand-picked and fuzzed), the
receive time, the drain's settle state, and a reader thread that never dies from input."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from harness.run import collector
from harness.run.collector import LiveCollector
from harness.run.records import (
    BAD_KINDS,
    BAD_SAMPLE_BYTES,
    BAD_SAMPLES,
    MAX_RESULT_INT,
    classify_record,
    parse_batch,
    sample_value,
)
from harness.workload import FLUSH_USER


class FakeError:
    """Quacks like confluent_kafka.KafkaError."""

    def __init__(self, text: str, fatal: bool = False) -> None:
        self._text, self._fatal = text, fatal

    def fatal(self) -> bool:
        return self._fatal

    def __str__(self) -> str:
        return self._text


class FakeMessage:
    """Quacks like confluent_kafka.Message for what the collector reads."""

    def __init__(self, value: bytes | None, partition: int, offset: int, ts: int, ts_type: int = 2,
                 error: FakeError | None = None) -> None:
        self._value, self._partition, self._offset, self._ts = value, partition, offset, (ts_type, ts)
        self._error = error

    def error(self) -> FakeError | None:
        return self._error

    def value(self) -> bytes | None:
        return self._value

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return self._ts


def result(user: str, start: int, count: int, end: int | None = None) -> bytes:
    """A genuine result record's value (compact JSON, as the engines write it)."""
    end = start + 10_000 if end is None else end
    return json.dumps({"user": user, "window_start": start, "window_end": end, "count": count},
                      separators=(",", ":")).encode()


def message(user: str, start: int, count: int, append: int, partition: int = 0, offset: int = 0, **kw: Any) -> FakeMessage:
    return FakeMessage(result(user, start, count), partition, offset, append, **kw)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def expected_pairs(rows: list[tuple[str, int, int, int]]) -> pd.DataFrame:
    """(user, window_start, count_min, count_max) → the oracle's pairs."""
    frame = pd.DataFrame(rows, columns=["user", "window_start", "count_min", "count_max"])
    frame["window_end"] = frame["window_start"] + 10_000
    return frame[["user", "window_start", "window_end", "count_min", "count_max"]]


# ------------------------------------------------------------------------------------------------ basics
def test_ingest_snapshot_frame_and_received_final() -> None:
    live = LiveCollector("unused:9092", "results", read_committed=False)
    live.ingest(
        [
            message("u1", 0, 3, 11_000, 0, 0),
            message("u2", 0, 2, 12_000, 1, 0),
            message(FLUSH_USER, 0, 1, 13_000, 1, 1),
            FakeMessage(b"not json", 1, 2, 13_000),
        ],
        receive_ms=13_005,
    )
    expected = expected_pairs([("u1", 0, 5, 5), ("u2", 0, 2, 2), ("u3", 0, 0, 1)])
    assert live.received_final(expected) == (1, 2)  # u3 holds only late events: not expected
    live.ingest([message("u1", 0, 5, 12_500, 0, 1, ts_type=1)], receive_ms=14_000)
    assert live.received_final(expected) == (2, 2)
    snap = live.snapshot()
    assert (snap.records, snap.flush_records, snap.bad_records, snap.not_append_time) == (3, 1, 1, 1)
    assert snap.bad_by_kind == {"not_json": 1} and snap.failed is None and snap.error is None
    assert snap.bad_samples == [{"kind": "not_json", "value": "not json", "bytes": 8, "partition": 1, "offset": 2}]
    assert snap.recent_p50_ms == 2_000 and snap.last_append_ms == 13_000
    frame = live.frame()
    assert list(frame.columns) == list(collector.RECORD_COLUMNS)
    assert frame["count"].tolist() == [3, 2, 1, 5]
    assert frame["receive_ms"].tolist() == [13_005, 13_005, 13_005, 14_000]
    assert frame["append_ms"].tolist() == [11_000, 12_000, 13_000, 12_500]
    assert frame["partition"].tolist() == [0, 1, 1, 0] and frame["offset"].tolist() == [0, 0, 1, 1]


def test_empty_frame_has_the_record_columns() -> None:
    frame = LiveCollector("unused:9092", "results", read_committed=False).frame()
    assert list(frame.columns) == list(collector.RECORD_COLUMNS) and len(frame) == 0


def test_ring_of_recent_latencies_keeps_the_newest() -> None:
    live = LiveCollector("unused:9092", "results", read_committed=False, recent=4)
    live.ingest([message("u1", 0, 1, 10_000 + i * 100, 0, i) for i in range(10)])
    live.ingest([message("u1", 0, 1, 20_000, 0, 10)])
    snap = live.snapshot()
    assert snap.recent_p50_ms == pytest.approx(np.percentile([800, 900, 10_000, 700], 50))


def test_read_committed_latency_uses_the_later_of_append_and_receive() -> None:
    batch = [message("u1", 0, 1, 11_000, 0, 0), message("u2", 0, 1, 13_000, 0, 1)]
    committed = LiveCollector("unused:9092", "results", read_committed=True)
    committed.ingest(batch, receive_ms=12_000)  # commit made u1 visible at 12 000; u2 was appended later
    plain = LiveCollector("unused:9092", "results", read_committed=False)
    plain.ingest(batch, receive_ms=12_000)
    assert committed.snapshot().recent_p50_ms == 2_500  # median of 2 000 and 3 000
    assert plain.snapshot().recent_p50_ms == 2_000  # median of 1 000 and 3 000
    assert collector.visible_ms(np.array([5, 9]), np.array([7, 7]), read_committed=True).tolist() == [7, 9]
    assert collector.visible_ms(np.array([5, 9]), np.array([7, 7]), read_committed=False).tolist() == [5, 9]


# ------------------------------------------------------------------------------------------------ bad records
BIG = 2**53 + 1
CASES: list[tuple[str, bytes | None, str]] = [
    ("user is an object", b'{"user":{"id":1},"window_start":0,"window_end":10000,"count":1}', "bad_user"),
    ("user is a number", b'{"user":42,"window_start":0,"window_end":10000,"count":1}', "bad_user"),
    ("user is a list", b'{"user":["u1"],"window_start":0,"window_end":10000,"count":1}', "bad_user"),
    ("user is empty", b'{"user":"","window_start":0,"window_end":10000,"count":1}', "bad_user"),
    ("user is a lone surrogate", b'{"user":"\\ud800","window_start":0,"window_end":10000,"count":1}', "bad_user"),
    ("window_start is a string", b'{"user":"u1","window_start":"abc","window_end":10000,"count":1}', "window_not_integer"),
    ("window_end is null", b'{"user":"u1","window_start":0,"window_end":null,"count":1}', "window_not_integer"),
    ("window_start is 0.0", b'{"user":"u1","window_start":0.0,"window_end":10000,"count":1}', "window_not_integer"),
    ("window_start is true", b'{"user":"u1","window_start":true,"window_end":10000,"count":1}', "window_not_integer"),
    ("window_start is negative", b'{"user":"u1","window_start":-10000,"window_end":0,"count":1}', "window_out_of_range"),
    ("window_end above 2^53", b'{"user":"u1","window_start":0,"window_end":%d,"count":1}' % BIG, "window_out_of_range"),
    ("window_end above 2^64", b'{"user":"u1","window_start":0,"window_end":%d,"count":1}' % 2**70, "window_out_of_range"),
    ("window_end == window_start", b'{"user":"u1","window_start":10000,"window_end":10000,"count":1}', "window_not_ordered"),
    ("window_end < window_start", b'{"user":"u1","window_start":20000,"window_end":10000,"count":1}', "window_not_ordered"),
    ("count is null", b'{"user":"u1","window_start":0,"window_end":10000,"count":null}', "count_not_integer"),
    ("count is 17.9", b'{"user":"u1","window_start":0,"window_end":10000,"count":17.9}', "count_not_integer"),
    ("count is 17.0", b'{"user":"u1","window_start":0,"window_end":10000,"count":17.0}', "count_not_integer"),
    ("count is 1e3", b'{"user":"u1","window_start":0,"window_end":10000,"count":1e3}', "count_not_integer"),
    ("count is true", b'{"user":"u1","window_start":0,"window_end":10000,"count":true}', "count_not_integer"),
    ("count is a string", b'{"user":"u1","window_start":0,"window_end":10000,"count":"17"}', "count_not_integer"),
    ("count is NaN", b'{"user":"u1","window_start":0,"window_end":10000,"count":NaN}', "count_not_integer"),
    ("count is negative", b'{"user":"u1","window_start":0,"window_end":10000,"count":-1}', "count_out_of_range"),
    ("count above 2^53", b'{"user":"u1","window_start":0,"window_end":10000,"count":%d}' % BIG, "count_out_of_range"),
    ("count is missing", b'{"user":"u1","window_start":0,"window_end":10000}', "missing_field"),
    ("everything is missing", b"{}", "missing_field"),
    ("an extra field", b'{"user":"u1","window_start":0,"window_end":10000,"count":1,"x":0}', "extra_field"),
    ("not JSON", b"hello", "not_json"),
    ("truncated JSON", b'{"user":"u1","window_start":0,"window_end":10000,"count":1', "not_json"),
    ("invalid UTF-8", b'{"user":"\xff","window_start":0,"window_end":10000,"count":1}', "not_json"),
    ("a raw newline in a string", b'{"user":"u\n1","window_start":0,"window_end":10000,"count":1}', "not_json"),
    ("a UTF-8 byte order mark", b'\xef\xbb\xbf{"user":"u1","window_start":0,"window_end":10000,"count":1}', "not_json"),
    ("nested too deeply", b"[" * 100_000, "not_json"),
    ("only whitespace", b"  ", "not_json"),
    ("empty value", b"", "empty"),
    ("tombstone", None, "empty"),
    ("two objects", result("u1", 0, 1) + result("u2", 0, 1), "several_values"),
    ("two objects with a comma", result("u1", 0, 1) + b"," + result("u2", 0, 1), "several_values"),
    ("an object then a number", result("u1", 0, 1) + b" 17", "several_values"),
    ("an object then garbage", result("u1", 0, 1) + b" x", "not_json"),
    ("an object then a comma", result("u1", 0, 1) + b",", "not_json"),
    ("an array of results", b"[" + result("u1", 0, 1) + b"]", "not_object"),
    ("a number", b"17", "not_object"),
    ("a string", b'"u1"', "not_object"),
    ("null", b"null", "not_object"),
]


@pytest.mark.parametrize(("what", "value", "kind"), CASES, ids=[case[0] for case in CASES])
def test_each_malformed_record_is_counted_under_its_kind_and_its_batch_kept(what: str, value: bytes | None,
                                                                          kind: str) -> None:
    assert kind in BAD_KINDS
    assert classify_record(value)[0] == kind
    live = LiveCollector("unused:9092", "results", read_committed=False)
    live.ingest([message("u1", 0, 3, 11_000, 0, 0), FakeMessage(value, 0, 1, 11_100), message("u2", 0, 4, 11_200, 0, 2)])
    snap = live.snapshot()
    assert (snap.records, snap.bad_records, snap.bad_by_kind) == (2, 1, {kind: 1})
    assert snap.bad_samples[0]["kind"] == kind and snap.bad_samples[0]["offset"] == 1
    frame = live.frame()
    assert frame["user"].tolist() == ["u1", "u2"] and frame["count"].tolist() == [3, 4]
    assert frame["offset"].tolist() == [0, 2]


def test_genuine_records_in_other_spellings_are_kept() -> None:
    values = [
        b'{ "count" : 3 , "window_end" : 10000 , "window_start" : 0 , "user" : "u1" } \n',
        b'{"user":"\\u00e9t\\u00e9","window_start":0,"window_end":10000,"count":0}',
        '{"user":"été","window_start":0,"window_end":10000,"count":%d}'.encode() % MAX_RESULT_INT,
    ]
    assert [classify_record(v)[1] for v in values] == [
        ("u1", 0, 10_000, 3), ("été", 0, 10_000, 0), ("été", 0, 10_000, MAX_RESULT_INT)
    ]
    columns = parse_batch(values)
    assert columns is not None and columns[0] == ["u1", "été", "été"]
    assert columns[3].tolist() == [3, 0, MAX_RESULT_INT]


def test_values_that_leak_into_their_neighbours_are_not_read_as_one_record() -> None:
    # Joined by plain commas, each trio would parse as three genuine-looking objects: two halves of one object
    # make one record and two objects in one value make up for the count.
    compensate = result("u2", 0, 1) + b",\n" + result("u3", 0, 1)
    halves = [b'{"user":"u1","window_start":0', b'"window_end":10000,"count":5}']
    in_a_string = [b'{"user":"u1', b'{","window_start":0,"window_end":10000,"count":5}']  # user "u1,{"
    for trio in ([*halves, compensate], [*in_a_string, compensate]):
        assert len(json.loads(b"[" + b",".join(trio) + b"]")) == len(trio)  # the trap is real
        assert parse_batch(trio) is None
        assert parse_batch([*trio, result("u4", 0, 2)]) is None
    assert [classify_record(v)[0] for v in [*halves, *in_a_string, compensate]] == ["not_json"] * 4 + ["several_values"]


def test_genuine_records_with_leading_whitespace_take_the_slow_path() -> None:
    values = [b" " + result("u1", 0, 1), result("u2", 0, 2)]
    assert parse_batch(values) is None
    live = LiveCollector("unused:9092", "results", read_committed=False)
    live.ingest([FakeMessage(v, 0, i, 11_000) for i, v in enumerate(values)])
    assert live.frame()["user"].tolist() == ["u1", "u2"] and live.snapshot().bad_records == 0


def test_bad_samples_keep_the_first_five_and_the_first_of_every_kind() -> None:
    live = LiveCollector("unused:9092", "results", read_committed=False)
    bad = [FakeMessage(b"x%d" % i, 0, i, 1) for i in range(8)] + [FakeMessage(b"", 0, 8, 1), FakeMessage(b"[]", 0, 9, 1)]
    live.ingest(bad)
    samples = live.snapshot().bad_samples
    assert [s["offset"] for s in samples] == [0, 1, 2, 3, 4, 8, 9]
    assert [s["kind"] for s in samples] == ["not_json"] * 5 + ["empty", "not_object"]
    assert live.snapshot().bad_by_kind == {"not_json": 8, "empty": 1, "not_object": 1}


def test_sample_values_are_truncated_and_printable() -> None:
    assert sample_value(b"a\nb\x00\xff\xe9t\xc3\xa9") == "a\\nb\\x00\\xff\\xe9t\u00e9"
    assert sample_value(b"y" * 1_000) == "y" * BAD_SAMPLE_BYTES
    assert sample_value(None) == ""


# ------------------------------------------------------------------------------------------------ fuzz
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True), st.text(max_size=8), st.integers(-(2**70), 2**70)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
NOT_INTEGER = JSON_VALUES.filter(lambda v: type(v) is not int)
OUT_OF_RANGE = st.integers(-(2**70), -1) | st.integers(MAX_RESULT_INT + 1, 2**70)


@st.composite
def genuine(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(st.integers(0, MAX_RESULT_INT - 1))
    return {
        "user": draw(st.text(min_size=1, max_size=12)),
        "window_start": start,
        "window_end": draw(st.integers(start + 1, MAX_RESULT_INT)),
        "count": draw(st.integers(0, MAX_RESULT_INT)),
    }


@st.composite
def spelled(draw: st.DrawFn, obj: Any) -> bytes:
    """One JSON spelling of ``obj``: key order, separators, escapes and surrounding whitespace vary."""
    if isinstance(obj, dict) and draw(st.booleans()):
        obj = dict(draw(st.permutations(list(obj.items()))))
    text = json.dumps(obj, ensure_ascii=draw(st.booleans()), separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])))
    pad = st.text(alphabet=" \t\r\n", max_size=2)
    return (draw(pad) + text + draw(pad)).encode("utf-8", "surrogatepass")


@st.composite
def malformed(draw: st.DrawFn) -> tuple[str, bytes | None]:
    """A bad record with the kind it must be counted under."""
    row = draw(genuine())
    kind = draw(st.sampled_from(sorted(BAD_KINDS)))
    if kind == "empty":
        return kind, draw(st.sampled_from([b"", None]))
    if kind == "not_json":
        text = json.dumps(row).encode()
        broken = draw(st.sampled_from([text[: draw(st.integers(1, len(text) - 1))], b"\xff" + text, b"{" + text]))
        return kind, broken
    if kind == "several_values":
        second = draw(spelled(draw(JSON_VALUES)))
        return kind, draw(spelled(row)) + draw(st.sampled_from([b"", b" ", b",", b"\n"])) + second
    if kind == "not_object":
        return kind, draw(spelled(draw(JSON_VALUES.filter(lambda v: not isinstance(v, dict)))))
    if kind == "missing_field":
        for name in draw(st.lists(st.sampled_from(sorted(row)), min_size=1, unique=True)):
            del row[name]
    elif kind == "extra_field":
        row[draw(st.text(max_size=6).filter(lambda k: k not in row))] = draw(JSON_VALUES)
    elif kind == "bad_user":
        row["user"] = draw(st.just("") | st.just("\ud800") | JSON_VALUES.filter(lambda v: not isinstance(v, str)))
    elif kind == "window_not_integer":
        row[draw(st.sampled_from(["window_start", "window_end"]))] = draw(NOT_INTEGER)
    elif kind == "window_out_of_range":
        row[draw(st.sampled_from(["window_start", "window_end"]))] = draw(OUT_OF_RANGE)
    elif kind == "window_not_ordered":
        row["window_end"] = draw(st.integers(0, row["window_start"]))
    elif kind == "count_not_integer":
        row["count"] = draw(NOT_INTEGER)
    elif kind == "count_out_of_range":
        row["count"] = draw(OUT_OF_RANGE)
    return kind, draw(spelled(row))


@st.composite
def split(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    """A genuine record cut in two values (at a comma, which is dropped, or anywhere), then two records in one
    value: joined by plain commas this trio would read as three genuine records. Each value is bad, under the
    kind the single-record check gives it."""
    value = draw(spelled(draw(genuine())))
    commas = [i for i, byte in enumerate(value) if byte == ord(",")]
    cut = draw(st.sampled_from(commas) if commas and draw(st.booleans()) else st.integers(1, len(value) - 1))
    halves = [value[:cut], value[cut + 1 :] if value[cut] == ord(",") else value[cut:]]
    trio = [*halves, draw(spelled(draw(genuine()))) + b"," + draw(spelled(draw(genuine())))]
    kinds = [classify_record(item)[0] for item in trio]
    assume(None not in kinds)
    return list(zip(kinds, trio))  # type: ignore[arg-type]


RECORDS = st.lists(
    st.one_of(genuine().map(lambda r: [(None, r)]), malformed().map(lambda m: [m]), split()), min_size=1, max_size=20
).map(lambda groups: [item for group in groups for item in group])


@given(batch=RECORDS, spellings=st.data())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_every_genuine_record_is_kept_and_every_bad_one_counted_under_its_kind(
    batch: list[tuple[str | None, Any]], spellings: st.DataObject
) -> None:
    messages, genuine_rows, kinds = [], [], []
    for offset, (kind, item) in enumerate(batch):
        value = spellings.draw(spelled(item)) if kind is None else item
        messages.append(FakeMessage(value, offset % 3, offset, 1_000 + offset))
        if kind is None:
            genuine_rows.append((item["user"], item["window_start"], item["window_end"], item["count"], offset))
        else:
            kinds.append(kind)
    live = LiveCollector("unused:9092", "results", read_committed=False)
    live.ingest(messages, receive_ms=5)
    snap = live.snapshot()
    frame = live.frame()
    got = list(zip(frame["user"], frame["window_start"], frame["window_end"], frame["count"], frame["offset"]))
    assert got == genuine_rows
    assert (frame["append_ms"] == 1_000 + frame["offset"]).all() and (frame["receive_ms"] == 5).all()
    assert snap.bad_by_kind == dict(Counter(kinds)) and snap.bad_records == len(kinds)
    assert [s["kind"] for s in snap.bad_samples[:BAD_SAMPLES]] == kinds[:BAD_SAMPLES]
    assert {s["kind"] for s in snap.bad_samples} == set(kinds)
    assert snap.failed is None


GENUINE_OR_NOT = st.one_of(genuine().map(json.dumps).map(str.encode), malformed().map(lambda m: m[1]))


@given(values=st.lists(GENUINE_OR_NOT, min_size=1, max_size=20))
@settings(max_examples=150, deadline=None)
def test_fuzz_the_fast_path_accepts_exactly_what_the_record_check_accepts(values: list[bytes | None]) -> None:
    values = [v for v in values if v]  # empty values never reach parsing
    if not values:
        return
    judged = [classify_record(v) for v in values]
    columns = parse_batch(values)
    if any(kind is not None for kind, _ in judged):
        assert columns is None
    else:
        assert columns is not None
        rows = list(zip(columns[0], *(column.tolist() for column in columns[1:])))
        assert rows == [row for _, row in judged]


@given(value=st.binary(max_size=80))
@settings(max_examples=200, deadline=None)
def test_fuzz_arbitrary_bytes_never_break_ingestion(value: bytes) -> None:
    live = LiveCollector("unused:9092", "results", read_committed=False)
    live.ingest([message("u1", 0, 1, 11_000, 0, 0), FakeMessage(value, 0, 1, 11_000)])
    snap = live.snapshot()
    kind = classify_record(value)[0]
    assert snap.records == (1 if kind is not None else 2)
    assert snap.bad_by_kind == ({kind: 1} if kind is not None else {})


def test_the_reader_thread_survives_hundreds_of_malformed_records() -> None:
    rng = random.Random(7)
    expected_kinds: Counter[str] = Counter()
    batches, genuine_offsets, offset = [], [], 0
    for _ in range(40):
        batch = []
        for _ in range(rng.randint(1, 30)):
            if rng.random() < 0.5:
                _, value, kind = rng.choice(CASES)
                expected_kinds[kind] += 1
                batch.append(FakeMessage(value, 0, offset, 11_000))
            else:
                batch.append(message(f"u{offset}", 0, 1, 11_000, 0, offset))
                genuine_offsets.append(offset)
            offset += 1
        batches.append(batch)
    assert sum(expected_kinds.values()) >= 250  # hundreds of malformed records, over 40 batches
    consumer = ScriptedConsumer(batches)
    live = LiveCollector("unused:9092", "results", read_committed=False, consumer_factory=lambda: consumer,
                         poll_timeout_s=0.01)
    live.start()
    deadline = time.monotonic() + 30
    while consumer.pending() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    snap = live.snapshot()
    live.stop()
    assert snap.failed is None and consumer.closed
    assert snap.bad_by_kind == dict(expected_kinds) and snap.records == len(genuine_offsets)
    assert live.frame()["offset"].tolist() == genuine_offsets


# ------------------------------------------------------------------------------------------------ reader thread
class ScriptedConsumer:
    """Quacks like confluent_kafka.Consumer for the reader loop: hands out the given batches, one per poll
    (first message) + consume (the rest), then nothing; ``fail`` is raised once the batches are used up."""

    def __init__(self, batches: list[list[FakeMessage]], fail: Exception | None = None) -> None:
        self.batches = [list(b) for b in batches]
        self.fail = fail
        self.closed = False
        self.consume_timeouts: list[float] = []

    def pending(self) -> int:
        return len(self.batches)

    def poll(self, timeout: float) -> FakeMessage | None:
        if not self.batches:
            if self.fail is not None:
                raise self.fail
            time.sleep(min(timeout, 0.01))
            return None
        return self.batches[0].pop(0)

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        self.consume_timeouts.append(timeout)
        rest, self.batches[0] = self.batches[0][:num_messages], self.batches[0][num_messages:]
        if not self.batches[0]:
            self.batches.pop(0)
        return rest

    def close(self) -> None:
        self.closed = True


def wait_for(predicate: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)


def test_reader_thread_stamps_receive_time_and_never_waits_on_a_partial_batch() -> None:
    consumer = ScriptedConsumer([[message("u1", 0, 1, 11_000, 0, 0), message("u2", 0, 1, 11_500, 0, 1)],
                                 [message("u3", 0, 1, 11_600, 1, 0)]])
    live = LiveCollector("unused:9092", "results", read_committed=True, consumer_factory=lambda: consumer)
    before = time.time_ns() // 1_000_000
    live.start()
    wait_for(lambda: live.snapshot().records == 3)
    live.stop()
    after = time.time_ns() // 1_000_000
    frame = live.frame()
    assert frame["user"].tolist() == ["u1", "u2", "u3"] and consumer.closed
    assert frame["receive_ms"].between(before, after).all()
    assert set(consumer.consume_timeouts) == {0}  # the rest of a batch is taken without waiting
    assert live.snapshot().failed is None


def test_a_consumer_that_raises_marks_the_collector_failed() -> None:
    consumer = ScriptedConsumer([[message("u1", 0, 1, 11_000)]], fail=RuntimeError("broker gone"))
    live = LiveCollector("unused:9092", "results", read_committed=False, consumer_factory=lambda: consumer)
    live.start()
    wait_for(lambda: live.snapshot().failed is not None)
    snap = live.snapshot()
    live.stop()
    assert snap.failed == "collector reader died: RuntimeError('broker gone')"
    assert snap.records == 1 and consumer.closed


def test_a_fatal_consumer_error_ends_the_reader_and_a_transient_one_does_not() -> None:
    transient = FakeMessage(None, 0, -1, 0, error=FakeError("Local: Broker transport failure"))
    fatal = FakeMessage(None, 0, -1, 0, error=FakeError("Fatal: fenced", fatal=True))
    consumer = ScriptedConsumer([[transient, message("u1", 0, 1, 11_000)], [fatal], [message("u2", 0, 1, 11_000)]])
    live = LiveCollector("unused:9092", "results", read_committed=False, consumer_factory=lambda: consumer)
    live.start()
    wait_for(lambda: live.snapshot().failed is not None)
    live.stop()
    snap = live.snapshot()
    assert snap.failed == "fatal consumer error: Fatal: fenced" and snap.error == "Fatal: fenced"
    assert snap.records == 1 and snap.bad_records == 0 and consumer.pending() == 1


def test_a_transient_consumer_error_is_shown_and_reading_goes_on() -> None:
    live = LiveCollector("unused:9092", "results", read_committed=False)
    live.ingest([FakeMessage(None, 0, -1, 0, error=FakeError("Local: Broker transport failure")),
                 message("u1", 0, 1, 11_000)])
    snap = live.snapshot()
    assert (snap.error, snap.failed, snap.records, snap.bad_records) == ("Local: Broker transport failure", None, 1, 0)


# ------------------------------------------------------------------------------------------------ drain
def test_settle_state_counts_answered_and_final_pairs_and_idle_time() -> None:
    clock = FakeClock()
    live = LiveCollector("unused:9092", "results", read_committed=False, monotonic=clock)
    expected = expected_pairs([("u1", 0, 5, 5), ("u2", 0, 2, 3), ("u3", 0, 0, 1), ("u4", 10_000, 1, 1)])
    clock.now = 103.0
    first = live.settle_state(expected)
    assert (first.expected, first.answered, first.final, first.idle_s) == (3, 0, 0, 3.0)
    live.ingest([message("u1", 0, 3, 11_000), message("u9", 0, 1, 11_000), message(FLUSH_USER, 0, 1, 11_000)])
    clock.now = 104.5
    state = live.settle_state(expected)
    assert (state.expected, state.answered, state.final, state.idle_s) == (3, 1, 0, 1.5)
    clock.now = 110.0
    live.ingest([message("u2", 0, 2, 11_000), message("u1", 0, 5, 11_100), message("u1", 0, 4, 11_200)])
    assert live.settle_state(expected) == collector.DrainState(expected=3, answered=2, final=2, idle_s=0.0)
    clock.now = 112.0
    live.ingest([FakeMessage(b"garbage", 0, 9, 11_000)])  # a bad record is output too: not idle
    clock.now = 112.25
    assert live.settle_state(expected).idle_s == 0.25
    assert live.received_final(expected) == (2, 3)


def test_settle_state_folds_each_record_once_and_refolds_for_another_table() -> None:
    live = LiveCollector("unused:9092", "results", read_committed=False)
    expected = expected_pairs([("u1", 0, 5, 5), ("u2", 0, 2, 2)])
    live.ingest([message("u1", 0, 5, 11_000)])
    assert live.settle_state(expected).final == 1
    assert live.settle_state(expected).final == 1  # nothing new: the same answer, not counted twice
    live.ingest([message("u2", 0, 2, 11_000)])
    assert live.settle_state(expected).final == 2
    smaller = expected_pairs([("u2", 0, 3, 3)])
    state = live.settle_state(smaller)
    assert (state.expected, state.answered, state.final) == (1, 1, 0)
    assert live.settle_state(expected_pairs([])).expected == 0


def test_answers_before_their_window_ended_stay_out_of_the_live_latency() -> None:
    """Windows closed early by the end-of-run records (visible before their end) are not a live latency."""
    live = LiveCollector("unused:9092", "results", read_committed=False)
    live.ingest([message("u1", 0, 1, 10_000 + 500 * i, 0, i) for i in range(3)])  # window [0, 10 s): 0, 500, 1000
    live.ingest([message("u2", 30_000, 1, 25_000, 0, 3), message("u3", 30_000, 1, 26_000, 0, 4)])  # 5 s early
    snap = live.snapshot()
    assert snap.records == 5 and snap.recent_p50_ms == 500 and snap.recent_p99_ms == pytest.approx(990)
