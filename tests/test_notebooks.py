"""Jupyter notebooks: cells linted together, IPython lines masked, findings per cell, fixes written back."""

from __future__ import annotations

import json

import nbformat
import pytest
from click.testing import CliRunner
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from losslint.cli import main
from losslint.notebooks import Cell, Notebook, python_code

IMPORTS = "%matplotlib inline\nimport torch\nimport torch.nn.functional as F"
SETUP = "!pip install -q something\nfiles = !ls\ncriterion = torch.nn.CrossEntropyLoss()\nF.softmax?"
STEP = "def step(x, y):\n    probs = torch.softmax(x, 1)\n    a = torch.log(torch.softmax(x, 1))\n    return criterion(probs, y)"


def notebook(*cells, language: str = "python") -> nbformat.NotebookNode:
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {"name": "k", "language": language, "display_name": "K"}
    return nb


def check(*args: str):
    return CliRunner().invoke(main, ["check", *args], catch_exceptions=False)


@pytest.fixture
def training(tmp_path, monkeypatch):
    """Cells: 1 markdown, 2 imports, 3 setup (shell, help), 4 bash, 5 the buggy step, 6 raw, 7 %%time."""
    monkeypatch.chdir(tmp_path)
    nb = notebook(
        new_markdown_cell("# Training\nSome `torch.log(torch.softmax(x, 1))` in prose is not code."),
        new_code_cell(IMPORTS),
        new_code_cell(SETUP),
        new_code_cell("%%bash\necho torch.log(torch.softmax(x, 1)) | cat"),
        new_code_cell(STEP),
        new_raw_cell("raw cross_entropy(softmax(x))"),
        new_code_cell("%%time\nloss = F.cross_entropy(F.softmax(x, dim=1), y)"),
    )
    nbformat.write(nb, tmp_path / "train.ipynb")
    return tmp_path / "train.ipynb"


def test_findings_are_located_by_cell_counting_every_cell(training):
    result = check("--output-format", "concise", "train.ipynb")
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if ": LL" in line]
    assert [line.split(": ")[0] + ": " + line.split(": ")[1].split()[0] for line in lines] == [
        "train.ipynb:cell 5:3:9: LL201",
        "train.ipynb:cell 5:4:22: LL101",
        "train.ipynb:cell 7:2:24: LL101",
    ]


def test_messages_name_lines_within_cells(training):
    result = check("--output-format", "concise", "train.ipynb")
    [cross_cell] = [line for line in result.stdout.splitlines() if "cell 5:4:22" in line]
    # `probs` comes from line 2 of the same cell; the criterion was built in cell 3, line 3.
    assert "(softmax, line 2)" in cross_cell and "built line 3 of cell 3" in cross_cell


def test_json_gives_the_cell_and_the_in_cell_location(training):
    records = json.loads(check("--output-format", "json", "train.ipynb").stdout)
    ll201 = next(r for r in records if r["code"] == "LL201")
    assert ll201["cell"] == 5
    assert ll201["location"] == {"row": 3, "column": 9} and ll201["end_location"] == {"row": 3, "column": 39}
    assert ll201["fix"]["edits"][0]["cell"] == 5
    cell_source = STEP.splitlines()[2]
    assert cell_source[8:38] == "torch.log(torch.softmax(x, 1))"


def test_full_format_shows_the_cells_code(training):
    output = check("train.ipynb").stdout
    assert "train.ipynb:cell 5:3:9: LL201" in output
    assert " 3 |     a = torch.log(torch.softmax(x, 1))" in output


def test_fix_writes_valid_notebook_json_changing_only_the_fixed_cells(training):
    before_text = training.read_text()
    before = json.loads(before_text)
    result = check("--fix", "--unsafe-fixes", "train.ipynb")
    assert "Fixed 2 findings, 1 remaining." in result.stdout  # LL101 on `probs` has no automatic fix
    assert result.exit_code == 1
    after_text = training.read_text()
    after = json.loads(after_text)
    nbformat.validate(nbformat.reads(after_text, as_version=4))
    changed = [i + 1 for i, (a, b) in enumerate(zip(before["cells"], after["cells"])) if a != b]
    assert changed == [5, 7]
    assert "".join(after["cells"][4]["source"]) == STEP.replace(
        "torch.log(torch.softmax(x, 1))", "torch.log_softmax(x, 1)")
    assert "".join(after["cells"][6]["source"]) == "%%time\nloss = F.cross_entropy(x, y)"
    # Same layout: nbformat's indentation, key order and final newline; only the fixed lines differ.
    changed_lines = [(a, b) for a, b in zip(before_text.splitlines(), after_text.splitlines()) if a != b]
    assert len(before_text.splitlines()) == len(after_text.splitlines()) and len(changed_lines) == 2
    assert after["metadata"] == before["metadata"] and after_text.endswith("}\n")


def test_a_second_fix_run_changes_nothing(training):
    check("--fix", "train.ipynb")
    once = training.read_bytes()
    result = check("--fix", "train.ipynb")
    assert training.read_bytes() == once
    assert "Fixed 0 findings, 2 remaining." in result.stdout


def test_diff_shows_cells(training):
    result = check("--diff", "train.ipynb")
    assert "--- a/train.ipynb:cell 5\n+++ b/train.ipynb:cell 5\n" in result.stdout
    assert "+    a = torch.log_softmax(x, 1)\n" in result.stdout
    assert "No newline" not in result.stdout


def test_a_cell_that_does_not_parse_is_reported_and_the_others_still_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    nbformat.write(notebook(new_code_cell(IMPORTS), new_code_cell("def broken(:\n    pass"),
                            new_code_cell("a = torch.log(torch.softmax(x, 1))")), tmp_path / "nb.ipynb")
    result = check("--output-format", "concise", "nb.ipynb")
    assert "nb.ipynb:cell 2:1:12: LL000" in result.stdout
    assert "nb.ipynb:cell 3:1:5: LL201" in result.stdout


def test_noqa_and_add_noqa_in_cells(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    nbformat.write(notebook(new_code_cell(IMPORTS), new_code_cell("a = torch.log(torch.softmax(x, 1))  # noqa: LL201"),
                            new_code_cell("b = torch.log(torch.softmax(x, 1))")), tmp_path / "nb.ipynb")
    assert "cell 3:1:5: LL201" in check("--output-format", "concise", "nb.ipynb").stdout
    result = check("--add-noqa", "nb.ipynb")
    assert result.exit_code == 0 and "Added 1 `noqa` directive." in result.stdout
    cells = json.loads((tmp_path / "nb.ipynb").read_text())["cells"]
    assert "".join(cells[2]["source"]) == "b = torch.log(torch.softmax(x, 1))  # noqa: LL201"
    assert check("nb.ipynb").exit_code == 0


def test_folders_are_walked_for_notebooks_and_checkpoints_skipped(training):
    checkpoints = training.parent / ".ipynb_checkpoints"
    checkpoints.mkdir()
    (checkpoints / "train-checkpoint.ipynb").write_text(training.read_text())
    result = check("--output-format", "concise", ".")
    assert "train.ipynb:cell 5:3:9: LL201" in result.stdout
    assert "checkpoint" not in result.stdout


def test_a_notebook_of_another_language_is_not_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    nbformat.write(notebook(new_code_cell("x <- log(softmax(y))  # torch.log(torch.softmax(x, 1))"), language="R"),
                   tmp_path / "r.ipynb")
    assert check("r.ipynb").exit_code == 0


def test_an_unreadable_notebook_is_reported_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.ipynb").write_text('{"cells": [ "cross_entropy"')
    result = check("--output-format", "concise", "bad.ipynb")
    assert result.exit_code == 1 and "bad.ipynb:1:1: LL000 not valid notebook JSON" in result.stdout
    (tmp_path / "old.ipynb").write_text('{"nbformat": 3, "worksheets": []}')
    assert "nbformat 3 notebooks are not supported" in check("old.ipynb").stdout


def test_the_notebook_layout_survives_a_rewrite():
    compact = '{"cells":[{"cell_type":"code","id":"c1","source":"a = 1","metadata":{},"outputs":[],"execution_count":null}],' \
              '"metadata":{},"nbformat":4,"nbformat_minor":5}'
    assert Notebook.loads(compact).dumps() == compact
    indented = json.dumps(json.loads(compact), indent=2, ensure_ascii=True) + "\n"
    assert Notebook.loads(indented).dumps() == indented
    written = nbformat.writes(nbformat.reads(compact, as_version=4)) + "\n"
    assert Notebook.loads(written).dumps() == written
    unicode = nbformat.writes(nbformat.reads(compact.replace("a = 1", "é = 1"), as_version=4)) + "\n"
    assert Notebook.loads(unicode).dumps() == unicode
    changed = Notebook.loads(written).with_sources({1: "b = 2\nc = 3"})
    assert json.loads(changed.dumps())["cells"][0]["source"] == ["b = 2\n", "c = 3"]


@pytest.mark.parametrize(("source", "masked"), [
    ("%time f()\nx = 1", {1}),
    ("!pip install a \\\n    b\nx = 1", {1, 2}),
    ("files = !ls\nout, err = %sx echo\nx = 1", {1, 2}),
    ("torch.softmax?\n??torch.log\nx = 1  # why?", {1, 2}),
    ("if ok:\n    %timeit f()\nx = (1\n% 2)", {2}),
    ('s = """\n%not a magic\n"""\ny = x != 1', set()),
])
def test_ipython_lines_are_masked_line_for_line(source, masked):
    code = python_code(Cell(1, "code", source))
    assert code is not None and code.masked == frozenset(masked)
    assert len(code.text.splitlines()) == len(source.splitlines())
    compile(code.text, "cell", "exec")


def test_cell_magics_of_other_languages_are_not_python():
    assert python_code(Cell(1, "code", "%%bash\nls -l")) is None
    assert python_code(Cell(1, "code", "%%writefile x.py\nimport os")) is None
    assert python_code(Cell(1, "code", "%%timeit\nx = 1")).text == "pass\nx = 1"
