"""`--output-format github`: GitHub Actions workflow commands that annotate a pull request.

    ::error file=train.py,line=5,col=28,endLine=5,endColumn=47,title=LL101::message

Severity error → `::error`, warning → `::warning`, info → `::notice`. A notebook finding is
annotated on the file (GitHub's lines would be the notebook's JSON lines) and its message
starts with the cell and the in-cell location.
"""

from __future__ import annotations

from collections.abc import Sequence

from losslint.findings import Finding, Severity
from losslint.reporters.records import confirmation_lines

COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def render_one(finding: Finding) -> str:
    start, end = finding.span.start, finding.span.end
    properties = [f"file={_property(finding.path)}"]
    lines = [finding.message]
    if finding.cell is None:
        properties += [f"line={start.line}", f"col={start.column}", f"endLine={end.line}", f"endColumn={end.column}"]
    else:
        lines[0] = f"cell {finding.cell}, line {start.line}, column {start.column}: {finding.message}"
    properties.append(f"title={_property(finding.code)}")
    lines += [f"evidence: {step}" for step in finding.evidence]
    if finding.hint:
        lines.append(f"help: {finding.hint}")
    if finding.fix is not None:
        lines.append(f"{finding.fix.applicability.value} fix: {finding.fix.title}")
    lines += confirmation_lines(finding.confirmation)
    return f"::{COMMANDS[finding.severity]} {','.join(properties)}::{_data(chr(10).join(lines))}\n"


def render(findings: Sequence[Finding], sources: dict[str, str]) -> str:
    return "".join(render_one(f) for f in findings)
