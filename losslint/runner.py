"""One `losslint check` run over many files: lint, fix, diff or add `# noqa`, in parallel when it pays.

Each file is handled on its own, start to finish (read, lint, fix, write), so that
worker processes return small results and a file that cannot be written affects
nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from losslint.config import FileSettings
from losslint.documents import Document, DocumentError, FixRejected, from_bytes
from losslint.engine import internal_error
from losslint.files import package_of
from losslint.findings import Applicability, Finding, Position, Severity, Span
from losslint.fixer import applicable, fix_document, write_atomic
from losslint.selection import SYNTAX_ERROR

# Below this many files a process pool costs more than it saves.
PARALLEL_THRESHOLD = 16


@dataclass(frozen=True)
class Mode:
    fix: bool = False  # apply fixes and write them
    unsafe: bool = False  # unsafe fixes too
    diff: bool = False  # compute the fixes, print them as a diff, write nothing
    add_noqa: bool = False  # add `# noqa` comments for every finding

    @property
    def fixing(self) -> bool:
        return self.fix or self.diff


@dataclass
class FileResult:
    path: str
    findings: list[Finding]  # what is left to report
    sources: dict[str, str] = field(default_factory=dict)
    fixed: int = 0  # findings fixed (or, with --diff, that would be)
    diff: str = ""
    noqa_added: int = 0
    write_error: str | None = None
    output: bytes | None = None  # the fixed bytes (for stdin)


def run(files: Sequence[tuple[str, FileSettings]], mode: Mode, jobs: int | None = None) -> list[FileResult]:
    jobs = jobs or os.cpu_count() or 1
    if jobs > 1 and len(files) >= PARALLEL_THRESHOLD:
        # Imported here: multiprocessing costs start-up time the single-file (pre-commit) case never needs.
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(_run_path, files, [mode] * len(files), chunksize=8))
    return [_run_path(item, mode) for item in files]


def _run_path(item: tuple[str, FileSettings], mode: Mode) -> FileResult:
    path, settings = item
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        return FileResult(path, [unreadable(path, f"cannot read: {error.strerror or error}")])
    try:
        return run_bytes(data, path, settings, mode, write=True, package=package_of(Path(path)))
    except Exception as error:  # a bug of ours must not hide the rest of the run (the file is left as it was)
        return FileResult(path, [internal_error(path, "fix" if mode.fixing or mode.add_noqa else "check", error)])


def run_bytes(data: bytes, path: str, settings: FileSettings, mode: Mode, *, write: bool,
              package: str | None = None) -> FileResult:
    """Handle one file's content; with `write`, changes go to `path` (else to `FileResult.output`)."""
    try:
        document = from_bytes(data, path, package)
    except DocumentError as error:
        return FileResult(path, [unreadable(path, str(error))])
    if mode.add_noqa:
        return _add_noqa(document, data, settings, write)
    findings = document.lint(settings)
    if not mode.fixing:
        return FileResult(path, findings, document.sources())
    outcome = fix_document(document, settings, unsafe=mode.unsafe, findings=findings)
    result = FileResult(path, outcome.remaining, outcome.document.sources(), fixed=len(outcome.fixed))
    if not outcome.changed:
        return result
    if mode.diff:
        result.diff = outcome.document.diff(document)
    elif write:
        error = _write(path, outcome.document, data)
        if error is not None:
            return FileResult(path, findings, document.sources(), write_error=error)
    else:
        result.output = outcome.document.encode()
    return result


def _add_noqa(document: Document, data: bytes, settings: FileSettings, write: bool) -> FileResult:
    findings = document.lint(settings)
    edits, _ = document.noqa_edits(findings)
    if not edits:
        return FileResult(document.path, findings, document.sources())
    try:
        updated = document.with_edits(edits)
    except FixRejected:
        return FileResult(document.path, findings, document.sources())
    remaining = updated.lint(settings)
    result = FileResult(document.path, remaining, updated.sources(), noqa_added=len(edits))
    if write:
        error = _write(document.path, updated, data)
        if error is not None:
            return FileResult(document.path, findings, document.sources(), write_error=error)
    else:
        result.output = updated.encode()
    return result


def _write(path: str, document: Document, original: bytes) -> str | None:
    try:
        write_atomic(path, document.encode(), expected=original)
    except OSError as error:
        return error.strerror or str(error)
    return None


def unreadable(path: str, message: str) -> Finding:
    start = Position(1, 1)
    return Finding(SYNTAX_ERROR, "syntax-error", message, Severity.ERROR, path, Span(start, start))


def count_fixable(results: Sequence[FileResult], settings_of: dict[str, FileSettings]) -> tuple[int, int]:
    """How many reported findings `--fix` would fix, and how many more `--fix --unsafe-fixes` would."""
    safe = unsafe = 0
    for result in results:
        settings = settings_of.get(result.path)
        if settings is None:
            continue
        for finding in result.findings:
            if applicable(finding, settings, unsafe=False):
                safe += 1
            elif applicable(finding, settings, unsafe=True) and finding.fix.applicability is Applicability.UNSAFE:
                unsafe += 1
    return safe, unsafe
