"""``bench compare BASELINE... CANDIDATE``: the figures side by side, with changes and a regression gate.

**Baseline.** One or more run directories (A). Several are pooled: per engine and figure, the values of every
usable repetition of every baseline run form one sample, so run-to-run drift is part of the measured noise.
**Candidate** (B): the run under judgement. A repetition is *usable* when it ran to the end and is valid.

**Significance.** Per engine and figure, Welch's t-test on the per-repetition values of A and B at 95 %
(two-sided; :func:`harness.analysis.stats.welch`). The *smallest detectable change* of a figure is the smallest
difference of means that this test would call significant with these repetitions and their spread: t · SE, in
percent of A's mean.

**Regression.** A figure regressed when it got worse (higher latency, CPU or memory; lower processed rate) by
more than ``PCT`` percent **and** the change is significant. An engine that was correct in A and is incorrect in
B, or sustained in A and not sustained in B, regressed too.

**The gate** (``--fail-on-regression PCT``) fails (exit 1) on a regression and whenever the comparison itself
cannot be trusted: an engine of A has no repetitions in B; B's run-status is not ``complete``; a B repetition
failed, was interrupted, is invalid or is missing; the runs' settings differ (:data:`SCENARIO_KEYS` and each
engine's ``engine`` + ``settings``); or their environments differ (:data:`FINGERPRINT_KEYS`), unless
``allow_env_change``. With fewer than 2 usable values of a compared figure on a side it cannot judge (exit 3).
With ``skip_incomparable`` a baseline run whose settings or environment differ from B's is left out instead
of failing the gate; when none is left, exit 4 (no baseline: B starts a new one). See :data:`EXIT_CODES`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, ScenarioError
from harness.report.figures import FIGURE_BY_KEY, Figure, figure_values, ok_reps
from harness.results import LoadedRepetition, RunData, load_run
from harness.analysis.stats import Estimate, Welch, estimate, welch

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_CANNOT_JUDGE = 3
EXIT_NO_BASELINE = 4
EXIT_CODES: dict[int, str] = {
    EXIT_PASS: "no regression (or no --fail-on-regression: the comparison is only reported)",
    EXIT_FAIL: "a regression, or the runs are not comparable (an engine missing in the candidate, the candidate "
    "not complete, a failed, interrupted, invalid or missing candidate repetition, different settings, or a "
    "different environment without --allow-env-change)",
    EXIT_USAGE: "usage error: bad arguments, or a directory that is not a readable run",
    EXIT_CANNOT_JUDGE: "cannot judge: an engine has no usable baseline repetition, or a compared figure has fewer "
    "than 2 usable repetitions on a side",
    EXIT_NO_BASELINE: "no baseline left: --skip-incomparable-baselines left out every baseline run",
}
"""Exit codes of ``bench compare --fail-on-regression`` (without the option: always 0 unless a usage error).
When several apply, the first in the order 2, 1, 4, 3 wins."""

COMPARED = (
    "processed_rate",
    "result_p50",
    "result_p90",
    "result_p99",
    "result_p99_9",
    "event_time_p50",
    "event_time_p99",
    "engine_cpu",
    "engine_rss",
    "engine_cost",
)
"""Figures compared (target and achieved rate describe the load, not the engine)."""

SCENARIO_KEYS = ("duration", "warmup", "load", "window", "kafka", "parallelism", "isolation", "faults")
"""Resolved-scenario fields that must be equal for two runs to be compared (besides each engine's ``engine`` and
``settings``, compared with the engine's defaults filled in). Duration and warm-up are included because they move
the figures (a longer run has more windows in its tail percentiles and a later JIT state), ``isolation`` (cores of
its own change the engine's latency and capacity) and ``faults`` (a killed engine's recovery is in the figures).
Not compared: name, description, repetitions (only the sample size, which the test accounts for), seed (another
draw of the same workload), drain and start timeouts."""

FINGERPRINT_KEYS = ("cpu_model", "cpu_logical", "cpu_physical", "versions")
"""Environment fingerprint fields that must be equal unless ``--allow-env-change``: CPU model, cores (logical and
physical) and every engine, broker and connector version."""

INFORMATIONAL_PCT = 5.0
"""Threshold of the verdict column when no ``--fail-on-regression`` is given."""


class CompareInputError(HarnessError):
    """A path given to ``bench compare`` or ``bench history`` is not a readable run directory."""

    exit_code = EXIT_USAGE


def load_runs(paths: Sequence[Path]) -> list[RunData]:
    """Read each run directory; any unreadable one raises :class:`CompareInputError` naming it."""
    runs = []
    for path in paths:
        try:
            runs.append(load_run(Path(path)))
        except HarnessError as exc:
            raise CompareInputError(str(exc)) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CompareInputError(f"{path}: not a readable run directory ({type(exc).__name__}: {exc})") from None
    return runs


# ---------------------------------------------------------------------------------------------------- per figure
@dataclass(frozen=True)
class Change:
    """One engine's figure from A to B, with its verdict."""

    engine: str
    figure: Figure
    a: Estimate | None
    b: Estimate | None
    change_pct: float | None
    """(mean B − mean A) / |mean A| in percent."""
    worse_pct: float | None
    """How much worse B is, in percent (negative: better)."""
    detectable_pct: float | None
    """Smallest change the test would call significant, in percent of mean A; None when not testable."""
    test: Welch | None
    verdict: str
    """``regressed``, ``improved``, ``below threshold`` (significant, within PCT), ``within noise`` (not
    significant), ``cannot judge`` (fewer than 2 values on a side) or ``n/a`` (not measured in A, or mean 0)."""


def judge(engine: str, figure: Figure, values_a: Sequence[float], values_b: Sequence[float], pct: float) -> Change:
    """The rule of the module docstring for one figure of one engine."""
    a, b = estimate(values_a), estimate(values_b)
    if a is None or a.mean == 0:
        return Change(engine, figure, a, b, None, None, None, None, "n/a")
    if b is None:
        return Change(engine, figure, a, b, None, None, None, None, "cannot judge")
    change = (b.mean - a.mean) / abs(a.mean) * 100.0
    worse = change if figure.lower_is_better else -change
    test = welch(values_a, values_b)
    if test is None:
        return Change(engine, figure, a, b, change, worse, None, None, "cannot judge")
    detectable = test.detectable / abs(a.mean) * 100.0
    if not test.significant:
        verdict = "within noise"
    elif worse > pct:
        verdict = "regressed"
    elif worse < -pct:
        verdict = "improved"
    else:
        verdict = "below threshold"
    return Change(engine, figure, a, b, change, worse, detectable, test, verdict)


def usable_reps(reps: Sequence[LoadedRepetition]) -> list[LoadedRepetition]:
    """Repetitions that ran to the end and are valid: the only ones whose figures are compared."""
    return [r for r in ok_reps(list(reps)) if r.summary.valid]


# ---------------------------------------------------------------------------------------------------- comparability
def engine_settings(scenario: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per engine label (the name its results are stored under) of a stored scenario: its ``engine`` and
    ``settings`` with the engine's defaults filled in (:func:`resolved_settings`)."""
    from harness.scenario import EngineEntry

    entries = [EngineEntry.model_validate(e) for e in scenario.get("engines", [])]
    return {e.name: {"engine": e.engine, "settings": resolved_settings(e.engine, e.settings)} for e in entries}


def resolved_settings(engine: str, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` as the engine reads them, every default written out, so that a default given explicitly
    (``output_mode: append``) compares equal to one left out; as written when the engine cannot be loaded here
    or the settings do not validate (they are then compared as text)."""
    from harness.engines.registry import resolve_engine

    try:
        return resolve_engine(engine).Settings.model_validate(settings).model_dump(mode="json")
    except (LookupError, ValueError, TypeError):
        return dict(settings)


def _resolved(scenario: dict[str, Any]) -> dict[str, Any]:
    """The :data:`SCENARIO_KEYS` of a stored scenario, normalised through the scenario model where it parses
    (``5k`` and ``5000`` are the same rate); as stored otherwise."""
    from harness.scenario import parse_scenario

    try:
        model = parse_scenario(dict(scenario), check_engines=False)
    except (ScenarioError, ValueError, TypeError):
        return {key: scenario.get(key) for key in SCENARIO_KEYS}
    dumped = model.dump()
    return {key: (getattr(model, key), dumped.get(key)) for key in SCENARIO_KEYS}


def setting_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Why the scenarios of two runs are not like for like, one line per differing setting (``load.rate: 2k vs
    5k``); empty when comparable."""
    out = []
    ra, rb = _resolved(a), _resolved(b)
    for key in SCENARIO_KEYS:
        if ra[key] != rb[key]:
            shown_a, shown_b = (r[1] if isinstance(r, tuple) else r for r in (ra[key], rb[key]))
            out += [f"scenario {line}" for line in _leaf_differences(shown_a, shown_b, key)] or [
                f"scenario {key} differs"
            ]
    ea, eb = engine_settings(a), engine_settings(b)
    for label in ea:
        if label not in eb:
            out.append(f"engine {label} is not in the candidate's scenario")
        elif ea[label] != eb[label]:
            out += [f"engine {line}" for line in _leaf_differences(ea[label], eb[label], label)]
    return out


def _leaf_differences(a: Any, b: Any, path: str) -> list[str]:
    """``path.to.leaf: A vs B`` for every leaf where two JSON-like values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [line for key in dict.fromkeys([*a, *b]) for line in _leaf_differences(a.get(key), b.get(key),
                                                                                      f"{path}.{key}")]
    return [] if a == b else [f"{path}: {a} vs {b}"]


def environment_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Differences of two fingerprints in :data:`FINGERPRINT_KEYS`, one line each (per version key)."""
    out = []
    for key in FINGERPRINT_KEYS:
        va, vb = a.get(key), b.get(key)
        if key == "versions" and isinstance(va, dict) and isinstance(vb, dict):
            out += [
                f"version {name}: {va.get(name)} vs {vb.get(name)}"
                for name in sorted(set(va) | set(vb))
                if va.get(name) != vb.get(name)
            ]
        elif va != vb:
            out.append(f"environment {key}: {va} vs {vb}")
    return out


def candidate_problems(b: RunData, expected_engines: Sequence[str]) -> list[str]:
    """What makes the candidate run unfit to be judged: not complete, an expected engine without repetitions,
    a repetition failed, interrupted, invalid or missing. One line each."""
    status = (b.status or {}).get("status")
    out = [] if status == "complete" else [f"run status is {status or 'missing (unfinished run)'}, not complete"]
    expected = list(dict.fromkeys([*expected_engines, *engine_settings(b.scenario)]))
    wanted = int(b.scenario.get("repetitions") or 1)
    for engine in expected:
        reps = b.engines.get(engine, [])
        if not reps:
            out.append(f"{engine}: no repetitions in the candidate run")
            continue
        missing = sorted(set(range(1, wanted + 1)) - {r.summary.repetition for r in reps})
        if missing:
            out.append(f"{engine}: repetition(s) {', '.join(map(str, missing))} missing in the candidate run")
        for r in reps:
            s = r.summary
            if s.status != "ok":
                why = f": {s.error.splitlines()[0]}" if s.error else ""
                out.append(f"{engine} rep {s.repetition}: {s.status}{why}")
            elif not s.valid:
                out.append(f"{engine} rep {s.repetition}: invalid: {'; '.join(s.invalid_reasons) or 'no reason given'}")
    return out


# ---------------------------------------------------------------------------------------------------- the comparison
@dataclass
class Comparison:
    """Everything ``bench compare`` decided; :attr:`exit_code` is the gate's answer."""

    baselines: list[RunData]
    """Baseline runs pooled into A."""
    candidate: RunData
    pct: float
    gate: bool
    """True with ``--fail-on-regression``: the problems decide the exit code."""
    skipped: list[tuple[RunData, list[str]]] = field(default_factory=list)
    """Baseline runs left out (``skip_incomparable``), with why."""
    changes: list[Change] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)
    """Each fails the gate: a figure worse beyond PCT and significant, correct → incorrect, sustained → not."""
    problems: list[str] = field(default_factory=list)
    """Each fails the gate: the runs are not comparable, or the candidate is not fit to be judged."""
    notes: list[str] = field(default_factory=list)

    @property
    def unjudged(self) -> list[Change]:
        return [c for c in self.changes if c.verdict == "cannot judge"]

    no_baseline: list[str] = field(default_factory=list)
    """Engines of the baseline without one usable repetition: nothing to judge the candidate against."""

    @property
    def exit_code(self) -> int:
        if not self.gate:
            return EXIT_PASS
        if self.problems or self.regressions:
            return EXIT_FAIL
        if not self.baselines:
            return EXIT_NO_BASELINE
        return EXIT_CANNOT_JUDGE if self.unjudged or self.no_baseline else EXIT_PASS


def compare(
    baselines: Sequence[Path],
    candidate: Path,
    fail_on_regression_pct: float | None = None,
    *,
    allow_env_change: bool = False,
    skip_incomparable: bool = False,
) -> Comparison:
    """Compare the candidate run with the pooled baseline runs (see the module docstring). A baseline given twice
    is used once."""
    unique = list({Path(path).resolve(): Path(path) for path in baselines}.values())
    *base_runs, b = load_runs([*unique, candidate])
    gate = fail_on_regression_pct is not None
    pct = INFORMATIONAL_PCT if fail_on_regression_pct is None else fail_on_regression_pct
    result = Comparison([], b, pct, gate)
    for a in base_runs:
        reasons = setting_differences(a.scenario, b.scenario)
        env = environment_differences(a.fingerprint, b.fingerprint)
        if env and allow_env_change:
            result.notes += [f"{a.path.name}: {line} (allowed by --allow-env-change)" for line in env]
        else:
            reasons += env
        if reasons and skip_incomparable:
            result.skipped.append((a, reasons))
            continue
        result.problems += [f"{a.path.name} vs the candidate: {line}" for line in reasons]
        result.baselines.append(a)
    expected = list(dict.fromkeys(e for a in result.baselines for e in [*a.engines, *engine_settings(a.scenario)]))
    result.problems += [f"candidate: {line}" for line in candidate_problems(b, expected)]
    _judge_engines(result, expected)
    return result


def _judge_engines(result: Comparison, expected: Sequence[str]) -> None:
    """Fill in the figure changes, verdict regressions and notes of every engine in the baseline and B."""
    b = result.candidate
    for engine in [e for e in expected if e in b.engines]:
        reps_a = [r for a in result.baselines for r in a.engines.get(engine, [])]
        use_a, use_b = usable_reps(reps_a), usable_reps(b.engines[engine])
        if len(use_a) < len(reps_a):
            result.notes.append(f"{engine}: {len(reps_a) - len(use_a)} baseline repetition(s) failed or invalid, "
                                "left out of the baseline")
        if not use_a:
            result.no_baseline.append(engine)
        for key in COMPARED:
            figure = FIGURE_BY_KEY[key]
            change = judge(engine, figure, figure_values(use_a, figure), figure_values(use_b, figure), result.pct)
            result.changes.append(change)
            if change.verdict == "regressed":
                result.regressions.append(
                    f"{engine} {figure.label} worse by {change.worse_pct:.1f} % (> {result.pct:g} %), significant "
                    f"at 95 % (smallest detectable change {change.detectable_pct:.1f} %)"
                )
        result.regressions += _verdict_regressions(engine, use_a, use_b)
    extra = [e for e in b.engines if e not in expected]
    if extra:
        result.notes.append(f"only in the candidate, not compared: {', '.join(extra)}")


def _verdict_regressions(engine: str, use_a: list[LoadedRepetition], use_b: list[LoadedRepetition]) -> list[str]:
    """Correct → incorrect and sustained → not sustained, over the usable repetitions."""
    out = []
    if _all_correct(use_a) is True and _all_correct(use_b) is False:
        out.append(f"{engine}: correct in the baseline, incorrect in the candidate")
    if use_a and use_b and _all_sustained(use_a) and not _all_sustained(use_b):
        out.append(f"{engine}: sustained in the baseline, not sustained in the candidate")
    return out


def _all_correct(reps: list[LoadedRepetition]) -> bool | None:
    checked = [r.summary.correctness for r in reps if r.summary.correctness is not None]
    return all(c.correct for c in checked) if checked else None


def _all_sustained(reps: list[LoadedRepetition]) -> bool:
    return all(r.summary.sustained.sustained is not False for r in reps)
