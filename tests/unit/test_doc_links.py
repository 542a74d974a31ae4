"""README.md, REPORT.md and the pages of docs/ link only to files that exist in the repository (plots and run
directories of the reference runs are committed; a regenerated REPORT.md must not point at a run that is not)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


DOCS = ["README.md", "REPORT.md", "results/README.md", *sorted(p.relative_to(ROOT).as_posix()
                                                              for p in (ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_point_at_existing_files(doc: str) -> None:
    path = ROOT / doc
    targets = [t for t in LINK.findall(path.read_text(encoding="utf-8")) if "://" not in t and not t.startswith("mailto:")]
    missing = [t for t in targets if not (path.parent / t).exists()]
    assert not missing, f"{doc} links to missing files: {missing}"
    if doc == "REPORT.md":
        assert sum(t.endswith(".png") for t in targets) >= 8  # the plots of both reference runs
