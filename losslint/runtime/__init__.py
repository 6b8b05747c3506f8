"""The runtime companion: run a flagged expression on synthetic tensors and attach measured evidence.

    from losslint.runtime import confirm

    findings = confirm(source)             # a snippet: lint it, confirm every finding whose rule has a probe
    finding = confirm(finding, source)     # one finding (the source is read from finding.path if omitted)
    finding.confirmation.describe()        # the lines the text reporter prints
    finding.confirmation.to_dict()         # plain JSON data for the machine-readable reporters

`confirm_findings(findings, sources)` is what `losslint check --confirm` calls. Each
finding gets a `Confirmation` (see `losslint.runtime.verdict`): confirmed (with the
measured evidence), not reproduced (with what was tried) or not executable (with the
reason). The static finding itself is never changed or dropped.

Only this package imports torch, and only inside the sandboxed worker process
(`losslint.runtime.sandbox`); importing `losslint.runtime` does not import torch.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import overload

from losslint.documents import source_key
from losslint.findings import Finding
from losslint.runtime.sandbox import Limits, SandboxError, Worker, unsupported_reason
from losslint.runtime.verdict import Confirmation, Measurement, NotExecutable, Verdict, not_executable

INSTALL_HINT = "pip install 'torch-losslint[runtime]'"

__all__ = [
    "PROBE_NAMES", "Confirmation", "Limits", "Measurement", "RuntimeUnavailable", "Verdict", "confirm",
    "confirm_findings", "probe_for", "unavailable_reason",
]


# The probe strategies a rule may name (`Rule.probe`); `losslint.runtime.probes.PROBES` implements them.
PROBE_NAMES = frozenset({
    "overflow", "wrong-input-domain", "vanishing-gradient", "empty-mask", "ignore-dilution", "broadcast",
    "runs-as-written",
})


class RuntimeUnavailable(RuntimeError):
    """--confirm cannot run here (torch missing, or no POSIX process limits)."""


def unavailable_reason() -> str | None:
    """Why the runtime companion cannot run on this machine, or None. Does not import torch."""
    if not _torch_installed():
        return f"--confirm needs torch, which is not installed: {INSTALL_HINT}"
    return unsupported_reason()


def _torch_installed() -> bool:
    if "torch" in sys.modules:  # `sys.modules["torch"] = None` is how Python blocks an import
        return sys.modules["torch"] is not None
    return importlib.util.find_spec("torch") is not None


def probe_for(code: str) -> str | None:
    """The probe strategy the rule `code` declares (None: the rule has nothing to run)."""
    from losslint.registry import rule_by_code

    rule = rule_by_code(code)
    return getattr(rule, "probe", None) if rule is not None else None


@overload
def confirm(target: str, source: None = None, *, select: Sequence[str] | None = None,
            limits: Limits | None = None) -> list[Finding]: ...


@overload
def confirm(target: Finding, source: str | None = None, *, select: Sequence[str] | None = None,
            limits: Limits | None = None) -> Finding: ...


def confirm(target, source=None, *, select=None, limits=None):
    """Confirm a snippet (its findings, each with a `.confirmation`) or one finding (returned with one)."""
    if isinstance(target, str):
        from losslint.api import lint_source

        path = "<snippet>"
        findings = lint_source(target, path, select=select)
        return confirm_findings(findings, {path: target}, limits=limits)
    if source is None:
        source = Path(target.path).read_text(encoding="utf-8")
    [confirmed] = confirm_findings([target], {target.path: source}, limits=limits, every_rule=True)
    return confirmed


def confirm_findings(findings: Sequence[Finding], sources: dict[str, str], *, limits: Limits | None = None,
                     every_rule: bool = False) -> list[Finding]:
    """`findings`, each finding of a rule with a probe carrying a `Confirmation` (order and content kept).

    Raises RuntimeUnavailable when the sandbox cannot run at all. `every_rule`: give findings
    of rules without a probe a "not executable" verdict instead of leaving them untouched.
    """
    reason = unavailable_reason()
    if reason:
        raise RuntimeUnavailable(reason)
    from losslint.runtime.plan import build

    worker = Worker(limits)
    planned: list[tuple[int, dict | Confirmation]] = []
    try:
        for index, finding in enumerate(findings):
            probe = probe_for(finding.code)
            if probe is not None and probe not in PROBE_NAMES:
                planned.append((index, not_executable(f"{finding.code} names an unknown probe {probe!r}")))
                continue
            if probe is None:
                if every_rule:
                    planned.append((index, not_executable(f"{finding.code} has no runtime probe")))
                continue
            if worker.process is None:
                worker.spawn()  # torch imports in the worker while the slices are prepared here
            planned.append((index, _plan(finding, sources.get(source_key(finding.path, finding.cell)), probe, build)))
        results = list(findings)
        for index, item in planned:
            if isinstance(item, dict):
                try:
                    item = worker.confirm(item)
                except SandboxError as error:
                    raise RuntimeUnavailable(str(error)) from error
            results[index] = results[index].with_(confirmation=item)
        return results
    finally:
        worker.close()


def _plan(finding: Finding, source: str | None, probe: str, build) -> dict | Confirmation:
    if source is None:
        return not_executable("the file's text is not available", probe)
    try:
        return build(finding, source, probe).to_dict()
    except NotExecutable as error:
        return not_executable(str(error), probe)
    except Exception as error:  # a bug of ours must not hide the static finding or stop the run
        return not_executable(f"losslint could not slice this code ({type(error).__name__}: {error}; "
                              "please report it)", probe)
