"""The parent's half of --confirm (no torch): slicing a finding, inferring its inputs, choosing the reference."""

from __future__ import annotations

import textwrap

import pytest

from losslint.api import lint_source
from losslint.runtime.inputs import Role
from losslint.runtime.plan import build
from losslint.runtime.verdict import NotExecutable


def _plan(code: str, rule: str, probe: str, index: int = 0):
    source = textwrap.dedent(code).lstrip()
    findings = [f for f in lint_source(source, "example.py", select=[rule]) if f.code == rule]
    assert findings, f"{rule} must report this example"
    return build(findings[index], source, probe)


def _roles(plan) -> dict[str, Role]:
    return {spec.name: spec.role for spec in plan.inputs}


def test_direct_form_keeps_the_expression_and_makes_the_parameter_an_input():
    plan = _plan("""
        import torch
        def f(logits):
            return torch.log(torch.softmax(logits, dim=-1))
    """, "LL201", "overflow")
    assert "torch.log(torch.softmax(logits, dim=-1))" in plan.program.source
    assert _roles(plan) == {"logits": Role.LOGITS}
    assert plan.reference_kind == "fix" and "log_softmax" in plan.reference.source


def test_aliases_become_canonical_names_and_module_constants_come_along():
    plan = _plan("""
        import torch
        from torch.nn.functional import softmax as sm
        EPS = 1e-8
        def f(z):
            p = sm(z, dim=1)
            return torch.log(p + EPS)
    """, "LL201", "overflow")
    assert "p = torch.nn.functional.softmax(z, dim=1)" in plan.program.source
    assert "EPS = 1e-8" in plan.program.source
    assert "sm(" not in plan.program.source


def test_attributes_are_rebuilt_from_their_constructor_and_layers_with_weights_are_cut():
    plan = _plan("""
        import torch
        from torch import nn
        class Tagger(nn.Module):
            def __init__(self):
                super().__init__()
                self.proj = nn.Linear(32, 10)
                self.normalize = nn.Softmax(dim=-1)
            def step(self, hidden):
                return torch.log(self.normalize(self.proj(hidden)))
    """, "LL201", "overflow")
    source = plan.program.source
    assert "self_normalize = torch.nn.Softmax(dim=-1)" in source
    assert "Linear" not in source and "self.proj" not in source
    assert _roles(plan) == {"self_proj_hidden": Role.LOGITS}


def test_models_and_batches_are_never_run_but_stand_in_as_inputs():
    plan = _plan("""
        import torch.nn.functional as F
        def step(model, batch):
            features, labels = batch
            out = model(features)
            return F.cross_entropy(F.softmax(out.logits, dim=1), labels)
    """, "LL101", "wrong-input-domain")
    source = plan.program.source
    assert "model(" not in source and "batch" not in source
    roles = _roles(plan)
    assert roles["labels"] is Role.CLASS_INDICES
    assert roles["out_logits"] is Role.LOGITS


def test_a_loss_in_a_helper_is_sliced_in_the_helper_with_what_the_caller_passes():
    plan = _plan("""
        import torch
        import torch.nn.functional as F
        def classification_loss(scores, labels):
            return F.cross_entropy(scores, labels)
        def step(logits, labels):
            return classification_loss(torch.softmax(logits, dim=1), labels)
    """, "LL101", "wrong-input-domain")
    specs = {spec.name: spec for spec in plan.inputs}
    assert specs["scores"].role is Role.PROBABILITIES and specs["scores"].activation == "softmax"
    # The reference gives the loss what it expects: the logits behind the softmax.
    assert specs["scores"].reference_role is Role.LOGITS
    assert plan.reference_kind == "correct domain"


def test_without_a_fix_the_reference_converts_the_value_to_the_expected_domain():
    plan = _plan("""
        import torch
        from torch import nn
        class Classifier(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(64, 10)
                self.softmax = nn.Softmax(dim=1)
                self.criterion = nn.CrossEntropyLoss()
            def step(self, features, labels):
                probs = self.softmax(self.fc(features))
                return self.criterion(probs, labels)
    """, "LL101", "wrong-input-domain")
    assert "self_softmax(self_fc_features)" in plan.program.source
    assert "probs = self_fc_features" in plan.reference.source


def test_helpers_called_by_the_slice_come_along():
    plan = _plan("""
        import torch
        def scale(x, t=2.0):
            return x / t
        def f(logits):
            return torch.log(torch.softmax(scale(logits), -1))
    """, "LL201", "overflow")
    assert "def scale(x, t=2.0):" in plan.program.source
    assert _roles(plan) == {"logits": Role.LOGITS}


def test_roles_come_from_how_the_slice_uses_its_inputs():
    plan = _plan("""
        import torch
        def bce(logits, y, temperature=2.0):
            p = torch.sigmoid(logits / temperature)
            return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    """, "LL204", "overflow")
    specs = {spec.name: spec for spec in plan.inputs}
    assert specs["logits"].role is Role.LOGITS
    assert specs["y"].role is Role.BINARY_TARGETS
    assert specs["temperature"].role is Role.NUMBER and specs["temperature"].value == 2.0


def test_an_epsilon_without_a_default_gets_a_typical_epsilon():
    plan = _plan("""
        import torch
        def f(logits, eps):
            smoothed = logits * (1 - eps)
            return torch.log(torch.softmax(smoothed, -1))
    """, "LL201", "overflow")
    specs = {spec.name: spec for spec in plan.inputs}
    assert specs["eps"].role is Role.NUMBER and specs["eps"].value == pytest.approx(1e-8)


def test_shape_comments_pin_the_shape():
    plan = _plan("""
        import torch.nn.functional as F
        def step(model, x, y):
            pred = model(x)  # [B, 1]
            return F.mse_loss(pred, y.view(-1))
    """, "LL304", "broadcast")
    assert {spec.name: spec.shape for spec in plan.inputs}["model_x"] == ("B", "1")


HOSTILE = {
    "a file write": ('p = torch.softmax(x + len(open("pwned", "w").write("x")), -1)', "`open`"),
    "a process": ('p = torch.softmax(x * subprocess.call(["touch", "pwned"]), -1)', "`subprocess`"),
    "os through an alias": ('p = torch.softmax(x + nn.system("touch pwned"), -1)', "`os`"),
    "builtins through the mro": ("p = torch.softmax(x.__class__.__mro__[-1], -1)", "`__class__`"),
    "numpy": ("p = torch.softmax(x + np.log(2), -1)", "`numpy.log`"),
    "torch.load": ('p = torch.softmax(x + torch.load("w.pt"), -1)', "`torch.load`"),
}


@pytest.mark.parametrize(("line", "named"), list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_slice_touching_anything_outside_the_allow_list_is_not_executable(line, named):
    source = (
        "import subprocess\nimport numpy as np\nimport os as nn\nimport torch\n\n"
        f"def f(x):\n    {line}\n    return torch.log(p)\n"
    )
    finding = [f for f in lint_source(source, "hostile.py", select=["LL201"])][0]
    with pytest.raises(NotExecutable, match=named.replace("`", "").split(".")[0]) as raised:
        build(finding, source, "overflow")
    assert named.strip("`").split(".")[0] in str(raised.value)


def test_an_input_whose_role_cannot_be_inferred_is_named():
    source = textwrap.dedent("""
        import torch
        def f(logits, mystery):
            return torch.log(torch.softmax(logits, -1)) @ mystery
    """).lstrip()
    finding = lint_source(source, "x.py", select=["LL201"])[0]
    plan = build(finding, source, "overflow")  # the flagged expression does not need `mystery`
    assert _roles(plan) == {"logits": Role.LOGITS}
