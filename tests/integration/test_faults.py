"""Faults on the real broker and real engines (harness.run.faults through harness.run.runner.run_scenario, like `bench run`):
the engine's job is SIGKILLed mid-measurement and restarted, or the embedded broker is stopped and started again;
the figures are recorded per fault, the answers checked by the oracle, and no process of the run is left
afterwards (every process the run started, watched with psutil while it ran, is gone).

Kept short on purpose (CI budget): 2 s windows, 1 s watermark delay, 20 s of load at 1k events/s, the fault 8 s
in with 2 s of downtime. Run under the shared lock (see COMMON.md)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness.run.progress import ProgressDisplay
from harness.report.document import write_report
from harness.run.runner import run_scenario
from harness.scenario import parse_scenario

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILL = {"at": "8s", "kind": "kill-engine", "downtime": "2s"}
BROKER = {"at": "8s", "kind": "restart-broker", "downtime": "2s"}


def scenario(engines: list[Any], faults: list[dict[str, str]], *, drain_timeout: str = "90s",
             duration: str = "20s", bootstrap: str | None = None) -> Any:
    """20 s (unless told) at 1k events/s over 100 users, 2 s windows with 1 s watermark delay, measured from 4 s
    on; on the session's shared broker when ``bootstrap`` is given (every fault but a broker restart), else on a
    broker of the run's own."""
    kafka: dict[str, Any] = {"partitions": 2}
    if bootstrap is not None:
        kafka.update(mode="external", bootstrap=bootstrap)
    return parse_scenario({
        "name": "faults-test",
        "duration": duration,
        "drain_timeout": drain_timeout,
        "warmup": "4s",
        "seed": 7,
        "load": {"rate": "1k", "users": 100, "distribution": "uniform"},
        "window": {"size": "2s", "watermark_delay": "1s"},
        "kafka": kafka,
        "engines": engines,
        "faults": faults,
    })


RESOURCE_TRACKER = "multiprocessing.resource_tracker"
"""Python's one helper per interpreter for the generator's spawn-context queues: it lives as long as the test
process, by design, so it is not counted as left behind."""


class ProcessWatch:
    """Every process seen while the run went on that is a descendant of this test process or names the test's
    directory on its command line (engine jobs, the broker, generator workers), as (pid, create time)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)
        self.seen: dict[tuple[int, float], str] = {}
        self._halt = threading.Event()
        self.before: set[tuple[int, float]] = set()
        """Processes already running when the watch began (e.g. the session's shared broker, started by an
        earlier test): not the run's, so never counted as left behind."""
        for proc in psutil.Process(os.getpid()).children(recursive=True):
            try:
                self.before.add((proc.pid, proc.create_time()))
            except psutil.Error:
                continue

    def poll(self) -> None:
        ours = {p.pid for p in psutil.Process(os.getpid()).children(recursive=True)}
        for proc in psutil.process_iter(["pid", "cmdline", "create_time"]):
            try:
                cmdline = " ".join(proc.info["cmdline"] or [])
                if RESOURCE_TRACKER in cmdline:
                    continue
                # a process that ended while it was listed comes without all its fields: nothing to watch
                created = proc.info.get("create_time")
                if created is None:
                    continue
                key = (proc.info["pid"], created)
                if key not in self.before and (proc.info["pid"] in ours or self.marker in cmdline):
                    self.seen[key] = cmdline[:160]
            except psutil.Error:
                continue

    def run(self) -> None:
        while not self._halt.wait(1.0):
            try:
                self.poll()
            except psutil.Error:  # a process tree changing under the listing: the next poll sees it
                continue

    def alive(self) -> list[str]:
        """Seen processes still running now (the same pid with the same create time; zombies count as gone)."""
        left = []
        for (pid, created), cmdline in self.seen.items():
            try:
                proc = psutil.Process(pid)
                if proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE:
                    left.append(f"{pid}: {cmdline}")
            except psutil.Error:
                continue
        return left


@contextmanager
def watched(marker: Path) -> Iterator[ProcessWatch]:
    watch = ProcessWatch(marker)
    thread = threading.Thread(target=watch.run, daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        watch._halt.set()
        thread.join()


def run(tmp_path: Path, engines: list[Any], faults: list[dict[str, str]], **kwargs: Any) -> Path:
    """Run the scenario; assert it completed and left no process behind (and that the watch saw the engine)."""
    with watched(tmp_path) as watch:
        outcome = run_scenario(scenario(engines, faults, **kwargs), tmp_path, display=ProgressDisplay(live=False))
    assert outcome.status == "complete", outcome.failures
    assert len(watch.seen) >= 3, watch.seen  # broker, engine job (twice after a kill), generator workers
    assert watch.alive() == []
    write_report(outcome.run_dir)  # as bench run does after the run
    return outcome.run_dir


def summary(run_dir: Path, label: str) -> dict[str, Any]:
    return json.loads((run_dir / label / "rep-1" / "summary.json").read_text())


def the_fault(result: dict[str, Any]) -> dict[str, Any]:
    """The run's one fault, injected, recovered from, with its downtime respected."""
    [fault] = result["faults"]
    assert fault["error"] is None, fault["error"]
    assert fault["injected_at_ms"] is not None and fault["recovered_at_ms"] is not None
    assert fault["restarted_at_ms"] - fault["injected_at_ms"] >= 2_000
    print(f"\n{result['engine']}: {json.dumps(fault, indent=1)}")  # the measured figures, for the record (-s)
    return fault


def assert_duplicates_counted_and_shown(run_dir: Path, result: dict[str, Any], fault: dict[str, Any]) -> None:
    """At-least-once after a restart: every answer exact; duplicates (zero or more) counted around the fault and
    over the whole run, and the report's Faults table shows the whole run's counts."""
    correctness = result["correctness"]
    assert correctness["correct"] is True, correctness["problems"]
    assert fault["missing"] == fault["wrong"] == 0
    assert correctness["duplicate_records"] >= correctness["duplicated"] >= fault["duplicated_pairs"] >= 0
    assert fault["duplicate_records"] >= fault["duplicated_pairs"]
    report = (run_dir / "report.md").read_text()
    whole = f"0 / {correctness['duplicated']:,} ({correctness['duplicate_records']:,}) / 0"
    assert f"| {whole} | at-least-once |" in report


def test_calibration_killed_and_restarted_is_counted_around_the_fault(kafka_broker: str, tmp_path: Path) -> None:
    """The calibration job keeps no checkpoint: restarted, it reads the input topic again from the beginning and
    answers windows again (duplicates). Its watermark is the smallest over the partitions *that have delivered a
    record*: the first partition read after the restart delivers its whole backlog before the other delivers any,
    so the other's events are late and dropped, and the windows open at the kill lose them (measured after the
    per-partition watermark came in: 48 pairs missing in the window of the kill, 52 answered twice). Asserted:
    what a restart without checkpoint must show — problems around the fault, counted there and in the whole
    run — and the report's verdict matching the counts."""
    run_dir = run(tmp_path, ["calibration"], [KILL], drain_timeout="8s",  # missing pairs never come
                  bootstrap=kafka_broker)
    result = summary(run_dir, "calibration")
    correctness = result["correctness"]
    fault = the_fault(result)
    assert fault["missing"] + fault["wrong"] + fault["duplicated_pairs"] > 0
    assert fault["missing"] <= correctness["missing"] and fault["wrong"] <= correctness["wrong"]
    assert fault["duplicated_pairs"] <= correctness["duplicated"]
    assert fault["results_gap_ms"] is not None and fault["results_gap_ms"] >= 2_000
    assert fault["peak_latency_ms"] is not None
    report = (run_dir / "report.md").read_text()
    assert "## Faults" in report and "| kill-engine | 8 s |" in report
    if correctness["missing"] or correctness["wrong"]:
        assert "**answers lost or wrong**" in report
    else:
        assert f"at-least-once: every answer exact, {correctness['duplicate_records']:,} duplicate records" in report


def test_spark_killed_resumes_from_its_checkpoint_with_exact_answers(kafka_broker: str, tmp_path: Path) -> None:
    """Spark restarted on the same checkpoint location resumes from its last committed offsets and state: its
    micro-batch ids go on from the checkpoint (a fresh query would start again at batch 0), every answer exact,
    nothing missing; a micro-batch whose output was written but not committed is written again (the Kafka sink
    is at-least-once), which the judge counts as duplicates and the report shows. The fault comes later than for
    the other engines: Spark's first micro-batches take several seconds each on a loaded 2-core machine."""
    run_dir = run(tmp_path, ["spark"], [{**KILL, "at": "16s"}], duration="30s", bootstrap=kafka_broker)
    result = summary(run_dir, "spark")
    assert result["fairness"]["delivery"]["value"] == "at-least-once"
    fault = the_fault(result)
    assert_duplicates_counted_and_shown(run_dir, result, fault)
    metrics = json.loads((run_dir / "spark" / "rep-1" / "engine-metrics.json").read_text())
    batches = [row["batch_id"] for row in metrics["series"]]  # both jobs' progress reports, in order
    assert len(batches) >= 2 and batches == sorted(set(batches)), batches


def test_flink_killed_resumes_from_its_retained_checkpoint(kafka_broker: str, tmp_path: Path) -> None:
    """Flink at-least-once and exactly-once, each killed and resubmitted from its latest retained checkpoint.
    At-least-once: every answer exact, duplicates counted. Exactly-once (Kafka transactions, read read_committed):
    every pair answered exactly once — no duplicate record, nothing missing or wrong."""
    engines = [{"engine": "flink", "settings": {"checkpoint_interval": "2s"}},
               {"engine": "flink", "label": "flink-eo",
                "settings": {"delivery": "exactly-once", "checkpoint_interval": "2s"}}]
    run_dir = run(tmp_path, engines, [KILL], bootstrap=kafka_broker)
    at_least_once = summary(run_dir, "flink")
    fault = the_fault(at_least_once)
    assert_duplicates_counted_and_shown(run_dir, at_least_once, fault)
    metrics = json.loads((run_dir / "flink" / "rep-1" / "engine-metrics.json").read_text())
    before = [row["rows"] for row in metrics["input_rows"] if row["t_ms"] < fault["injected_at_ms"]]
    after = [row["rows"] for row in metrics["input_rows"] if row["t_ms"] > fault["recovered_at_ms"]]
    assert before and after and after[-1] > before[-1]  # the restarted job's source counter is read too

    exactly_once = summary(run_dir, "flink-eo")
    assert exactly_once["read_committed"] is True
    assert exactly_once["fairness"]["delivery"]["value"] == "exactly-once"
    correctness = exactly_once["correctness"]
    assert correctness["correct"] is True, correctness["problems"]
    assert correctness["duplicated"] == correctness["duplicate_records"] == 0
    fault = the_fault(exactly_once)
    assert fault["missing"] == fault["wrong"] == fault["duplicated_pairs"] == fault["duplicate_records"] == 0
    report = (run_dir / "report.md").read_text()
    assert "| exactly-once | exactly-once: every answer exact, no duplicate |" in report


def test_broker_restart_with_the_calibration_engine(tmp_path: Path) -> None:
    """The embedded broker stopped for 2 s and started again on the same port with its data: generator, engine
    and collector reconnect by themselves; every answer is still exact and none doubled (the calibration job
    keeps its read position and never reads a record twice; a partition whose backlog comes back later than the
    other's holds the watermark back instead of turning late)."""
    run_dir = run(tmp_path, ["calibration"], [BROKER])
    result = summary(run_dir, "calibration")
    correctness = result["correctness"]
    assert correctness["correct"] is True, correctness["problems"]
    assert correctness["duplicated"] == 0
    fault = the_fault(result)
    assert fault["missing"] == fault["wrong"] == 0
    assert fault["results_gap_ms"] is not None and fault["results_gap_ms"] >= 2_000


def test_broker_restart_with_flink(tmp_path: Path) -> None:
    """The same broker restart under Flink at-least-once: its Kafka source and sink ride it out (or the job
    restarts itself from a checkpoint); every answer exact, duplicates counted and shown.

    How many events the outage reorders is up to the load path (each generator worker flushes its own backlog,
    partitions come back one fetch after another), so nothing here depends on it: whatever order the broker
    holds, the judge allows exactly what Flink's per-partition watermark rule can make late from it
    (harness.analysis.arrival), and Flink must be exact within that. The idle timeout is set far above the outage
    so that no partition is declared idle: with the default 5 s, Flink's own view of a partition's silence (its
    consumer reconnecting after the broker returned) can exceed 5 s while the broker's append gap does not, and a
    resumed partition's backlog is then read after the others' by an amount no input read-back can see — a
    fresh-clone suite run judged Flink wrong so (21 pairs missing, 5 too low in the outage's window, 2,060
    events dropped where 5,890 were allowed). That case is the judge's stated limit (docs/methodology.md, "Correctness"), not
    something this test may pass or fail by chance."""
    run_dir = run(tmp_path, [{"engine": "flink", "settings": {"checkpoint_interval": "2s", "idle_timeout": "60s"}}],
                  [BROKER])
    result = summary(run_dir, "flink")
    fault = the_fault(result)
    assert_duplicates_counted_and_shown(run_dir, result, fault)
    delay = result["input_delay"]
    assert delay["arrival_rule"] == ("per partition: largest ts earlier in the same partition − D; after a 60,000 ms "
                                     "gap, the other partitions' ts up to 1,000 ms later")
    assert 0 <= delay["arrived_late_dropped"] <= delay["arrived_late"]
    assert 0 <= fault["late_dropped"] <= fault["late_allowed"]
    report = (run_dir / "report.md").read_text()
    assert f"| {delay['arrived_late']:,} / {delay['arrived_late_dropped']:,} |" in report
