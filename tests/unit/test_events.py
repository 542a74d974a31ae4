"""Deterministic event generation and encoding (fixed seeds: the statistical checks cannot flake)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from harness import workload
from harness.loadgen.events import CHUNK_MS, Encoder, EventPlan, flush_value, generate_chunk, iter_chunks
from harness.scenario import Scenario, parse_scenario

START = 1_764_072_000_000


def scenario(**load: Any) -> Scenario:
    data = {"name": "t", "duration": "10s", "seed": 7, "load": {"rate": "20k", **load}, "window": {"size": "1s"},
            "engines": ["x"]}  # 1 s windows: a 10 s load must measure >= 3 windows to be a valid scenario
    return parse_scenario(data, check_engines=False)


def all_events(plan: EventPlan) -> dict[str, np.ndarray]:
    batches = list(iter_chunks(plan))
    return {
        name: np.concatenate([getattr(b, name) for b in batches])
        for name in ("seq", "intended_ms", "ts", "user", "late", "disordered")
    }


def encoded(plan: EventPlan, chunks: range) -> list[tuple[bytes, bytes]]:
    encoder = Encoder(plan.users, plan.payload_size)
    out: list[tuple[bytes, bytes]] = []
    for chunk in chunks:
        batch = generate_chunk(plan, chunk)
        values, keys = encoder.encode(batch.user, batch.ts, batch.seq)
        out.extend(zip(values, keys))
    return out


# --------------------------------------------------------------------------------------------- determinism
def test_same_scenario_and_seed_give_byte_identical_records() -> None:
    sc = scenario(distribution="zipf", disorder={"fraction": 0.2, "max_delay": "1s"},
                  late={"fraction": 0.01, "by": "20s"}, payload_size=100)
    first = encoded(EventPlan.from_scenario(sc, START), range(100))
    second = encoded(EventPlan.from_scenario(sc, START), range(100))
    assert len(first) == 200_000
    assert first == second


def test_slices_made_by_several_workers_in_any_order_are_the_same_events() -> None:
    plan = EventPlan.from_scenario(scenario(distribution="zipf"), START)
    one_worker = encoded(plan, range(plan.chunks))
    by_worker = {w: encoded(plan, range(w, plan.chunks, 3)[::-1]) for w in range(3)}  # 3 workers, reversed
    merged: dict[int, tuple[bytes, bytes]] = {}
    for records in by_worker.values():
        for value, key in records:
            merged[json.loads(value)["seq"]] = (value, key)
    assert [merged[seq] for seq in range(len(merged))] == one_worker


def test_another_seed_gives_other_users() -> None:
    a = all_events(EventPlan.from_scenario(scenario(), START))["user"]
    b = all_events(EventPlan.from_scenario(scenario().model_copy(update={"seed": 8}), START))["user"]
    assert a.size == b.size and not np.array_equal(a, b)


def test_seq_numbers_events_in_intended_time_order() -> None:
    events = all_events(EventPlan.from_scenario(scenario(disorder={"fraction": 0.5, "max_delay": "1900ms"}), START))
    assert events["seq"].tolist() == list(range(200_000))
    assert np.all(np.diff(events["intended_ms"]) > 0)
    assert events["intended_ms"][0] == START and events["intended_ms"][-1] < START + 10_000
    chunk_of = ((events["intended_ms"] - START) // CHUNK_MS).astype(int)
    assert np.all(np.diff(chunk_of) >= 0)


# ---------------------------------------------------------------------------------------------- key choice
def test_uniform_users_are_uniform() -> None:
    users = all_events(EventPlan.from_scenario(scenario(users=20), START))["user"]
    counts = np.bincount(users, minlength=20)
    expected = users.size / 20
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert counts.size == 20 and users.min() == 0
    assert chi2 < 43.8  # 99.9 % quantile of chi² with 19 degrees of freedom; fixed seed, so never flaky


@pytest.mark.parametrize("exponent", [0.5, 1.1, 2.5])
def test_zipf_users_follow_one_over_rank_to_the_power_s(exponent: float) -> None:
    users = all_events(EventPlan.from_scenario(scenario(users=50, distribution="zipf", zipf_exponent=exponent),
                                               START))["user"]
    weights = 1.0 / np.arange(1, 51) ** exponent
    expected = users.size * weights / weights.sum()
    counts = np.bincount(users, minlength=50)
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 86.7  # 99.9 % quantile of chi² with 49 degrees of freedom
    assert counts[0] == counts.max()  # u00000 is the hottest key


# ---------------------------------------------------------------------------------------- disorder, late
def test_disordered_events_are_earlier_by_one_ms_up_to_max_delay() -> None:
    events = all_events(EventPlan.from_scenario(scenario(disorder={"fraction": 0.3, "max_delay": "1500ms"}), START))
    delay = np.floor(events["intended_ms"]).astype(np.int64) - events["ts"]
    dis = events["disordered"]
    assert delay[~dis].tolist() == [0] * int((~dis).sum())
    assert delay[dis].min() == 1 and delay[dis].max() == 1500
    assert abs(dis.mean() - 0.3) < 0.01  # 200k events: sd of the fraction ≈ 0.001
    assert abs(delay[dis].mean() - 750.5) < 10  # uniform over 1..1500


def test_late_events_are_exactly_late_by_earlier_and_not_also_disordered() -> None:
    sc = scenario(disorder={"fraction": 0.3, "max_delay": "1900ms"}, late={"fraction": 0.05, "by": "15s"})
    events = all_events(EventPlan.from_scenario(sc, START))
    late = events["late"]
    delay = np.floor(events["intended_ms"]).astype(np.int64) - events["ts"]
    assert set(delay[late].tolist()) == {15_000}
    assert not np.any(late & events["disordered"])
    assert abs(late.mean() - 0.05) < 0.003
    assert abs(events["disordered"].mean() - 0.3) < 0.01
    assert EventPlan.from_scenario(sc, START).earliest_ts == START - 15_000


def test_no_disorder_means_ts_is_the_intended_millisecond() -> None:
    events = all_events(EventPlan.from_scenario(scenario(), START))
    assert np.array_equal(events["ts"], np.floor(events["intended_ms"]).astype(np.int64))
    assert not events["late"].any() and not events["disordered"].any()


# ------------------------------------------------------------------------------------------------ encoding
def test_records_are_the_workload_json_keyed_by_user() -> None:
    encoder = Encoder(users=1000, payload_size=0)
    values, keys = encoder.encode(np.array([42, 7]), np.array([START + 123, START]), np.array([981, 0]))
    assert values[0] == b'{"user": "u00042", "action": "click", "ts": 1764072000123, "seq": 981}'
    assert keys == [b"u00042", b"u00007"]
    assert list(json.loads(values[1])) == list(workload.INPUT_FIELDS)


def test_user_ids_widen_beyond_five_digits() -> None:
    values, keys = Encoder(users=1_000_000, payload_size=0).encode(np.array([999_999]), np.array([1]), np.array([2]))
    assert json.loads(values[0])["user"] == "u999999" and keys == [b"u999999"]


@pytest.mark.parametrize("size", [88, 100, 1000])
def test_pad_fills_records_to_the_payload_size(size: int) -> None:
    encoder = Encoder(users=1000, payload_size=size)
    seq = np.array([0, 9, 10, 123_456_789])
    values, _ = encoder.encode(np.array([1, 2, 3, 4]), np.full(4, START), seq)
    for value, s in zip(values, seq.tolist()):
        record = json.loads(value)
        assert list(record)[:4] == list(workload.INPUT_FIELDS) and record["seq"] == s
        assert len(value) == size
        assert set(record["pad"]) <= {"x"}


def test_short_payload_sizes_add_no_pad_and_in_between_sizes_overshoot_minimally() -> None:
    plain, _ = Encoder(1000, 0).encode(np.array([1]), np.array([START]), np.array([5]))
    assert Encoder(1000, len(plain[0])).encode(np.array([1]), np.array([START]), np.array([5]))[0] == plain
    # one byte more than the plain record: the pad field itself is 11 bytes, so the record becomes 11 longer
    padded, _ = Encoder(1000, len(plain[0]) + 1).encode(np.array([1]), np.array([START]), np.array([5]))
    assert len(padded[0]) == len(plain[0]) + 11 and json.loads(padded[0])["pad"] == ""


def test_flush_record_names_the_flush_user() -> None:
    record = json.loads(flush_value(3, START + 99, 200_003))
    assert record == {"user": workload.FLUSH_USER, "action": workload.FLUSH_ACTION, "ts": START + 99, "seq": 200_003}


def test_last_intended_ms_bounds_every_ts() -> None:
    plan = EventPlan.from_scenario(scenario(disorder={"fraction": 0.5, "max_delay": "1s"}), START)
    events = all_events(plan)
    assert plan.last_intended_ms == int(np.floor(events["intended_ms"][-1]))
    assert plan.last_intended_ms >= int(events["ts"].max())
