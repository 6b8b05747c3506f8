"""Output formats. Each reporter turns findings (and the files' text, for code frames) into text."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from losslint.findings import Finding
from losslint.reporters import concise, full, github, json_format, json_lines, junit, sarif

# findings, and the text of their files (by `documents.source_key`) for code frames → the report.
Reporter = Callable[[Sequence[Finding], dict[str, str]], str]

REPORTERS: dict[str, Reporter] = {
    "full": full.render,
    "concise": concise.render,
    "json": json_format.render,
    "json-lines": json_lines.render,
    "github": github.render,
    "sarif": sarif.render,
    "junit": junit.render,
}
