"""Project configuration: `[tool.losslint]` in the nearest pyproject.toml, merged with command-line flags.

Each file is governed by the nearest `pyproject.toml` above it that has a
`[tool.losslint]` table (as ruff does), unless one configuration file is given
explicitly. Command-line flags are a layer on top of the file: a `--select`
replaces the file's `select`, `--extend-select` and `--ignore` add to it.

    [tool.losslint]
    select = ["LL1", "LL2"]          # codes, prefixes or ALL (default: the rules enabled by default)
    extend-select = ["LL305"]        # on top of select
    ignore = ["LL102"]
    per-file-ignores = { "tests/**" = ["LL9"], "__init__.py" = ["LL101"] }
    exclude = ["data", "legacy/**"]  # replaces the built-in list (.git, build, venv, ...)
    extend-exclude = ["notebooks/scratch"]
    fixable = ["ALL"]                # which findings --fix may fix (default: all)
    unfixable = ["LL101"]

    [tool.losslint.options.LL101]    # a rule's own options (code or name), where it has any
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from losslint.files import SKIPPED_DIRECTORIES
from losslint.registry import all_rules, rule_by_code
from losslint.rule import Rule
from losslint.selection import UnknownCodeError, validate_code

SECTION = ("tool", "losslint")
CODE_LIST_KEYS = ("select", "extend-select", "ignore", "fixable", "unfixable")
PATTERN_LIST_KEYS = ("exclude", "extend-exclude")
KNOWN_KEYS = (*CODE_LIST_KEYS, *PATTERN_LIST_KEYS, "per-file-ignores", "options")


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file and the offending key or code."""


@dataclass(frozen=True)
class Layer:
    """One layer of rule choices: a `select` (replacing what came before), additions and removals."""

    select: tuple[str, ...] | None = None
    extend: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def apply(self, chosen: set[str], universe: Iterable[str]) -> set[str]:
        universe = tuple(universe)
        if self.select is not None:
            chosen = {code for code in universe if matches(code, self.select)}
        chosen |= {code for code in universe if matches(code, self.extend)}
        return chosen - {code for code in universe if matches(code, self.ignore)}


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: each file is loaded once
class Config:
    """What one `[tool.losslint]` table says. Glob patterns in it are relative to `root`."""

    root: Path
    source: Path | None = None  # the file it came from; None for the built-in defaults
    rules: Layer = Layer()
    fixable: Layer = Layer()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exclude: tuple[str, ...] | None = None  # None: the built-in folders
    extend_exclude: tuple[str, ...] = ()
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # rule code -> option -> value

    @property
    def exclude_patterns(self) -> tuple[str, ...]:
        base = tuple(sorted(SKIPPED_DIRECTORIES)) if self.exclude is None else self.exclude
        return base + self.extend_exclude


@dataclass(frozen=True)
class Overrides:
    """Command-line flags: a layer over every configuration file."""

    rules: Layer = Layer()
    fixable: Layer = Layer()
    exclude: tuple[str, ...] | None = None
    extend_exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for layer in (self.rules, self.fixable):
            for pattern in (*(layer.select or ()), *layer.extend, *layer.ignore):
                try:
                    validate_code(pattern)
                except UnknownCodeError as error:
                    raise ConfigError(str(error)) from None


@dataclass(frozen=True)
class FileSettings:
    """Everything the check of one file needs: its rules, their options, what may be fixed."""

    rules: tuple[type[Rule], ...]
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    fixable_codes: frozenset[str] | None = None  # None: every code

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(rule.code for rule in self.rules)

    def is_fixable(self, code: str) -> bool:
        return self.fixable_codes is None or code in self.fixable_codes


def matches(code: str, patterns: Iterable[str]) -> bool:
    """Whether a code is named by one of the codes, prefixes or ALL."""
    return any(pattern == "ALL" or code.startswith(pattern.upper()) for pattern in patterns)


# -- reading a file ------------------------------------------------------------


def has_section(pyproject: Path) -> bool:
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        # A broken pyproject.toml that mentions us must be reported, not silently skipped.
        return "tool.losslint" in _read_quietly(pyproject)
    return isinstance(data.get("tool"), dict) and "losslint" in data["tool"]


def _read_quietly(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def load(path: Path) -> Config:
    """Read a configuration file: a pyproject.toml's `[tool.losslint]`, or a whole losslint TOML file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    table: Any = data
    if path.name == "pyproject.toml" or "tool" in data:
        table = data.get("tool", {}).get("losslint", {})
    return parse(table, path.parent, path)


def parse(table: Any, root: Path, source: Path | None = None) -> Config:
    """A configuration from a `[tool.losslint]` table; raises ConfigError naming what is wrong."""
    where = f"{source}: " if source else ""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}[tool.losslint] must be a table")
    for key in table:
        if key not in KNOWN_KEYS:
            raise ConfigError(f"{where}unknown key {key!r} in [tool.losslint]{_suggestion(key, KNOWN_KEYS)}")

    def codes(key: str) -> tuple[str, ...] | None:
        if key not in table:
            return None
        values = _strings(table[key], f"{where}{key!r}")
        for value in values:
            _check_code(value, f"{where}{key!r}")
        return values

    def patterns(key: str) -> tuple[str, ...] | None:
        return _strings(table[key], f"{where}{key!r}") if key in table else None

    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise ConfigError(f"{where}'per-file-ignores' must be a table of glob = [codes]")
    per_file_ignores = []
    for glob, values in per_file.items():
        listed = _strings(values, f"{where}'per-file-ignores' {glob!r}")
        for value in listed:
            _check_code(value, f"{where}'per-file-ignores' {glob!r}")
        per_file_ignores.append((glob, listed))

    return Config(
        root=root,
        source=source,
        rules=Layer(codes("select"), codes("extend-select") or (), codes("ignore") or ()),
        fixable=Layer(codes("fixable"), (), codes("unfixable") or ()),
        per_file_ignores=tuple(per_file_ignores),
        exclude=patterns("exclude"),
        extend_exclude=patterns("extend-exclude") or (),
        options=_options(table.get("options", {}), where),
    )


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{what} must be a list of strings")
    return tuple(item.strip() for item in value)


def _check_code(pattern: str, what: str) -> None:
    try:
        validate_code(pattern)
    except UnknownCodeError:
        raise ConfigError(f"{what}: unknown rule code or prefix {pattern!r} (see `losslint rules`)") from None


def _options(table: Any, where: str) -> dict[str, dict[str, Any]]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}'options' must be a table of rule code = {{ option = value }}")
    options: dict[str, dict[str, Any]] = {}
    for key, values in table.items():
        rule = rule_by_code(key)
        if rule is None:
            raise ConfigError(f"{where}'options': unknown rule {key!r}")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}'options.{key}' must be a table")
        for name, value in values.items():
            if name not in rule.options:
                known = ", ".join(sorted(rule.options)) or "none"
                raise ConfigError(f"{where}'options.{key}': unknown option {name!r} of {rule.code} "
                                  f"(its options: {known}){_suggestion(name, rule.options)}")
            default = rule.options[name]
            if default is not None and not isinstance(value, type(default)):
                raise ConfigError(f"{where}'options.{key}.{name}' must be a {type(default).__name__}")
        options[rule.code] = dict(values)
    return options


def _suggestion(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- which configuration governs a file ----------------------------------------


class Resolver:
    """Finds each file's configuration (cached per folder) and turns it into `FileSettings`.

    `config`: one configuration file for every file (`--config`); `isolated`: ignore
    configuration files altogether. Raises ConfigError when a configuration is unusable.
    """

    def __init__(self, config: Path | None = None, overrides: Overrides | None = None, *,
                 isolated: bool = False, cwd: Path | None = None) -> None:
        self.overrides = overrides or Overrides()
        self.cwd = (cwd or Path.cwd()).resolve()
        self.isolated = isolated
        self._explicit = load(config) if config is not None and not isolated else None
        self._default = Config(root=self.cwd)
        self._load = lru_cache(maxsize=None)(load)
        self._by_folder = lru_cache(maxsize=None)(self._config_of_folder)
        self._settings = lru_cache(maxsize=4096)(self._settings_of)
        self._exclusions = lru_cache(maxsize=None)(self._exclusions_of)

    def config_for(self, path: str | Path) -> Config:
        """The configuration governing a file (or the contents of a folder)."""
        absolute = _absolute(path, self.cwd)
        return self._config_in(absolute if absolute.is_dir() else absolute.parent)

    def _config_in(self, folder: Path) -> Config:
        if self._explicit is not None:
            return self._explicit
        return self._default if self.isolated else self._by_folder(folder)

    def _config_of_folder(self, folder: Path) -> Config:
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and has_section(candidate):
            return self._load(candidate)
        return self._default if folder.parent == folder else self._by_folder(folder.parent)

    def settings_for(self, path: str | Path) -> FileSettings:
        """The rules, options and fixable codes for one file."""
        absolute = _absolute(path, self.cwd)
        config = self._config_in(absolute.parent)
        ignored = tuple(code for glob, codes in config.per_file_ignores
                        if glob_matches(glob, absolute, config.root) for code in codes)
        return self._settings(config, ignored)

    def _settings_of(self, config: Config, per_file_ignored: tuple[str, ...]) -> FileSettings:
        rules = all_rules()
        universe = [rule.code for rule in rules]
        chosen = {rule.code for rule in rules if rule.default_enabled}
        chosen = self.overrides.rules.apply(config.rules.apply(chosen, universe), universe)
        chosen -= {code for code in universe if matches(code, per_file_ignored)}
        fixable = self.overrides.fixable.apply(config.fixable.apply(set(universe), universe), universe)
        return FileSettings(
            rules=tuple(rule for rule in rules if rule.code in chosen),
            options=config.options,
            fixable_codes=None if fixable == set(universe) else frozenset(fixable),
        )

    def is_excluded(self, path: str | Path) -> bool:
        """Whether `exclude` / `extend-exclude` name the path or one of the folders it is in."""
        absolute = _absolute(path, self.cwd)
        root = self._config_in(absolute.parent).root
        for candidate in (absolute, *absolute.parents):
            # Folders above the project are not the project's business (`build/` holding a checkout).
            if candidate != absolute and (candidate == root or root not in candidate.parents):
                return False
            if self.excludes(candidate):
                return True
        return False

    def excludes(self, path: Path) -> bool:
        """Whether the exclusions name this path itself (what walking asks: it never enters excluded folders).

        A folder's exclusion is decided by the configuration of the folder it is in.
        """
        path = _absolute(path, self.cwd)
        config = self._config_in(path.parent)
        return self._exclusions(config).matches(path, config.root)

    def _exclusions_of(self, config: Config) -> GlobSet:
        overrides = self.overrides
        base = config.exclude_patterns if overrides.exclude is None else overrides.exclude
        return GlobSet(base + overrides.extend_exclude)


def _absolute(path: str | Path, cwd: Path) -> Path:
    # String operations: pathlib is slow enough to show when a walk asks about every file.
    text = os.fspath(path)
    return Path(os.path.normpath(text if os.path.isabs(text) else os.path.join(cwd, text)))


# -- glob patterns ---------------------------------------------------------------


@lru_cache(maxsize=1024)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Translate a glob (`*` within a name, `**` across folders, `?`, `[...]`) to a regex."""
    out, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
            continue
        if pattern.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[index + 1:end].replace("\\", "\\\\")
                out.append(f"[{'^' + body[1:] if body.startswith('!') else body}]")
                index = end
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out) + r"\Z")


def _normalized(pattern: str) -> str:
    pattern = pattern.rstrip("/")
    return pattern[2:] if pattern.startswith("./") else pattern


def glob_matches(pattern: str, path: Path, root: Path) -> bool:
    """Whether a glob names `path`: relative to `root`, as an absolute path, or (without a `/`) by name."""
    return GlobSet((pattern,)).matches(path, root)


class GlobSet:
    """Several globs matched at once (a folder walk asks for every file and folder)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        patterns = [_normalized(pattern) for pattern in patterns]
        names = [_glob_regex(p).pattern for p in patterns if "/" not in p]
        self._names = re.compile("|".join(f"(?:{name})" for name in names)) if names else None
        self._paths = [_glob_regex(p) for p in patterns if "/" in p]

    def matches(self, path: Path, root: Path) -> bool:
        if self._names is not None and self._names.match(path.name):
            return True
        if not self._paths:
            return False
        try:
            relative = path.relative_to(root).as_posix()
        except ValueError:
            relative = None
        absolute = path.as_posix()
        return any((relative is not None and regex.match(relative)) or regex.match(absolute) for regex in self._paths)
