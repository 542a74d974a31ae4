"""One run of every known-truth engine whose verdicts share a load, for the whole test session (the fixture is in
tests/conftest.py): the calibration engine and the test engines of tests/engines.py with one knob each, one after
another on the session's shared broker, through :func:`harness.run.runner.run_scenario` as ``bench run`` does.

16 s of load (4 s warm-up) at 2k events/s over 200 users, 2 s tumbling windows, D = 1 s, 4 partitions: five
measured windows, eight in all. test_python_count and test_verdicts read their engine's result from it; the
wrong engine runs last, so the run's end tells how long its drain took."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.engines.jobs.python_count_output import MALFORMED_KINDS
from harness.run.progress import ProgressDisplay
from harness.run.runner import run_scenario
from harness.scenario import parse_scenario

D_MS = 1_000
PARTITIONS = 4
RATE = 2_000
KNOWN_TRUTH = "tests.engines:KnownTruthEngine"
DELAY_MS = 3_000
CAPACITY = 1_500
COMMIT_DELAY_MS = 2_000
WRONG_EVERY = 7

ENGINES: list[dict[str, Any] | str] = [
    "calibration",
    {"engine": KNOWN_TRUTH, "label": "delayed", "settings": {"delay_ms": DELAY_MS}},
    {"engine": KNOWN_TRUTH, "label": "capped", "settings": {"capacity": CAPACITY}},
    {"engine": KNOWN_TRUTH, "label": "txn", "settings": {"transactional": True, "commit_delay_ms": COMMIT_DELAY_MS}},
    {"engine": KNOWN_TRUTH, "label": "garbage", "settings": {"malformed": list(MALFORMED_KINDS)}},
    {"engine": KNOWN_TRUTH, "label": "liar", "settings": {"wrong_every": WRONG_EVERY}},  # last: see above
]


def scenario(bootstrap: str, engines: list[dict[str, Any] | str], *, drain_timeout: str = "5m",
             **extra: Any) -> Any:
    return parse_scenario({
        **extra,
        "name": "known-truth",
        "duration": "16s",
        "warmup": "4s",
        "seed": 7,
        "drain_timeout": drain_timeout,
        "load": {"rate": RATE, "users": 200, "disorder": {"fraction": 0.1, "max_delay": "500ms"},
                 "payload_size": 100},
        "window": {"size": "2s", "watermark_delay": f"{D_MS}ms"},
        "kafka": {"mode": "external", "bootstrap": bootstrap, "partitions": PARTITIONS},
        "engines": engines,
    }, source="known_truth_run")


@dataclass(frozen=True)
class KnownTruthRun:
    run_dir: Path

    def rep_dir(self, label: str) -> Path:
        return self.run_dir / label / "rep-1"

    def summary(self, label: str) -> dict[str, Any]:
        summary = json.loads((self.rep_dir(label) / "summary.json").read_text())
        assert summary["status"] == "ok", summary["error"]
        return summary


def run_known_truth(bootstrap: str, out: Path, engines: list[dict[str, Any] | str] | None = None,
                    **options: Any) -> KnownTruthRun:
    """Run ``engines`` (default :data:`ENGINES`) on the shared load; assert the run completed."""
    chosen = scenario(bootstrap, ENGINES if engines is None else engines, **options)
    outcome = run_scenario(chosen, out, display=ProgressDisplay(live=False))
    assert outcome.status == "complete", outcome.failures
    return KnownTruthRun(outcome.run_dir)
