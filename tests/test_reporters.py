"""Output formats: their shape, their columns against the source, SARIF against the official schema."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import nbformat
import pytest
from click.testing import CliRunner
from nbformat.v4 import new_code_cell, new_notebook

from losslint.cli import main
from losslint.docs import rule_url
from losslint.findings import Applicability, Edit, Finding, Fix, Position, Severity, Span
from losslint.registry import all_rules
from losslint.reporters import REPORTERS

SARIF_SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())

# Non-ASCII characters (2-byte, 3-byte, 4-byte in UTF-8; the emoji is 2 UTF-16 units) before the findings.
SOURCE = (
    "import torch\n"
    "import torch.nn.functional as F\n"
    "def step(x, y):\n"
    '    étiquette = "日本語😀"; loss = F.cross_entropy(F.softmax(x, dim=1), y)\n'
    "    return loss + torch.log(torch.softmax(x, 1)).mean()\n"
    "b = 1  # noqa: LL102\n"
)
LINE4 = SOURCE.splitlines()[3]
COL = LINE4.index("F.softmax") + 1  # 1-based character column of the LL101 finding
END = COL + len("F.softmax(x, dim=1)")


class Verdict:
    """Stands in for the runtime companion's confirmation object."""

    def to_dict(self):
        return {"verdict": "confirmed", "metric": "loss floor", "measured": 1.461}

    def describe(self):
        return ["runtime: confirmed: loss never drops below 1.461"]


def run(*args: str):
    return CliRunner().invoke(main, ["check", *args], catch_exceptions=False)


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text(SOURCE, encoding="utf-8")
    return tmp_path


def test_json_records_and_character_columns(project):
    result = run("--output-format", "json", "train.py")
    assert result.exit_code == 1
    records = json.loads(result.stdout)
    assert [r["code"] for r in records] == ["LL101", "LL201", "LL900"]
    lines = SOURCE.splitlines()
    expected_text = {"LL101": "F.softmax(x, dim=1)", "LL201": "torch.log(torch.softmax(x, 1))", "LL900": "# noqa: LL102"}
    for record in records:
        start, end = record["location"], record["end_location"]
        assert start["row"] == end["row"]
        line = lines[start["row"] - 1]
        assert line[start["column"] - 1:end["column"] - 1] == expected_text[record["code"]]
    ll101 = records[0]
    assert ll101["location"] == {"row": 4, "column": COL}
    # Characters, not UTF-8 bytes nor UTF-16 units (which the LSP and flake8 layers convert to themselves).
    assert COL != len(LINE4[:COL - 1].encode()) + 1 and COL != len(LINE4[:COL - 1].encode("utf-16-le")) // 2 + 1
    assert set(ll101) == {"code", "name", "severity", "message", "filename", "cell", "location", "end_location",
                          "noqa_row", "fix", "url", "evidence", "hint", "confirmation"}
    assert ll101["name"] == "softmax-into-cross-entropy" and ll101["severity"] == "error"
    assert ll101["filename"] == "train.py" and ll101["cell"] is None and ll101["noqa_row"] == 4
    assert ll101["url"].endswith("docs/rules.md#ll101-softmax-into-cross-entropy")
    assert ll101["fix"] == {"applicability": "unsafe", "message": "Remove the softmax and pass the logits",
                            "edits": [{"content": "x", "location": {"row": 4, "column": COL},
                                       "end_location": {"row": 4, "column": END}, "cell": None}]}
    assert ll101["evidence"] and ll101["hint"] and ll101["confirmation"] is None
    assert records[2]["severity"] == "warning"


def test_concise_and_full_use_the_same_columns(project):
    concise = run("--output-format", "concise", "train.py").stdout
    assert f"train.py:4:{COL}: LL101" in concise and "train.py:5:19: LL201" in concise
    full = run("train.py").stdout
    assert f"train.py:4:{COL}: LL101" in full
    frame = full.splitlines()
    marker_line = frame[frame.index(' 4 |     étiquette = "日本語😀"; loss = F.cross_entropy(F.softmax(x, dim=1), y)') + 1]
    assert marker_line.index("^") - len(" 4 | ") == COL - 1 and marker_line.count("^") == len("F.softmax(x, dim=1)")


def test_json_lines_is_one_record_per_line_matching_json(project):
    records = json.loads(run("--output-format", "json", "train.py").stdout)
    lines = run("--output-format", "json-lines", "train.py").stdout.splitlines()
    assert [json.loads(line) for line in lines] == records


def test_github_workflow_commands(project):
    output = run("--output-format", "github", "train.py").stdout.splitlines()
    assert output[0].startswith(f"::error file=train.py,line=4,col={COL},endLine=4,endColumn={END},title=LL101::")
    assert output[1].startswith("::error file=train.py,line=5,col=19,endLine=5,endColumn=49,title=LL201::")
    assert output[2].startswith("::warning file=train.py,line=6,col=8,endLine=6,endColumn=21,title=LL900::")
    assert all(re.fullmatch(r"::(error|warning|notice) [^:]+::[^\n\r]*", line) for line in output)
    assert "%0Aevidence: line 4" in output[0] and "%0Aunsafe fix: Remove the softmax" in output[0]


def test_github_escapes_and_maps_info_to_notice():
    finding = Finding("LL102", "log-softmax-into-cross-entropy", "50% done\nsecond line", Severity.INFO,
                      "dir,with:odd/name.py", Span(Position(1, 1), Position(1, 2)))
    line = REPORTERS["github"]([finding], {})
    assert line == ("::notice file=dir%2Cwith%3Aodd/name.py,line=1,col=1,endLine=1,endColumn=2,title=LL102::"
                    "50%25 done%0Asecond line\n")


def test_sarif_is_valid_against_the_official_schema_with_rules_and_fixes(project):
    result = run("--output-format", "sarif", "train.py")
    log = json.loads(result.stdout)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    run_ = log["runs"][0]
    rules = run_["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules][: len(all_rules())] == [rule.code for rule in all_rules()]
    ll101 = next(rule for rule in rules if rule["id"] == "LL101")
    assert "## Why is this bad?" in ll101["help"]["markdown"] and "### Why is this bad?" not in ll101["help"]["text"]
    assert ll101["helpUri"] == rule_url("LL101") and ll101["defaultConfiguration"]["level"] == "error"
    assert {rule["defaultConfiguration"]["level"] for rule in rules} >= {"error", "warning", "note"}
    results = run_["results"]
    assert [r["ruleId"] for r in results] == ["LL101", "LL201", "LL900"]
    assert [r["level"] for r in results] == ["error", "error", "warning"]
    first = results[0]
    assert rules[first["ruleIndex"]]["id"] == "LL101"
    assert first["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 4, "startColumn": COL, "endLine": 4, "endColumn": END}
    assert first["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "train.py",
                                                                             "uriBaseId": "%SRCROOT%"}
    replacement = first["fixes"][0]["artifactChanges"][0]["replacements"][0]
    assert replacement == {"deletedRegion": {"startLine": 4, "startColumn": COL, "endLine": 4, "endColumn": END},
                           "insertedContent": {"text": "x"}}
    assert run_["columnKind"] == "unicodeCodePoints"


def test_sarif_with_no_findings_and_with_notebooks_is_valid(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.py").write_text("x = 1\n")
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(json.loads(run("--output-format", "sarif", "ok.py").stdout))
    nb = new_notebook(cells=[new_code_cell("import torch"), new_code_cell("a = torch.log(torch.softmax(x, 1))")])
    nbformat.write(nb, tmp_path / "nb.ipynb")
    log = json.loads(run("--output-format", "sarif", "nb.ipynb").stdout)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    [result] = log["runs"][0]["results"]
    assert result["properties"]["cell"] == 2
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 1
    assert "fixes" not in result and result["properties"]["fix"]["edits"][0]["cell"] == 2


def test_junit_xml(project):
    root = ET.fromstring(run("--output-format", "junit", "train.py").stdout)
    assert root.tag == "testsuites" and root.get("tests") == "3" and root.get("failures") == "3"
    [suite] = root
    assert suite.get("name") == "train.py"
    cases = list(suite)
    assert [case.find("failure").get("type") for case in cases] == ["LL101", "LL201", "LL900"]
    assert cases[0].get("line") == "4" and cases[0].get("name") == f"LL101 train.py:4:{COL}"
    assert "evidence: line 4" in cases[0].find("failure").text


def test_junit_without_findings_is_a_passing_suite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.py").write_text("x = 1\n")
    root = ET.fromstring(run("--output-format", "junit", "ok.py").stdout)
    assert root.get("failures") == "0" and root.find("testsuite/testcase").find("failure") is None


def test_output_file(project):
    result = run("--output-format", "json", "--output-file", "report.json", "train.py")
    assert result.exit_code == 1 and result.stdout == ""
    assert [r["code"] for r in json.loads((project / "report.json").read_text())] == ["LL101", "LL201", "LL900"]


def _confirmed() -> Finding:
    edit = Edit(Span(Position(4, COL), Position(4, END)), "x")
    return Finding("LL101", "softmax-into-cross-entropy", "message", Severity.ERROR, "train.py",
                   Span(Position(4, COL), Position(4, END)), ("evidence",), "hint",
                   Fix("Remove the softmax", Applicability.UNSAFE, (edit,)), confirmation=Verdict())


@pytest.mark.parametrize("name", ["json", "json-lines"])
def test_machine_formats_carry_the_runtime_confirmation(name):
    output = REPORTERS[name]([_confirmed()], {})
    record = json.loads(output)[0] if name == "json" else json.loads(output.splitlines()[0])
    assert record["confirmation"] == Verdict().to_dict()


def test_sarif_carries_the_runtime_confirmation():
    log = json.loads(REPORTERS["sarif"]([_confirmed()], {}))
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    assert log["runs"][0]["results"][0]["properties"]["confirmation"] == Verdict().to_dict()


@pytest.mark.parametrize("name", ["github", "junit", "full"])
def test_text_formats_mention_the_runtime_confirmation(name):
    assert "runtime: confirmed: loss never drops below 1.461" in REPORTERS[name]([_confirmed()], {"train.py": SOURCE})


def test_every_format_is_registered_and_handles_no_findings():
    assert set(REPORTERS) == {"full", "concise", "json", "json-lines", "github", "sarif", "junit"}
    for name, render in REPORTERS.items():
        assert isinstance(render([], {}), str), name
