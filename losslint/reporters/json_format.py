"""`--output-format json`: one JSON array of findings (schema in `records`; close to ruff's)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from losslint.findings import Finding
from losslint.reporters.records import finding_record


def render(findings: Sequence[Finding], sources: dict[str, str]) -> str:
    return json.dumps([finding_record(f) for f in findings], indent=2, ensure_ascii=False) + "\n"
