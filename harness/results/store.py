"""Run directories: one per run, one sub-directory per engine × repetition; written atomically, never overwritten.

Layout::

    results/<YYYYmmddTHHMMSSZ>-<scenario>/       create_run_dir(): exclusive, -2, -3 … on collision
        run.json                                  resolved scenario + environment fingerprint (write_run_info)
        run-status.json                           complete | interrupted | failed, with a message
        <engine>/rep-<n>/
            summary.json                          RepetitionSummary (harness.results.model), written LAST
            series.csv                            per wall second since the load started (harness.analysis.series)
            pairs.csv.gz                          per (window, user): expected, got, latencies, status (harness.analysis.judge)
            result-latency.hdr                    HdrHistogram (standard base64), measured exact pairs, ms
            event-time-latency.hdr                same for event-time latency
            engine-metrics.json                   the engine's own metrics, as it reported them
            resources.csv                         CPU/RSS samples per component (harness.run.resources)
            generator.json                        the generator's full result
            traceback.txt                         when the repetition failed inside the harness
        report.md, *.png                          written by ``bench report`` (harness.report.document)

Every file is written to a temporary name, flushed to disk and renamed into place (``os.replace``), and an
existing file is never replaced; ``summary.json`` comes last, so a repetition whose writing was cut short (crash,
``kill -9``, full disk) has no summary and is reported as *incomplete*, never read as a result. The loader
names the file and what is wrong with it when a file is damaged, in one line (:class:`ResultError`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import io
import json
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from hdrh.histogram import HdrHistogram

from harness import histograms
from harness.errors import HarnessError
from harness.results.model import (
    FORMAT_VERSION,
    RepetitionResult,
    RepetitionSummary,
    SummaryFieldError,
    summary_from_json,
    to_json,
    upgrade,
)

SUPPORTED_VERSIONS = (1, 2)
"""summary.json / run.json versions the loader reads (older ones are upgraded in memory)."""


class ResultError(HarnessError):
    """A result file is missing, damaged or of an unknown format: the message names the file."""


# ---------------------------------------------------------------------------------------------------- writing
def create_run_dir(base: Path, scenario_name: str, *, now: dt.datetime | None = None) -> Path:
    """``base/<UTC YYYYmmddTHHMMSSZ>-<scenario>``, created exclusively: an existing directory is never reused;
    ``-2``, ``-3`` … are appended on collision."""
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    stamp = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"{stamp}-{scenario_name}"
    for attempt in range(1, 1000):
        path = base / (name if attempt == 1 else f"{name}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise HarnessError(f"cannot create a run directory under {base}: {name} and 998 suffixes exist")


def write_new(path: Path, data: str | bytes) -> None:
    """Write a new file atomically (temporary name, fsync, rename); refuse to replace an existing one."""
    path = Path(path)
    if path.exists():
        raise HarnessError(f"{path} exists: result files are never overwritten; use a new run directory")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        with open(temporary, "xb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            raise HarnessError(f"{path} exists: result files are never overwritten; use a new run directory")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def dump_json(data: Any) -> str:
    return json.dumps(to_json(data), indent=2, sort_keys=False, allow_nan=False) + "\n"


def write_run_info(run_dir: Path, scenario: Any, fingerprint: Mapping[str, Any]) -> Path:
    """run.json: the resolved scenario (``Scenario.dump()``, human units) and the environment fingerprint;
    written once at the start of a run."""
    data = {
        "format_version": FORMAT_VERSION,
        "scenario": scenario.dump() if hasattr(scenario, "dump") else dict(scenario),
        "fingerprint": dict(fingerprint),
    }
    path = Path(run_dir) / "run.json"
    write_new(path, dump_json(data))
    return path


def write_run_status(run_dir: Path, status: typing.Literal["complete", "interrupted", "failed"], message: str = "") -> Path:
    """run-status.json, written once at the end: ``complete``, ``interrupted`` (Ctrl-C or SIGTERM; what was
    measured is kept) or ``failed`` (the harness itself failed)."""
    data = {
        "status": status,
        "message": message,
        "finished_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    path = Path(run_dir) / "run-status.json"
    write_new(path, dump_json(data))
    return path


def repetition_dir(run_dir: Path, engine: str, repetition: int) -> Path:
    return Path(run_dir) / engine / f"rep-{repetition}"


def write_repetition(run_dir: Path, result: RepetitionResult) -> Path:
    """Write one engine × repetition into ``run_dir/<engine>/rep-<n>/``, ``summary.json`` last (see the module
    docstring); refuses to overwrite any file. Returns the directory. The engine may already have put its logs
    there."""
    summary = result.summary
    directory = repetition_dir(run_dir, summary.engine, summary.repetition)
    directory.mkdir(parents=True, exist_ok=True)
    write_new(directory / "series.csv", result.series.to_csv(index=False, float_format="%.6g"))
    if result.pairs is not None:
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
            gz.write(result.pairs.to_csv(index=False, float_format="%.10g").encode())
        write_new(directory / "pairs.csv.gz", buffer.getvalue())
    write_new(directory / "result-latency.hdr", histograms.encode(result.result_histogram) + "\n")
    write_new(directory / "event-time-latency.hdr", histograms.encode(result.event_time_histogram) + "\n")
    write_new(directory / "engine-metrics.json", dump_json(result.engine_metrics))
    write_new(directory / "resources.csv", result.resources.to_csv(index=False, float_format="%.6g"))
    if result.generator is not None:
        write_new(directory / "generator.json", dump_json(result.generator))
    write_new(directory / "summary.json", dump_json(dataclasses.asdict(summary)))
    return directory


# ---------------------------------------------------------------------------------------------------- loading
def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a result file, or a :class:`ResultError` naming the file and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultError(f"{path}: cannot be read ({exc})") from None
    if not text.strip():
        raise ResultError(f"{path}: empty (the run was probably cut short while writing it)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultError(f"{path}: damaged JSON at line {exc.lineno} column {exc.colno} ({exc.msg}); "
                          "the run was probably cut short while writing it") from None
    if not isinstance(data, dict):
        raise ResultError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ResultError(f"{path}: cannot be read ({exc})") from None


@dataclass(eq=False)
class LoadedRepetition:
    """One engine × repetition read back from disk; big files are read on first use."""

    path: Path
    summary: RepetitionSummary

    @property
    def series(self) -> pd.DataFrame:
        return _read_csv(self.path / "series.csv")

    @property
    def resources(self) -> pd.DataFrame:
        path = self.path / "resources.csv"
        return _read_csv(path) if path.exists() and path.stat().st_size > 1 else pd.DataFrame()

    def pairs(self) -> pd.DataFrame:
        return _read_csv(self.path / "pairs.csv.gz")

    @property
    def result_histogram(self) -> HdrHistogram:
        return _read_histogram(self.path / "result-latency.hdr")

    @property
    def event_time_histogram(self) -> HdrHistogram:
        return _read_histogram(self.path / "event-time-latency.hdr")

    @property
    def engine_metrics(self) -> dict[str, Any]:
        return read_json(self.path / "engine-metrics.json")

    @property
    def generator(self) -> dict[str, Any]:
        """The generator's full result (``generator.json``); empty when the repetition has none."""
        path = self.path / "generator.json"
        return read_json(path) if path.exists() else {}


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise ResultError(f"{path}: missing") from None
    except (OSError, ValueError, EOFError, gzip.BadGzipFile) as exc:
        raise ResultError(f"{path}: damaged ({type(exc).__name__}: {exc})") from None


def _read_histogram(path: Path) -> HdrHistogram:
    text = _read_text(path)
    try:
        return histograms.decode(text)
    except Exception as exc:  # noqa: BLE001 - the decoder raises assorted types on damaged input
        raise ResultError(f"{path}: damaged histogram ({type(exc).__name__})") from None


@dataclass(eq=False)
class RunData:
    """A run directory read back: ``engines`` maps each engine label to its repetitions, in scenario order."""

    path: Path
    scenario: dict[str, Any]
    fingerprint: dict[str, Any]
    status: dict[str, Any] | None
    """run-status.json, None when the run never finished (killed) — the report says so."""
    engines: dict[str, list[LoadedRepetition]]
    incomplete: list[str] = field(default_factory=list)
    """Repetition directories without a summary.json (their writing was cut short), relative to the run."""


def load_run(run_dir: Path) -> RunData:
    """Read a run directory (written by this module) for the report and compare; older formats are upgraded.
    A damaged file raises :class:`ResultError` naming it."""
    run_dir = Path(run_dir)
    info_path = run_dir / "run.json"
    if not info_path.exists():
        raise ResultError(f"{run_dir} is not a run directory: run.json is missing")
    info = read_json(info_path)
    _check_version(info, info_path)
    if not isinstance(info.get("scenario"), dict):
        raise ResultError(f"{info_path}: has no scenario object")
    status_path = run_dir / "run-status.json"
    status = read_json(status_path) if status_path.exists() else None
    order = [e.get("label") or str(e.get("engine", "")).rsplit(":", 1)[-1]
             for e in info["scenario"].get("engines", []) if isinstance(e, dict)]
    found = sorted(p.parent.name for p in run_dir.glob("*/rep-*") if p.is_dir())
    names = [n for n in order if n in found] + [n for n in dict.fromkeys(found) if n not in order]
    engines: dict[str, list[LoadedRepetition]] = {}
    incomplete: list[str] = []
    for name in names:
        reps = []
        for rep_dir in sorted((run_dir / name).glob("rep-*")):
            summary_path = rep_dir / "summary.json"
            if not summary_path.exists():
                incomplete.append(str(rep_dir.relative_to(run_dir)))
                continue
            reps.append(LoadedRepetition(rep_dir, load_summary(summary_path)))
        reps.sort(key=lambda r: r.summary.repetition)
        if reps:
            engines[name] = reps
    return RunData(run_dir, info["scenario"], info.get("fingerprint", {}), status, engines, incomplete)


def load_summary(path: Path) -> RepetitionSummary:
    data = read_json(path)
    _check_version(data, path)
    try:
        return summary_from_json(upgrade(data))
    except SummaryFieldError as exc:
        raise ResultError(f"{path}: not a valid repetition summary: field {exc}") from None
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise ResultError(f"{path}: not a valid repetition summary ({type(exc).__name__}: {exc})") from None


def _check_version(data: Mapping[str, Any], path: Path) -> None:
    version = data.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        raise ResultError(
            f"{path}: result format_version {version!r} is not supported (this harness reads "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))})"
        )
