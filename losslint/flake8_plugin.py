"""The flake8 plugin (entry point `LL` in `flake8.extension`): losslint findings in flake8's output.

flake8 hands the plugin the file's lines, so the file is not read again; the
findings are the ones `losslint check` reports for the same text and path, the
project's `[tool.losslint]` configuration and losslint's suppressions included.
flake8 then applies its own `# noqa` handling to the reported codes, which agrees
with losslint's: both look at the line where a finding starts.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path

from losslint import __version__
from losslint.config import Resolver
from losslint.documents import PythonDocument
from losslint.files import package_of
from losslint.source import SourceText


class Plugin:
    name = "losslint"
    version = __version__

    def __init__(self, tree: ast.AST, lines: Sequence[str], filename: str) -> None:
        # `tree` is unused, but asking for it makes flake8 run this as an AST plugin: only on
        # files that parse, so a syntax error is reported once, as flake8's own E999.
        self.lines = lines
        self.filename = filename

    def run(self) -> Iterator[tuple[int, int, str, type]]:
        resolver = _resolver()
        # flake8 hands over files one by one: exclusions apply as with --force-exclude.
        if resolver.is_excluded(self.filename):
            return
        text = SourceText("".join(self.lines), "utf-8", False)
        document = PythonDocument(self.filename, text, package_of(Path(self.filename)))
        for finding in document.lint(resolver.settings_for(self.filename)):
            # flake8 wants 0-based columns from plugins (it prints column + 1); findings are 1-based.
            yield finding.line, finding.column - 1, f"{finding.code} {finding.message}", type(self)


@cache
def _resolver() -> Resolver:
    """One per flake8 process: each folder's configuration is read once for the whole run."""
    return Resolver()
