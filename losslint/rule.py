"""What a rule is: one class in one module of `rules/`, the single source of truth
for its code, name, message, severity, documentation, examples, check and fix."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import libcst as cst

from losslint.findings import Applicability, Edit, Severity

if TYPE_CHECKING:
    from losslint.context import Context

DOC_SECTIONS = ("What it does", "Why is this bad?", "Example", "Use instead", "Fix safety", "References")


@dataclass(frozen=True)
class Flagged:
    """Code the rule must report.

    `anchor`: the exact source text of the reported range (the contract that decides
    where `# noqa` goes and what an editor underlines). `fixed`: the whole source after
    applying the finding's fix (safe or unsafe), when the rule has one here.
    """

    code: str
    anchor: str | None = None
    fixed: str | None = None
    count: int = 1

    @property
    def source(self) -> str:
        return textwrap.dedent(self.code).lstrip("\n")

    @property
    def fixed_source(self) -> str | None:
        return textwrap.dedent(self.fixed).lstrip("\n") if self.fixed is not None else None


@dataclass(frozen=True)
class Silent:
    """A near miss the rule must not report, and why it is correct code."""

    code: str
    why: str = ""

    @property
    def source(self) -> str:
        return textwrap.dedent(self.code).lstrip("\n")


@dataclass(frozen=True)
class FixPlan:
    """A fix as the rule describes it: nodes to replace by text, imports to add."""

    title: str
    applicability: Applicability
    replacements: tuple[tuple[cst.CSTNode, str], ...]
    # Edits that are not node replacements, e.g. an import the fix needs.
    extra_edits: tuple[Edit, ...] = ()


@dataclass(frozen=True)
class Report:
    node: cst.CSTNode
    message: str
    evidence: tuple[str, ...] = ()
    hint: str = ""
    fix: FixPlan | None = None
    # Other nodes this report explains (superseded rules' findings inside them are dropped).
    covers: tuple[cst.CSTNode, ...] = ()


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    severity: ClassVar[Severity] = Severity.ERROR
    default_enabled: ClassVar[bool] = True
    # The most trusted fix the rule can offer (individual findings may offer less).
    fix_availability: ClassVar[Applicability] = Applicability.NONE
    # Source text tokens one of which must appear for the rule to possibly report.
    tokens: ClassVar[tuple[str, ...]]
    # Codes whose findings this rule's findings make redundant (the more specific one wins).
    supersedes: ClassVar[tuple[str, ...]] = ()
    # The runtime probe `losslint check --confirm` runs for a finding (a name in
    # `losslint.runtime.probes.PROBES`); None: there is nothing to run.
    probe: ClassVar[str | None] = None
    flagged: ClassVar[tuple[Flagged, ...]] = ()
    silent: ClassVar[tuple[Silent, ...]] = ()
    # Settings users may change in `[tool.losslint.options.<CODE>]`, with their defaults.
    options: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self._options = {**type(self).options, **(options or {})}

    def option(self, name: str) -> Any:
        """The configured value of one of the rule's `options`."""
        return self._options[name]

    def check(self, ctx: Context) -> Iterable[Report]:
        raise NotImplementedError

    @classmethod
    def documentation(cls) -> str:
        return textwrap.dedent(cls.__doc__ or "").strip()

    @classmethod
    def sections(cls) -> dict[str, str]:
        """The docstring's `## Section` blocks, by title."""
        parts = re.split(r"^## +(.+?)\s*$", cls.documentation(), flags=re.MULTILINE)
        return {title.strip(): body.strip() for title, body in zip(parts[1::2], parts[2::2])}

    @classmethod
    def anchor(cls) -> str:
        """The rule's section id in the generated rule reference."""
        return f"{cls.code.lower()}-{cls.name}"
