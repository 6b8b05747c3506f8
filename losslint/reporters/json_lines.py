"""`--output-format json-lines`: one JSON object per line, per finding (schema in `records`)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from losslint.findings import Finding
from losslint.reporters.records import finding_record


def render(findings: Sequence[Finding], sources: dict[str, str]) -> str:
    return "".join(json.dumps(finding_record(f), ensure_ascii=False) + "\n" for f in findings)
