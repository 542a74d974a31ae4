"""Reports, plots and histories are never written through a symlink or outside the run directory, and a file the
user named (``--to``, ``--plot``, the default ``history.png``) is replaced only with ``--force``: run directories
are inputs too (CI artifacts), and a report must not be a way to overwrite a file elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_history import nightly_runs
from tests.unit.test_report import GOLDEN, RUN_NAME

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "results" / RUN_NAME
    shutil.copytree(GOLDEN / RUN_NAME, path)
    return path


def bench(*args: str | Path, cwd: Path = ROOT) -> tuple[int, str]:
    """``bench`` as users run it (its error handling gives the exit codes)."""
    done = subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("name", ["report.md", "latency-cdf.png"])
def test_a_symlink_in_the_run_directory_is_refused_and_its_target_untouched(run_dir: Path, tmp_path: Path,
                                                                          name: str) -> None:
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (run_dir / name).unlink(missing_ok=True)
    (run_dir / name).symlink_to(outside)
    code, output = bench("report", run_dir)
    assert code == 2, output
    assert f"{run_dir / name} is a symbolic link: reports are never written through one" in output
    assert outside.read_text() == "keep me"


def test_a_symlinked_run_subdirectory_cannot_take_a_plot_outside(run_dir: Path, tmp_path: Path) -> None:
    from harness.report.output import OutputRefused, write_output

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run_dir / "linked").symlink_to(elsewhere)
    with pytest.raises(OutputRefused, match="is outside"):
        write_output(run_dir / "linked" / "x.png", b"png", within=run_dir)
    assert list(elsewhere.iterdir()) == []


def test_an_existing_to_file_is_replaced_only_with_force(run_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "REPORT.md"
    target.write_text("the old report")
    code, output = bench("report", run_dir, "--to", target)
    assert code == 2 and f"{target} exists: pass --force to replace it, or another --to" in output
    assert target.read_text() == "the old report"
    code, output = bench("report", run_dir, "--to", target, "--force")
    assert code == 0, output
    assert target.read_text().startswith("# Benchmark report")


def test_the_run_directorys_own_report_is_derived_and_rewritten(run_dir: Path) -> None:
    (run_dir / "report.md").write_text("stale")
    code, output = bench("report", run_dir)
    assert code == 0, output
    assert (run_dir / "report.md").read_text().startswith("# Benchmark report")


def test_history_never_replaces_its_default_plot_silently(tmp_path: Path) -> None:
    runs = nightly_runs(tmp_path / "runs")
    (tmp_path / "history.png").write_bytes(b"someone's plot")
    code, output = bench("history", *runs, cwd=tmp_path)
    assert code == 2 and "history.png exists: pass --force to replace it, or another --plot" in output
    assert (tmp_path / "history.png").read_bytes() == b"someone's plot"
    code, output = bench("history", *runs, "--force", cwd=tmp_path)
    assert code == 0, output
    assert (tmp_path / "history.png").read_bytes().startswith(b"\x89PNG")
