"""``bench export DIR... --to FILE.csv|.parquet``: tidy data, one row per run × engine × repetition.

Each row names where it comes from (run id, scenario, date, commit, machine) and holds every figure of the figure
registry (:data:`harness.report.figures.FIGURES`, one column per key, in its unit) beside the verdicts (status,
valid, correct, sustained). A ``bench capacity`` directory contributes the rows of its trials (each a normal run
directory), with the capacity directory and the trial's verdict. Load it with
``pandas.read_csv(FILE)`` (or ``read_parquet``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harness.report.figures import FIGURES
from harness.results import RunData, load_run

IDENTITY = ("run_id", "scenario", "started_utc", "git_commit", "cpu_model", "cpu_logical", "capacity_dir",
            "trial_verdict", "engine", "repetition", "status", "valid", "correct", "sustained")
"""The columns before the figures, in order."""


def export_rows(paths: Sequence[Path]) -> pd.DataFrame:
    """The tidy frame of the run and capacity directories ``paths``: :data:`IDENTITY` then one column per figure."""
    from harness.capacity.results import is_capacity_dir, load_capacity

    rows: list[dict[str, Any]] = []
    for path in map(Path, paths):
        if is_capacity_dir(path):
            data = load_capacity(path)
            for found in data["engines"].values():
                for search in found["searches"]:
                    for trial in search["trials"]:
                        run = load_run(path / trial["run_dir"])
                        rows += _run_rows(run, capacity_dir=path.name, verdict=trial["verdict"])
        else:
            rows += _run_rows(load_run(path))
    return pd.DataFrame(rows, columns=[*IDENTITY, *(f.key for f in FIGURES)])


def _run_rows(run: RunData, *, capacity_dir: str | None = None, verdict: str | None = None) -> list[dict[str, Any]]:
    stamp = run.path.name.split("-", 1)[0]
    started = (f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}Z"
               if len(stamp) == 16 and stamp[8] == "T" else None)
    base = {"run_id": run.path.name, "scenario": run.scenario.get("name"), "started_utc": started,
            "git_commit": run.fingerprint.get("git_commit"), "cpu_model": run.fingerprint.get("cpu_model"),
            "cpu_logical": run.fingerprint.get("cpu_logical"), "capacity_dir": capacity_dir, "trial_verdict": verdict}
    rows = []
    for engine, reps in run.engines.items():
        for rep in reps:
            s = rep.summary
            row = {**base, "engine": engine, "repetition": s.repetition, "status": s.status, "valid": s.valid,
                   "correct": None if s.correctness is None else s.correctness.correct,
                   "sustained": s.sustained.sustained}
            row.update({f.key: f.get(s) if s.status == "ok" else None for f in FIGURES})
            rows.append(row)
    return rows


def write_export(paths: Sequence[Path], to: Path) -> Path:
    """Write :func:`export_rows` to ``to``: CSV, or Parquet for a ``.parquet`` name (through
    :func:`harness.report.output.write_output`: never through a symlink)."""
    from harness.errors import HarnessError
    from harness.report.output import write_output

    frame = export_rows(paths)
    suffix = Path(to).suffix.lower()
    if suffix == ".csv":
        return write_output(to, frame.to_csv(index=False))
    if suffix == ".parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return write_output(to, buffer.getvalue())
    raise HarnessError(f"{to}: export writes .csv or .parquet; name the file with one of these suffixes")
