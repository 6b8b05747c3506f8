"""What a check reports: findings, their locations and the fixes they carry.

Findings are plain data (no syntax-tree nodes) so that they cross process
boundaries and feed every reporter and integration unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Applicability(str, Enum):
    """How much a fix can be trusted (ruff's vocabulary)."""

    SAFE = "safe"  # same mathematical value, better numerics
    UNSAFE = "unsafe"  # changes the objective or the loss object
    NONE = "none"  # no automatic fix


@dataclass(frozen=True, order=True)
class Position:
    """1-based line and 1-based character column."""

    line: int
    column: int


@dataclass(frozen=True, order=True)
class Span:
    start: Position
    end: Position  # exclusive

    def contains(self, other: Span) -> bool:
        return self.start <= other.start and other.end <= self.end


@dataclass(frozen=True)
class Edit:
    """Replace the text in `span` by `content` (an empty span inserts)."""

    span: Span
    content: str
    # For notebooks: the 1-based cell number the span is relative to.
    cell: int | None = None


@dataclass(frozen=True)
class Fix:
    title: str
    applicability: Applicability
    edits: tuple[Edit, ...]


@dataclass(frozen=True)
class Finding:
    code: str
    name: str
    message: str
    severity: Severity
    path: str
    span: Span
    evidence: tuple[str, ...] = ()
    hint: str = ""
    fix: Fix | None = None
    # Spans of other code this finding explains (e.g. the log(sigmoid) terms of a
    # hand-written BCE): findings of superseded rules inside them are dropped.
    covers: tuple[Span, ...] = ()
    # Set by the runtime companion (`--confirm`).
    confirmation: Any = None
    # Set for notebooks: the 1-based cell number the span is relative to.
    cell: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def line(self) -> int:
        return self.span.start.line

    @property
    def column(self) -> int:
        return self.span.start.column

    def with_(self, **changes: Any) -> Finding:
        return replace(self, **changes)
