"""Fixture files mark every expected finding with a trailing `# LLnnn` comment; these helpers read the
marks and compare them with what the rules report (everything unmarked is a near miss)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from losslint.engine import check_text
from losslint.rule import Rule

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def marked(source: str, family: str) -> set[tuple[int, str]]:
    """(line, code) of every `# <family>nn` mark, e.g. family "LL2" or "LL[35]"."""
    mark = re.compile(rf"#\s*({family}\d\d)\b")
    return {(number, match.group(1)) for number, line in enumerate(source.splitlines(), 1)
            for match in [mark.search(line)] if match}


def reported(source: str, rules: Sequence[type[Rule]], path: str = "example.py") -> set[tuple[int, str]]:
    return {(finding.line, finding.code) for finding in check_text(source, path, rules)}
