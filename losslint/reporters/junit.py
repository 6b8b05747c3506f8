"""`--output-format junit`: JUnit XML for CI test-report views, one test suite per file.

Each finding is a failed test case (its type the rule code); a run without findings is
one passing test case, so that report viewers show a green run rather than nothing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from itertools import groupby

from losslint.findings import Finding
from losslint.reporters.concise import location
from losslint.reporters.records import confirmation_lines


def _details(finding: Finding) -> str:
    lines = [f"{location(finding)}: {finding.code} {finding.message}"]
    lines += [f"evidence: {step}" for step in finding.evidence]
    if finding.hint:
        lines.append(f"help: {finding.hint}")
    if finding.fix is not None:
        lines.append(f"{finding.fix.applicability.value} fix: {finding.fix.title}")
    lines += confirmation_lines(finding.confirmation)
    return "\n".join(lines)


def render(findings: Sequence[Finding], sources: dict[str, str]) -> str:
    total = str(max(len(findings), 1))
    suites = ET.Element("testsuites", name="losslint", tests=total, failures=str(len(findings)), errors="0")
    if not findings:
        suite = ET.SubElement(suites, "testsuite", name="losslint", tests="1", failures="0", errors="0")
        ET.SubElement(suite, "testcase", name="no findings", classname="losslint")
    for path, group in groupby(findings, key=lambda f: f.path):
        in_file = list(group)
        suite = ET.SubElement(suites, "testsuite", name=path, tests=str(len(in_file)),
                              failures=str(len(in_file)), errors="0")
        for finding in in_file:
            case = ET.SubElement(suite, "testcase", name=f"{finding.code} {location(finding)}", classname=path,
                                 file=path, line=str(finding.line))
            failure = ET.SubElement(case, "failure", message=finding.message, type=finding.code)
            failure.text = _details(finding)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
