"""The README's two commands: .ci/run runs the test command exactly, and only `./setup.sh --tests` builds the tools
that only tests use (actionlint), so the main command installs only what a benchmark needs."""

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
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert readme_commands()[1] in lines


def test_actionlint_is_built_only_with_tests() -> None:
    """The go install line sits inside the block guarded by the --tests flag."""
    script = (ROOT / "setup.sh").read_text()
    guarded = re.search(r"if \[\[ \$tests == 1 .*?\nfi\n", script, re.S)
    assert guarded and "go install" in guarded.group(0)
    assert script.count("go install") == 1


def test_an_unknown_argument_is_refused_before_any_work() -> None:
    done = subprocess.run(["bash", str(ROOT / "setup.sh"), "--test"], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "unknown argument '--test' (usage: ./setup.sh [--tests])" in done.stderr
