"""Damaged, truncated, empty or partial result directories: one line naming the file, never a traceback; a
repetition whose writing was cut short is reported as incomplete, never read as a result."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.report import render_report
from harness.results import create_run_dir, load_run, write_repetition, write_run_info, write_run_status
from harness.results.store import ResultError, write_new
from tests.unit.test_results import FINGERPRINT, make_result, make_scenario

BENCH = Path(sys.executable).with_name("bench")


def a_run(tmp_path: Path) -> Path:
    run_dir = create_run_dir(tmp_path, "unit")
    write_run_info(run_dir, make_scenario(), FINGERPRINT)
    write_repetition(run_dir, make_result("spark"))
    write_repetition(run_dir, make_result("flink"))
    write_run_status(run_dir, "complete")
    return run_dir


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_text(p.read_text()[:200]), "damaged JSON at line"),
        (lambda p: p.write_text(""), "empty (the run was probably cut short while writing it)"),
        (lambda p: p.write_text("[1, 2]"), "expected a JSON object, found list"),
        (lambda p: p.write_bytes(b"\xff\xfe\x00"), "cannot be read"),
    ],
    ids=["truncated", "empty", "not-an-object", "not-utf8"],
)
@pytest.mark.parametrize("name", ["spark/rep-1/summary.json", "run.json"])
def test_bench_report_and_compare_name_the_damaged_file_in_one_line(tmp_path: Path, name: str, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    run_dir = a_run(tmp_path)
    damage(run_dir / name)
    for args in (["report", str(run_dir)], ["compare", str(run_dir), str(run_dir)]):
        done = subprocess.run([str(BENCH), *args], capture_output=True, text=True, timeout=120)
        assert done.returncode != 0
        assert "Traceback" not in done.stderr, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert any(str(run_dir / name) in line and message in line for line in lines), done.stderr
    with pytest.raises(ResultError, match=re.escape(message)):
        load_run(run_dir)


def test_a_repetition_cut_short_is_incomplete_not_a_result(tmp_path: Path) -> None:
    run_dir = a_run(tmp_path)
    (run_dir / "flink" / "rep-1" / "summary.json").unlink()  # written last: without it the writing was cut short
    run = load_run(run_dir)
    assert list(run.engines) == ["spark"] and run.incomplete == ["flink/rep-1"]
    assert "flink/rep-1: no summary.json (its writing was cut short): not reported" in render_report(run)


def test_writes_are_atomic_and_never_replace(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    write_new(target, "{}\n")
    with pytest.raises(Exception, match="never overwritten"):
        write_new(target, "{\"x\": 1}\n")
    assert target.read_text() == "{}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary file left behind
