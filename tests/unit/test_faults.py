"""The figures measured around a fault (harness.analysis.fault_figures), on hand-made pair frames, and the injector's scheduling
and check suspension with a fake engine."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import pytest

from harness.analysis.fault_figures import fault_figures, recovery, results_gap_ms, window_latency
from harness.errors import EngineError
from harness.run.faults import FaultInjector, run_command
from harness.scenario import Fault, KillWorker

W = 1_000  # window size = slide, ms


def pairs_frame(rows: list[tuple[int, float | None, str, int]]) -> pd.DataFrame:
    """(window_end, result latency or None, status, final_records) → a frame with the judge's columns used here;
    two users per window so medians are over more than one pair."""
    out = []
    for end, latency, status, final in rows:
        for user in ("a", "b"):
            out.append({"window_start": end - W, "window_end": end, "user": user, "result_latency_ms": latency,
                        "visible_ms": None if latency is None else end + latency, "status": status,
                        "final_records": final})
    return pd.DataFrame(out)


# fault at 10_000: windows ending 6..9 s normal (latency 200), 10..12 s delayed, 13 s back to normal
FAULT = 10_000
ROWS = [
    (6_000, 200, "exact", 1), (7_000, 210, "exact", 1), (8_000, 190, "exact", 1), (9_000, 200, "exact", 2),
    (10_000, 4_000, "exact", 2), (11_000, 3_000, "exact", 1), (12_000, None, "missing", 0),
    (13_000, 215, "exact", 1), (14_000, 200, "exact", 1), (30_000, 200, "exact", 3),
]


def test_window_latency_is_the_median_per_window_in_window_order() -> None:
    frame = pairs_frame(ROWS)
    frame.loc[(frame["window_end"] == 6_000) & (frame["user"] == "b"), "result_latency_ms"] = 400
    medians = window_latency(frame)
    assert list(medians.index[:2]) == [6_000, 7_000]
    assert medians.loc[6_000] == 300  # median of 200 and 400
    assert 12_000 not in medians.index  # no latency: missing pairs


def test_recovery_is_measured_to_the_first_window_back_within_tolerance() -> None:
    baseline, recovered = recovery(pairs_frame(ROWS), FAULT)
    assert baseline == 200  # median of 200, 210, 190, 200
    # 13 s window: 215 <= 220 (10 % above 200); its results visible at 13_215 → 3_215 ms after the fault
    assert recovered == 13_000 + 215 - FAULT


def test_recovery_baseline_is_over_measured_windows_when_there_are_some() -> None:
    rows = [(5_000, 4_000, "exact", 1), (6_000, 3_000, "exact", 1), (7_000, 400, "exact", 1),
            (8_000, 400, "exact", 1), (11_000, 700, "exact", 1), (12_000, 430, "exact", 1)]
    # over every window before the fault the baseline would be 1_700 (start-up latencies) and 11 s "recovered"
    assert recovery(pairs_frame(rows), FAULT)[0] == 1_700
    assert recovery(pairs_frame(rows), FAULT, baseline_from_ms=7_000) == (400, 12_000 + 430 - FAULT)
    # no measured window before the fault yet: every earlier window
    assert recovery(pairs_frame(rows), FAULT, baseline_from_ms=10_000)[0] == 1_700


def test_recovery_baseline_leaves_out_windows_answered_after_the_fault() -> None:
    rows = [(8_000, 300, "exact", 1), (9_000, 20_000, "exact", 1), (13_000, 320, "exact", 1)]
    assert recovery(pairs_frame(rows), FAULT) == (300, 13_000 + 320 - FAULT)  # not the median of 300 and 20_000
    assert recovery(pairs_frame(rows[1:]), FAULT) == (None, None)  # nothing answered before the fault


def test_recovery_is_none_when_latency_never_comes_back() -> None:
    rows = [(6_000, 200, "exact", 1), (11_000, 900, "exact", 1), (12_000, 800, "exact", 1)]
    assert recovery(pairs_frame(rows), FAULT) == (200, None)


def test_recovery_has_no_baseline_without_windows_before_the_fault() -> None:
    assert recovery(pairs_frame([(11_000, 200, "exact", 1)]), FAULT) == (None, None)


def test_results_gap_is_last_visible_before_to_first_visible_after() -> None:
    visible = np.array([8_100, 9_200, 9_900, 14_000, 14_500])
    assert results_gap_ms(visible, FAULT) == 14_000 - 9_900
    assert results_gap_ms(visible, 20_000) is None


def test_fault_figures_count_problems_in_the_faults_span_only() -> None:
    frame = pairs_frame(ROWS)
    figures = fault_figures(frame, frame["visible_ms"].dropna().to_numpy(), FAULT, window_size_ms=W)
    assert figures.recovery_ms == 3_215
    # span: windows ending in [9_000, 10_000 + 3_215 + 1_000]: 9, 10, 11, 12, 13, 14 s (not 30 s)
    assert (figures.span_from_ms, figures.span_to_ms) == (9_000, 14_215)
    assert figures.missing == 2  # window 12 s, two users
    assert figures.duplicated_pairs == 4  # windows 9 s and 10 s, two users each; not the 30 s window
    assert figures.duplicate_records == 4
    assert figures.wrong == 0
    assert figures.peak_latency_ms == 4_000
    # last visible before: window 9 s at 9_200; first after: window 13 s at 13_215 (earlier than 10 s and 11 s)
    assert figures.results_gap_ms == 13_000 + 215 - (9_000 + 200)


def test_peak_latency_includes_the_window_in_progress_at_the_fault() -> None:
    rows = [(7_000, 200, "exact", 1), (8_000, 200, "exact", 1), (9_500, 9_000, "exact", 1),
            (11_000, 8_000, "exact", 1), (12_000, 210, "exact", 1)]
    frame = pairs_frame(rows)
    figures = fault_figures(frame, frame["visible_ms"].to_numpy(), FAULT, window_size_ms=W)
    assert figures.peak_latency_ms == 9_000  # ended 0.5 s before the fault, answered 8.5 s after it


def test_fault_figures_span_reaches_the_end_when_latency_never_recovers() -> None:
    rows = [(6_000, 200, "exact", 1), (11_000, 900, "wrong", 1), (40_000, 900, "exact", 2)]
    frame = pairs_frame(rows)
    figures = fault_figures(frame, frame["visible_ms"].to_numpy(), FAULT, window_size_ms=W)
    assert figures.recovery_ms is None
    assert figures.span_to_ms == 40_000
    assert figures.wrong == 2 and figures.duplicated_pairs == 2


# ------------------------------------------------------------------------------------------------ injector
class FakeEngine:
    """Counts kills and restarts; check() raises while 'dead' (between kill and restart)."""

    def __init__(self, restart_fails: bool = False) -> None:
        self.dead = False
        self.events: list[str] = []
        self.restart_fails = restart_fails

    def kill(self) -> None:
        self.dead = True
        self.events.append("kill")

    def restart(self, timeout: float) -> None:
        time.sleep(0.2)
        if self.restart_fails:
            raise EngineError("job would not start again")
        self.dead = False
        self.events.append("restart")

    def check(self) -> None:
        if self.dead:
            raise EngineError("job died")


def run_injector(engine: FakeEngine, faults: list[Fault]) -> FaultInjector:
    injector = FaultInjector(faults, engine, kafka=None, restart_timeout_s=5)  # type: ignore[arg-type]
    injector.start(time.time_ns() // 1_000_000)
    checks_failed = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and engine.events.count("restart") < len(faults) and not engine.restart_fails:
        try:
            injector.check()
        except EngineError as exc:
            checks_failed.append(exc)
        time.sleep(0.01)
    injector.stop()
    assert not checks_failed, "checks must be suspended while a fault is in progress"
    return injector


def test_injector_kills_waits_the_downtime_restarts_and_records_times() -> None:
    engine = FakeEngine()
    injector = run_injector(engine, [Fault(at="100ms", kind="kill-engine", downtime="300ms")])
    assert engine.events == ["kill", "restart"]
    [record] = injector.records()
    assert record["kind"] == "kill-engine" and record["error"] is None
    assert record["restarted_at_ms"] - record["injected_at_ms"] >= 300
    assert record["recovered_at_ms"] - record["restarted_at_ms"] >= 200


def test_a_failed_restart_is_recorded_and_makes_the_next_check_raise() -> None:
    engine = FakeEngine(restart_fails=True)
    faults = [Fault(at="0s", kind="kill-engine", downtime="50ms")]
    injector = FaultInjector(faults, engine, kafka=None, restart_timeout_s=5)  # type: ignore[arg-type]
    injector.start(time.time_ns() // 1_000_000)
    time.sleep(1.0)  # the fault is injected and its restart fails
    injector.stop(timeout_s=5)
    [record] = injector.records()
    assert "would not start again" in record["error"] and record["recovered_at_ms"] is None
    with pytest.raises(EngineError, match="recovery failed"):
        injector.check()


def test_faults_not_due_yet_are_cancelled_by_stop() -> None:
    engine = FakeEngine()
    injector = FaultInjector([Fault(at="60s", kind="kill-engine")], engine, kafka=None,  # type: ignore[arg-type]
                             restart_timeout_s=5)
    injector.start(time.time_ns() // 1_000_000)
    started = threading.active_count()
    injector.stop()
    assert engine.events == [] and injector.records()[0]["injected_at_ms"] is None
    assert threading.active_count() <= started


# ------------------------------------------------------------------------------------------- kill-worker
def test_run_command_records_exit_status_and_output(tmp_path: Path) -> None:
    log = tmp_path / "faults.log"
    run = run_command("kill", "echo one; echo two >&2; exit 3", timeout_s=10, log_path=log)
    assert (run.role, run.exit_code, run.output) == ("kill", 3, ["one", "two"])
    assert run.error == "kill_worker.command exited 3: echo one; echo two >&2; exit 3 — output: one | two"
    ok = run_command("restart", "true", timeout_s=10, log_path=log)
    assert ok.exit_code == 0 and ok.error is None and ok.output == []
    text = log.read_text()
    assert "--- kill at" in text and "--- kill exited 3" in text and "--- restart exited 0" in text


def test_run_command_stops_a_command_at_its_timeout_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    run = run_command("restart", f"sleep 30 & echo $! > {pid_file}; wait", timeout_s=0.5, log_path=tmp_path / "l")
    assert run.exit_code is None and run.error is not None and "timed out" in run.error
    child = int(pid_file.read_text())
    # SIGKILL went to the whole group; on a loaded machine the kernel may take a moment to end the process
    deadline = time.monotonic() + 10
    while _alive(child):
        assert time.monotonic() < deadline, f"the command's child {child} outlived its timeout by 10 s"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class FakeClusterEngine:
    """An engine whose worker is killed by a command: its own check() never fails, and it reports recovery
    (``recovered_at``) on the third poll after the fault, or cannot tell at all."""

    def __init__(self, tells: bool = True) -> None:
        self.tells = tells
        self.polls = 0
        self.checks = 0

    def check(self) -> None:
        self.checks += 1

    def recovered_at(self, since_ms: int) -> int | None:
        if not self.tells:
            raise NotImplementedError
        self.polls += 1
        return since_ms + 1_234 if self.polls >= 3 else None


def kill_worker_injector(engine: FakeClusterEngine, tmp_path: Path, **commands: Any) -> FaultInjector:
    """A kill-worker fault right away with 300 ms downtime, run to its end; check() called all along."""
    fault = Fault(at="0s", kind="kill-worker", downtime="300ms")
    injector = FaultInjector([fault], engine, kafka=None, restart_timeout_s=5,  # type: ignore[arg-type]
                             kill_worker=KillWorker(**commands), log_path=tmp_path / "faults.log")
    injector.start(time.time_ns() // 1_000_000)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and injector._thread is not None and injector._thread.is_alive():
        try:
            injector.check()
        except EngineError:
            break
        time.sleep(0.02)
    injector.stop(timeout_s=10)
    return injector


def test_kill_worker_runs_the_kill_then_the_restart_and_waits_for_the_engines_recovery(tmp_path: Path) -> None:
    marker = tmp_path / "killed"
    engine = FakeClusterEngine()
    injector = kill_worker_injector(engine, tmp_path, command=f"echo worker > {marker}", restart="echo again")
    [record] = injector.records()
    assert record["error"] is None and marker.read_text() == "worker\n"
    assert [(c["role"], c["exit_code"]) for c in record["commands"]] == [("kill", 0), ("restart", 0)]
    assert record["commands"][1]["output"] == ["again"]
    assert record["injected_at_ms"] == record["commands"][0]["started_at_ms"]
    assert record["restarted_at_ms"] - record["injected_at_ms"] >= 300
    assert record["recovered_at_ms"] == record["injected_at_ms"] + 1_234 and engine.polls == 3
    assert engine.checks > 0  # the engine's liveness check is not suspended by a kill-worker


def test_a_failing_kill_command_is_the_faults_error_and_fails_the_next_check(tmp_path: Path) -> None:
    engine = FakeClusterEngine()
    injector = kill_worker_injector(engine, tmp_path, command="sh -c 'exit 3'", restart="touch restarted")
    [record] = injector.records()
    assert record["error"] == ("EngineError: kill_worker.command exited 3: sh -c 'exit 3'; nothing may have been "
                               "killed")
    assert [c["role"] for c in record["commands"]] == ["kill"] and not (tmp_path / "restarted").exists()
    assert record["recovered_at_ms"] is None and engine.polls == 0
    with pytest.raises(EngineError, match="kill_worker.command exited 3"):
        injector.check()


def test_kill_worker_without_restart_on_an_engine_that_cannot_tell_its_recovery(tmp_path: Path) -> None:
    injector = kill_worker_injector(FakeClusterEngine(tells=False), tmp_path, command="true")
    [record] = injector.records()
    assert record["error"] is None and record["injected_at_ms"] is not None
    assert record["restarted_at_ms"] is None and record["recovered_at_ms"] is None
    assert [c["role"] for c in record["commands"]] == ["kill"]
    injector.check()  # nothing failed


def test_flink_source_counter_is_looked_up_again_when_the_cached_names_lack_it() -> None:
    """After a restore the vertex's metric names were first listed without the source's record counter; that
    list must not be kept, or the engine's processed rate stops at the kill (seen in a failure run)."""
    from harness.engines.flink_rest import FlinkRest

    rest = FlinkRest("http://127.0.0.1:1")
    listings = [[{"id": "0.numRecordsIn"}], [{"id": "0.numRecordsIn"}, {"id": "0.Source__events[1].numRecordsIn"}]]

    def get(path: str) -> object:
        if path == "/jobs/j":
            return {"vertices": [{"id": "v", "name": "Source: events[1] -> Calc[2]"}]}
        if path == "/jobs/j/vertices/v/metrics":
            return listings.pop(0)
        assert path.startswith("/jobs/j/vertices/v/subtasks/metrics?get=Source__events"), path
        return [{"id": "Source__events[1].numRecordsIn", "sum": 1234.0}]

    rest.get = get  # type: ignore[method-assign]
    assert rest.source_records_in("j") is None  # counter not registered yet
    assert rest.source_records_in("j") == 1234  # listed again, found
