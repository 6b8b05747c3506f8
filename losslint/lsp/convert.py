"""Findings and fixes as LSP diagnostics and edits (positions converted for the negotiated encoding)."""

from __future__ import annotations

from lsprotocol import types

from losslint.findings import Finding, Position, Severity, Span
from losslint.lsp.positions import split_lines, to_lsp

SOURCE = "losslint"

_SEVERITIES = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.INFO: types.DiagnosticSeverity.Information,
}


class Lines:
    """A document's lines and the position encoding its client counts in."""

    def __init__(self, text: str, encoding: str) -> None:
        self.lines = split_lines(text)
        self.encoding = encoding

    def range(self, span: Span) -> types.Range:
        start = to_lsp(self.lines, span.start, self.encoding)
        end = to_lsp(self.lines, span.end, self.encoding)
        return types.Range(types.Position(*start), types.Position(*end))


def diagnostic(finding: Finding, lines: Lines, href: str | None) -> types.Diagnostic:
    message = finding.message + (f"\nhelp: {finding.hint}" if finding.hint else "")
    return types.Diagnostic(
        range=lines.range(finding.span),
        message=message,
        severity=_SEVERITIES[finding.severity],
        code=finding.code,
        code_description=types.CodeDescription(href=href) if href else None,
        source=SOURCE,
    )


def replacement(old: str, new: str, lines: Lines) -> types.TextEdit:
    """One edit turning `old` into `new`, covering only the region that changed (so an
    editor keeps the cursor, selections and folds elsewhere)."""
    limit = min(len(old), len(new))
    prefix = 0
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    # A position between the "\r" and "\n" of a line break does not exist: widen the edit.
    if prefix and old[prefix - 1:prefix + 1] == "\r\n":
        prefix -= 1
    if suffix and old[len(old) - suffix - 1:len(old) - suffix + 1] == "\r\n":
        suffix -= 1
    start, end = _position_at(old, prefix), _position_at(old, len(old) - suffix)
    return types.TextEdit(range=lines.range(Span(start, end)), new_text=new[prefix:len(new) - suffix])


def _position_at(text: str, offset: int) -> Position:
    """The finding position (1-based line and character) of a string offset."""
    before = split_lines(text[:offset])
    return Position(len(before), len(before[-1]) + 1)
