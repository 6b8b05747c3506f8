"""Applying fix edits to source text, byte-exact outside the edited spans."""

from __future__ import annotations

from collections.abc import Iterable

from losslint.findings import Edit, Position


class OverlappingEditsError(ValueError):
    pass


def _offsets(text: str) -> list[int]:
    """Start offset of every line (1-based line n starts at offsets[n - 1])."""
    starts = [0]
    for index, char in enumerate(text):
        if char == "\n":
            starts.append(index + 1)
        elif char == "\r" and (index + 1 == len(text) or text[index + 1] != "\n"):
            starts.append(index + 1)
    return starts


def offset_of(starts: list[int], text: str, position: Position) -> int:
    if position.line - 1 >= len(starts):
        return len(text)
    return min(starts[position.line - 1] + position.column - 1, len(text))


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """Apply non-overlapping edits; raises OverlappingEditsError if two edits overlap."""
    starts = _offsets(text)
    spans = sorted(
        ((offset_of(starts, text, e.span.start), offset_of(starts, text, e.span.end), e.content) for e in edits),
        key=lambda item: (item[0], item[1]),
    )
    for (_, end, _), (start, _, _) in zip(spans, spans[1:]):
        if start < end:
            raise OverlappingEditsError("fix edits overlap")
    for start, end, content in reversed(spans):
        text = text[:start] + content + text[end:]
    return text
