"""Hostile snippets are refused or contained, and nothing they would have done happens.

A linter that executes code is an attack surface (a pre-commit hook on a stranger's pull
request): every snippet here would write a file, start a process or escape through the
interpreter if it ran unchecked. Each must come back "not executable" with the reason,
and the file it targets must not exist afterwards.
"""

from __future__ import annotations

import os
import textwrap

import pytest

from losslint.api import lint_source
from losslint.runtime import Limits, confirm_findings
from losslint.runtime.sandbox import Worker, scrubbed_environment
from losslint.runtime.verdict import Verdict

pytestmark = pytest.mark.slow

LIMITS = Limits(cpu_seconds=3, wall_seconds=20, memory_bytes=1 << 30)


def _snippets(target) -> dict[str, tuple[str, str]]:
    """name → (source, a word the refusal names). `{target}` is a path each snippet tries to create."""
    return {
        "writes a file": (f"""
            import torch
            def f(x):
                p = torch.softmax(x + len(open("{target}", "w").write("pwned")), -1)
                return torch.log(p)
            """, "open"),
        "spawns a process": (f"""
            import subprocess
            import torch
            def f(x):
                p = torch.softmax(x * subprocess.call(["touch", "{target}"]), -1)
                return torch.log(p)
            """, "subprocess"),
        "imports os through an alias": (f"""
            import torch
            import os as F
            def f(x):
                p = torch.softmax(x + F.system("touch {target}"), -1)
                return torch.log(p)
            """, "os"),
        "reaches builtins through the mro": ("""
            import torch
            def f(x):
                escape = x.__class__.__mro__[-1].__subclasses__()
                p = torch.softmax(x + len(escape), -1)
                return torch.log(p)
            """, "__class__"),
        "calls torch.save": (f"""
            import torch
            def f(x):
                p = torch.softmax(x + torch.save(x, "{target}"), -1)
                return torch.log(p)
            """, "torch.save"),
    }


def _findings(sources: dict[str, str]):
    findings = []
    for path, source in sources.items():
        findings += [f for f in lint_source(source, path) if f.code == "LL201"]
    return findings


def test_hostile_snippets_are_refused_and_nothing_happens(tmp_path):
    target = tmp_path / "pwned"
    snippets = _snippets(target)
    sources = {f"{name}.py": textwrap.dedent(source).lstrip() for name, (source, _) in snippets.items()}
    findings = _findings(sources)
    assert len(findings) == len(snippets), "each snippet must carry the LL201 finding the probe would run"
    results = confirm_findings(findings, sources, limits=LIMITS)
    for finding in results:
        confirmation = finding.confirmation
        named = snippets[finding.path[:-3]][1]
        assert confirmation.verdict is Verdict.NOT_EXECUTABLE, (finding.path, confirmation.describe())
        assert named in confirmation.reason, (finding.path, confirmation.reason)
        assert finding.code == "LL201" and finding.message  # the static finding is untouched
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_an_endless_loop_and_a_huge_allocation_are_contained_and_the_run_goes_on():
    sources = {
        "loop.py": textwrap.dedent("""
            import torch
            def spin(x):
                while True:
                    x = x + 0
                return x
            def f(logits):
                return torch.log(torch.softmax(spin(logits), -1))
            """).lstrip(),
        "alloc.py": textwrap.dedent("""
            import torch
            def f(logits):
                return torch.log(torch.softmax(logits + torch.zeros(100000, 100000), -1))
            """).lstrip(),
        "after.py": textwrap.dedent("""
            import torch
            def f(logits):
                return torch.log(torch.softmax(logits, -1))
            """).lstrip(),
    }
    results = {f.path: f.confirmation for f in confirm_findings(_findings(sources), sources, limits=LIMITS)}
    assert results["loop.py"].verdict is Verdict.NOT_EXECUTABLE
    assert "time limit" in results["loop.py"].reason
    assert results["alloc.py"].verdict is Verdict.NOT_EXECUTABLE
    assert "memory" in results["alloc.py"].reason
    assert results["after.py"].verdict is Verdict.CONFIRMED  # the worker survived (or was replaced)


def test_the_worker_rechecks_programs_it_is_sent(tmp_path):
    target = tmp_path / "pwned"
    plan = {
        "code": "LL201", "probe": "overflow", "context": {},
        "program": {"source": f"import os\nos.system('touch {target}')\nlosslint_taps = {{'value': 1}}\n",
                    "taps": ["value"]},
        "inputs": [], "layouts": [], "reference": None, "reference_kind": "float64",
    }
    with Worker(LIMITS) as worker:
        result = worker.confirm(plan)
    assert result.verdict is Verdict.NOT_EXECUTABLE and "import" in result.reason
    assert not target.exists()


def test_the_worker_runs_limited_in_a_scrubbed_environment_and_a_temporary_folder(monkeypatch):
    monkeypatch.setenv("LOSSLINT_TEST_SECRET", "do-not-leak")
    with Worker(LIMITS) as worker:
        worker.start()
        status = worker.status()
        home = worker.home
        assert status["cwd"] == os.path.realpath(home)
    assert "LOSSLINT_TEST_SECRET" not in status["environment"]
    assert set(status["environment"]) <= set(scrubbed_environment(home)) | {"LC_CTYPE"}
    assert status["rlimit_fsize"] == [0, 0]  # not one byte can be written to any file
    assert 0 < status["rlimit_as"][0] < 64 << 30
    assert not os.path.exists(home)  # the temporary folder is gone with the worker
