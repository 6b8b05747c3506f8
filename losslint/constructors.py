"""Loss classes called with the tensors meant for their `forward` (shared by LL501 and LL502).

`nn.MSELoss(pred, y)` builds a loss module whose `size_average` is `pred` and `reduce` is `y`
instead of computing a loss. A call is taken to pass forward inputs to a loss class when it has
at least two positional arguments and each of them
- is not a literal and not a python number (`nn.CrossEntropyLoss(w, False)` is legacy configuration),
- is not named like the constructor parameter it lands in or another one (`weight`, `class_weights`,
  `self.margin`, `size_average`, `p`): passing configuration through variables is fine,
and at least one of them is known to be a tensor (a model output, a value with a known shape, dtype or
graph) or is named like a prediction or a label (`pred`, `outputs`, `y_hat`, `labels`, `batch["target"]`).
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from losslint import torch_api as api
from losslint.context import Context
from losslint.domains import Domain, Value
from losslint.masks import name_tokens
from losslint.objects import MISSING, literal
from losslint.tensors import is_label_name
from losslint.torch_api import LossContract


@dataclass(frozen=True)
class Misplaced:
    """A positional argument of a loss constructor, and the constructor parameter it lands in."""

    node: cst.BaseExpression
    param: str | None


def forward_inputs(ctx: Context, call: cst.Call, contract: LossContract) -> list[Misplaced] | None:
    """The positional arguments when `call` (a loss class called) passes forward inputs, else None."""
    if any(arg.star for arg in call.args):
        return None
    positional = [arg.value for arg in call.args if arg.keyword is None]
    if len(positional) < 2:
        return None
    params = contract.ctor_params
    for node in positional:
        values = ctx.value(node)
        if literal(node) is not MISSING or any(v.domain is Domain.NUMBER or v.obj is not None or v.qualname
                                               for v in values):
            return None
        if _names_a_parameter(node, params):
            return None
    if not any(_names_a_tensor(node) or all(_is_tensor_evidence(v) for v in ctx.value(node)) for node in positional):
        return None
    return [Misplaced(node, params[index] if index < len(params) else None) for index, node in enumerate(positional)]


def landing(ctx: Context, misplaced: list[Misplaced]) -> str:
    """"`pred` as `size_average`, `y` as `reduce`"."""
    return ", ".join(f"`{ctx.text(item.node)}` as `{item.param}`" if item.param else
                     f"`{ctx.text(item.node)}` as an extra argument (a TypeError)" for item in misplaced)


def called_with_inputs(ctx: Context, call: cst.Call, inner: cst.Call | None = None) -> str:
    """`nn.MSELoss()(pred, y)`: the constructor keeps its keyword options, the tensors go to the call."""
    keywords = [arg for arg in call.args if arg.keyword is not None]
    positional = [arg for arg in call.args if arg.keyword is None]
    constructor = (inner or call).with_changes(args=_without_trailing_comma(keywords))
    called = cst.Call(func=constructor, args=_without_trailing_comma(positional))
    return ctx.module.code_for_node(called)


def _without_trailing_comma(args: list[cst.Arg]) -> list[cst.Arg]:
    if args and not isinstance(args[-1].comma, cst.MaybeSentinel):
        args = [*args[:-1], args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)]
    return args


def _names_a_parameter(node: cst.BaseExpression, params: tuple[str, ...]) -> bool:
    """`weight`, `class_weights`, `self.margin`, `cfg.size_average`, `margin_value`: configuration by name."""
    last = node
    while isinstance(last, cst.Attribute):
        last = last.attr
    if not isinstance(last, cst.Name):
        return False
    name = last.value.lower()
    singular = name[:-1] if name.endswith("s") else name
    for param in params:
        if name == param or singular == param or (len(param) > 2 and (
                singular.endswith("_" + param) or name.startswith(param + "_"))):
            return True
    tokens = set(name_tokens(name))
    return bool(tokens & {"weight", "weights", "margin", "reduction", "reduce", "eps", "beta", "delta"})


def _names_a_tensor(node: cst.BaseExpression) -> bool:
    """`pred`, `y_hat`, `outputs`, `labels`, `batch["target"]`: the names of a loss's two tensors."""
    last = node
    while isinstance(last, cst.Attribute | cst.Subscript):
        last = last.attr if isinstance(last, cst.Attribute) else last.value
    if not isinstance(last, cst.Name):
        return False
    return is_label_name(last.value) or bool(api.PREDICTION_NAME_TOKENS.intersection(name_tokens(last.value)))


def _is_tensor_evidence(value: Value) -> bool:
    if value.domain not in (Domain.UNKNOWN, Domain.NUMBER):
        return True
    return value.shape is not None or value.dtype is not None or value.carries_graph is True or \
        value.source_name is not None or value.producer is not None
