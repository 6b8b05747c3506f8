"""`losslint harness`: the table on stdout, exit 0 / 1 / 2, never a traceback on bad input."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import pytest
from click.testing import CliRunner

from losslint.harness_cli import EXIT_FAILED, EXIT_PASSED, EXIT_USAGE, harness

LOSSES = """
    import torch
    import torch.nn.functional as F

    def cross_entropy(logits, target):
        return F.cross_entropy(logits, target)

    def double_softmax(logits, target):
        return F.cross_entropy(torch.softmax(logits, 1), target)

    class Criterion(torch.nn.Module):
        def forward(self, logits, target):
            return F.cross_entropy(logits, target)

    class NeedsArguments(torch.nn.Module):
        def __init__(self, temperature):
            super().__init__()

    not_a_loss = 3
"""


@pytest.fixture
def losses_module(tmp_path, monkeypatch):
    """A module of losses in a fresh folder that is the current directory, under a unique name."""
    name = f"cli_losses_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(LOSSES))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def run(*arguments: str):
    return CliRunner().invoke(harness, list(arguments))


def test_a_passing_loss_prints_the_table_and_exits_0(losses_module):
    pytest.importorskip("torch")
    result = run(f"{losses_module}:cross_entropy", "--task", "multiclass", "--num-classes", "10")
    assert result.exit_code == EXIT_PASSED, result.output
    assert result.output.startswith("losslint harness: cross_entropy (multiclass, K=10")
    assert "0 failed" in result.output


def test_a_failing_property_exits_1_with_the_cause(losses_module):
    pytest.importorskip("torch")
    result = run(f"{losses_module}:double_softmax", "--task", "multiclass", "--num-classes", "10")
    assert result.exit_code == EXIT_FAILED
    assert "softmax is probably applied before" in " ".join(result.output.split())


@pytest.mark.parametrize(("options", "status", "shown"), [
    (["--baseline", "none", "--skip", "overfit", "--seed", "7"], EXIT_PASSED, ["seed=7", "baseline (baseline=None)"]),
    (["--reduction", "sum"], EXIT_FAILED, ["reduction FAIL", "told reduction='sum'"]),
    (["--minimum", "0.5"], EXIT_FAILED, ["minimum FAIL", "below its declared minimum"]),
    (["--mixed-precision", "--check", "stability"], EXIT_PASSED, ["mixed precision", "float16, bfloat16"]),
])
def test_options_reach_check_loss(losses_module, options, status, shown):
    pytest.importorskip("torch")
    result = run(f"{losses_module}:Criterion", "--task", "multiclass", "--num-classes", "4", *options)
    assert result.exit_code == status, result.output
    words = " ".join(result.output.split())
    assert "Criterion()" in words
    for text in shown:
        assert text in words
    if "--skip" in options:
        assert "overfit" not in words


@pytest.mark.parametrize(("arguments", "message"), [
    (["{m}", "--task", "binary"], "expected package.module:loss_fn"),
    (["no_such_module_xyz:loss", "--task", "binary"], "cannot import no_such_module_xyz"),
    (["{m}:missing", "--task", "binary"], "has no attribute 'missing'"),
    (["{m}:not_a_loss", "--task", "binary"], "is a int object, not a callable loss"),
    (["{m}:NeedsArguments", "--task", "binary"], "cannot be built without arguments"),
    (["{m}:cross_entropy", "--task", "segmentation"], "Invalid value for '--task'"),
    (["{m}:cross_entropy", "--task", "multiclass"], "needs --num-classes"),
    (["{m}:cross_entropy", "--task", "multiclass", "--num-classes", "3", "--baseline", "high"],
     "is not a number or one of auto, none"),
    (["{m}:cross_entropy", "--task", "multiclass", "--num-classes", "3", "--check", "masking"],
     "'masking' does not apply"),
])
def test_usage_errors_exit_2_with_a_message_and_no_traceback(losses_module, arguments, message):
    result = run(*(a.format(m=losses_module) for a in arguments))
    assert result.exit_code == EXIT_USAGE, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_missing_torch_is_a_usage_error_naming_the_extra(tmp_path):
    (tmp_path / "plain_loss.py").write_text("def loss(prediction, target):\n    return 0.0\n")
    code = ("import sys; sys.modules['torch'] = None\n"
            "from losslint.harness_cli import harness\n"
            "harness.main(['plain_loss:loss', '--task', 'regression'], prog_name='losslint harness')\n")
    completed = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert completed.returncode == EXIT_USAGE, completed.stderr
    assert "pip install 'torch-losslint[runtime]'" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_the_command_is_registered_in_the_main_cli():
    from losslint.cli import main

    assert main.get_command(None, "harness") is harness
