"""Bad or unusual input never produces a traceback: syntax errors, encodings, newlines, new syntax."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from losslint import engine, lint_file, lint_source
from losslint.registry import rule_by_code

BUGGY = "import torch\nimport torch.nn.functional as F\ndef f(x, y):\n    return F.cross_entropy(F.softmax(x, dim=1), y)\n"


def run_cli(*args: str, stdin: str | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "losslint", *args], input=stdin, capture_output=True, text=True,
                          cwd=cwd)


def test_syntax_error_is_reported_as_ll000_and_the_run_goes_on(tmp_path):
    (tmp_path / "broken.py").write_text("import torch\ndef f(:\n    return cross_entropy\n")
    (tmp_path / "buggy.py").write_text(BUGGY)
    result = run_cli("check", "--output-format", "concise", str(tmp_path))
    assert result.returncode == 1
    assert "broken.py:2:" in result.stdout and "LL000" in result.stdout
    assert "buggy.py:4:28: LL101" in result.stdout
    assert "Traceback" not in result.stderr


def test_missing_path_is_a_usage_error(tmp_path):
    result = run_cli("check", str(tmp_path / "nope.py"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_unknown_rule_code_is_a_usage_error():
    result = run_cli("check", "--select", "LL999x", ".")
    assert result.returncode == 2 and "unknown rule code" in result.stderr


def test_clean_file_exits_zero(tmp_path):
    (tmp_path / "ok.py").write_text("import torch.nn.functional as F\ndef f(x, y):\n    return F.cross_entropy(x, y)\n")
    result = run_cli("check", str(tmp_path / "ok.py"))
    assert result.returncode == 0, result.stdout


def test_stdin_with_a_filename():
    result = run_cli("check", "--output-format", "concise", "--stdin-filename", "train.py", "-", stdin=BUGGY)
    assert result.returncode == 1
    assert result.stdout.startswith("train.py:4:28: LL101")


def test_version_rules_and_explain():
    assert run_cli("--version").stdout.strip().endswith("0.1.0") or "version" in run_cli("--version").stdout
    listing = run_cli("rules").stdout
    assert "LL101" in listing and "softmax-into-cross-entropy" in listing
    explained = run_cli("explain", "LL101")
    assert explained.returncode == 0 and "## Why is this bad?" in explained.stdout
    assert run_cli("explain", "LL7777").returncode == 2


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("bom", b"\xef\xbb\xbf" + BUGGY.encode()),
        ("crlf", BUGGY.replace("\n", "\r\n").encode()),
        ("latin1 cookie", ("# -*- coding: latin-1 -*-\n# caf\xe9\n" + BUGGY).encode("latin-1")),
        ("tabs", BUGGY.replace("    ", "\t").encode()),
    ],
)
def test_encodings_and_newlines(tmp_path, name, data):
    path = tmp_path / "f.py"
    path.write_bytes(data)
    findings = lint_file(path)
    assert [f.code for f in findings] == ["LL101"], name
    offset = 2 if name == "latin1 cookie" else 0
    assert findings[0].line == 4 + offset


def test_new_syntax_is_handled():
    source = textwrap.dedent("""
        import torch.nn.functional as F
        type Logits = list[float]
        def first[T](items: list[T]) -> T:
            return items[0]
        def f(x, y):
            match x:
                case _:
                    pass
            return F.cross_entropy(F.softmax(x, dim=1), y)
        """)
    assert [f.code for f in lint_source(source)] == ["LL101"]


def test_an_internal_error_in_one_rule_becomes_a_diagnostic_and_other_rules_still_run(monkeypatch):
    rule = rule_by_code("LL103")

    def explode(self, ctx):
        raise RuntimeError("boom")

    monkeypatch.setattr(rule, "check", explode)
    findings = engine.check_text(BUGGY, "x.py", [rule, rule_by_code("LL101")])
    codes = sorted(f.code for f in findings)
    assert codes == ["LL001", "LL101"]
    assert "LL103" in next(f.message for f in findings if f.code == "LL001")


def test_files_without_any_rule_token_are_not_parsed(monkeypatch):
    calls = []
    monkeypatch.setattr(engine.cst, "parse_module", lambda text: calls.append(text))
    assert engine.check_text("x = 1\n", "x.py", [rule_by_code("LL101")]) == []
    assert calls == []
