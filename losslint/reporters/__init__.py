"""Output formats. Each reporter turns findings (and the files' text, for code frames) into text."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from losslint.findings import Finding
from losslint.reporters import concise, full

Reporter = Callable[[Sequence[Finding], dict[str, str]], str]

REPORTERS: dict[str, Reporter] = {
    "full": full.render,
    "concise": concise.render,
}
