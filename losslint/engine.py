"""Runs the selected rules over one source text and turns their reports into findings."""

from __future__ import annotations

import ast
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import libcst as cst

from losslint.context import Context
from losslint.findings import Applicability, Edit, Finding, Fix, Position, Severity, Span
from losslint.interpreter import analyse
from losslint.rule import Report, Rule
from losslint.selection import INTERNAL_ERROR, SYNTAX_ERROR
from losslint.suppressions import Directives


def needed_tokens(rules: Sequence[type[Rule]]) -> tuple[str, ...]:
    """The text tokens one of which a file must contain for any of `rules` to report."""
    return tuple(sorted({token for rule in rules for token in rule.tokens}))


def check_text(
    text: str, path: str, rules: Sequence[type[Rule]], package: str | None = None, *, prefilter: bool = True,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Finding]:
    """All findings of `rules` in one file's text, minus those its `# noqa` comments suppress
    (plus LL900 for unused suppressions, when selected).

    With `prefilter`, a text containing none of the rules' tokens is not even parsed.
    `options`: rule code → the rule's configured options.
    """
    directives = Directives.scan(text)
    rules = directives.exempt(rules)
    if not rules or (prefilter and not any(token in text for token in needed_tokens(rules))):
        return []
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as error:
        return [syntax_error(path, text, error)]
    try:
        analysis = analyse(module, package)
    except Exception as error:  # a bug of ours must not hide the rest of the run
        return [internal_error(path, "dataflow", error)]
    ctx = Context(path, module, analysis)
    findings: list[Finding] = []
    for rule_class in rules:
        rule = rule_class((options or {}).get(rule_class.code))
        try:
            findings.extend(_finding(ctx, rule, report) for report in rule.check(ctx))
        except Exception as error:
            findings.append(internal_error(path, rule.code, error))
    return directives.apply(_without_superseded(_unique(findings), rules), rules, path)


def _finding(ctx: Context, rule: Rule, report: Report) -> Finding:
    fix = None
    if report.fix is not None and report.fix.applicability is not Applicability.NONE:
        edits = tuple(Edit(ctx.span(node), text) for node, text in report.fix.replacements)
        fix = Fix(report.fix.title, report.fix.applicability, edits + report.fix.extra_edits)
    return Finding(
        code=rule.code,
        name=rule.name,
        message=report.message,
        severity=rule.severity,
        path=ctx.path,
        span=ctx.span(report.node),
        evidence=report.evidence,
        hint=report.hint,
        fix=fix,
        covers=tuple(ctx.span(node) for node in report.covers),
    )


def _unique(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, Span]] = set()
    unique = []
    for finding in findings:
        key = (finding.code, finding.span)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique


def _without_superseded(findings: list[Finding], rules: Sequence[type[Rule]]) -> list[Finding]:
    """One defect, one finding: drop findings that a more specific rule's finding explains."""
    supersedes = {rule.code: set(rule.supersedes) for rule in rules}
    kept = []
    for finding in findings:
        explained = any(
            finding.code in supersedes.get(other.code, ())
            and any(area.contains(finding.span) for area in (other.span, *other.covers))
            for other in findings
            if other is not finding
        )
        if not explained:
            kept.append(finding)
    return sorted(kept, key=lambda f: (f.span.start, f.code))


def syntax_error(path: str, text: str, error: cst.ParserSyntaxError) -> Finding:
    """LL000 at the place Python itself reports (libcst's positions and messages are vaguer)."""
    position, message = Position(error.raw_line, error.raw_column + 1), error.message
    try:
        ast.parse(text)
    except SyntaxError as python_error:
        if python_error.lineno:
            position = Position(python_error.lineno, max(python_error.offset or 1, 1))
            message = python_error.msg
    except (ValueError, RecursionError, MemoryError):
        pass
    return Finding(
        code=SYNTAX_ERROR, name="syntax-error", message=f"cannot parse: {message}",
        severity=Severity.ERROR, path=path, span=Span(position, position),
    )


def internal_error(path: str, where: str, error: BaseException) -> Finding:
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    location = f" at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}" if frame else ""
    position = Position(1, 1)
    return Finding(
        code=INTERNAL_ERROR, name="internal-error",
        message=f"internal error in {where}: {type(error).__name__}: {error}{location} (please report it)",
        severity=Severity.ERROR, path=path, span=Span(position, position),
    )
