"""Which files a run covers: explicit files, and Python files found by walking folders."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

# Folders never worth walking into: version control, caches, build output, environments.
SKIPPED_DIRECTORIES = frozenset({
    ".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox",
    ".venv", "venv", ".eggs", "build", "dist", "node_modules", ".ipynb_checkpoints",
})
PYTHON_SUFFIXES = (".py", ".pyi")
# What `losslint check` picks up when walking a folder: Python files and Jupyter notebooks.
CHECKED_SUFFIXES = (*PYTHON_SUFFIXES, ".ipynb")


def _is_environment(directory: Path) -> bool:
    return (directory / "pyvenv.cfg").exists() or (directory / "conda-meta").is_dir()


def _git_ignored(root: Path, candidates: list[Path]) -> set[Path]:
    """The candidates `.gitignore` rules exclude (empty when git or a repository is missing)."""
    if not candidates:
        return set()
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "check-ignore", "--stdin", "-z"],
            input="\0".join(str(path) for path in candidates), capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return set()
    if result.returncode not in (0, 1):
        return set()
    return {Path(item) for item in result.stdout.split("\0") if item}


def walk(directory: Path, suffixes: tuple[str, ...] = PYTHON_SUFFIXES,
         excluded: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Files under `directory`; `excluded` (folders and files), when given, replaces the built-in folder list."""
    skip = excluded or (lambda path: path.name in SKIPPED_DIRECTORIES)
    found: list[Path] = []
    for current, dirnames, filenames in os.walk(directory):
        here = Path(current)
        dirnames[:] = sorted(
            name for name in dirnames if not skip(here / name) and not _is_environment(here / name)
        )
        found.extend(here / name for name in sorted(filenames)
                     if name.endswith(suffixes) and (excluded is None or not excluded(here / name)))
    ignored = _git_ignored(directory, found)
    yield from (path for path in found if path not in ignored)


def collect(paths: Iterable[str | Path], suffixes: tuple[str, ...] = PYTHON_SUFFIXES,
            excluded: Callable[[Path], bool] | None = None) -> list[Path]:
    """Expand folders into the Python files under them; raises FileNotFoundError for a missing path.

    `excluded` applies to what walking finds, not to the paths given.
    """
    collected: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            collected.extend(walk(path, suffixes, excluded))
        elif path.exists():
            collected.append(path)
        else:
            raise FileNotFoundError(str(raw))
    seen: set[Path] = set()
    return [p for p in collected if not (p in seen or seen.add(p))]


def package_of(path: Path) -> str | None:
    """The dotted package a file belongs to (from `__init__.py` files), for relative imports."""
    parts: list[str] = []
    directory = path.resolve().parent
    while (directory / "__init__.py").exists():
        parts.append(directory.name)
        directory = directory.parent
    return ".".join(reversed(parts)) or None
