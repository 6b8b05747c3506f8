"""The LL3 and LL5 rules on fixtures/targets_and_api.py: a training script with target, shape and
loss-API bugs next to their correct twins.

The fixture marks every expected finding with a trailing `# LL3xx` / `# LL5xx` comment; everything
else in it is a near miss that must stay silent.
"""

from __future__ import annotations

import libcst as cst
from fixture_marks import FIXTURES, marked, reported

from losslint.engine import check_text
from losslint.findings import Applicability
from losslint.fixes import apply_edits
from losslint.registry import all_rules

FIXTURE = FIXTURES / "targets_and_api.py"
RULES = [rule for rule in all_rules() if rule.code[:3] in ("LL3", "LL5")]


def _source() -> str:
    return FIXTURE.read_text(encoding="utf-8")


def _expected(source: str) -> set[tuple[int, str]]:
    return marked(source, "LL[35]")


def _found(source: str, rules) -> set[tuple[int, str]]:
    return reported(source, rules, str(FIXTURE))


def test_every_marked_line_is_reported_and_nothing_else():
    source = _source()
    expected = _expected(source)
    assert {code for _, code in expected} == {rule.code for rule in RULES}, "the fixture exercises every rule"
    assert _found(source, RULES) == expected


def test_the_fixture_is_silent_for_the_other_families():
    """The near misses of these families are not defects of another family either (one defect, one finding)."""
    others = [rule for rule in all_rules() if rule.code[:3] not in ("LL3", "LL5", "LL9")]
    assert _found(_source(), others) == set()


def test_every_fix_applies_and_removes_its_finding():
    source = _source()
    for finding in check_text(source, str(FIXTURE), RULES):
        if finding.fix is None:
            continue
        fixed = apply_edits(source, finding.fix.edits)
        cst.parse_module(fixed)
        assert (finding.line, finding.code) not in _found(fixed, RULES), finding


def test_safe_fixes_only_where_behaviour_is_kept():
    """Writing torch's own implicit dim and its own legacy mapping is safe; changing what a loss computes is not."""
    fixes = {(finding.code, finding.fix.applicability)
             for finding in check_text(_source(), str(FIXTURE), RULES) if finding.fix is not None}
    assert {code for code, applicability in fixes if applicability is Applicability.SAFE} == {"LL305", "LL503"}
    assert {code for code, applicability in fixes if applicability is Applicability.UNSAFE} == {
        "LL301", "LL303", "LL304", "LL501", "LL502", "LL504"}
