"""What a harness run found, and the readable table it prints (no torch here)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["pass", "fail", "blocked"]

# The pseudo-property reported when the loss cannot even be called on well-formed inputs.
CALL = "call"


@dataclass(frozen=True)
class PropertyResult:
    """One property's verdict with its evidence.

    `measured` and `expected` carry the numbers; `cause` says, on failure, what
    probably produced them and how to fix it.
    """

    name: str
    status: Status
    measured: str
    expected: str
    cause: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"


@dataclass(frozen=True)
class HarnessReport:
    """The outcome of `check_loss`: one `PropertyResult` per property that applied."""

    subject: str
    settings: str
    results: tuple[PropertyResult, ...]
    # Property name → why it did not apply (task kind, missing `mask` parameter, ...).
    not_applicable: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> frozenset[str]:
        return frozenset(result.name for result in self.results if result.status == "fail")

    @property
    def blocked(self) -> frozenset[str]:
        return frozenset(result.name for result in self.results if result.status == "blocked")

    @property
    def passed(self) -> bool:
        return not self.failed

    def result(self, name: str) -> PropertyResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no result for {name!r}; ran: {', '.join(r.name for r in self.results)}")

    def format(self, width: int = 110) -> str:
        """The table: property, verdict, measured and expected numbers, and the likely cause under a failure."""
        name_width = max([len("property")] + [len(r.name) for r in self.results])
        status_width = len("blocked")
        free = max(30, width - name_width - status_width - 6)
        measured_width = free * 11 // 20
        expected_width = free - measured_width
        lines = [f"losslint harness: {self.subject} ({self.settings})"]
        header = f"  {'property':<{name_width}}  {'result':<{status_width}}  {'measured':<{measured_width}}  expected"
        lines += [header, "  " + "-" * (len(header) - 2 + expected_width - len("expected"))]
        for result in self.results:
            verdict = {"pass": "pass", "fail": "FAIL", "blocked": "blocked"}[result.status]
            measured = textwrap.wrap(result.measured, measured_width) or [""]
            expected = textwrap.wrap(result.expected, expected_width) or [""]
            for i in range(max(len(measured), len(expected))):
                first = i == 0
                lines.append(
                    f"  {(result.name if first else ''):<{name_width}}  {(verdict if first else ''):<{status_width}}  "
                    f"{(measured[i] if i < len(measured) else ''):<{measured_width}}  "
                    f"{expected[i] if i < len(expected) else ''}".rstrip()
                )
            if result.cause:
                indent = " " * (name_width + 4)
                lines += textwrap.wrap(result.cause, width, initial_indent=indent + "-> ",
                                       subsequent_indent=indent + "   ")
        if self.not_applicable:
            reasons = "; ".join(f"{name} ({why})" for name, why in self.not_applicable.items())
            lines += textwrap.wrap("not applicable: " + reasons, width, initial_indent="  ", subsequent_indent="    ")
        counts = [f"{sum(r.status == s for r in self.results)} {word}"
                  for s, word in (("fail", "failed"), ("pass", "passed"), ("blocked", "blocked"))]
        lines.append("  " + ", ".join(counts) + (" (blocked: a property it builds on failed)" if self.blocked else ""))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


class LossCheckError(AssertionError):
    """Raised by `check_loss` when a property fails; its message is the report's table."""

    def __init__(self, report: HarnessReport) -> None:
        super().__init__(report.format())
        self.report = report
