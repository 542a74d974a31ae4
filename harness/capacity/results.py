"""``capacity.json``: the stored result of ``bench capacity``, how it is built from the searches and written (once,
when they end: :func:`write_capacity_json`), read back and summarised. Its markdown and plot are rendered from the
stored file (by ``bench capacity`` when the searches end, and by ``bench report``).

Format 3 (written now): ``search`` also holds ``trials`` — ``fresh`` (a whole run per trial) or ``stepped``
(:mod:`harness.capacity.stepped`: one run per several rates, each step a trial; its trials then also carry
``step``, the step's number in its run, and ``span_s``, the step's offsets in that run's load) — and
``steps_per_run``. Per engine::

    calibration        true for the built-in calibration engine (its capacity is the load path's ceiling)
    capacity           mean over the searches that found one, events/s (the one value with one search); null when
                       none did
    capacity_ci        half-width of the 95 % confidence interval of that mean (Student t), events/s; null with
                       fewer than 2 values
    capacity_values    each search's capacity, in the order run (null: that search found no passing rate)
    interval           [low, high] events/s that ``bench compare`` tests for overlap (:func:`capacity_interval`);
                       high null = open (not measured above)
    fraction_of_calibration   capacity / the calibration engine's capacity, null for the calibration engine
    wall_s             wall time of all its searches, s
    searches           one object per search: capacity, bracket [pass, fail], ended_by, load_path_bound, wall_s
                       and trials (rate, verdict, reason, run_dir and the figures of
                       :func:`harness.capacity.search.trial_figures`)

Format 1 (one search per engine, the search's fields directly in the engine object) and format 2 (no
``search.trials``: every trial was fresh) are read and upgraded by :func:`load_capacity`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import results
from harness.analysis.stats import Estimate, estimate
from harness.results import ResultError
from harness.results.store import dump_json, write_new

if TYPE_CHECKING:
    import datetime as dt

    from harness.capacity.search import SearchResult
    from harness.scenario import CapacityConfig, Scenario


@dataclass(frozen=True)
class EngineSearch:
    """One engine's search: its result, how long it took and whether it is the calibration engine's."""

    engine: str
    result: SearchResult
    wall_s: float
    """Wall time of the whole search, engine and broker start-ups included, s."""
    calibration: bool = False
    search: int = 1
    """Which of the engine's ``capacity.repetitions`` searches this is, from 1."""


@dataclass(frozen=True)
class CapacityOutcome:
    """What ``bench capacity`` produced: the output directory and every engine's search, in the order run."""

    out_dir: Path
    config: CapacityConfig
    searches: list[EngineSearch]
    status: str
    """complete | interrupted"""


CAPACITY_FORMAT_VERSION = 3
CAPACITY_FILE = "capacity.json"
SEARCH_KEYS = ("capacity", "bracket", "ended_by", "load_path_bound", "wall_s", "trials")
"""The fields of one search (format 2's ``searches[]``; format 1 held them in the engine object)."""


def is_capacity_dir(path: Path) -> bool:
    """True when ``path`` is a ``bench capacity`` output directory (it holds capacity.json)."""
    return (Path(path) / CAPACITY_FILE).is_file()


# ---------------------------------------------------------------------------------------------------- summary
def capacity_estimate(values: list[float | None]) -> Estimate | None:
    """Mean ± 95 % CI (t) of the searches' capacities, leaving out searches without one; None when none has."""
    return estimate([v for v in values if v is not None])


def capacity_interval(searches: list[dict[str, Any]]) -> list[float | None]:
    """The range ``bench compare`` tests for overlap, [low, high] (high None = open), from the searches that
    found a capacity ([None, None] when none did):

    * one search: its bracket [highest pass, lowest failure above it]; open above when the search never failed
      above its capacity (max reached, the load path or an unjudged trial ended it);
    * several: the 95 % CI of the mean capacity (not below 0), its upper end raised to the mean of the brackets' upper ends
      when that is higher (identical searches have no spread, but each only knows its capacity to within its
      bracket); open above when any search's bracket is.
    """
    found = [s for s in searches if s["capacity"] is not None]
    if not found:
        return [None, None]
    if len(found) == 1:
        low, high = found[0]["bracket"]
        return [low, high]
    est = capacity_estimate([s["capacity"] for s in found])
    assert est is not None and est.half_width is not None
    highs = [s["bracket"][1] for s in found]
    low = max(0.0, est.mean - est.half_width)
    if any(h is None for h in highs):
        return [low, None]
    return [low, max(est.mean + est.half_width, sum(highs) / len(highs))]


def engine_entry(searches: list[dict[str, Any]], *, calibration: bool, ceiling: float | None) -> dict[str, Any]:
    """One engine's object of capacity.json from its searches (each with :data:`SEARCH_KEYS`) and the
    calibration engine's capacity (None when it was not searched or found none)."""
    values = [s["capacity"] for s in searches]
    est = capacity_estimate(values)
    mean = None if est is None else est.mean
    return {
        "calibration": calibration,
        "capacity": mean,
        "capacity_ci": None if est is None else est.half_width,
        "capacity_values": values,
        "interval": capacity_interval(searches),
        "fraction_of_calibration": mean / ceiling if ceiling and mean is not None and not calibration else None,
        "wall_s": round(sum(s["wall_s"] for s in searches), 1),
        "searches": searches,
    }


# ------------------------------------------------------------------------------------------------- building
def write_capacity_json(outcome: CapacityOutcome, scenario: Scenario, started: dt.datetime) -> Path:
    """Write :func:`capacity_json` into ``outcome.out_dir`` (never overwriting); called once, when the searches
    end. Returns its path."""
    path = outcome.out_dir / CAPACITY_FILE
    write_new(path, dump_json(capacity_json(outcome, scenario, started)))
    return path


def capacity_json(outcome: CapacityOutcome, scenario: Scenario, started: dt.datetime) -> dict[str, Any]:
    """Everything found (the format above): per engine the capacity over its searches,
    and per search the bracket, what ended it, its wall time and every trial."""
    config = outcome.config
    by_engine: dict[str, list[EngineSearch]] = {}
    for found in outcome.searches:
        by_engine.setdefault(found.engine, []).append(found)
    calibration = next((runs for runs in by_engine.values() if runs[0].calibration), None)
    ceiling = None
    if calibration is not None:
        ceiling = engine_entry([_search_json(s) for s in calibration], calibration=True, ceiling=None)["capacity"]
    return {
        "format_version": CAPACITY_FORMAT_VERSION,
        "kind": "capacity",
        "status": outcome.status,
        "started": started.isoformat(timespec="seconds"),
        "repetitions": config.repetitions,
        "search": {
            "start": config.start, "max": config.max, "precision": config.precision, "growth": config.growth,
            "slo": None if config.slo is None else str(config.slo),
            "trial_duration_ms": config.trial.duration, "trial_warmup_ms": config.trial.warmup,
            "trials": config.trials, "steps_per_run": config.steps_per_run if config.trials == "stepped" else None,
        },
        "calibration_capacity": ceiling,
        "engines": {name: engine_entry([_search_json(s) for s in runs], calibration=runs[0].calibration,
                                       ceiling=ceiling)
                    for name, runs in by_engine.items()},
        "scenario": scenario.dump(),
        "fingerprint": results.environment_fingerprint(kafka_mode=scenario.kafka.mode),
    }


def _search_json(found: EngineSearch) -> dict[str, Any]:
    result = found.result
    values = (result.capacity, list(result.bracket), result.ended_by, result.load_path_bound,
              round(found.wall_s, 1),
              [{"rate": t.rate, "verdict": t.verdict, "reason": t.reason, **t.figures} for t in result.trials])
    return dict(zip(SEARCH_KEYS, values, strict=True))


# ---------------------------------------------------------------------------------------------------- reading
def load_capacity(path: Path) -> dict[str, Any]:
    """capacity.json of the directory ``path`` (or the file itself) as format 3; formats 1 and 2 are upgraded. A
    missing, damaged or foreign file raises :class:`ResultError` naming it."""
    path = Path(path)
    file = path / CAPACITY_FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultError(f"{path} is not a capacity directory: {CAPACITY_FILE} is missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ResultError(f"{file}: not readable as JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or data.get("kind") != "capacity":
        raise ResultError(f"{file}: not a capacity result (no \"kind\": \"capacity\")")
    version = data.get("format_version")
    if version not in (1, 2, CAPACITY_FORMAT_VERSION):
        raise ResultError(f"{file}: capacity format_version {version!r} is not supported (this harness reads 1, 2, "
                          f"{CAPACITY_FORMAT_VERSION})")
    try:
        if version == 1:
            data = _upgrade(data)
        if version in (1, 2):
            data = {**data, "format_version": CAPACITY_FORMAT_VERSION,
                    "search": {**data["search"], "trials": "fresh", "steps_per_run": None}}
        return _checked(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultError(f"{file}: not a valid capacity result ({type(exc).__name__}: {exc})") from None


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Format 1 → 2: each engine's one search moves into ``searches`` (2 → 3 follows in :func:`load_capacity`)."""
    ceiling = data.get("calibration_capacity")
    engines = {name: engine_entry([{key: found[key] for key in SEARCH_KEYS}], calibration=bool(found["calibration"]),
                                  ceiling=ceiling)
               for name, found in data["engines"].items()}
    return {**data, "format_version": 2, "repetitions": 1, "engines": engines}


def _checked(data: dict[str, Any]) -> dict[str, Any]:
    """Check every field the report and compare read, so a damaged file fails here, once, with its name."""
    for key in ("precision", "start", "growth", "trial_duration_ms", "trial_warmup_ms"):
        float(data["search"][key])
    if data["search"]["trials"] not in ("fresh", "stepped"):
        raise ValueError(f"search.trials must be fresh or stepped (got {data['search']['trials']!r})")
    str(data["scenario"]["name"])
    for name, found in data["engines"].items():
        for index, search in enumerate(found["searches"], 1):
            missing = [key for key in SEARCH_KEYS if key not in search]
            if missing:
                raise KeyError(f"engines.{name}.searches[{index}] lacks {', '.join(missing)}")
            for trial in search["trials"]:
                if not isinstance(trial.get("verdict"), str) or not isinstance(trial.get("rate"), (int, float)):
                    raise ValueError(f"engines.{name}.searches[{index}]: a trial without rate or verdict")
    return data
