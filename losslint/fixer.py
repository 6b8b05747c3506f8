"""Applying fixes: safe ones (`--fix`), unsafe ones too (`--unsafe-fixes`), until nothing changes.

Every pass lints the document, applies the fixes whose edits do not overlap (an
identical edit, such as the same import added by two fixes, is applied once) and
lints again; fixes that expose further fixes are applied in later passes. A fix
whose result would not parse is dropped and its finding stays. Writes are atomic.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from losslint.config import FileSettings
from losslint.documents import Document, FixRejected, PythonDocument
from losslint.findings import Applicability, Edit, Finding
from losslint.source import SourceText

# A fixed point is normally reached in two or three passes; this bounds a fix that undoes another.
MAX_PASSES = 16


@dataclass(frozen=True)
class FixOutcome:
    original: Document
    document: Document  # after the fixes (the original when none applied)
    fixed: tuple[Finding, ...]  # the findings whose fixes were applied
    remaining: list[Finding]  # the findings of the fixed document
    rejected: tuple[Finding, ...]  # findings whose fix was dropped (the result would not parse)

    @property
    def changed(self) -> bool:
        return self.document is not self.original


def applicable(finding: Finding, settings: FileSettings, unsafe: bool = False) -> bool:
    """Whether a fix run applies this finding's fix (its safety, `fixable` and `unfixable`)."""
    fix = finding.fix
    if fix is None or not fix.edits or not settings.is_fixable(finding.code):
        return False
    return fix.applicability is Applicability.SAFE or (unsafe and fix.applicability is Applicability.UNSAFE)


def fix_document(document: Document, settings: FileSettings, *, unsafe: bool = False,
                 findings: list[Finding] | None = None) -> FixOutcome:
    """Apply every applicable fix until none is left; `findings`: the document's, if already linted."""
    original = document
    findings = document.lint(settings) if findings is None else findings
    fixed: list[Finding] = []
    rejected: dict[tuple, Finding] = {}
    for _ in range(MAX_PASSES):
        candidates = [f for f in findings if applicable(f, settings, unsafe) and _key(f) not in rejected]
        if not candidates:
            break
        batch = _compatible(candidates)
        try:
            document = document.with_edits(_edits(batch))
        except FixRejected:
            batch = _usable_alone(document, batch, rejected)[:1]
            if not batch:
                continue
            document = document.with_edits(_edits(batch))
        fixed.extend(batch)
        findings = document.lint(settings)
    return FixOutcome(original, document, tuple(fixed), findings, tuple(rejected.values()))


def fix_text(text: str, path: str, settings: FileSettings, *, unsafe: bool = False) -> FixOutcome:
    """Fix Python source held in memory (an editor buffer); `outcome.document.text` is the result."""
    return fix_document(PythonDocument(path, SourceText(text, "utf-8", False)), settings, unsafe=unsafe)


def apply_fix(document: Document, finding: Finding) -> Document:
    """The document with one finding's fix applied (an editor's quick fix); raises FixRejected."""
    if finding.fix is None:
        raise FixRejected(f"{finding.code} at line {finding.line} has no fix")
    return document.with_edits(finding.fix.edits)


def _key(finding: Finding) -> tuple:
    assert finding.fix is not None
    return finding.code, finding.message, finding.fix.title, tuple(edit.content for edit in finding.fix.edits)


def _edits(batch: Sequence[Finding]) -> list[Edit]:
    return list(dict.fromkeys(edit for finding in batch for edit in finding.fix.edits))  # type: ignore[union-attr]


def _compatible(candidates: Sequence[Finding]) -> list[Finding]:
    """The candidates, in order, whose edits overlap none taken before (the rest wait a pass)."""
    taken: list[Edit] = []
    batch = []
    for finding in candidates:
        own = [edit for edit in finding.fix.edits if edit not in taken]  # type: ignore[union-attr]
        if any(_overlap(edit, other) for edit in own for other in taken):
            continue
        taken.extend(own)
        batch.append(finding)
    return batch


def _overlap(a: Edit, b: Edit) -> bool:
    if a.cell != b.cell:
        return False
    if a.span.start == a.span.end or b.span.start == b.span.end:
        # An insertion conflicts with anything at or around its point (the order would be a guess).
        return a.span.start <= b.span.end and b.span.start <= a.span.end
    return a.span.start < b.span.end and b.span.start < a.span.end


def _usable_alone(document: Document, batch: Sequence[Finding], rejected: dict[tuple, Finding]) -> list[Finding]:
    usable = []
    for finding in batch:
        try:
            document.with_edits(finding.fix.edits)  # type: ignore[union-attr]
        except FixRejected:
            rejected[_key(finding)] = finding
        else:
            usable.append(finding)
    return usable


# -- writing --------------------------------------------------------------------------------


class FileChangedError(OSError):
    """The file changed on disk while it was being fixed (an editor or formatter wrote it)."""


def write_atomic(path: str | Path, data: bytes, expected: bytes | None = None) -> None:
    """Replace a file's content via a temporary file and a rename, keeping its permissions.

    `expected`: the bytes the fix was computed from; if the file no longer holds them, nothing
    is written. Raises OSError (the file is then untouched).
    """
    target = Path(os.path.realpath(path))  # through a symlink, not replacing it
    mode = stat.S_IMODE(os.stat(target).st_mode)
    if not os.access(target, os.W_OK):
        raise PermissionError(13, "Permission denied (the file is read-only)", str(path))
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".losslint")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        if expected is not None and target.read_bytes() != expected:
            raise FileChangedError(f"{path} changed on disk while it was being fixed")
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
