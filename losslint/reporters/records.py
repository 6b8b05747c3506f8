"""Findings as plain JSON data: the one schema the json, json-lines and SARIF reporters share.

The schema (stable; fields are only ever added):

    {
      "code": "LL101", "name": "softmax-into-cross-entropy", "severity": "error",
      "message": "...", "filename": "train.py",
      "cell": null,                                 # notebooks: the 1-based cell number
      "location": {"row": 5, "column": 28},         # 1-based line, 1-based character column
      "end_location": {"row": 5, "column": 47},     # exclusive
      "noqa_row": 5,                                # the line a `# noqa` for it goes on
      "fix": {"applicability": "unsafe", "message": "...",
              "edits": [{"content": "x", "location": {...}, "end_location": {...}, "cell": null}]} | null,
      "url": "https://.../docs/rules.md#ll101-softmax-into-cross-entropy",
      "evidence": ["line 4: ...", ...], "hint": "...",
      "confirmation": {...} | null                  # `--confirm`: the runtime verdict
    }

In notebooks, rows and columns are within the cell.
"""

from __future__ import annotations

from typing import Any

from losslint.docs import rule_url
from losslint.findings import Edit, Finding, Fix, Position


def location(position: Position) -> dict[str, int]:
    return {"row": position.line, "column": position.column}


def edit_record(edit: Edit) -> dict[str, Any]:
    return {"content": edit.content, "location": location(edit.span.start),
            "end_location": location(edit.span.end), "cell": edit.cell}


def fix_record(fix: Fix | None) -> dict[str, Any] | None:
    if fix is None:
        return None
    return {"applicability": fix.applicability.value, "message": fix.title,
            "edits": [edit_record(edit) for edit in fix.edits]}


def finding_record(finding: Finding) -> dict[str, Any]:
    return {
        "code": finding.code,
        "name": finding.name,
        "severity": finding.severity.value,
        "message": finding.message,
        "filename": finding.path,
        "cell": finding.cell,
        "location": location(finding.span.start),
        "end_location": location(finding.span.end),
        "noqa_row": finding.line,
        "fix": fix_record(finding.fix),
        "url": rule_url(finding.code),
        "evidence": list(finding.evidence),
        "hint": finding.hint,
        "confirmation": confirmation_record(finding.confirmation),
    }


def confirmation_record(confirmation: Any) -> dict[str, Any] | None:
    """The runtime companion's verdict as data (its `to_dict()`)."""
    if confirmation is None:
        return None
    to_dict = getattr(confirmation, "to_dict", None)
    return to_dict() if callable(to_dict) else {"summary": str(confirmation)}


def confirmation_lines(confirmation: Any) -> list[str]:
    """The runtime companion's verdict as the text lines a human format shows."""
    if confirmation is None:
        return []
    describe = getattr(confirmation, "describe", None)
    return list(describe()) if callable(describe) else [f"runtime: {confirmation}"]
