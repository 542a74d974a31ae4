"""The "Adding an engine" example of docs/engines.md (linked from README), as printed, is a working plug-in: the
block is written to a package of its own, named in a scenario by ``module:Class`` and run through the real broker,
generator, collector and judge."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from harness.run.progress import ProgressDisplay
from harness.run.runner import run_scenario
from harness.scenario import parse_scenario

pytestmark = [pytest.mark.integration, pytest.mark.slow]

README = Path(__file__).resolve().parents[2] / "docs" / "engines.md"


def readme_engine_source() -> str:
    section = README.read_text().split("## Adding an engine", 1)[1]
    match = re.search(r"```python\n(# mypkg/engines\.py.*?)```", section, re.S)
    assert match, "README's Adding an engine section has no mypkg/engines.py block"
    return match.group(1)


def test_the_readme_engine_runs_end_to_end(kafka_broker: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "plugins" / "mypkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "engines.py").write_text(readme_engine_source())
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    scenario = parse_scenario({
        "name": "readme-engine", "duration": "10s", "warmup": "2s", "drain_timeout": "30s", "seed": 5,
        "load": {"rate": 500, "users": 20},
        "window": {"size": "2s", "watermark_delay": "500ms"},
        "kafka": {"mode": "external", "bootstrap": kafka_broker, "partitions": 2},
        "engines": [{"engine": "mypkg.engines:MyEngine", "label": "mine", "settings": {"mode": "safe"}}],
    }, source="README")
    outcome = run_scenario(scenario, tmp_path / "results", display=ProgressDisplay(live=False))
    assert outcome.status == "complete", outcome.failures
    summary = json.loads((outcome.run_dir / "mine" / "rep-1" / "summary.json").read_text())
    assert summary["status"] == "ok", summary["error"]
    assert summary["correctness"]["correct"] is True, summary["correctness"]["problems"]
    assert summary["correctness"]["exact"] == summary["correctness"]["expected"] > 0
    assert summary["fairness"]["output_mode"]["value"] == "append"
    sys.modules.pop("mypkg.engines", None)
    sys.modules.pop("mypkg", None)
