"""Which rules run: select / extend-select / ignore, with prefixes and ALL (ruff's semantics)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from losslint.registry import all_rules
from losslint.rule import Rule

# Diagnostics of the engine itself; always on, never selectable away.
SYNTAX_ERROR = "LL000"
INTERNAL_ERROR = "LL001"


class UnknownCodeError(ValueError):
    pass


@dataclass(frozen=True)
class Selection:
    select: tuple[str, ...] | None = None  # None: the rules enabled by default
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def rules(self) -> tuple[type[Rule], ...]:
        rules = all_rules()
        for code in (*(self.select or ()), *self.extend_select, *self.ignore):
            validate_code(code)
        if self.select is None:
            chosen = {rule.code for rule in rules if rule.default_enabled}
        else:
            chosen = {rule.code for rule in rules if _matches_any(rule.code, self.select)}
        chosen |= {rule.code for rule in rules if _matches_any(rule.code, self.extend_select)}
        chosen -= {rule.code for rule in rules if _matches_any(rule.code, self.ignore)}
        return tuple(rule for rule in rules if rule.code in chosen)


def _matches_any(code: str, patterns: Iterable[str]) -> bool:
    return any(pattern == "ALL" or code.startswith(pattern.upper()) for pattern in patterns)


def validate_code(pattern: str) -> None:
    """A code or prefix must name at least one rule (ALL names them all)."""
    if pattern == "ALL":
        return
    known = [rule.code for rule in all_rules()] + [SYNTAX_ERROR, INTERNAL_ERROR]
    if not any(code.startswith(pattern.upper()) for code in known) or not pattern.upper().startswith("LL"):
        raise UnknownCodeError(f"unknown rule code or prefix: {pattern!r}")
