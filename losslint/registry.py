"""Finds the rules: every `Rule` subclass in the modules of `losslint.rules`."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from losslint.rule import Rule


@cache
def all_rules() -> tuple[type[Rule], ...]:
    package = importlib.import_module("losslint.rules")
    found: dict[str, type[Rule]] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for item in vars(module).values():
            if isinstance(item, type) and issubclass(item, Rule) and item is not Rule and "code" in vars(item):
                if item.code in found and found[item.code] is not item:
                    raise RuntimeError(f"rule code {item.code} is defined twice")
                found[item.code] = item
    return tuple(sorted(found.values(), key=lambda rule: rule.code))


def rule_by_code(code: str) -> type[Rule] | None:
    for rule in all_rules():
        if rule.code == code.upper() or rule.name == code:
            return rule
    return None
