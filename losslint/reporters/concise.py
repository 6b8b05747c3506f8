"""`path:line:col: CODE message`, one line per finding (ruff's and flake8's shape)."""

from __future__ import annotations

from collections.abc import Sequence

from losslint.findings import Finding


def location(finding: Finding) -> str:
    cell = f"cell {finding.cell}:" if finding.cell is not None else ""
    return f"{finding.path}:{cell}{finding.line}:{finding.column}"


def render(findings: Sequence[Finding], sources: dict[str, str]) -> str:
    return "".join(f"{location(f)}: {f.code} {f.message}\n" for f in findings)
