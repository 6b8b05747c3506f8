"""The configuration as the server reads it."""

from __future__ import annotations

from pathlib import Path

from losslint.config import ConfigError, FileSettings, Resolver


class Project:
    """The configuration as it is on disk now.

    One is made for each lint, so an edited pyproject.toml applies at the next lint
    (reading it is cheap next to parsing the document). An unusable configuration is
    reported through `problem`, and the built-in defaults are used until it is fixed.
    """

    def __init__(self, root: Path) -> None:
        self.resolver = Resolver(cwd=root)
        self.problem: str | None = None

    def settings(self, path: str) -> FileSettings | None:
        """The file's rules, options and fixable codes; None when the configuration excludes it
        (an editor hands over files one by one: exclusions apply as with --force-exclude)."""
        try:
            return None if self.resolver.is_excluded(path) else self.resolver.settings_for(path)
        except ConfigError as error:
            self.problem = str(error)
            self.resolver = Resolver(cwd=self.resolver.cwd, isolated=True)
            return self.resolver.settings_for(path)

