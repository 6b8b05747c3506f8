"""Suppression comments, the same in every mode (command line, fix, editor, flake8).

- `# noqa` on the line where a finding starts suppresses every finding starting there;
  `# noqa: LL101,LL203` (commas and/or spaces; a prefix such as `LL1` works too, as in
  flake8) only those codes. Codes of other tools (`E501`) are left to those tools.
- `# losslint: noqa` anywhere in a file exempts the whole file; `# losslint: noqa: LL101`
  exempts it from those rules only.
- Syntax errors (LL000) and internal errors (LL001) cannot be suppressed by `# noqa`
  (a file-level `# losslint: noqa` skips the file altogether, unparsed).
- LL900 reports a `# noqa` code that suppressed nothing (a bare `# noqa` is shared with
  other tools and never reported), with a safe fix that removes it.

Comments are found with Python's tokenizer, so `# noqa` inside a string is not a suppression.
"""

from __future__ import annotations

import re
import tokenize
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from losslint.findings import Applicability, Edit, Finding, Fix, Position, Span
from losslint.rule import Rule
from losslint.selection import INTERNAL_ERROR, SYNTAX_ERROR

UNUSED_NOQA = "LL900"
UNSUPPRESSIBLE = frozenset({SYNTAX_ERROR, INTERNAL_ERROR})

_CODES = r"[A-Z]+[0-9]+(?:(?:[ \t]*,[ \t]*|[ \t]+)[A-Z]+[0-9]+)*"
_FILE_DIRECTIVE = re.compile(rf"#[ \t]*(?i:losslint)[ \t]*:[ \t]*(?i:noqa)\b(?:[ \t]*:[ \t]*(?P<codes>{_CODES}))?")
_LINE_DIRECTIVE = re.compile(rf"#[ \t]*(?i:noqa)\b(?::[ \t]*(?P<codes>{_CODES}))?")
_CODE = re.compile(r"[A-Z]+[0-9]+")
_MAYBE = re.compile(r"noqa", re.IGNORECASE)
# Line ends as the parser sees them: \r\n, \n and a lone \r.
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Directive:
    """A `# noqa` comment on one line. Columns are 0-based character offsets in the line."""

    line: int
    start: int  # the directive's `#`
    end: int
    codes: tuple[str, ...] | None  # None: a bare `# noqa`
    codes_start: int
    codes_end: int
    comment_start: int
    comment_end: int
    space_before: int  # whitespace between the code and the comment
    own_line: bool  # nothing but the comment on the line


@dataclass(frozen=True)
class Directives:
    """Every suppression of one text."""

    lines: dict[int, Directive] = field(default_factory=dict)
    exempt_all: bool = False
    exempt_codes: tuple[str, ...] = ()

    @classmethod
    def scan(cls, text: str) -> Directives:
        if not _MAYBE.search(text):
            return _NONE
        lines: dict[int, Directive] = {}
        exempt_all, exempt_codes = False, []
        for row, column, comment, physical in _comments(text):
            file_level = _FILE_DIRECTIVE.search(comment)
            if file_level is not None:
                codes = file_level.group("codes")
                if codes is None:
                    exempt_all = True
                else:
                    exempt_codes.extend(_CODE.findall(codes))
                continue
            match = _LINE_DIRECTIVE.search(comment)
            if match is None:
                continue
            codes = match.group("codes")
            before = physical[:column]
            lines[row] = Directive(
                line=row,
                start=column + match.start(),
                end=column + match.end(),
                codes=tuple(_CODE.findall(codes)) if codes else None,
                codes_start=column + (match.start("codes") if codes else match.end()),
                codes_end=column + (match.end("codes") if codes else match.end()),
                comment_start=column,
                comment_end=column + len(comment.rstrip()),
                space_before=len(before) - len(before.rstrip()),
                own_line=not before.strip(),
            )
        return cls(lines, exempt_all, tuple(exempt_codes))

    def exempt(self, rules: Sequence[type[Rule]]) -> tuple[type[Rule], ...]:
        """The rules left to run after the file-level exemptions."""
        if self.exempt_all:
            return ()
        return tuple(rule for rule in rules if not _named(rule.code, self.exempt_codes))

    def apply(self, findings: Sequence[Finding], rules: Sequence[type[Rule]], path: str) -> list[Finding]:
        """The findings no directive suppresses, plus LL900 for unused codes when LL900 is among `rules`."""
        if self.exempt_all:
            return [f for f in findings if f.code in UNSUPPRESSIBLE]
        if not self.lines:
            return list(findings)
        used: dict[int, set[str]] = {}
        kept = []
        for finding in findings:
            directive = self.lines.get(finding.line)
            if directive is None or finding.code in UNSUPPRESSIBLE:
                kept.append(finding)
            elif directive.codes is None:
                continue
            elif matched := [code for code in directive.codes if finding.code.startswith(code)]:
                used.setdefault(directive.line, set()).update(matched)
            else:
                kept.append(finding)
        unused_rule = next((rule for rule in rules if rule.code == UNUSED_NOQA), None)
        # After a syntax or internal error the rules did not really run: every code would look unused.
        if unused_rule is not None and not any(f.code in UNSUPPRESSIBLE for f in findings):
            for directive in self.lines.values():
                finding = _unused(directive, used.get(directive.line, set()), rules, unused_rule, path)
                if finding is not None:
                    kept.append(finding)
        return sorted(kept, key=lambda f: (f.span.start, f.code))


_NONE = Directives()


def _named(code: str, patterns: Iterable[str]) -> bool:
    return any(code.startswith(pattern) for pattern in patterns)


def _unused(directive: Directive, used: set[str], rules: Sequence[type[Rule]], unused_rule: type[Rule],
            path: str) -> Finding | None:
    from losslint.registry import all_rules

    if directive.codes is None:
        return None
    known = [rule.code for rule in all_rules()] + sorted(UNSUPPRESSIBLE)
    enabled = [rule.code for rule in rules]
    reasons: dict[str, list[str]] = {}
    for code in dict.fromkeys(directive.codes):
        if not code.startswith("LL") or code in used or code == UNUSED_NOQA:
            continue
        if not any(candidate.startswith(code) for candidate in known):
            reasons.setdefault("unknown", []).append(code)
        elif not any(candidate.startswith(code) for candidate in enabled):
            reasons.setdefault("non-enabled", []).append(code)
        else:
            reasons.setdefault("unused", []).append(code)
    if not reasons or UNUSED_NOQA in directive.codes:
        return None
    removed = [code for codes in reasons.values() for code in codes]
    detail = "; ".join(f"{reason}: {', '.join(codes)}" for reason, codes in reasons.items())
    span = _span(directive.line, directive.start, directive.end)
    remaining = [code for code in directive.codes if code not in removed]
    if remaining:
        title = f"Remove unused code{'s' if len(removed) > 1 else ''} {', '.join(removed)}"
        edits = (Edit(_span(directive.line, directive.codes_start, directive.codes_end), ", ".join(remaining)),)
    else:
        title = "Remove unused `noqa` directive"
        edits = (_removal(directive),)
    return Finding(
        code=UNUSED_NOQA,
        name=unused_rule.name,
        message=f"Unused `noqa` directive ({detail})",
        severity=unused_rule.severity,
        path=path,
        span=span,
        hint="remove the code from the `# noqa` comment; nothing on this line needs it",
        fix=Fix(title, Applicability.SAFE, edits),
    )


def _removal(directive: Directive) -> Edit:
    line = directive.line
    if directive.start == directive.comment_start and directive.end == directive.comment_end:
        if directive.own_line:  # a comment line of its own: drop the line
            return Edit(Span(Position(line, 1), Position(line + 1, 1)), "")
        return Edit(_span(line, directive.comment_start - directive.space_before, directive.comment_end), "")
    if directive.start == directive.comment_start:  # `# noqa: LL101 -- why` keeps `# -- why`
        return Edit(_span(line, directive.start, directive.end), "#")
    return Edit(_span(line, directive.start, directive.end), "")


def _span(line: int, start: int, end: int) -> Span:
    return Span(Position(line, start + 1), Position(line, end + 1))


def physical_lines(text: str) -> list[str]:
    """The text's lines with their line ends, split where the parser splits them."""
    lines, start = [], 0
    for match in _LINE_END.finditer(text):
        lines.append(text[start:match.end()])
        start = match.end()
    if start < len(text):
        lines.append(text[start:])
    return lines


def _tokens(text: str) -> list[tokenize.TokenInfo]:
    """The tokens of `text`, or none when Python's tokenizer rejects it."""
    try:
        return list(tokenize.generate_tokens(iter(physical_lines(text)).__next__))
    except (tokenize.TokenError, SyntaxError):
        return []


def _comments(text: str) -> Iterable[tuple[int, int, str, str]]:
    """(line, column, comment text, physical line) of every comment."""
    for token in _tokens(text):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.start[1], token.string, token.line


# -- --add-noqa -------------------------------------------------------------------


def noqa_edits(text: str, findings: Sequence[Finding]) -> tuple[list[Edit], list[Finding]]:
    """Edits adding `# noqa: CODE` for every finding, and the findings no comment can be added for.

    A code goes into the line's existing `# noqa: ...` when there is one; a line whose end
    lies inside a string or that continues with a backslash cannot take a comment.
    """
    tokens = _tokens(text)
    lines = physical_lines(text)
    if not tokens:
        return [], [f for f in findings if f.code not in UNSUPPRESSIBLE]
    blocked = _lines_without_room(tokens, lines)
    directives = Directives.scan(text)
    wanted: dict[int, list[Finding]] = {}
    for finding in findings:
        if finding.code not in UNSUPPRESSIBLE:
            wanted.setdefault(finding.line, []).append(finding)
    edits, skipped = [], []
    for line, on_line in sorted(wanted.items()):
        directive = directives.lines.get(line)
        codes = sorted({f.code for f in on_line} - set(directive.codes or () if directive else ()))
        if not codes:
            continue
        if line in blocked or line > len(lines) or (directive is not None and directive.codes is None):
            skipped.extend(on_line)
        elif directive is not None:
            position = Position(line, directive.codes_end + 1)
            edits.append(Edit(Span(position, position), "".join(f", {code}" for code in codes)))
        else:
            body = lines[line - 1].rstrip("\r\n")
            kept = len(body.rstrip())
            edits.append(Edit(_span(line, kept, len(body)), f"  # noqa: {', '.join(codes)}"))
    return edits, skipped


def _lines_without_room(tokens: list[tokenize.TokenInfo], lines: list[str]) -> set[int]:
    """Lines at whose end a comment would land inside a string or break a backslash continuation."""
    blocked: set[int] = set()
    commented = {token.start[0] for token in tokens if token.type == tokenize.COMMENT}
    for token in tokens:
        if token.type == tokenize.STRING and token.end[0] > token.start[0]:
            blocked.update(range(token.start[0], token.end[0]))
    for number, line in enumerate(lines, start=1):
        if line.rstrip("\r\n").endswith("\\") and number not in commented:
            blocked.add(number)
    return blocked
