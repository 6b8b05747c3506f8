"""What the server lints: an editor buffer, or a notebook's cells, as one of losslint's documents.

The document, its findings and its fixes are those of `losslint check` (the same
`Document`, configuration, suppressions and fixer), so every mode agrees. A target
is made of parts, one per LSP document URI: the file, or each synced code cell of a
notebook (cell number n is part n). Every code action is computed as a new document
and sent as the smallest replacement of each part that changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from lsprotocol import types

from losslint.config import FileSettings
from losslint.docs import rule_url
from losslint.documents import Document, FixRejected, NotebookDocument, PythonDocument
from losslint.files import package_of
from losslint.findings import Finding
from losslint.fixer import applicable, apply_fix, fix_document
from losslint.lsp import convert
from losslint.lsp.project import Project
from losslint.notebooks import Notebook
from losslint.source import SourceText


@dataclass(frozen=True)
class Part:
    uri: str
    text: str
    version: int | None = None


@dataclass(frozen=True)
class Target:
    uri: str
    path: str  # on disk, for the configuration and path-based ignores (made up for an unsaved buffer)
    version: int | None
    parts: tuple[Part, ...]
    notebook: bool = False

    @property
    def uris(self) -> tuple[str, ...]:
        return tuple(part.uri for part in self.parts)

    def document(self) -> Document:
        package = package_of(Path(self.path))
        if not self.notebook:
            return PythonDocument(self.path, SourceText(self.parts[0].text, "utf-8", False), package)
        cells = [{"cell_type": "code", "metadata": {}, "source": part.text, "outputs": [], "execution_count": None}
                 for part in self.parts]
        data = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        return NotebookDocument(self.path, Notebook.loads(json.dumps(data)), package)


def part_texts(document: Document) -> list[str]:
    """The text of each part of a document, in order."""
    if isinstance(document, NotebookDocument):
        return [cell.source for cell in document.notebook.cells]
    assert isinstance(document, PythonDocument)
    return [document.text]


class Linted:
    """One lint of a target: its findings as diagnostics of their parts, and their fixes as edits."""

    def __init__(self, target: Target, encoding: str, project: Project) -> None:
        self.target = target
        self.project = project
        self.document = target.document()
        self.settings: FileSettings | None = project.settings(target.path)  # None: the file is excluded
        self.findings: list[Finding] = self.document.lint(self.settings) if self.settings is not None else []
        self._lines = [convert.Lines(part.text, encoding) for part in target.parts]

    def _part(self, cell: int | None) -> int:
        return (cell or 1) - 1

    def diagnostic(self, finding: Finding) -> tuple[str, types.Diagnostic]:
        index = self._part(finding.cell)
        diagnostic = convert.diagnostic(finding, self._lines[index], rule_url(finding.code))
        return self.target.parts[index].uri, diagnostic

    def diagnostics(self) -> dict[str, list[types.Diagnostic]]:
        """Every part's diagnostics, an empty list for a part without any (which clears it)."""
        by_uri: dict[str, list[types.Diagnostic]] = {uri: [] for uri in self.target.uris}
        for finding in self.findings:
            uri, diagnostic = self.diagnostic(finding)
            by_uri[uri].append(diagnostic)
        return by_uri

    def at(self, uri: str, lsp_range: types.Range) -> Iterator[tuple[Finding, types.Diagnostic]]:
        """The findings whose diagnostic, in document `uri`, touches `lsp_range`."""
        for finding in self.findings:
            where, diagnostic = self.diagnostic(finding)
            if where == uri and _touches(diagnostic.range, lsp_range):
                yield finding, diagnostic

    def fix_edit(self, finding: Finding) -> types.WorkspaceEdit | None:
        """The finding's fix (safe or unsafe) as an edit; None when the configuration makes its
        code unfixable or the fixed code would not parse."""
        if self.settings is None or not applicable(finding, self.settings, unsafe=True):
            return None
        try:
            return self._edit(apply_fix(self.document, finding))
        except FixRejected:
            return None

    def noqa_edit(self, finding: Finding) -> types.WorkspaceEdit | None:
        """A `# noqa: CODE` comment for the finding's line, as `--add-noqa` writes it."""
        edits, _ = self.document.noqa_edits([finding])
        if not edits:
            return None
        try:
            return self._edit(self.document.with_edits(edits))
        except FixRejected:
            return None

    @cached_property
    def fix_all_edit(self) -> types.WorkspaceEdit | None:
        """Every safe fix the configuration allows, applied until none is left (as `--fix`).

        Computed once per document version: editors ask for code actions at every cursor move."""
        settings = self.settings
        if settings is None or not any(applicable(finding, settings) for finding in self.findings):
            return None
        outcome = fix_document(self.document, settings, findings=self.findings)
        return self._edit(outcome.document) if outcome.changed else None

    def _edit(self, fixed: Document) -> types.WorkspaceEdit | None:
        changes = {}
        for part, lines, new in zip(self.target.parts, self._lines, part_texts(fixed)):
            if new != part.text:
                changes[part.uri] = [convert.replacement(part.text, new, lines)]
        return types.WorkspaceEdit(changes=changes) if changes else None


def _touches(a: types.Range, b: types.Range) -> bool:
    def key(position: types.Position) -> tuple[int, int]:
        return position.line, position.character

    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)
