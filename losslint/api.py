"""The public Python API: lint a string, a file or a set of paths.

The command line, the editor server and the flake8 plugin are thin layers over it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from losslint.engine import check_text, needed_tokens
from losslint.config import FileSettings
from losslint.documents import NOTEBOOK_SUFFIX, DocumentError, from_bytes
from losslint.files import CHECKED_SUFFIXES, collect, package_of
from losslint.findings import Finding, Position, Severity, Span
from losslint.rule import Rule
from losslint.selection import SYNTAX_ERROR, Selection
from losslint.source import decode

# Below this many files a process pool costs more than it saves.
_PARALLEL_THRESHOLD = 16


def lint_source(
    source: str,
    path: str = "<string>",
    *,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] = (),
    package: str | None = None,
) -> list[Finding]:
    """Findings for Python source text."""
    rules = Selection(tuple(select) if select is not None else None, (), tuple(ignore)).rules()
    return check_text(source, path, rules, package)


def lint_file(path: str | Path, *, select: Sequence[str] | None = None, ignore: Sequence[str] = ()) -> list[Finding]:
    """Findings for one file on disk."""
    rules = Selection(tuple(select) if select is not None else None, (), tuple(ignore)).rules()
    return _lint_path(str(path), rules)


def lint_paths(
    paths: Iterable[str | Path],
    *,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] = (),
    jobs: int | None = None,
) -> list[Finding]:
    """Findings for files and folders (folders are walked); raises FileNotFoundError for a missing path."""
    rules = Selection(tuple(select) if select is not None else None, (), tuple(ignore)).rules()
    files = [str(p) for p in collect(paths, CHECKED_SUFFIXES)]
    return lint_files(files, rules, jobs)


def lint_files(files: Sequence[str], rules: Sequence[type[Rule]], jobs: int | None = None) -> list[Finding]:
    jobs = jobs or os.cpu_count() or 1
    if jobs > 1 and len(files) >= _PARALLEL_THRESHOLD:
        codes = [rule.code for rule in rules]
        # Imported here: multiprocessing costs start-up time the single-file (pre-commit) case never needs.
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            chunks = pool.map(_lint_path_by_codes, files, [codes] * len(files), chunksize=8)
            findings = [finding for chunk in chunks for finding in chunk]
    else:
        findings = [finding for path in files for finding in _lint_path(path, rules)]
    return findings


def _lint_path_by_codes(path: str, codes: list[str]) -> list[Finding]:
    from losslint.registry import all_rules

    wanted = set(codes)
    return _lint_path(path, [rule for rule in all_rules() if rule.code in wanted])


def _lint_path(path: str, rules: Sequence[type[Rule]]) -> list[Finding]:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        return [_unreadable(path, f"cannot read: {error.strerror or error}")]
    tokens = needed_tokens(rules)
    if not any(token.encode() in data for token in tokens):
        return []
    if path.endswith(NOTEBOOK_SUFFIX):
        try:
            notebook = from_bytes(data, path)
        except DocumentError as error:
            return [_unreadable(path, str(error))]
        return notebook.lint(FileSettings(tuple(rules)))
    try:
        text = decode(data).text
    except (SyntaxError, UnicodeDecodeError) as error:
        return [_unreadable(path, f"cannot decode: {error}")]
    return check_text(text, path, rules, package_of(Path(path)))


def _unreadable(path: str, message: str) -> Finding:
    start = Position(1, 1)
    return Finding(SYNTAX_ERROR, "syntax-error", message, Severity.ERROR, path, Span(start, start))
