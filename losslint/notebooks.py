"""Jupyter notebooks (nbformat 4 JSON): their cells, the Python in them, and writing them back.

Cells are numbered from 1 over *all* cells, markdown and raw included, as Jupyter
shows them (and as ruff reports them). IPython syntax that Python cannot parse is
masked line for line (`%magic`, `!shell`, `x = !cmd`, `obj?`), so that line numbers
stay those of the cell; a cell whose `%%magic` runs another language is not Python.
Writing back changes only the `source` of changed cells and keeps the file's JSON
layout (indentation, escaping, key order, final newline).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from losslint.suppressions import physical_lines

# Cell magics whose body is Python (the rest run shell, HTML, SQL, ... and are skipped).
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})

# `files = !ls`, `t = %timeit -o f()`: assignment targets, then a magic or shell escape.
_ASSIGNED_MAGIC = re.compile(r"^[ \t]*[A-Za-z_][\w.]*(?:[ \t]*,[ \t]*[A-Za-z_][\w.]*)*[ \t]*=[ \t]*[%!]")


class NotebookError(ValueError):
    """A file that is not a notebook losslint can read."""


@dataclass(frozen=True)
class Cell:
    number: int  # 1-based, over all cells
    kind: str  # "code", "markdown" or "raw"
    source: str


@dataclass(frozen=True)
class PythonCode:
    """A code cell's Python: the source with IPython lines masked, and which lines were masked."""

    text: str
    masked: frozenset[int]


@dataclass(frozen=True)
class _Layout:
    indent: int | str | None
    ensure_ascii: bool
    separators: tuple[str, str]
    final_newline: bool
    crlf: bool


@dataclass(frozen=True)
class Notebook:
    data: dict[str, Any]
    cells: tuple[Cell, ...]
    python: bool  # the kernel's language is Python (or not stated)
    layout: _Layout

    @classmethod
    def loads(cls, text: str) -> Notebook:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise NotebookError(f"not valid notebook JSON: {error}") from None
        if not isinstance(data, dict):
            raise NotebookError("not a notebook: the JSON is not an object")
        if "worksheets" in data or (isinstance(data.get("nbformat"), int) and data["nbformat"] < 4):
            raise NotebookError("nbformat 3 notebooks are not supported "
                                "(convert with `jupyter nbconvert --to notebook --nbformat 4`)")
        raw_cells = data.get("cells")
        if not isinstance(raw_cells, list) or not all(isinstance(cell, dict) for cell in raw_cells):
            raise NotebookError("not a notebook: no `cells` list")
        cells = tuple(
            Cell(number, str(cell.get("cell_type", "")), _joined(cell.get("source", "")))
            for number, cell in enumerate(raw_cells, start=1)
        )
        return cls(data, cells, _is_python(data), _layout_of(text))

    @property
    def code_cells(self) -> tuple[Cell, ...]:
        return tuple(cell for cell in self.cells if cell.kind == "code")

    def with_sources(self, sources: Mapping[int, str]) -> Notebook:
        """The notebook with new source text for some cells (by number); the rest untouched."""
        raw_cells = list(self.data["cells"])
        for number, source in sources.items():
            cell = dict(raw_cells[number - 1])
            lines = source.splitlines(keepends=True)
            cell["source"] = source if isinstance(cell.get("source"), str) else lines
            raw_cells[number - 1] = cell
        data = {**self.data, "cells": raw_cells}
        cells = tuple(Cell(c.number, c.kind, sources.get(c.number, c.source)) for c in self.cells)
        return Notebook(data, cells, self.python, self.layout)

    def dumps(self) -> str:
        layout = self.layout
        text = json.dumps(self.data, indent=layout.indent, ensure_ascii=layout.ensure_ascii,
                          separators=layout.separators)
        if layout.final_newline:
            text += "\n"
        return text.replace("\n", "\r\n") if layout.crlf else text


def python_code(cell: Cell) -> PythonCode | None:
    """The Python of a code cell, IPython lines masked; None when the cell is not Python."""
    lines = physical_lines(cell.source)
    first = lines[0].strip() if lines else ""
    if first.startswith("%%"):
        name = first[2:].split(maxsplit=1)[0] if first[2:].strip() else ""
        if name not in PYTHON_CELL_MAGICS:
            return None
    out, masked = [], set()
    depth, quote, continued, in_magic = 0, None, False, False
    for number, line in enumerate(lines, start=1):
        body = line.rstrip("\r\n")
        ending = line[len(body):]
        starts_statement = depth == 0 and quote is None and not continued
        if in_magic or (starts_statement and (number == 1 and first.startswith("%%") or _is_ipython(body))):
            indent = body[: len(body) - len(body.lstrip())]
            # Masked continuation lines stay blank: only the magic's own line becomes a statement.
            out.append((indent + "pass" if not in_magic else "") + ending)
            masked.add(number)
            in_magic = body.endswith("\\")
            continue
        out.append(line)
        depth, quote, continued, _ = _scan(body, depth, quote)
    return PythonCode("".join(out), frozenset(masked))


def _is_ipython(line: str) -> bool:
    stripped = line.strip()
    if not stripped:
        return False
    if stripped[0] in "%!?" or _ASSIGNED_MAGIC.match(line):
        return True
    code_end = _scan(line, 0, None)[3]
    return line[:code_end].rstrip().endswith("?")  # `obj?` / `obj??` help


def _scan(line: str, depth: int, quote: str | None) -> tuple[int, str | None, bool, int]:
    """After `line`: bracket depth, open triple-quoted string, whether it ends in a backslash,
    and where its comment starts (its length when it has none)."""
    index = 0
    while index < len(line):
        char = line[index]
        if quote:
            if line.startswith(quote, index):
                index += len(quote)
                quote = None
                continue
            index += 2 if char == "\\" else 1
            continue
        if char == "#":
            return depth, None, False, index
        if char in "\"'":
            quote = line[index:index + 3] if line[index:index + 3] in ('"""', "'''") else char
            index += len(quote)
            continue
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(0, depth - 1)
        index += 1
    continued = line.endswith("\\")
    if quote in ('"', "'") and not continued:
        quote = None  # an unterminated one-line string: a syntax error the parser will report
    return depth, quote, continued, len(line)


def _joined(source: Any) -> str:
    if isinstance(source, list):
        return "".join(str(part) for part in source)
    return source if isinstance(source, str) else ""


def _is_python(data: dict[str, Any]) -> bool:
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    for key, field in (("kernelspec", "language"), ("language_info", "name")):
        section = metadata.get(key)
        if isinstance(section, dict) and isinstance(section.get(field), str):
            return section[field].lower() in ("python", "python3", "ipython", "ipython3")
    return True


def _layout_of(text: str) -> _Layout:
    indent_match = re.match(r"\{\r?\n([ \t]+)\S", text)
    indent: int | str | None = None
    if indent_match:
        whitespace = indent_match.group(1)
        indent = len(whitespace) if set(whitespace) == {" "} else whitespace
    item = "," if indent is not None else (", " if ", " in text else ",")
    key = ": " if re.search(r'"\s*:\s', text) else ":"
    return _Layout(
        indent=indent,
        ensure_ascii=text.isascii(),
        separators=(item, key),
        final_newline=text.endswith("\n"),
        crlf="\r\n" in text,
    )
