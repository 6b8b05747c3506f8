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
from losslint.config import ConfigError, FileSettings, Layer, Overrides, Resolver
from losslint.files import CHECKED_SUFFIXES, collect
from losslint.findings import Finding
from losslint.registry import all_rules, rule_by_code
from losslint.reporters import REPORTERS
from losslint.runner import FileResult, Mode, count_fixable, run, run_bytes

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def _codes(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(code.strip() for value in values for code in value.split(",") if code.strip())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="losslint")
def main() -> None:
    """Find PyTorch loss bugs before they waste a training run."""


class ConfigurationError(click.ClickException):
    """An unusable configuration file or rule code: exit status 2, like any usage error."""

    exit_code = EXIT_USAGE


TEXT_FORMATS = ("full", "concise")


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--select", multiple=True, help="Rule codes or prefixes to enable (comma-separated; ALL for all).")
@click.option("--extend-select", multiple=True, help="Codes or prefixes to enable on top of the selection.")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes to disable.")
@click.option("--fix", is_flag=True, help="Apply safe fixes and write them; report what is left.")
@click.option("--unsafe-fixes", is_flag=True,
              help="With --fix or --diff, apply unsafe fixes too (they change the loss value or object).")
@click.option("--diff", is_flag=True, help="Print the fixes as a unified diff instead of writing them.")
@click.option("--fixable", multiple=True, help="Codes or prefixes whose fixes may be applied (default: ALL).")
@click.option("--unfixable", multiple=True, help="Codes or prefixes whose fixes must not be applied.")
@click.option("--add-noqa", is_flag=True,
              help="Add `# noqa: CODE` comments for every finding (adopt losslint, then gate only new code).")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Use this configuration file (a pyproject.toml, or a TOML file of losslint settings) "
                   "for every file instead of each file's nearest pyproject.toml.")
@click.option("--isolated", is_flag=True, help="Ignore every configuration file.")
@click.option("--exclude", multiple=True, help="Glob patterns of files and folders to skip (replaces `exclude`).")
@click.option("--extend-exclude", multiple=True, help="Glob patterns to skip on top of `exclude`.")
@click.option("--force-exclude", is_flag=True,
              help="Apply the exclusions to paths given explicitly too (as pre-commit and editors pass them).")
@click.option("--output-format", type=click.Choice(sorted(REPORTERS)), default="full", show_default=True)
@click.option("-o", "--output-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the report to this file instead of standard output.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, help="Worker processes (default: all cores).")
@click.option("--stdin-filename", default=None,
              help="The path to report (and to find the configuration from) for source read from `-`.")
@click.option("--confirm", is_flag=True,
              help="Run each finding that has a runtime probe on synthetic tensors in a sandbox and attach the "
                   "measured verdict (needs torch: pip install 'torch-losslint[runtime]'; see docs/runtime.md).")
def check(
    paths: tuple[str, ...],
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    fix: bool,
    unsafe_fixes: bool,
    diff: bool,
    fixable: tuple[str, ...],
    unfixable: tuple[str, ...],
    add_noqa: bool,
    config_path: Path | None,
    isolated: bool,
    exclude: tuple[str, ...],
    extend_exclude: tuple[str, ...],
    force_exclude: bool,
    output_format: str,
    output_file: Path | None,
    jobs: int | None,
    stdin_filename: str | None,
    confirm: bool,
) -> None:
    """Check PATHS (files or folders; `-` reads stdin; default: the current folder).

    Exit status: 0 nothing left to report, 1 findings reported (after fixing, with --fix),
    2 usage error, bad configuration or a missing path.
    """
    reading_stdin = paths == ("-",)
    if add_noqa and (fix or diff or reading_stdin):
        raise click.UsageError("--add-noqa works on files, without --fix or --diff")
    mode = Mode(fix=fix, unsafe=unsafe_fixes, diff=diff, add_noqa=add_noqa)
    try:
        overrides = Overrides(
            rules=Layer(_codes(select) or None, _codes(extend_select), _codes(ignore)),
            fixable=Layer(_codes(fixable) or None, (), _codes(unfixable)),
            exclude=_codes(exclude) or None,
            extend_exclude=_codes(extend_exclude),
        )
        resolver = Resolver(config_path, overrides, isolated=isolated)
        stdin_data = b""
        if reading_stdin:
            results, settings_of, stdin_data = _check_stdin(resolver, mode, stdin_filename, force_exclude)
        else:
            settings_of = {path: resolver.settings_for(path) for path in _files(paths, resolver, force_exclude)}
            results = run(list(settings_of.items()), mode, jobs)
    except ConfigError as error:
        raise ConfigurationError(str(error)) from None

    findings = sorted((f for result in results for f in result.findings),
                      key=lambda f: (f.path, f.cell or 0, f.span.start, f.code))
    sources = {key: text for result in results for key, text in result.sources.items()}
    if confirm:
        findings = _confirm(findings, sources)
    for result in results:
        if result.write_error is not None:
            click.echo(f"losslint: cannot write {result.path}: {result.write_error} (left unchanged)", err=True)

    summary = _summary(findings, results, settings_of, mode)
    report = REPORTERS[output_format](findings, sources)
    if output_format in TEXT_FORMATS:
        report, summary_printed = report + summary + "\n", True
    else:
        summary_printed = False
    if mode.diff:
        # Standard output is the patch; the counts go to stderr, the report only to --output-file.
        click.echo("".join(result.diff for result in results), nl=False)
        click.echo(summary, err=True)
        if output_file is not None:
            _emit(report, output_file)
    elif reading_stdin and mode.fix:
        # Standard output is the fixed source (as editors expect); the report goes to stderr.
        output = results[0].output
        sys.stdout.buffer.write(output if output is not None else stdin_data)
        sys.stdout.flush()
        _emit(report, output_file, err=True)
        if not summary_printed:
            click.echo(summary, err=True)
    else:
        _emit(report, output_file)
        if not summary_printed and (mode.fix or mode.add_noqa):
            click.echo(summary, err=True)

    failed = bool(findings) or any(result.write_error for result in results)
    if mode.diff:
        failed = failed or any(result.diff for result in results)
    sys.exit(EXIT_FINDINGS if failed else EXIT_CLEAN)


def _confirm(findings: list[Finding], sources: dict[str, str]) -> list[Finding]:
    """--confirm: attach runtime verdicts. Imported only here, so that `check` alone never loads torch."""
    from losslint.runtime import RuntimeUnavailable, confirm_findings

    try:
        return confirm_findings(findings, sources)
    except RuntimeUnavailable as error:
        click.echo(f"losslint: {error}", err=True)
        sys.exit(EXIT_USAGE)


def _check_stdin(resolver: Resolver, mode: Mode, name: str | None,
                 force_exclude: bool) -> tuple[list[FileResult], dict[str, FileSettings], bytes]:
    data = sys.stdin.buffer.read()
    path = name or "-"
    if name is not None and force_exclude and resolver.is_excluded(name):
        return [FileResult(path, [])], {}, data
    settings = resolver.settings_for(path if name is not None else Path.cwd() / "-")
    return [run_bytes(data, path, settings, mode, write=False)], {path: settings}, data


def _files(paths: tuple[str, ...], resolver: Resolver, force_exclude: bool) -> list[str]:
    """The files to check: folders walked (their exclusions applied), files as given."""
    for raw in paths:
        if not Path(raw).exists():
            raise click.UsageError(f"path does not exist: {raw}")
    wanted = [raw for raw in paths or (".",) if not (force_exclude and resolver.is_excluded(raw))]
    return [str(path) for path in collect(wanted, CHECKED_SUFFIXES, excluded=resolver.excludes)]


def _emit(report: str, output_file: Path | None, *, err: bool = False) -> None:
    """The report to --output-file, or else to standard output (standard error with `err`)."""
    if output_file is None:
        click.echo(report, nl=False, err=err)
        return
    try:
        output_file.write_text(report, encoding="utf-8")
    except OSError as error:
        raise click.UsageError(f"cannot write the report to {output_file}: {error.strerror or error}") from None


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _summary(findings: list[Finding], results: list[FileResult], settings_of: dict[str, FileSettings],
             mode: Mode) -> str:
    safe, unsafe = count_fixable(results, settings_of)
    fixed = sum(result.fixed for result in results)
    if mode.add_noqa:
        added = sum(result.noqa_added for result in results)
        text = f"Added {_plural(added, '`noqa` directive')}."
        if findings:
            text += f" {_plural(len(findings), 'finding')} could not be suppressed (reported above)."
        return text
    if mode.fixing:
        verb = "Would fix" if mode.diff else "Fixed"
        if not fixed and not findings:
            return "All checks passed."
        text = f"{verb} {_plural(fixed, 'finding')}, {len(findings)} remaining."
        if unsafe and not mode.unsafe:
            text += f" {unsafe} more fixable with `--unsafe-fixes`."
        return text
    if not findings:
        return "All checks passed."
    text = f"Found {_plural(len(findings), 'finding')}."
    if safe:
        text += f" {safe} fixable with `--fix`"
        text += f" ({unsafe} more with `--fix --unsafe-fixes`)." if unsafe else "."
    elif unsafe:
        text += f" {unsafe} fixable with `--fix --unsafe-fixes`."
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


# The editor server: its module imports only click; pygls loads when `losslint server` runs.
from losslint.lsp.command import server as _server_command  # noqa: E402

main.add_command(_server_command)

# The loss test harness: its module imports only click; torch loads when `losslint harness` runs.
from losslint.harness_cli import harness  # noqa: E402

main.add_command(harness)
