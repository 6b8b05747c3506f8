"""What a check reads and a fix writes: a Python file or a notebook, as one `Document`.

A document lints itself (through the engine, suppressions included), takes edits
(refusing any that would leave it unparsable), adds `# noqa` comments and turns
back into the exact bytes to write. Python files keep their encoding, BOM and line
ends; notebooks keep their JSON layout, and their findings are located by cell.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property, partial
from pathlib import Path
from typing import Protocol

import libcst as cst

from losslint.config import FileSettings
from losslint.engine import check_text, syntax_error
from losslint.files import package_of
from losslint.findings import Edit, Finding, Fix, Position, Span
from losslint.fixes import OverlappingEditsError, apply_edits
from losslint.notebooks import Cell, Notebook, NotebookError, PythonCode, python_code
from losslint.selection import SYNTAX_ERROR
from losslint.source import SourceText, decode
from losslint.suppressions import noqa_edits, physical_lines

NOTEBOOK_SUFFIX = ".ipynb"
# How messages and evidence refer to source lines (`softmax, line 12`, `built line 5`).
_LINE_REFERENCE = re.compile(r"\bline (\d+)\b")


class DocumentError(ValueError):
    """A file that cannot be read as Python or as a notebook (the message says why)."""


class FixRejected(ValueError):
    """Edits that overlap, or whose result would not parse or not encode."""


class Document(Protocol):
    path: str

    def lint(self, settings: FileSettings) -> list[Finding]: ...

    def with_edits(self, edits: Sequence[Edit]) -> Document: ...

    def noqa_edits(self, findings: Sequence[Finding]) -> tuple[list[Edit], list[Finding]]: ...

    def encode(self) -> bytes: ...

    def sources(self) -> dict[str, str]: ...

    def diff(self, original: Document) -> str: ...


def source_key(path: str, cell: int | None) -> str:
    """The key of a finding's text in `Document.sources()` (its cell's, for notebooks)."""
    return path if cell is None else f"{path}:cell {cell}"


def load(path: str | Path) -> Document:
    """Read a file from disk; raises DocumentError when it cannot be read or decoded."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise DocumentError(f"cannot read: {error.strerror or error}") from None
    return from_bytes(data, str(path), package_of(Path(path)))


def from_bytes(data: bytes, path: str, package: str | None = None) -> Document:
    if path.endswith(NOTEBOOK_SUFFIX):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise DocumentError(f"cannot decode notebook: {error}") from None
        return from_text(text, path, package)
    try:
        source = decode(data)
    except (SyntaxError, UnicodeDecodeError, LookupError) as error:
        raise DocumentError(f"cannot decode: {error}") from None
    return PythonDocument(path, source, package)


def from_text(text: str, path: str, package: str | None = None) -> Document:
    """A document from text already in memory (an editor buffer, stdin)."""
    if path.endswith(NOTEBOOK_SUFFIX):
        try:
            return NotebookDocument(path, Notebook.loads(text), package)
        except NotebookError as error:
            raise DocumentError(str(error)) from None
    return PythonDocument(path, SourceText(text, "utf-8", False), package)


# -- Python files ---------------------------------------------------------------------


@dataclass(frozen=True)
class PythonDocument:
    path: str
    source: SourceText
    package: str | None = None

    @property
    def text(self) -> str:
        return self.source.text

    def lint(self, settings: FileSettings) -> list[Finding]:
        return check_text(self.text, self.path, settings.rules, self.package, options=settings.options)

    def with_edits(self, edits: Sequence[Edit]) -> PythonDocument:
        newline = _newline_of(self.text)
        edits = [replace(edit, content=_with_newline(edit.content, newline)) for edit in edits]
        try:
            text = apply_edits(self.text, edits)
        except OverlappingEditsError as error:
            raise FixRejected(str(error)) from None
        _require_parsable(self.text, text)
        try:
            self.source.encode(text)
        except UnicodeEncodeError as error:
            raise FixRejected(f"the fixed text cannot be encoded as {self.source.encoding}: {error}") from None
        return replace(self, source=replace(self.source, text=text))

    def noqa_edits(self, findings: Sequence[Finding]) -> tuple[list[Edit], list[Finding]]:
        return noqa_edits(self.text, findings)

    def encode(self) -> bytes:
        return self.source.encode(self.text)

    def sources(self) -> dict[str, str]:
        return {self.path: self.text}

    def diff(self, original: Document) -> str:
        assert isinstance(original, PythonDocument)
        return _unified(original.text, self.text, self.path)


def _newline_of(text: str) -> str:
    first = physical_lines(text[:4096])
    for line in first:
        for ending in ("\r\n", "\n", "\r"):
            if line.endswith(ending):
                return ending
    return "\n"


def _with_newline(content: str, newline: str) -> str:
    """Inserted text with the file's own line ends (a fix must not mix LF into a CRLF file)."""
    if newline == "\n" or not content:
        return content
    return content.replace("\r\n", "\n").replace("\n", newline)


def _require_parsable(before: str, after: str) -> None:
    try:
        cst.parse_module(after)
    except cst.ParserSyntaxError as error:
        raise FixRejected(f"the fixed text would not parse: {error.message}") from None
    # Python's own parser is stricter in places (e.g. `f() = x`); hold the fix to it when the
    # original passed it (a file using syntax newer than this interpreter cannot be checked so).
    if _python_parses(before) and not _python_parses(after):
        raise FixRejected("the fixed text would not compile")


def _python_parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _unified(before: str, after: str, name: str, label: str = "") -> str:
    if before == after:
        return ""
    lines = difflib.unified_diff(
        physical_lines(before), physical_lines(after), f"a/{name}{label}", f"b/{name}{label}")
    return "".join(line if line.endswith(("\n", "\r")) else line + "\n\\ No newline at end of file\n"
                   for line in lines)


# -- notebooks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Segment:
    """A code cell's place in the joined source."""

    cell: int
    first_line: int  # 1-based line of the joined source
    line_count: int
    code: PythonCode


@dataclass(frozen=True)
class _Joined:
    text: str
    segments: tuple[_Segment, ...]

    def locate(self, span: Span) -> tuple[int, Span] | None:
        """The cell a span of the joined text lies in and the span within it; None if it crosses cells."""
        segment = self._segment_of(span)
        if segment is None:
            return None
        shift = segment.first_line - 1
        start = Position(span.start.line - shift, span.start.column)
        end = Position(span.end.line - shift, span.end.column)
        if end.line > segment.line_count + 1 or (end.line == segment.line_count + 1 and end.column > 1):
            return None
        return segment.cell, Span(start, end)

    def relabel(self, text: str, cell: int) -> str:
        """Rewrite the joined source's `line N` in a message as the line in its cell."""
        def label(match: re.Match[str]) -> str:
            located = self.locate(Span(Position(int(match.group(1)), 1), Position(int(match.group(1)), 1)))
            if located is None:
                return match.group(0)
            where, span = located
            return f"line {span.start.line}" if where == cell else f"line {span.start.line} of cell {where}"
        return _LINE_REFERENCE.sub(label, text)

    def _segment_of(self, span: Span) -> _Segment | None:
        line = span.start.line
        empty_at_line_start = span.start == span.end and span.start.column == 1
        chosen = None
        for index, segment in enumerate(self.segments):
            if segment.first_line <= line < segment.first_line + max(segment.line_count, 1):
                chosen = segment
                # An insertion at a cell's first line goes at the end of the cell before it
                # (an import added after the imports of cell 1 stays in cell 1).
                if empty_at_line_start and line == segment.first_line and index > 0:
                    chosen = self.segments[index - 1]
                break
        if chosen is None and self.segments and line >= self.segments[-1].first_line:
            chosen = self.segments[-1]
        return chosen


@dataclass(frozen=True)
class NotebookDocument:
    """A notebook's code cells, linted together as the kernel runs them, reported per cell."""

    path: str
    notebook: Notebook
    package: str | None = None

    @cached_property
    def _codes(self) -> dict[int, PythonCode]:
        if not self.notebook.python:
            return {}
        codes = {}
        for cell in self.notebook.code_cells:
            code = python_code(cell)
            if code is not None:
                codes[cell.number] = code
        return codes

    def _join(self, blank: frozenset[int] = frozenset()) -> _Joined:
        parts, segments, line = [], [], 1
        for number, code in self._codes.items():
            text = _terminated(code.text)
            lines = physical_lines(text)
            if number in blank:  # a cell that does not parse: keep its lines, drop its code
                text = "\n" * len(lines)
            parts.append(text)
            segments.append(_Segment(number, line, len(lines), code))
            line += len(lines)
        return _Joined("".join(parts), tuple(segments))

    def lint(self, settings: FileSettings) -> list[Finding]:
        if not self._codes:
            return []
        joined = self._join()
        findings = check_text(joined.text, self.path, settings.rules, self.package, options=settings.options)
        errors: list[Finding] = []
        if any(finding.code == SYNTAX_ERROR for finding in findings):
            broken = {number: error for number, code in self._codes.items()
                      if (error := _syntax_error(self.path, code.text)) is not None}
            errors = [error.with_(cell=number) for number, error in broken.items()]
            joined = self._join(frozenset(broken))
            findings = check_text(joined.text, self.path, settings.rules, self.package, options=settings.options)
        located = [self._locate(joined, finding) for finding in findings]
        return errors + sorted((f for f in located if f is not None), key=lambda f: (f.cell or 0, f.span.start))

    def _locate(self, joined: _Joined, finding: Finding) -> Finding | None:
        where = joined.locate(finding.span) or joined.locate(Span(finding.span.start, finding.span.start))
        if where is None:
            return None
        cell, span = where
        # Messages name lines of the joined source (`softmax, line 12`); readers see cells.
        relabel = partial(joined.relabel, cell=cell)
        covers = tuple(located[1] for area in finding.covers
                       if (located := joined.locate(area)) is not None and located[0] == cell)
        return finding.with_(span=span, cell=cell, covers=covers, fix=self._locate_fix(joined, finding.fix),
                             message=relabel(finding.message), hint=relabel(finding.hint),
                             evidence=tuple(relabel(step) for step in finding.evidence))

    def _locate_fix(self, joined: _Joined, fix: Fix | None) -> Fix | None:
        if fix is None:
            return None
        edits = []
        for edit in fix.edits:
            where = joined.locate(edit.span)
            if where is None:
                return None
            cell, span = where
            if any(line in self._codes[cell].masked for line in _replaced_lines(span)):
                return None  # an IPython line: not ours to rewrite
            edits.append(Edit(span, edit.content, cell))
        return replace(fix, edits=tuple(edits))

    def with_edits(self, edits: Sequence[Edit]) -> NotebookDocument:
        by_cell: dict[int, list[Edit]] = {}
        for edit in edits:
            if edit.cell is None or edit.cell not in self._codes:
                raise FixRejected("a notebook edit must name one of the notebook's code cells")
            by_cell.setdefault(edit.cell, []).append(edit)
        sources = {}
        for number, cell_edits in by_cell.items():
            source = self.notebook.cells[number - 1].source
            terminated = _terminated(source)
            try:
                text = apply_edits(terminated, cell_edits)
            except OverlappingEditsError as error:
                raise FixRejected(str(error)) from None
            if terminated != source and text.endswith("\n"):
                text = text[:-1]  # Jupyter stores a cell's last line without its line end
            code = python_code(Cell(number, "code", text))
            if code is None or _syntax_error(self.path, code.text) is not None:
                raise FixRejected(f"cell {number} would not parse after the fix")
            sources[number] = text
        return replace(self, notebook=self.notebook.with_sources(sources))

    def noqa_edits(self, findings: Sequence[Finding]) -> tuple[list[Edit], list[Finding]]:
        edits: list[Edit] = []
        skipped: list[Finding] = []
        for number, code in self._codes.items():
            in_cell = [finding for finding in findings if finding.cell == number]
            if in_cell:
                cell_edits, cell_skipped = noqa_edits(code.text, in_cell)
                edits.extend(replace(edit, cell=number) for edit in cell_edits)
                skipped.extend(cell_skipped)
        skipped.extend(f for f in findings if f.cell not in self._codes)
        return edits, skipped

    def encode(self) -> bytes:
        return self.notebook.dumps().encode("utf-8")

    def sources(self) -> dict[str, str]:
        return {source_key(self.path, cell.number): cell.source for cell in self.notebook.cells}

    def diff(self, original: Document) -> str:
        assert isinstance(original, NotebookDocument)
        return "".join(
            _unified(_terminated(before.source), _terminated(after.source), self.path, f":cell {after.number}")
            for before, after in zip(original.notebook.cells, self.notebook.cells)
        )


def _terminated(source: str) -> str:
    """A cell's source with a final line end (Jupyter stores the last line without one)."""
    return source if source.endswith(("\n", "\r")) or not source else source + "\n"


def _replaced_lines(span: Span) -> range:
    """The lines whose text an edit of `span` changes (an insertion at a line's start changes none)."""
    if span.start == span.end:
        return range(span.start.line, span.start.line + (span.start.column > 1))
    last = span.end.line if span.end.column > 1 else span.end.line - 1
    return range(span.start.line, last + 1)


def _syntax_error(path: str, code: str) -> Finding | None:
    try:
        cst.parse_module(code)
    except cst.ParserSyntaxError as error:
        return syntax_error(path, code, error)
    return None
