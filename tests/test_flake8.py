"""The flake8 plugin, run through the real flake8 in a subprocess."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

ANCHOR = "F.softmax(model(x), dim=1)"
# Non-ASCII and astral characters before the finding: a byte or UTF-16 column would be off.
BUGGY = textwrap.dedent(f"""\
    import torch.nn.functional as F


    def step(model, x, y):
        label = "é😀"; return F.cross_entropy({ANCHOR}, y)
""")
REPORT = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<column>\d+): (?P<code>[A-Z]+\d+) (?P<message>.*)$")


def _flake8(*args: str, cwd: Path, stdin: str | None = None) -> list[dict[str, str]]:
    result = subprocess.run([sys.executable, "-m", "flake8", *args], cwd=cwd, input=stdin,
                            capture_output=True, text=True, encoding="utf-8")
    assert result.returncode in (0, 1), result.stderr
    return [match.groupdict() for line in result.stdout.splitlines() if (match := REPORT.match(line))]


def _losslint(*args: str, cwd: Path) -> list[dict[str, str]]:
    result = subprocess.run([sys.executable, "-m", "losslint", "check", "--output-format", "concise", *args],
                            cwd=cwd, capture_output=True, text=True, encoding="utf-8")
    return [match.groupdict() for line in result.stdout.splitlines() if (match := REPORT.match(line))]


def _expected_column(source: str, anchor: str) -> tuple[int, int]:
    """1-based line and 1-based character column of the anchor's first occurrence."""
    for number, line in enumerate(source.splitlines(), start=1):
        if anchor in line:
            return number, line.index(anchor) + 1
    raise AssertionError(anchor)


def test_select_ll_reports_the_finding_once_at_its_character_column(tmp_path):
    (tmp_path / "train.py").write_text(BUGGY, encoding="utf-8")

    reports = _flake8("--select", "LL", "train.py", cwd=tmp_path)

    line, column = _expected_column(BUGGY, ANCHOR)
    assert [(r["line"], r["column"], r["code"]) for r in reports] == [(str(line), str(column), "LL101")]
    assert "cross_entropy" in reports[0]["message"]


def test_flake8_and_losslint_report_the_same_locations(tmp_path):
    (tmp_path / "train.py").write_text(BUGGY + "\n\ndef other(logits, y):\n    return F.cross_entropy(F.softmax("
                                       "logits, -1), y)\n", encoding="utf-8")

    def locations(reports):
        return [(r["line"], r["column"], r["code"]) for r in reports]

    assert locations(_flake8("--select", "LL", "train.py", cwd=tmp_path)) == locations(
        _losslint("train.py", cwd=tmp_path))


def test_plugin_codes_are_on_by_default_next_to_flake8s_own(tmp_path):
    (tmp_path / "train.py").write_text(BUGGY + "import os\n", encoding="utf-8")

    codes = {r["code"] for r in _flake8("train.py", cwd=tmp_path)}

    assert {"LL101", "F401"} <= codes


def test_losslint_suppressions_apply_in_flake8_too(tmp_path):
    (tmp_path / "line.py").write_text(BUGGY.replace(", y)\n", ", y)  # noqa: LL101\n"), encoding="utf-8")
    (tmp_path / "file.py").write_text("# losslint: noqa\n" + BUGGY, encoding="utf-8")

    assert _flake8("--select", "LL", "line.py", "file.py", cwd=tmp_path) == []
    assert _losslint("line.py", "file.py", cwd=tmp_path) == []


def test_an_unused_suppression_is_reported_once_by_flake8(tmp_path):
    source = "import torch  # noqa: LL101\n"
    (tmp_path / "clean.py").write_text(source, encoding="utf-8")

    reports = _flake8("--select", "LL", "clean.py", cwd=tmp_path)

    assert [(r["line"], r["column"], r["code"]) for r in reports] == [("1", str(source.index("# noqa") + 1), "LL900")]


def test_configuration_applies_in_flake8(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.losslint]\nper-file-ignores = { "legacy/*" = ["LL101"] }\n'
                                              'extend-exclude = ["generated"]\n')
    for folder in ("legacy", "generated", "src"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "train.py").write_text(BUGGY, encoding="utf-8")

    reports = _flake8("--select", "LL", "legacy", "generated", "src", cwd=tmp_path)

    assert [(r["path"], r["code"]) for r in reports] == [("src/train.py", "LL101")]


def test_noqa_for_another_code_does_not_hide_the_finding(tmp_path):
    (tmp_path / "train.py").write_text(BUGGY.replace(", y)\n", ", y)  # noqa: E501\n"), encoding="utf-8")

    assert [r["code"] for r in _flake8("--select", "LL", "train.py", cwd=tmp_path)] == ["LL101"]


def test_source_from_stdin_uses_the_lines_flake8_hands_over(tmp_path):
    # The display name does not exist on disk: the plugin must not try to read it.
    reports = _flake8("--select", "LL", "--stdin-display-name", "not_on_disk.py", "-", cwd=tmp_path, stdin=BUGGY)

    assert [(r["path"], r["code"]) for r in reports] == [("not_on_disk.py", "LL101")]
