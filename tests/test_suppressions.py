"""`# noqa`, `# losslint: noqa`, LL900 and `--add-noqa`: the same suppressions in every mode."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest
from click.testing import CliRunner

from losslint import lint_source
from losslint.cli import main
from losslint.config import FileSettings, Resolver
from losslint.documents import from_text
from losslint.fixer import fix_document
from losslint.fixes import apply_edits
from losslint.registry import all_rules, rule_by_code
from losslint.suppressions import Directives, noqa_edits

HEADER = "import torch\nimport torch.nn.functional as F\n"
BUG = "loss = F.cross_entropy(F.softmax(x, dim=1), y)"  # LL101
LOG = "a = torch.log(torch.softmax(x, 1))"  # LL201


def lint(body: str, select=None) -> list[tuple[int, str]]:
    return [(f.line, f.code) for f in lint_source(HEADER + textwrap.dedent(body), "t.py", select=select)]


def check(*args: str, input: str | None = None):
    return CliRunner().invoke(main, ["check", "--output-format", "concise", *args], input=input,
                              catch_exceptions=False)


@pytest.mark.parametrize("comment", [
    "# noqa", "# noqa: LL101", "#noqa:LL101", "# NOQA: LL101", "# noqa: E501, LL101", "# noqa: E501 LL101",
    "# noqa:LL101,LL201", "# noqa: LL1", "# type: ignore  # noqa: LL101", "# noqa: LL101 -- softmax on purpose",
])
def test_a_noqa_on_the_line_suppresses(comment):
    assert lint(f"{BUG}  {comment}\n", select=["LL101"]) == []


@pytest.mark.parametrize("comment", ["# noqa: LL201", "# noqa: E501", "# noqa: LL102", "# no qa", "# nosec"])
def test_a_noqa_for_other_codes_does_not(comment):
    assert lint(f"{BUG}  {comment}\n", select=["LL101"]) == [(3, "LL101")]


def test_only_the_line_where_the_finding_starts_counts():
    # LL101 is anchored at the softmax argument: lines 4 and 6.
    body = """\
        loss = F.cross_entropy(
            F.softmax(x, dim=1), y)  # noqa: LL101
        loss = F.cross_entropy(  # noqa: LL101
            F.softmax(x, dim=1), y)
    """
    assert lint(body, select=["LL101"]) == [(6, "LL101")]


def test_a_noqa_inside_a_string_is_not_a_suppression():
    body = f'{BUG}; s = "# noqa: LL101"\n'
    assert lint(body, select=["LL101"]) == [(3, "LL101")]


def test_file_level_exemptions():
    both = f"{BUG}\n{LOG}\n"
    assert lint("# losslint: noqa\n" + both) == []
    assert lint(both + "# LossLint: NOQA: LL201\n") == [(3, "LL101")]
    assert lint("# losslint: noqa: LL101, LL201\n" + both) == []
    # A line-level noqa is not a file-level one.
    assert lint("# noqa: LL101\n" + both) == [(3, "LL900"), (4, "LL101"), (5, "LL201")]


def test_file_level_exemption_is_exact():
    both = f"{BUG}\n{LOG}\n"
    assert lint("# losslint: noqa: LL201\n" + both, select=["LL101", "LL201"]) == [(4, "LL101")]


def test_syntax_errors_cannot_be_suppressed_by_a_line_noqa():
    findings = lint_source("def f(:  # noqa\n    cross_entropy\n", "t.py")
    assert [f.code for f in findings] == ["LL000"]


# -- LL900 ------------------------------------------------------------------------------------


def test_unused_codes_are_reported_with_why():
    body = f"{BUG}  # noqa: LL101, LL201, LL999, E501\nb = 1  # noqa: LL102\nc = 2  # noqa\n"
    findings = lint_source(HEADER + body, "t.py", select=["LL101", "LL201", "LL900"])
    assert [(f.line, f.code) for f in findings] == [(3, "LL900"), (4, "LL900")]
    first, second = findings
    assert first.message == "Unused `noqa` directive (unused: LL201; unknown: LL999)"
    assert second.message == "Unused `noqa` directive (non-enabled: LL102)"
    fixed = apply_edits(HEADER + body, first.fix.edits + second.fix.edits)
    assert fixed == HEADER + f"{BUG}  # noqa: LL101, E501\nb = 1\nc = 2  # noqa\n"
    assert first.fix.applicability.value == "safe"


def test_ll900_is_reported_where_the_comment_is():
    source = HEADER + "x = 1  # noqa: LL101\n"
    [finding] = lint_source(source, "t.py", select=["LL101", "LL900"])
    line = source.splitlines()[finding.line - 1]
    assert line[finding.column - 1:finding.span.end.column - 1] == "# noqa: LL101"


def test_ll900_removes_a_comment_line_of_its_own_entirely():
    source = HEADER + "# noqa: LL101\nx = 1\n"
    [finding] = lint_source(source, "t.py", select=["LL101", "LL900"])
    assert apply_edits(source, finding.fix.edits) == HEADER + "x = 1\n"


def test_ll900_can_itself_be_suppressed_and_is_quiet_after_a_syntax_error():
    assert lint_source(HEADER + "x = 1  # noqa: LL101, LL900\n", "t.py", select=["LL101", "LL900"]) == []
    broken = HEADER + "def f(:\n    return 1  # noqa: LL101\n"
    assert [f.code for f in lint_source(broken, "t.py", select=["LL101", "LL900"])] == ["LL000"]


def test_ll900_is_on_by_default_and_its_fix_runs_with_fix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.py").write_text(HEADER + "loss = F.cross_entropy(x, y)  # noqa: LL101\n")
    result = check("a.py")
    assert result.exit_code == 1 and "a.py:3:31: LL900" in result.stdout
    result = check("--fix", "a.py")
    assert result.exit_code == 0, result.stdout
    assert (tmp_path / "a.py").read_text() == HEADER + "loss = F.cross_entropy(x, y)\n"


# -- the same in every mode ----------------------------------------------------------------------


def test_suppressions_hold_in_check_fix_stdin_and_the_editor_api(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = HEADER + f"{BUG}  # noqa: LL101\n{LOG}  # noqa\n"
    (tmp_path / "a.py").write_text(source)
    assert check("a.py").exit_code == 0
    assert check("--fix", "--unsafe-fixes", "a.py").exit_code == 0
    assert (tmp_path / "a.py").read_text() == source  # suppressed findings are not fixed either
    assert check("--stdin-filename", "a.py", "-", input=source).exit_code == 0
    # What the editor server and the flake8 plugin call: a document and the file's settings.
    assert from_text(source, str(tmp_path / "a.py")).lint(Resolver().settings_for(tmp_path / "a.py")) == []
    settings = FileSettings(all_rules())
    outcome = fix_document(from_text(source, "a.py"), settings, unsafe=True)
    assert not outcome.changed and outcome.remaining == []


# -- --add-noqa ---------------------------------------------------------------------------------


def test_add_noqa_suppresses_every_finding_and_is_idempotent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = HEADER + textwrap.dedent(f"""\
        {BUG}
        {LOG}  # keep: the comment stays
        b = F.cross_entropy(F.softmax(x, dim=1), y)  # noqa: E501
        c = F.cross_entropy(F.softmax(x, dim=1), y)  # noqa: LL201
    """)
    (tmp_path / "a.py").write_text(source)
    result = check("--add-noqa", "a.py")
    assert result.exit_code == 0, result.stdout
    assert "Added 4 `noqa` directives." in result.stdout
    assert (tmp_path / "a.py").read_text() == HEADER + textwrap.dedent(f"""\
        {BUG}  # noqa: LL101
        {LOG}  # keep: the comment stays  # noqa: LL201
        b = F.cross_entropy(F.softmax(x, dim=1), y)  # noqa: E501, LL101
        c = F.cross_entropy(F.softmax(x, dim=1), y)  # noqa: LL201, LL101, LL900
    """)
    assert check("a.py").exit_code == 0
    again = check("--add-noqa", "a.py")
    assert again.exit_code == 0 and "Added 0 `noqa` directives." in again.stdout


def test_add_noqa_skips_lines_that_cannot_take_a_comment():
    source = HEADER + textwrap.dedent('''\
        loss = F.cross_entropy(F.softmax(x, dim=1), y, reduction="""
        mean""")
        other = F.cross_entropy(F.softmax(x, dim=1), \\
            y)
        fine = F.cross_entropy(F.softmax(x, dim=1), y)
    ''')
    findings = lint_source(source, "t.py", select=["LL101"])
    assert [f.line for f in findings] == [3, 5, 7]
    edits, skipped = noqa_edits(source, findings)
    assert [f.line for f in skipped] == [3, 5]
    fixed = apply_edits(source, edits)
    cst.parse_module(fixed)
    assert [f.line for f in lint_source(fixed, "t.py", select=["LL101"])] == [3, 5]


def test_add_noqa_reports_what_it_could_not_suppress(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.py").write_text(HEADER + "loss = F.cross_entropy(F.softmax(x, dim=1), \\\n    y)\n")
    result = check("--add-noqa", "a.py")
    assert result.exit_code == 1
    assert "a.py:3:24: LL101" in result.stdout and "1 finding could not be suppressed" in result.stdout


def test_directives_scan_records_positions():
    text = "x = 1\ny = 2  # a comment # noqa: LL101 ,LL201 why\n# losslint: noqa: LL3\n"
    directives = Directives.scan(text)
    directive = directives.lines[2]
    assert directive.codes == ("LL101", "LL201")
    assert text.splitlines()[1][directive.start:directive.end] == "# noqa: LL101 ,LL201"
    assert directives.exempt_codes == ("LL3",) and not directives.exempt_all
    assert [rule.code for rule in directives.exempt([rule_by_code("LL101"), rule_by_code("LL301")])] == ["LL101"]
