"""The shape, dtype, graph and label facts the dataflow computes for the LL3 / LL5 rules (losslint.tensors)."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from losslint import lint_source
from losslint.interpreter import analyse
from losslint.objects import LossClass
from losslint.tensors import comment_shape


def _value_of(source: str, name: str):
    """The values of the last expression statement `name` in the last function of `source`."""
    module = cst.parse_module(textwrap.dedent(source))
    analysis = analyse(module)
    found = None

    class Find(cst.CSTVisitor):
        def visit_Expr(self, node: cst.Expr) -> None:
            nonlocal found
            if isinstance(node.value, cst.Name) and node.value.value == name:
                found = node.value

    module.visit(Find())
    assert found is not None
    return analysis.value(found)


@pytest.mark.parametrize(("code", "shape"), [
    ("B, T, V = x.shape", ("B", "T", "V")),
    ("B, T, V = x.size()", ("B", "T", "V")),
    ("x = x.view(B, T, V)", ("B", "T", "V")),
    ("x = x.reshape(B, T, -1)", ("B", "T", "?")),
    ("x = x.view((-1, V))", ("?", "V")),
    ("B, T, V = x.shape; x = x.view(-1, V)", ("?", "V")),
    ("B, T, V = x.shape; x = x.transpose(1, 2)", ("B", "V", "T")),
    ("B, T, V = x.shape; x = x.permute(0, 2, 1)", ("B", "V", "T")),
    ("B, T, V = x.shape; x = x.flatten(0, 1)", ("?", "V")),
    ("B, T, V = x.shape; x = x[:, -1]", ("B", "V")),
    ("B, T, V = x.shape; x = x[..., None]", ("B", "T", "V", "1")),
    ("B, T, V = x.shape; x = x.mean(-1)", ("B", "T")),
    ("B, T, V = x.shape; x = x.sum(dim=1, keepdim=True)", ("B", "1", "V")),
    ("B, T, V = x.shape; x = x.argmax(-1)", ("B", "T")),
    ("B, T, V = x.shape; x = x.float().detach() * 2", ("B", "T", "V")),
    ("x = x.view(-1).unsqueeze(1)", ("?", "1")),
    ("x = torch.randn(n, 1).squeeze(-1)", ("n",)),
    ("x = torch.zeros((B, 3), dtype=torch.long)", ("B", "3")),
    ("x = torch.tensor([[0, 1], [1, 0], [1, 1]])", ("3", "2")),
    ("x = x.mT.T", None),
    ("x = head(x)  # [B, T, V]", ("B", "T", "V")),
    ("x = head(x)  # (B, T, C) -> (B, nh, T, hs)", ("B", "nh", "T", "hs")),
    ("x = head(x)  # returns (loss, logits)", None),
    ("B, D = x.shape; x = nn.Linear(D, 1)(x)", ("B", "1")),
])
def test_shapes(code, shape):
    source = f"""
        import torch
        import torch.nn as nn

        def f(x, head, n, B, T, V):
            {code}
            x
        """
    assert {value.shape for value in _value_of(source, "x")} == {shape}


@pytest.mark.parametrize(("code", "dtype"), [
    ("x = x.float()", "float32"),
    ("x = x.long().float().half()", "float16"),
    ("x = x.to(torch.float32)", "float32"),
    ("x = x.to(device, torch.long)", "int64"),
    ("x = x.to(dtype=torch.double)", "float64"),
    ("x = x.to(device)", None),
    ("x = x.type(torch.LongTensor)", "int64"),
    ("x = x.type_as(torch.zeros(3))", "float32"),
    ("x = torch.tensor(x, dtype=torch.float)", "float32"),
    ("x = torch.tensor([1, 0, 1])", "int64"),
    ("x = torch.tensor([0.5, 1])", "float32"),
    ("x = torch.LongTensor(x)", "int64"),
    ("x = torch.randint(0, 10, (4,))", "int64"),
    ("x = torch.arange(n)", "int64"),
    ("x = x.argmax(dim=1)", "int64"),
    ("x = F.one_hot(x, 10)", "int64"),
    ("x = torch.ones_like(x, dtype=torch.bool)", "bool"),
    ("x = x.float().view(-1)[:, None]", "float32"),
])
def test_dtypes(code, dtype):
    source = f"""
        import torch
        import torch.nn.functional as F

        def f(x, n, device):
            {code}
            x
        """
    assert {value.dtype for value in _value_of(source, "x")} == {dtype}


@pytest.mark.parametrize(("code", "graph"), [
    ("x = F.cross_entropy(x, y)", True),
    ("x = F.cross_entropy(x, y).item()", False),
    ("x = float(F.cross_entropy(x, y))", False),
    ("x = F.cross_entropy(x, y).detach()", False),
    ("x = F.cross_entropy(x, y).data", False),
    ("x = F.cross_entropy(x, y) * 2", True),
    ("with torch.no_grad():\n                x = F.cross_entropy(x, y)", False),
    ("with torch.inference_mode():\n                x = F.cross_entropy(x, y) + 1", False),
])
def test_autograd_graph(code, graph):
    source = f"""
        import torch
        import torch.nn.functional as F

        def f(x, y):
            {code}
            x
        """
    assert {value.carries_graph for value in _value_of(source, "x")} == {graph}


def test_no_grad_decorator_switches_recording_off_for_the_whole_function():
    source = """
        import torch
        import torch.nn.functional as F

        @torch.no_grad()
        def f(x, y):
            x = F.cross_entropy(x, y)
            x
        """
    assert {value.carries_graph for value in _value_of(source, "x")} == {False}


@pytest.mark.parametrize(("code", "name"), [
    ("for images, labels in loader:\n                x = labels", "labels"),
    ("x = batch['labels']", "labels"),
    ("x = batch.y.to(device)", "y"),
    ("inputs, x = batch", None),
    ("inputs, gt_labels = batch\n            x = gt_labels", "gt_labels"),
    ("x = targets.view(-1).float()", "targets"),
    ("x = targets * 0.9", None),
    ("x = batch['input_ids']", None),
])
def test_label_sources(code, name):
    source = f"""
        def f(batch, loader, targets, device):
            {code}
            x
        """
    assert {value.source_name for value in _value_of(source, "x")} == {name}


def test_a_loss_class_named_without_a_call_is_a_loss_class():
    source = """
        import torch.nn as nn
        from torch.nn import MSELoss

        def f():
            x = nn.CrossEntropyLoss
            y = MSELoss
            x
        """
    assert [type(value.obj) for value in _value_of(source, "x")] == [LossClass]
    assert _value_of(source, "x")[0].obj.contract.key == "cross_entropy"


def test_a_loss_class_as_a_base_class_is_still_a_torch_base():
    findings = lint_source(textwrap.dedent("""
        import torch.nn as nn
        import torch.nn.functional as F

        class Smoothed(nn.CrossEntropyLoss):
            pass

        def f(x, y):
            return Smoothed(label_smoothing=0.1)(F.softmax(x, dim=1), y)
        """), select=["LL101"])
    assert [finding.code for finding in findings] == ["LL101"]


def test_calls_inside_lambdas_are_facts():
    findings = lint_source(textwrap.dedent("""
        import torch.nn.functional as F

        loss_fn = lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduce=False)
        """), select=["LL503"])
    assert [finding.code for finding in findings] == ["LL503"]


@pytest.mark.parametrize(("comment", "shape"), [
    ("# [B, T, V]", ("B", "T", "V")),
    ("# shape: (N, 1)", ("N", "1")),
    ("# logits: [batch_size, seq_len, vocab_size]", ("batch_size", "seq_len", "vocab_size")),
    ("# (B*T, C)", ("B*T", "C")),
    ("# torch.Size([B, T])", ("B", "T")),
    ("# [B]", ("B",)),
    ("# (N,)", ("N",)),
    ("# (optional)", None),
    ("# see (a, b) and (c, d)", None),
    ("# returns (loss, logits)", None),
    ("# TODO: clean this up (later)", None),
])
def test_shape_comments(comment, shape):
    assert comment_shape(comment) == shape


@pytest.mark.parametrize("size_average", [None, True, False, 0, 1])
@pytest.mark.parametrize("reduce", [None, True, False, 0, 1])
def test_legacy_reduction_is_torchs_own_mapping(size_average, reduce):
    _reduction = pytest.importorskip("torch.nn._reduction")
    import warnings

    from losslint.torch_api import legacy_reduction

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = _reduction.legacy_get_string(size_average, reduce)
    assert legacy_reduction(size_average, reduce) == expected
