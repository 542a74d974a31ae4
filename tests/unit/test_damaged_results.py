"""Damaged, truncated, empty or partial result directories: one line naming the file, never a traceback; a
repetition whose writing was cut short is reported as incomplete, never read as a result."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.report.document import render_report
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


DAMAGES = {
    "truncated": (lambda p: p.write_text(p.read_text()[:200]), "damaged JSON at line"),
    "empty": (lambda p: p.write_text(""), "empty (the run was probably cut short while writing it)"),
    "not-an-object": (lambda p: p.write_text("[1, 2]"), "expected a JSON object, found list"),
    "not-utf8": (lambda p: p.write_bytes(b"\xff\xfe\x00"), "cannot be read"),
}
"""How a result file can be damaged, and the words its one-line error uses."""


@pytest.mark.parametrize("kind", list(DAMAGES))
@pytest.mark.parametrize("name", ["spark/rep-1/summary.json", "run.json"])
def test_the_loader_names_the_damaged_file_and_what_is_wrong(tmp_path: Path, name: str, kind: str) -> None:
    run_dir = a_run(tmp_path)
    damage, message = DAMAGES[kind]
    damage(run_dir / name)
    with pytest.raises(ResultError, match=re.escape(message)) as raised:
        load_run(run_dir)
    assert str(run_dir / name) in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize(("name", "kind"), [("spark/rep-1/summary.json", "truncated"), ("run.json", "empty")])
def test_bench_report_and_compare_name_the_damaged_file_in_one_line(tmp_path: Path, name: str, kind: str) -> None:
    """The CLI prints the loader's one line (any damage takes the same path: two are run as subprocesses)."""
    run_dir = a_run(tmp_path)
    damage, message = DAMAGES[kind]
    damage(run_dir / name)
    for args in (["report", str(run_dir)], ["compare", str(run_dir), str(run_dir)]):
        done = subprocess.run([str(BENCH), *args], capture_output=True, text=True, timeout=120)
        assert done.returncode != 0
        assert "Traceback" not in done.stderr, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert any(str(run_dir / name) in line and message in line for line in lines), done.stderr


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
