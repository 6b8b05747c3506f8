"""The LL2 rules on fixtures/numerics.py: realistic training code with hand-written unstable maths.

The fixture marks every expected finding with a trailing `# LL2xx` comment; everything else in it is a
near miss that must stay silent.
"""

from __future__ import annotations

import libcst as cst
from fixture_marks import FIXTURES, marked, reported

from losslint.engine import check_text
from losslint.findings import Applicability
from losslint.fixes import apply_edits
from losslint.registry import all_rules

FIXTURE = FIXTURES / "numerics.py"
LL2 = [rule for rule in all_rules() if rule.code.startswith("LL2")]


def _source() -> str:
    return FIXTURE.read_text(encoding="utf-8")


def _expected(source: str) -> set[tuple[int, str]]:
    return marked(source, "LL2")


def _found(source: str, rules) -> set[tuple[int, str]]:
    return reported(source, rules, str(FIXTURE))


def test_every_marked_line_is_reported_and_nothing_else():
    source = _source()
    expected = _expected(source)
    assert {code for _, code in expected} == {rule.code for rule in LL2}, "the fixture exercises every LL2 rule"
    assert _found(source, LL2) == expected


def test_one_defect_one_finding():
    """The logs inside a hand-written loss are reported by LL201 / LL203 alone, and not next to LL202 / LL204."""
    source = _source()
    lines = source.splitlines()
    by_itself = {(line, code) for line, code in _found(source, [r for r in LL2 if r.code in ("LL201", "LL203")])}
    superseded = by_itself - _expected(source)
    assert superseded, "the fixture has logs that a more specific rule explains"
    for line, code in superseded:
        text = lines[line - 1]
        assert "torch.log(" in text or ".log()" in text, (line, code, text)
    together = _found(source, LL2)
    assert not superseded & together


def test_every_fix_applies_together_and_removes_its_finding():
    source = _source()
    findings = check_text(source, str(FIXTURE), LL2)
    fixable = [f for f in findings if f.fix is not None]
    assert fixable and all(f.fix.applicability is Applicability.SAFE for f in fixable)
    fixed = apply_edits(source, [edit for f in fixable for edit in f.fix.edits])
    cst.parse_module(fixed)
    remaining = sorted(f.code for f in check_text(fixed, str(FIXTURE), LL2))
    assert remaining == sorted(f.code for f in findings if f.fix is None)
