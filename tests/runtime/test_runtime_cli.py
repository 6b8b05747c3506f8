"""`losslint check --confirm`: verdicts in every output, exit status unchanged, torch only when asked for."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from losslint import runtime
from losslint.api import lint_source
from losslint.registry import all_rules
from losslint.runtime.sandbox import unsupported_reason

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "runtime" / "log_of_softmax.py"

# Runs the CLI in-process and reports, at exit, whether torch was imported.
_WRAPPER = textwrap.dedent("""
    import atexit, sys
    {prelude}
    atexit.register(lambda: sys.stderr.write("torch imported: %s\\n" % ("torch" in sys.modules and
                                                                        sys.modules["torch"] is not None)))
    from losslint.cli import main
    sys.argv = ["losslint", *sys.argv[1:]]
    main()
""")


def _run(*args: str, prelude: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _WRAPPER.format(prelude=prelude), *args],
                          capture_output=True, text=True, timeout=600)


def test_check_without_confirm_never_imports_torch():
    result = _run("check", "--isolated", str(FIXTURE))
    assert result.returncode == 1
    assert "torch imported: False" in result.stderr
    assert "runtime:" not in result.stdout


@pytest.mark.slow
def test_confirm_adds_verdicts_under_the_findings_and_keeps_the_exit_status():
    result = _run("check", "--isolated", "--confirm", str(FIXTURE))
    assert result.returncode == 1, result.stderr
    assert result.stdout.count("= runtime: confirmed:") == 4
    assert "logit gap of 103.97 in float32" in result.stdout
    assert "torch imported: False" in result.stderr  # torch runs in the sandboxed worker, not in losslint


@pytest.mark.slow
def test_confirm_puts_the_verdict_into_machine_readable_output():
    result = _run("check", "--isolated", "--confirm", "--output-format", "json", str(FIXTURE))
    records = json.loads(result.stdout)
    assert len(records) == 4
    for record in records:
        confirmation = record["confirmation"]
        assert confirmation["verdict"] == "confirmed"
        assert confirmation["dtype"] == "float32" and confirmation["threshold"] > 100
        assert {m["dtype"] for m in confirmation["measurements"]} == {"float32", "float16", "bfloat16"}
        assert confirmation["reference"]["finite"] is True


def test_confirm_without_torch_says_how_to_install_it_and_exits_2():
    result = _run("check", "--isolated", "--confirm", str(FIXTURE), prelude="sys.modules['torch'] = None")
    assert result.returncode == 2
    assert "pip install 'torch-losslint[runtime]'" in result.stderr


def test_confirm_refuses_to_run_without_posix_limits(monkeypatch):
    assert "POSIX" in unsupported_reason("win32")
    assert "unsandboxed" in unsupported_reason("win32")
    monkeypatch.setattr(runtime, "unsupported_reason", lambda: unsupported_reason("win32"))
    source = FIXTURE.read_text(encoding="utf-8")
    findings = lint_source(source, str(FIXTURE))
    with pytest.raises(runtime.RuntimeUnavailable, match="POSIX"):
        runtime.confirm_findings(findings, {str(FIXTURE): source})


def test_every_ll1_and_ll2_rule_but_ll102_has_a_probe_from_the_catalogue():
    rules = {rule.code: rule for rule in all_rules()}
    for code, rule in rules.items():
        if code.startswith(("LL1", "LL2")) and code != "LL102":
            assert rule.probe in runtime.PROBE_NAMES, code
        assert rule.probe is None or rule.probe in runtime.PROBE_NAMES, code
    assert rules["LL102"].probe is None  # same value either way: nothing to confirm


def test_the_catalogue_is_what_the_worker_implements():
    pytest.importorskip("torch")
    from losslint.runtime.probes import PROBES

    assert set(PROBES) == runtime.PROBE_NAMES


@pytest.mark.slow
def test_the_api_confirms_a_snippet_and_a_single_finding(tmp_path):
    source = "import torch\n\ndef f(x):\n    return torch.log(torch.sigmoid(x))\n"
    [finding] = runtime.confirm(source)
    assert finding.code == "LL203" and finding.confirmation.verdict is runtime.Verdict.CONFIRMED
    # log(sigmoid(x)) is -inf once every logit is at or below -88.72 (exp(-x) overflows)
    assert finding.confirmation.threshold_in("float32") == pytest.approx(-88.72, rel=0.01)
    path = tmp_path / "loss.py"
    path.write_text(source, encoding="utf-8")
    [static] = lint_source(source, str(path))
    single = runtime.confirm(static)
    assert single.confirmation.verdict is runtime.Verdict.CONFIRMED
    assert single.with_(confirmation=None) == static  # the finding itself is unchanged
