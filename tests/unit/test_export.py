"""``bench export``: tidy rows of committed run and capacity directories that load with pandas as they are."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness.report.export import IDENTITY
from harness.report.figures import FIGURES

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"


def bench(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_runs_and_capacity_trials_export_one_row_per_engine_and_repetition(tmp_path: Path, suffix: str) -> None:
    to = tmp_path / f"runs{suffix}"
    done = bench("export", RESULTS / "20261125T165952Z-high_rate", RESULTS / "20261126T011037Z-capacity-capacity",
                 "--to", to)
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(to) if suffix == ".csv" else pd.read_parquet(to)
    assert list(frame.columns) == [*IDENTITY, *(f.key for f in FIGURES)]
    run = frame[frame["run_id"] == "20261125T165952Z-high_rate"].set_index("engine")
    assert run.loc["spark", "result_p50"] == pytest.approx(3917.0) and run.loc["flink", "result_p50"] == 2267.0
    assert run.loc["spark", "started_utc"] == "2026-11-25T16:59:52Z" and run.loc["spark", "cpu_logical"] == 2
    trials = frame[frame["capacity_dir"] == "20261126T011037Z-capacity-capacity"]
    assert sorted(trials["target_rate"]) == [10_000, 20_000, 40_000]
    assert dict(zip(trials["target_rate"], trials["trial_verdict"])) == {10_000: "pass", 20_000: "pass",
                                                                         40_000: "load-path"}


def test_an_existing_file_is_kept_without_force_and_an_unknown_suffix_is_refused(tmp_path: Path) -> None:
    kept = tmp_path / "runs.csv"
    kept.write_text("mine")
    done = bench("export", RESULTS / "20261125T165952Z-high_rate", "--to", kept)
    assert done.returncode == 2 and "exists: pass --force" in done.stderr and kept.read_text() == "mine"
    done = bench("export", RESULTS / "20261125T165952Z-high_rate", "--to", tmp_path / "runs.xlsx")
    assert done.returncode == 2 and "export writes .csv or .parquet" in done.stderr
