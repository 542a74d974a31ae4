""".github/workflows/nightly.yml: linted with the real actionlint (installed by .ci/run into .cache/bin), and
checked to do what the nightly gate promises: schedule + on demand, setup, the nightly scenario with repetitions,
the compare gate against the stored baseline, artifacts and a job summary even when the gate fails."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "nightly.yml"
ACTIONLINT_HINT = (
    "actionlint is missing: .ci/run installs it into .cache/bin "
    "(GOBIN=$PWD/.cache/bin go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12)"
)


def actionlint() -> str:
    """The actionlint binary; a missing one fails the test (a lint that skips itself lints nothing)."""
    local = ROOT / ".cache" / "bin" / "actionlint"
    found = str(local) if local.exists() else shutil.which("actionlint")
    assert found, ACTIONLINT_HINT
    return found


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([actionlint(), "-no-color", str(path)], capture_output=True, text=True, check=False,
                          cwd=ROOT, env={**os.environ, "NO_COLOR": "1"})


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    [job] = workflow["jobs"].values()
    return job["steps"]


def step(workflow: dict[Any, Any], name: str) -> dict[str, Any]:
    [found] = [s for s in steps(workflow) if s.get("name") == name]
    return found


def test_actionlint_passes() -> None:
    done = lint(WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The lint really runs: an undefined step output and a typo'd key are reported."""
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    text = WORKFLOW.read_text().replace("steps.run.outputs.dir", "steps.nosuchstep.outputs.dir", 1)
    broken.write_text(text.replace("timeout-minutes:", "timeout-minute:", 1))
    done = lint(broken)
    assert done.returncode == 1
    assert "nosuchstep" in done.stdout
    assert "timeout-minute" in done.stdout


def test_runs_nightly_and_on_demand(workflow: dict[Any, Any]) -> None:
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert triggers["schedule"][0]["cron"]
    assert "workflow_dispatch" in triggers


def test_sets_up_with_the_project_script(workflow: dict[Any, Any]) -> None:
    assert step(workflow, "Set up (venv, JVM artifacts)")["run"].strip() == "./setup.sh"


def test_runs_the_nightly_scenario_with_repetitions_past_warmup(workflow: dict[Any, Any]) -> None:
    assert ".venv/bin/bench run scenarios/nightly.yaml" in step(workflow, "Run scenarios/nightly.yaml")["run"]
    scenario = load_scenario(ROOT / "scenarios" / "nightly.yaml")
    assert scenario.repetitions >= 3, "compare judges only figures with a measured spread"
    assert scenario.warmup >= 10_000
    assert scenario.measured_ms >= 3 * scenario.window.size


def test_gates_on_the_stored_baseline(workflow: dict[Any, Any]) -> None:
    [job] = workflow["jobs"].values()
    assert job["env"]["BASELINE"] == "results/baseline"
    script = step(workflow, "Compare with the baseline")["run"]
    assert '.venv/bin/bench compare "$BASELINE" "$RUN_DIR" --fail-on-regression "$FAIL_ON_REGRESSION"' in script
    assert workflow["defaults"]["run"]["shell"] == "bash", "pipefail keeps compare's exit code through tee"


def test_uploads_results_and_writes_the_summary_even_after_a_regression(workflow: dict[Any, Any]) -> None:
    upload = step(workflow, "Upload results")
    assert upload["uses"].startswith("actions/upload-artifact@") and upload["if"] == "always()"
    assert upload["with"]["path"] == "results/nightly/"
    summary = step(workflow, "Job summary")
    assert summary["if"] == "always()"
    assert '>> "$GITHUB_STEP_SUMMARY"' in summary["run"] and "report.md" in summary["run"]

