"""`losslint check` as a process: exit statuses, usage errors without tracebacks, stdin, parallel runs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

BUGGY = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    def step(x, y):
        loss = F.cross_entropy(F.softmax(x, dim=1), y)
        return loss + torch.log(torch.softmax(x, 1)).mean()
""")


def losslint(*args: str, cwd, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "losslint", *args], cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "train.py").write_text(BUGGY)
    (tmp_path / "clean.py").write_text("import torch\n")
    return tmp_path


@pytest.mark.parametrize(("args", "status"), [
    (("check", "clean.py"), 0),
    (("check", "train.py"), 1),
    (("check",), 1),  # the current folder
    (("check", "--fix", "--unsafe-fixes", "train.py"), 0),
])
def test_exit_status(project, args, status):
    result = losslint(*args, cwd=project)
    assert result.returncode == status, result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("check", "missing.py"), "path does not exist: missing.py"),
    (("check", "--output-format", "xml", "train.py"), "'xml' is not one of"),
    (("check", "--add-noqa", "--fix", "train.py"), "--add-noqa works on files, without --fix or --diff"),
    (("check", "--select", "LL1,XX9", "train.py"), "unknown rule code or prefix: 'XX9'"),
    (("check", "--config", "missing.toml", "train.py"), "missing.toml"),
    (("check", "--output-file", "no/such/dir/report.txt", "train.py"), "cannot write the report"),
    (("check", "--jobs", "0", "train.py"), "0 is not in the range"),
    (("explain", "LL000x"), "unknown rule"),
])
def test_usage_errors_exit_2_with_a_message(project, args, message):
    result = losslint(*args, cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_bad_configuration_exits_2_naming_the_key(project):
    (project / "pyproject.toml").write_text("[tool.losslint]\nselect = ['LL1']\nfix-only = true\n")
    result = losslint("check", "train.py", cwd=project)
    assert result.returncode == 2
    assert "unknown key 'fix-only' in [tool.losslint]" in result.stderr and "Traceback" not in result.stderr


def test_stdin_uses_the_configuration_of_its_filename(project):
    (project / "sub").mkdir()
    (project / "sub" / "pyproject.toml").write_text('[tool.losslint]\nselect = ["LL2"]\n')
    result = losslint("check", "--output-format", "json", "--stdin-filename", "sub/t.py", "-", cwd=project,
                      stdin=BUGGY)
    assert result.returncode == 1
    assert [(r["filename"], r["code"]) for r in json.loads(result.stdout)] == [("sub/t.py", "LL201")]
    (project / "sub" / "pyproject.toml").write_text('[tool.losslint]\nexclude = ["t.py"]\n')
    excluded = losslint("check", "--force-exclude", "--stdin-filename", "sub/t.py", "-", cwd=project, stdin=BUGGY)
    assert excluded.returncode == 0


def test_a_parallel_run_reports_and_fixes_like_a_serial_one(project):
    for index in range(20):
        (project / f"m{index:02}.py").write_text(BUGGY)
    serial = losslint("check", "--output-format", "json", "-j", "1", ".", cwd=project)
    parallel = losslint("check", "--output-format", "json", "-j", "2", ".", cwd=project)
    assert json.loads(serial.stdout) == json.loads(parallel.stdout) and len(json.loads(serial.stdout)) == 42
    fixed = losslint("check", "--fix", "--unsafe-fixes", "-j", "2", ".", cwd=project)
    assert fixed.returncode == 0 and "Fixed 42 findings, 0 remaining." in fixed.stdout
    assert all("F.cross_entropy(x, y)" in path.read_text() for path in project.glob("m*.py"))


def test_machine_formats_keep_stdout_clean_in_fix_mode(project):
    result = losslint("check", "--fix", "--output-format", "json", "train.py", cwd=project)
    assert [r["code"] for r in json.loads(result.stdout)] == ["LL101"]
    assert "Fixed 1 finding, 1 remaining." in result.stderr


def test_help_lists_the_options():
    result = losslint("check", "--help", cwd=None)
    for option in ("--fix", "--unsafe-fixes", "--diff", "--add-noqa", "--config", "--force-exclude",
                   "--output-format", "--output-file", "--fixable", "--unfixable", "--extend-exclude"):
        assert option in result.stdout
