"""Converting finding positions to LSP positions.

Findings count 1-based lines and 1-based characters (code points). LSP counts
0-based lines and 0-based columns in the code units of the negotiated position
encoding: UTF-16 unless the client offered UTF-8 or UTF-32 and the server took it.
Lines end at "\\n", "\\r\\n" or "\\r" in both (not at the other separators that
`str.splitlines` knows, such as form feeds).
"""

from __future__ import annotations

import re

from losslint.findings import Position

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """The document's lines without their line breaks (a final empty line after a trailing break)."""
    return _LINE_BREAK.split(text)


def _units(text: str, encoding: str) -> int:
    if encoding == UTF32:
        return len(text)
    if encoding == UTF8:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def to_lsp(lines: list[str], position: Position, encoding: str = UTF16) -> tuple[int, int]:
    """(line, character) for the LSP, clamped to the document."""
    if not lines:
        return 0, 0
    line = min(max(position.line - 1, 0), len(lines) - 1)
    if position.line - 1 >= len(lines):  # past the end: the end of the last line
        return line, _units(lines[line], encoding)
    characters = max(position.column - 1, 0)
    return line, _units(lines[line][:characters], encoding)

