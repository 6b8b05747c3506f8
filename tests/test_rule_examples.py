"""Every rule's own flagged and must-stay-silent examples, run as tests (Fixit-style)."""

from __future__ import annotations

import libcst as cst
import pytest

from losslint.engine import check_text
from losslint.fixes import apply_edits
from losslint.registry import all_rules
from losslint.rule import DOC_SECTIONS

ALL = all_rules()
FLAGGED = [pytest.param(rule, i, id=f"{rule.code}-flagged-{i}") for rule in ALL for i in range(len(rule.flagged))]
SILENT = [pytest.param(rule, i, id=f"{rule.code}-silent-{i}") for rule in ALL for i in range(len(rule.silent))]


def _findings(rule, source):
    return [f for f in check_text(source, "example.py", [rule]) if f.code == rule.code]


def _text_of(source: str, finding) -> str:
    lines = source.splitlines(keepends=True)
    start, end = finding.span.start, finding.span.end
    offset = lambda p: sum(len(line) for line in lines[: p.line - 1]) + p.column - 1  # noqa: E731
    return source[offset(start):offset(end)]


@pytest.mark.parametrize(("rule", "index"), FLAGGED)
def test_flagged_example_is_reported(rule, index):
    example = rule.flagged[index]
    source = example.source
    findings = _findings(rule, source)
    assert len(findings) == example.count, f"expected {example.count} {rule.code} finding(s), got {findings}"
    finding = findings[0]
    assert rule.code in finding.code and finding.message
    if example.anchor is not None:
        assert _text_of(source, finding) == example.anchor
    if example.fixed is not None:
        assert finding.fix is not None, "the example declares a fix but the finding carries none"
        fixed = apply_edits(source, finding.fix.edits)
        assert fixed == example.fixed_source
        cst.parse_module(fixed)
        assert not _findings(rule, fixed), "the fix must make the finding go away"
    elif finding.fix is not None:
        fixed = apply_edits(source, finding.fix.edits)
        cst.parse_module(fixed)
        assert not _findings(rule, fixed)


@pytest.mark.parametrize(("rule", "index"), SILENT)
def test_silent_example_is_not_reported(rule, index):
    findings = _findings(rule, rule.silent[index].source)
    assert findings == []


@pytest.mark.parametrize("rule", ALL, ids=[rule.code for rule in ALL])
def test_rule_is_documented_and_has_examples(rule):
    sections = rule.sections()
    assert list(sections) == list(DOC_SECTIONS), f"{rule.code} docs sections: {list(sections)}"
    assert all(sections.values())
    assert len(rule.flagged) >= 2 and len(rule.silent) >= 2
    assert rule.code.startswith("LL") and len(rule.code) == 5 and rule.name == rule.name.lower()
    assert rule.tokens, "a rule must declare the tokens the prefilter looks for"
