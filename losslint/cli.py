"""The `losslint` command line.

Exit status, the same in every mode: 0 nothing reported, 1 findings reported
(syntax and internal errors included), 2 usage error, bad configuration or a
missing path.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from losslint import __version__
from losslint.engine import check_text
from losslint.files import collect
from losslint.findings import Applicability, Finding
from losslint.api import lint_files
from losslint.registry import all_rules, rule_by_code
from losslint.reporters import REPORTERS
from losslint.selection import Selection, UnknownCodeError
from losslint.source import decode

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def _codes(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(code.strip() for value in values for code in value.split(",") if code.strip())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="losslint")
def main() -> None:
    """Find PyTorch loss bugs before they waste a training run."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--select", multiple=True, help="Rule codes or prefixes to enable (comma-separated; ALL for all).")
@click.option("--extend-select", multiple=True, help="Codes or prefixes to enable on top of the selection.")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes to disable.")
@click.option("--output-format", type=click.Choice(sorted(REPORTERS)), default="full", show_default=True)
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, help="Worker processes (default: all cores).")
@click.option("--stdin-filename", default=None, help="The name to report for source read from `-`.")
def check(
    paths: tuple[str, ...],
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    output_format: str,
    jobs: int | None,
    stdin_filename: str | None,
) -> None:
    """Check PATHS (files or folders; `-` reads stdin; default: the current folder)."""
    try:
        selection = Selection(_codes(select) or None, _codes(extend_select), _codes(ignore))
        rules = selection.rules()
    except UnknownCodeError as error:
        raise click.UsageError(str(error)) from error

    sources: dict[str, str] = {}
    findings: list[Finding] = []
    if paths == ("-",):
        name = stdin_filename or "-"
        text = decode(sys.stdin.buffer.read()).text
        sources[name] = text
        findings = check_text(text, name, rules)
    else:
        try:
            files = [str(p) for p in collect(paths or (".",))]
        except FileNotFoundError as error:
            raise click.UsageError(f"path does not exist: {error}") from error
        findings = lint_files(files, rules, jobs)
        for path in {f.path for f in findings}:
            try:
                sources[path] = decode(Path(path).read_bytes()).text
            except (OSError, SyntaxError, UnicodeDecodeError):
                pass

    findings.sort(key=lambda f: (f.path, f.span.start, f.code))
    click.echo(REPORTERS[output_format](findings, sources), nl=False)
    if output_format == "full":
        click.echo(_summary(findings), err=False)
    sys.exit(EXIT_FINDINGS if findings else EXIT_CLEAN)


def _summary(findings: list[Finding]) -> str:
    if not findings:
        return "All checks passed."
    safe = sum(1 for f in findings if f.fix and f.fix.applicability is Applicability.SAFE)
    unsafe = sum(1 for f in findings if f.fix and f.fix.applicability is Applicability.UNSAFE)
    noun = "finding" if len(findings) == 1 else "findings"
    text = f"Found {len(findings)} {noun}."
    if safe or unsafe:
        text += f" {safe} with a safe fix, {unsafe} with an unsafe fix."
    return text


@main.command("rules")
def list_rules() -> None:
    """List every rule: code, name, severity, fix availability and summary."""
    for rule in all_rules():
        default = "" if rule.default_enabled else " (off by default)"
        click.echo(f"{rule.code}  {rule.name:<38} {rule.severity.value:<8} fix: {rule.fix_availability.value:<7}"
                   f" {rule.summary}{default}")


@main.command()
@click.argument("code")
def explain(code: str) -> None:
    """Print the full documentation of a rule, with its examples."""
    rule = rule_by_code(code)
    if rule is None:
        raise click.UsageError(f"unknown rule: {code!r} (see `losslint rules`)")
    from losslint.docs import render_rule

    click.echo(render_rule(rule))


# The loss test harness: its module imports only click; torch loads when `losslint harness` runs.
from losslint.harness_cli import harness  # noqa: E402

main.add_command(harness)
