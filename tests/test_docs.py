"""The generated rule reference is checked in and current."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from losslint.docs import ENGINE_DIAGNOSTICS, REFERENCE_URL, render_reference, rule_url, with_rule_table
from losslint.registry import all_rules

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "rules.md"


def test_docs_rules_md_is_current():
    assert REFERENCE.read_text(encoding="utf-8") == render_reference(), (
        "docs/rules.md is stale: run `python -m losslint.docs -o docs/rules.md`")


def test_the_check_command_agrees():
    result = subprocess.run([sys.executable, "-m", "losslint.docs", "--check", str(REFERENCE)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _github_slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_url_points_at_a_heading_of_the_reference():
    slugs = {_github_slug(line.lstrip("#")) for line in REFERENCE.read_text().splitlines() if line.startswith("#")}
    for code in [rule.code for rule in all_rules()] + list(ENGINE_DIAGNOSTICS):
        url = rule_url(code)
        assert url is not None and url.startswith(REFERENCE_URL + "#")
        assert url.split("#", 1)[1] in slugs, code
    assert rule_url("LL9999") is None


def test_every_rule_is_documented_in_full():
    text = REFERENCE.read_text()
    for rule in all_rules():
        section = text.split(f"## {rule.code} {rule.name}\n", 1)[1].split("\n## ", 1)[0]
        for title in ("What it does", "Why is this bad?", "Example", "Use instead", "Fix safety", "References"):
            assert f"### {title}" in section, (rule.code, title)


def test_readme_rule_table_is_current():
    readme = (REFERENCE.parent.parent / "README.md").read_text(encoding="utf-8")
    assert readme == with_rule_table(readme), "README's rule table is stale: run `python -m losslint.docs --readme README.md`"
