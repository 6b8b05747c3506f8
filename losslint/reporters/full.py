"""The default human format: the finding, a code frame with the span marked, evidence, fix hint."""

from __future__ import annotations

from collections.abc import Sequence

from losslint.documents import source_key
from losslint.findings import Applicability, Finding
from losslint.reporters.concise import location
from losslint.reporters.records import confirmation_lines
from losslint.suppressions import physical_lines


def _frame(finding: Finding, source: str | None) -> list[str]:
    if not source:
        return []
    # The parser's lines: str.splitlines also splits at form feeds and other separators.
    lines = [line.rstrip("\r\n") for line in physical_lines(source)]
    start, end = finding.span.start, finding.span.end
    if not 1 <= start.line <= len(lines):
        return []
    text = lines[start.line - 1].expandtabs(1)
    width = len(str(start.line))
    last_column = end.column if end.line == start.line else len(text) + 1
    marker = " " * (start.column - 1) + "^" * max(1, last_column - start.column)
    gutter = " " * width
    return [f" {gutter} |", f" {start.line} | {text}", f" {gutter} | {marker}"]


def render_one(finding: Finding, source: str | None) -> str:
    out = [f"{location(finding)}: {finding.code} {finding.message}"]
    out += _frame(finding, source)
    for step in finding.evidence:
        out.append(f"   = evidence: {step}")
    if finding.hint:
        out.append(f"   = help: {finding.hint}")
    if finding.fix is not None:
        label = "safe fix" if finding.fix.applicability is Applicability.SAFE else "unsafe fix"
        out.append(f"   = {label}: {finding.fix.title}")
    out.extend(f"   = {line}" for line in confirmation_lines(finding.confirmation))
    return "\n".join(out) + "\n"


def render(findings: Sequence[Finding], sources: dict[str, str]) -> str:
    return "\n".join(render_one(f, sources.get(source_key(f.path, f.cell))) for f in findings)
