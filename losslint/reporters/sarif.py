"""`--output-format sarif`: SARIF 2.1.0 (code scanning), valid against the OASIS schema.

Every rule is described with its full documentation; a result carries its fix as
SARIF `fixes` (artifact changes), and evidence, hint, fix safety, the runtime
confirmation and (for notebooks) the cell as `properties`. Columns are Unicode code
points (`columnKind`), 1-based, end exclusive, as in every losslint output. SARIF has
no notebook cells: a notebook result's region is within its cell (`properties.cell`)
and its fix is given only in `properties.fix`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from losslint import __version__
from losslint.docs import ENGINE_DIAGNOSTICS, REFERENCE_URL, render_rule, rule_url
from losslint.findings import Finding, Severity, Span
from losslint.registry import all_rules
from losslint.reporters.records import confirmation_record, fix_record

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
SOURCE_ROOT = "%SRCROOT%"


def rule_descriptors() -> list[dict[str, Any]]:
    descriptors = []
    for rule in all_rules():
        sections = rule.sections()
        descriptors.append({
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": sections.get("What it does", rule.summary)},
            "help": {"text": rule.documentation(), "markdown": render_rule(rule)},
            "helpUri": rule_url(rule.code),
            "defaultConfiguration": {"level": LEVELS[rule.severity], "enabled": rule.default_enabled},
            "properties": {"fix": rule.fix_availability.value, "severity": rule.severity.value},
        })
    for code, (name, text) in ENGINE_DIAGNOSTICS.items():
        descriptors.append({
            "id": code, "name": name, "shortDescription": {"text": text}, "fullDescription": {"text": text},
            "helpUri": rule_url(code), "defaultConfiguration": {"level": "error"},
        })
    return descriptors


def _artifact(path: str) -> dict[str, str]:
    candidate = Path(path)
    if candidate.is_absolute():
        return {"uri": candidate.as_uri()}
    return {"uri": quote(candidate.as_posix()), "uriBaseId": SOURCE_ROOT}


def _region(span: Span) -> dict[str, int]:
    return {"startLine": span.start.line, "startColumn": span.start.column,
            "endLine": span.end.line, "endColumn": span.end.column}


def _result(finding: Finding, index: dict[str, int]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "level": LEVELS[finding.severity],
        "message": {"text": finding.message},
        "locations": [{"physicalLocation": {"artifactLocation": _artifact(finding.path),
                                            "region": _region(finding.span)}}],
    }
    if finding.code in index:
        result["ruleIndex"] = index[finding.code]
    if finding.fix is not None and finding.cell is None:
        result["fixes"] = [{
            "description": {"text": f"{finding.fix.title} ({finding.fix.applicability.value} fix)"},
            "artifactChanges": [{
                "artifactLocation": _artifact(finding.path),
                "replacements": [{"deletedRegion": _region(edit.span), "insertedContent": {"text": edit.content}}
                                 for edit in finding.fix.edits],
            }],
        }]
    properties: dict[str, Any] = {"evidence": list(finding.evidence), "hint": finding.hint}
    if finding.fix is not None:
        properties["fix"] = fix_record(finding.fix)
    if finding.cell is not None:
        properties["cell"] = finding.cell
    if finding.confirmation is not None:
        properties["confirmation"] = confirmation_record(finding.confirmation)
    result["properties"] = properties
    return result


def render(findings: Sequence[Finding], sources: dict[str, str]) -> str:
    rules = rule_descriptors()
    index = {descriptor["id"]: position for position, descriptor in enumerate(rules)}
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "losslint", "version": __version__,
                                "informationUri": REFERENCE_URL.rsplit("/blob/", 1)[0], "rules": rules}},
            "originalUriBaseIds": {SOURCE_ROOT: {"uri": Path.cwd().as_uri() + "/"}},
            "columnKind": "unicodeCodePoints",
            "results": [_result(finding, index) for finding in findings],
        }],
    }
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"
