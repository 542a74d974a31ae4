"""How reports, plots and histories are written: never through a symlink, never outside the directory they belong
to, and a file the user named (``--to``, ``--plot``) replaced only when asked.

Run directories are inputs too (a CI artifact downloaded from elsewhere): a ``report.md`` or ``latency-cdf.png``
in one may be a symlink planted to make ``bench report`` overwrite a file outside it. Every derived file is
written to a temporary name beside it and renamed over the old one (``os.replace`` replaces a symlink itself,
never its target), after the checks below.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


class OutputRefused(HarnessError):
    """A derived file that must not be written there (exit 2, before anything is written)."""

    exit_code = 2


def check_target(path: Path, *, within: Path | None = None, replace: bool = True, option: str | None = None) -> Path:
    """Raise :class:`OutputRefused` unless ``path`` may be written: not a symlink (nor a directory), inside
    ``within`` when given, and, unless ``replace``, not there yet (``option`` names the command-line option
    that chose it, for the hint). Returns ``path``."""
    path = Path(path)
    if path.is_symlink():
        raise OutputRefused(f"{path} is a symbolic link: reports are never written through one (it may point "
                            "outside the run); remove the link and run again")
    if path.is_dir():
        raise OutputRefused(f"{path} is a directory, not a file to write")
    if within is not None and not path.parent.resolve().is_relative_to(Path(within).resolve()):
        raise OutputRefused(f"{path} is outside {within} (a symlinked directory?): its files are written only "
                            "inside it")
    if not replace and path.exists():
        how = f"pass --force to replace it, or another {option}" if option else "pass --force to replace it"
        raise OutputRefused(f"{path} exists: {how}")
    return path


def write_output(path: Path, data: str | bytes, *, within: Path | None = None) -> Path:
    """Write a derived file after :func:`check_target` (replacing an older one): temporary name, then rename."""
    path = check_target(path, within=within)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        with open(temporary, "xb") as handle:
            handle.write(payload)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def save_figure(fig: Any, path: Path, *, within: Path | None = None, **savefig: Any) -> Path:
    """A matplotlib figure as PNG into ``path`` through :func:`write_output`."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", **savefig)
    return write_output(path, buffer.getvalue(), within=within)
