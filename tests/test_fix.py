"""`--fix`, `--unsafe-fixes`, `--diff`: what is applied, what is written, and what never changes."""

from __future__ import annotations

import os
import stat
import textwrap

import libcst as cst
import pytest
from click.testing import CliRunner

from losslint.cli import main
from losslint.config import FileSettings
from losslint.documents import from_bytes, from_text
from losslint.findings import Applicability
from losslint.fixer import FileChangedError, fix_document, write_atomic
from losslint.rule import FixPlan, Report, Rule

BUGGY = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    def step(x, y):
        loss = F.cross_entropy(F.softmax(x, dim=1), y)
        return loss + torch.log(torch.softmax(x, 1)).mean()
""")
SAFE_FIXED = BUGGY.replace("torch.log(torch.softmax(x, 1))", "torch.log_softmax(x, 1)")
ALL_FIXED = SAFE_FIXED.replace("F.cross_entropy(F.softmax(x, dim=1), y)", "F.cross_entropy(x, y)")


def check(*args: str, input: str | None = None):
    return CliRunner().invoke(main, ["check", "--output-format", "concise", *args], input=input,
                              catch_exceptions=False)


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text(BUGGY)
    return tmp_path


def test_fix_applies_safe_fixes_and_says_what_unsafe_fixes_would_do(project):
    result = check("--fix", "train.py")
    assert (project / "train.py").read_text() == SAFE_FIXED
    assert result.exit_code == 1  # LL101 is left
    assert "train.py:4:28: LL101" in result.stdout
    assert "Fixed 1 finding, 1 remaining. 1 more fixable with `--unsafe-fixes`." in result.stdout


def test_unsafe_fixes_too_and_exit_0_when_nothing_is_left(project):
    result = check("--fix", "--unsafe-fixes", "train.py")
    assert result.exit_code == 0, result.stdout
    assert (project / "train.py").read_text() == ALL_FIXED
    assert "Fixed 2 findings, 0 remaining." in result.stdout


def test_a_second_fix_run_changes_nothing(project):
    check("--fix", "--unsafe-fixes", "train.py")
    before = (project / "train.py").read_bytes()
    mtime = (project / "train.py").stat().st_mtime_ns
    result = check("--fix", "--unsafe-fixes", "train.py")
    assert result.exit_code == 0 and "All checks passed." in result.stdout
    assert (project / "train.py").read_bytes() == before
    assert (project / "train.py").stat().st_mtime_ns == mtime  # not even rewritten


def test_check_mode_counts_fixable_findings(project):
    result = check("train.py")
    assert result.exit_code == 1
    assert "Found 2 findings. 1 fixable with `--fix` (1 more with `--fix --unsafe-fixes`)." in result.stdout
    assert (project / "train.py").read_text() == BUGGY


def test_diff_prints_a_unified_diff_and_writes_nothing(project):
    result = check("--diff", "train.py")
    assert result.exit_code == 1
    assert (project / "train.py").read_text() == BUGGY
    assert result.stdout.splitlines() == [
        "--- a/train.py",
        "+++ b/train.py",
        "@@ -2,4 +2,4 @@",
        " import torch.nn.functional as F",
        " def step(x, y):",
        "     loss = F.cross_entropy(F.softmax(x, dim=1), y)",
        "-    return loss + torch.log(torch.softmax(x, 1)).mean()",
        "+    return loss + torch.log_softmax(x, 1).mean()",
    ]
    assert "Would fix 1 finding, 1 remaining." in result.stderr


def test_diff_without_anything_to_fix_exits_0(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.py").write_text("import torch\n")
    result = check("--diff", "ok.py")
    assert result.exit_code == 0 and result.stdout == ""


def test_bytes_outside_the_fixed_span_stay_identical_crlf_bom_tabs_comments(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    original = ("\ufeff# -*- coding: utf-8 -*-\r\nimport torch\r\n\r\ndef f(x):\r\n"
                "\t# a comment\twith tabs and ünïcödé\r\n"
                "\ta = torch.log(torch.softmax(x, 1))  # trailing comment  \r\n"
                "\treturn a\r\n\r\n").encode("utf-8")
    (tmp_path / "a.py").write_bytes(original)
    result = check("--fix", "a.py")
    assert result.exit_code == 0, result.stdout
    expected = original.replace(b"torch.log(torch.softmax(x, 1))", b"torch.log_softmax(x, 1)")
    assert expected != original
    assert (tmp_path / "a.py").read_bytes() == expected


def test_a_legacy_encoding_is_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    original = '# -*- coding: latin-1 -*-\nimport torch\nlabel = "café"\na = torch.log(torch.softmax(x, 1))\n'
    (tmp_path / "a.py").write_bytes(original.encode("latin-1"))
    assert check("--fix", "a.py").exit_code == 0
    assert (tmp_path / "a.py").read_bytes() == original.replace(
        "torch.log(torch.softmax(x, 1))", "torch.log_softmax(x, 1)").encode("latin-1")


def test_permissions_are_kept_and_symlinks_stay_links(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    real = tmp_path / "real.py"
    real.write_text(BUGGY)
    real.chmod(0o751)
    (tmp_path / "link.py").symlink_to(real)
    check("--fix", "--unsafe-fixes", "link.py")
    assert (tmp_path / "link.py").is_symlink()
    assert real.read_text() == ALL_FIXED
    assert stat.S_IMODE(real.stat().st_mode) == 0o751


def test_a_file_that_cannot_be_written_is_reported_and_left_untouched(project, monkeypatch):
    def refuse(source, target):
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(os, "replace", refuse)
    result = check("--fix", "--unsafe-fixes", "train.py")
    assert result.exit_code == 1
    assert "losslint: cannot write train.py: Permission denied (left unchanged)" in result.stderr
    assert (project / "train.py").read_text() == BUGGY
    assert sorted(path.name for path in project.iterdir()) == ["train.py"]  # no temporary file left behind
    # What could not be fixed is still reported.
    assert "train.py:4:28: LL101" in result.stdout and "train.py:5:19: LL201" in result.stdout


def test_a_bug_while_fixing_is_an_internal_error_finding_not_a_traceback(project, monkeypatch):
    from losslint import runner

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(runner, "fix_document", broken)
    (project / "other.py").write_text(BUGGY)
    result = check("--fix", "train.py", "other.py")
    assert result.exit_code == 1
    assert "train.py:1:1: LL001 internal error in fix: RuntimeError: boom" in result.stdout
    assert (project / "train.py").read_text() == BUGGY


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files anyway")
def test_a_read_only_file_is_reported_and_left_untouched(project):
    (project / "train.py").chmod(0o444)
    result = check("--fix", "train.py")
    assert result.exit_code == 1 and "cannot write train.py" in result.stderr
    assert (project / "train.py").read_text() == BUGGY


def test_write_atomic_refuses_when_the_file_changed_meanwhile(tmp_path):
    target = tmp_path / "a.py"
    target.write_text("new content from an editor\n")
    with pytest.raises(FileChangedError):
        write_atomic(target, b"fixed\n", expected=b"what the fix was computed from\n")
    assert target.read_text() == "new content from an editor\n"
    assert [path.name for path in tmp_path.iterdir()] == ["a.py"]


def test_fix_on_stdin_prints_the_fixed_source(project):
    result = check("--fix", "--unsafe-fixes", "--stdin-filename", "train.py", "-", input=BUGGY)
    assert result.exit_code == 0
    assert result.stdout == ALL_FIXED
    assert (project / "train.py").read_text() == BUGGY


def test_diff_on_a_folder_covers_every_file(project):
    (project / "pkg").mkdir()
    (project / "pkg" / "other.py").write_text(BUGGY)
    result = check("--diff", "--unsafe-fixes", ".")
    assert "--- a/train.py" in result.stdout and f"--- a/{os.path.join('pkg', 'other.py')}" in result.stdout
    assert (project / "pkg" / "other.py").read_text() == BUGGY


# -- the fix loop, with synthetic rules --------------------------------------------------------------


class MysteryToLogsigmoid(Rule):
    """Synthetic: `mystery(v)` → `F.logsigmoid(v)`, adding the functional import when missing."""

    code = "LL991"
    name = "mystery"
    summary = "synthetic"
    tokens = ("mystery",)

    def check(self, ctx):
        for fact in ctx.calls:
            node = fact.node
            if isinstance(node.func, cst.Name) and node.func.value == "mystery":
                spelled, imports = ctx.reference("torch.nn.functional.logsigmoid", ("torch.nn.functional", "F"))
                replacement = f"{spelled}({ctx.text(node.args[0].value)})"
                yield Report(node, "mystery", fix=FixPlan("Use logsigmoid", Applicability.SAFE,
                                                          ((node, replacement),), imports))


class Unwrap(Rule):
    """Synthetic: `wrap(v)` → `v` (nested calls give overlapping fixes)."""

    code = "LL992"
    name = "unwrap"
    summary = "synthetic"
    tokens = ("wrap",)

    def check(self, ctx):
        for fact in ctx.calls:
            node = fact.node
            if isinstance(node.func, cst.Name) and node.func.value == "wrap":
                yield Report(node, "wrap", fix=FixPlan("Unwrap", Applicability.SAFE,
                                                       ((node, ctx.text(node.args[0].value)),)))


class Breaks(Rule):
    """Synthetic: a fix whose result does not parse."""

    code = "LL993"
    name = "breaks"
    summary = "synthetic"
    tokens = ("boom",)

    def check(self, ctx):
        for fact in ctx.calls:
            if isinstance(fact.node.func, cst.Name) and fact.node.func.value == "boom":
                yield Report(fact.node, "boom", fix=FixPlan("Break it", Applicability.SAFE, ((fact.node, "boom(("),)))


def test_two_fixes_needing_the_same_import_add_it_once():
    source = '"""Doc."""\nimport numpy as np\n\ndef f(a, b):\n    return mystery(a) + mystery(b)\n'
    outcome = fix_document(from_text(source, "a.py"), FileSettings((MysteryToLogsigmoid,)))
    assert outcome.document.text == (
        '"""Doc."""\nimport numpy as np\nimport torch.nn.functional as F\n\n'
        "def f(a, b):\n    return F.logsigmoid(a) + F.logsigmoid(b)\n")
    assert len(outcome.fixed) == 2 and outcome.remaining == []


def test_an_existing_import_is_reused_not_duplicated():
    source = "import torch.nn.functional as nnf\n\ndef f(a):\n    return mystery(a)\n"
    outcome = fix_document(from_text(source, "a.py"), FileSettings((MysteryToLogsigmoid,)))
    assert outcome.document.text == "import torch.nn.functional as nnf\n\ndef f(a):\n    return nnf.logsigmoid(a)\n"


def test_inserted_lines_follow_the_files_line_ends():
    source = "import numpy as np\r\n\r\ndef f(a):\r\n    return mystery(a)\r\n"
    outcome = fix_document(from_text(source, "a.py"), FileSettings((MysteryToLogsigmoid,)))
    assert outcome.document.text == (
        "import numpy as np\r\nimport torch.nn.functional as F\r\n\r\ndef f(a):\r\n    return F.logsigmoid(a)\r\n")


def test_overlapping_fixes_are_applied_over_several_passes():
    outcome = fix_document(from_text("y = wrap(wrap(wrap(x)))\n", "a.py"), FileSettings((Unwrap,)))
    assert outcome.document.text == "y = x\n"
    assert len(outcome.fixed) == 3 and outcome.remaining == []


def test_a_fix_that_would_not_parse_is_dropped_and_the_rest_applied():
    source = "y = boom(1)\nz = wrap(2)\n"
    outcome = fix_document(from_text(source, "a.py"), FileSettings((Breaks, Unwrap)))
    assert outcome.document.text == "y = boom(1)\nz = 2\n"
    assert [f.code for f in outcome.rejected] == ["LL993"]
    assert [f.code for f in outcome.remaining] == ["LL993"]


def test_unsafe_fixes_need_the_flag_and_fixable_codes_are_respected():
    document = from_bytes(BUGGY.encode(), "a.py")
    from losslint.registry import all_rules

    everything = FileSettings(all_rules())
    assert fix_document(document, everything).document.encode().decode() == SAFE_FIXED
    assert fix_document(document, everything, unsafe=True).document.encode().decode() == ALL_FIXED
    only_ll101 = FileSettings(all_rules(), fixable_codes=frozenset({"LL101"}))
    assert fix_document(document, only_ll101, unsafe=True).document.encode().decode() == BUGGY.replace(
        "F.cross_entropy(F.softmax(x, dim=1), y)", "F.cross_entropy(x, y)")
