"""CPU isolation: CPU lists, the scenario block's checks, and affinity really applied to threads and children."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import psutil
import pytest

from harness.infra import isolation
from harness.errors import ScenarioError
from harness.infra.isolation import Isolation, format_cpu_list, parse_cpu_list
from harness.infra.proc import ManagedProcess
from harness.scenario import apply_overrides, parse_scenario
from tests.unit.test_scenario import scenario_with

CPUS = sorted(os.sched_getaffinity(0))
needs_two_cpus = pytest.mark.skipif(len(CPUS) < 2, reason="pinning to disjoint sets needs two CPUs")

REPORT_AFFINITY = "import os, time; print('cpus', sorted(os.sched_getaffinity(0)), flush=True); time.sleep(30)"


@pytest.mark.parametrize(("text", "cpus"), [("0", {0}), ("0-2,5", {0, 1, 2, 5}), (3, {3}), ([0, 1], {0, 1}),
                                            (" 1 , 4-5 ", {1, 4, 5}), (["2-3"], {2, 3})])
def test_cpu_lists_parse_like_linux_writes_them(text: object, cpus: set[int]) -> None:
    assert parse_cpu_list(text) == cpus


@pytest.mark.parametrize("text", ["", "x", "3-1", "-1", "1.5", True, {"a": 1}, [-2], "0,,1"])
def test_bad_cpu_lists_say_what_they_should_be(text: object) -> None:
    with pytest.raises(ValueError, match="CPU"):
        parse_cpu_list(text)


@pytest.mark.parametrize("text", ["1-99999999", 99999999, "0-4096", [5000], "1" * 60])
def test_a_cpu_range_beyond_any_machine_is_refused_before_it_is_built(text: object) -> None:
    """``1-99999999`` once built a set of 100 million ints (seconds and gigabytes) before any check."""
    with pytest.raises(ValueError, match="CPU"):
        parse_cpu_list(text)


def test_cpu_lists_are_written_back_in_ranges() -> None:
    assert format_cpu_list({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
    assert format_cpu_list([3]) == "3"


def test_the_block_refuses_shared_and_unavailable_cpus_naming_the_field() -> None:
    with pytest.raises(ScenarioError) as shared:
        parse_scenario(scenario_with(isolation={"load_path": "0-1", "engine": "1"}), source="s.yaml")
    assert "isolation: load_path and engine must not share a CPU" in str(shared.value)
    assert "(both have 1)" in str(shared.value)
    with pytest.raises(ScenarioError) as missing:
        parse_scenario(scenario_with(isolation={"load_path": 0, "engine": 4095}), source="s.yaml")
    assert "s.yaml: isolation.engine: CPU 4095 is not available here" in str(missing.value)
    with pytest.raises(ScenarioError) as unknown:
        parse_scenario(scenario_with(isolation={"load_path": 0, "engines": 1}), source="s.yaml")
    assert "isolation.engines" in str(unknown.value)


@needs_two_cpus
def test_the_block_reads_back_from_its_dump() -> None:
    scenario = parse_scenario(scenario_with(isolation={"load_path": [CPUS[0]], "engine": str(CPUS[1])}))
    assert scenario.isolation == Isolation(load_path=frozenset({CPUS[0]}), engine=frozenset({CPUS[1]}))
    dumped = scenario.dump()["isolation"]
    assert dumped == {"load_path": str(CPUS[0]), "engine": str(CPUS[1])}
    assert parse_scenario(scenario.dump()).isolation == scenario.isolation
    assert parse_scenario(scenario_with()).dump()["isolation"] is None


@needs_two_cpus
def test_the_harness_is_pinned_thread_by_thread_and_restored() -> None:
    before = os.sched_getaffinity(0)
    started = threading.Event()
    stop = threading.Event()
    seen: dict[str, set[int]] = {}

    def worker() -> None:  # a thread that exists before the pinning (like the collector's client threads)
        started.set()
        stop.wait(10)
        seen["after"] = set(os.sched_getaffinity(0))

    thread = threading.Thread(target=worker)
    thread.start()
    started.wait()
    with isolation.harness_pinned(frozenset({CPUS[0]})):
        assert os.sched_getaffinity(0) == {CPUS[0]}
        assert isolation.threads_outside([_me()], frozenset({CPUS[0]})) == 0
    stop.set()
    thread.join()
    assert os.sched_getaffinity(0) == before
    assert seen["after"] == before  # restored for the old thread too


def _me() -> psutil.Process:
    return psutil.Process()


@needs_two_cpus
def test_children_started_inside_children_on_run_on_those_cpus_and_others_inherit(tmp_path: Path) -> None:
    engine_cpu = frozenset({CPUS[1]})
    with isolation.children_on(engine_cpu):
        pinned = ManagedProcess("pinned", [sys.executable, "-c", REPORT_AFFINITY], tmp_path / "pinned.log").start()
    free = ManagedProcess("free", [sys.executable, "-c", REPORT_AFFINITY], tmp_path / "free.log").start()
    try:
        assert pinned.wait_for_line(r"cpus \[.*\]", 30).group(0) == f"cpus [{CPUS[1]}]"
        assert free.wait_for_line(r"cpus \[.*\]", 30).group(0) == f"cpus {sorted(os.sched_getaffinity(0))}"
        assert isolation.threads_outside(pinned.processes(), engine_cpu) == 0
        assert isolation.threads_outside(free.processes(), engine_cpu) > 0
        # an engine that escaped the pinning is moved, and the count says how many threads were outside
        moved = isolation.pin_processes(free.processes(), engine_cpu)
        assert moved >= 1
        assert isolation.threads_outside(free.processes(), engine_cpu) == 0
        assert isolation.pin_processes(free.processes(), engine_cpu) == 0
    finally:
        pinned.stop(grace=1)
        free.stop(grace=1)
    assert isolation.children_cpus() is None


def test_children_on_is_per_thread() -> None:
    other: list[object] = []
    with isolation.children_on(frozenset({0})):
        thread = threading.Thread(target=lambda: other.append(isolation.children_cpus()))
        thread.start()
        thread.join()
        assert isolation.children_cpus() == {0}
    assert other == [None]


def test_an_explicit_cpu_set_wins_over_children_on(tmp_path: Path) -> None:
    with isolation.children_on(frozenset({CPUS[-1]})):
        proc = ManagedProcess("own", [sys.executable, "-c", REPORT_AFFINITY], tmp_path / "own.log",
                              cpus=[CPUS[0]]).start()
    try:
        assert proc.wait_for_line(r"cpus \[.*\]", 30).group(0) == f"cpus [{CPUS[0]}]"
    finally:
        proc.stop(grace=1)


@needs_two_cpus
def test_the_command_line_sets_or_removes_isolation_and_is_checked_like_the_file() -> None:
    base = parse_scenario(scenario_with(isolation={"load_path": CPUS[0], "engine": CPUS[1]}))
    assert apply_overrides(base, isolation="off").isolation is None
    swapped = apply_overrides(base, isolation=f"{CPUS[1]}:{CPUS[0]}")
    assert swapped.isolation == Isolation(load_path=frozenset({CPUS[1]}), engine=frozenset({CPUS[0]}))
    with pytest.raises(ScenarioError, match=r"s.yaml: --isolation: must be LOAD_PATH_CPUS:ENGINE_CPUS"):
        apply_overrides(base, isolation="1", source="s.yaml")
    with pytest.raises(ScenarioError, match=r"isolation.engine: CPU 4095 is not available here"):
        apply_overrides(base, isolation=f"{CPUS[0]}:4095", source="s.yaml")
