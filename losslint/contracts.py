"""Shared building blocks for the LL1 family: a value whose domain breaks a loss's contract.

Every LL1 rule is "the value reaching this loss parameter was produced as X, the
loss expects Y"; this module finds those places from the dataflow facts and
phrases the evidence, so each rule only states X, Y and the consequence.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

from losslint import torch_api as api
from losslint.context import Context
from losslint.domains import Domain, Value, every
from losslint.facts import LossCall


@dataclass(frozen=True)
class Mismatch:
    loss_call: LossCall
    param: str
    node: cst.BaseExpression
    value: Value  # a representative of the reaching values (they all agree on the domain)


def mismatches(
    ctx: Context,
    *,
    role: str,
    expected: Domain,
    found: Domain,
    producers: tuple[str, ...] | None = None,
    contracts: tuple[str, ...] | None = None,
) -> Iterator[Mismatch]:
    """Loss parameters (`role`: "input" or "target") that expect `expected` but receive `found` on every path.

    `producers` restricts the producing operation (e.g. only "linear layer" counts as provable logits).
    """
    for loss_call in ctx.loss_calls:
        if contracts is not None and loss_call.contract.key not in contracts:
            continue
        wanted = loss_call.expected_input() if role == "input" else loss_call.expected_target()
        if wanted is not expected:
            continue
        param = loss_call.contract.input_param if role == "input" else loss_call.contract.target_param
        node = loss_call.arg(param)
        values = loss_call.value(param)
        if node is None or not every(values, lambda v: v.domain is found):
            continue
        if producers is not None and not every(values, lambda v: any(v.producer and v.producer.startswith(p)
                                                                     for p in producers)):
            continue
        yield Mismatch(loss_call, param, node, values[0])


def message(ctx: Context, mismatch: Mismatch, consequence: str) -> str:
    """"`probs` (softmax, line 12) reaches `crit` (CrossEntropyLoss, built line 5), which expects logits: …"."""
    loss_call = mismatch.loss_call
    wanted = loss_call.expected_input() if mismatch.param == loss_call.contract.input_param \
        else loss_call.expected_target()
    where = "" if mismatch.param == loss_call.contract.input_param else f" as `{mismatch.param}`"
    return (f"{ctx.describe(mismatch.node, mismatch.value)} reaches {ctx.loss_label(loss_call)}{where}, "
            f"which expects {wanted.value}: {consequence}")


def evidence(ctx: Context, mismatch: Mismatch) -> tuple[str, ...]:
    return ctx.loss_evidence(mismatch.loss_call, mismatch.param, mismatch.value)


def activation_input(ctx: Context, node: cst.BaseExpression) -> cst.BaseExpression | None:
    """The tensor an activation call was applied to, when `node` is that call: `x` in softmax(x, 1) / x.softmax(1)."""
    fact = ctx.call(node)
    if fact is None or not any(v.producer_node is node for v in fact.result):
        return None
    if fact.method is not None and isinstance(node.func, cst.Attribute):
        return node.func.value
    positional = [arg for arg in node.args if arg.keyword is None and not arg.star]
    if positional:
        return positional[0].value
    for arg in node.args:
        if arg.keyword is not None and arg.keyword.value == "input":
            return arg.value
    return None


def log_space_call(ctx: Context, node: cst.BaseExpression) -> tuple[str, tuple] | None:
    """`node` (an activation call) rewritten to its log-space counterpart, with any import edit it needs.

    `F.softmax(x, 1)` → `F.log_softmax(x, 1)`, `x.softmax(-1)` → `x.log_softmax(-1)`,
    `torch.sigmoid(x)` → `F.logsigmoid(x)`. None for module calls (`nn.Softmax()(x)`) and the rest.
    """
    fact = ctx.call(node)
    if fact is None or not isinstance(node, cst.Call):
        return None
    if fact.method is not None:
        counterpart = api.LOG_COUNTERPART_METHODS.get(fact.method)
        if counterpart is None or not isinstance(node.func, cst.Attribute):
            return None
        renamed = node.with_changes(func=node.func.with_changes(attr=cst.Name(counterpart)))
        return ctx.module.code_for_node(renamed), ()
    counterpart = api.LOG_COUNTERPART_FUNCTIONS.get(fact.qualname or "")
    if counterpart is None:
        return None
    if counterpart.endswith("logsigmoid") and (len(node.args) != 1 or node.args[0].keyword):
        return None
    spelled, edits = ctx.reference(counterpart, ("torch.nn.functional", "F"))
    renamed = node.with_changes(func=cst.parse_expression(spelled))
    return ctx.module.code_for_node(renamed), edits


def reference_call(ctx: Context, qualname: str, arguments: str) -> tuple[str, tuple]:
    """`F.log_softmax(<arguments>)` spelled with the file's aliases, plus the import edit it may need."""
    spelled, edits = ctx.reference(qualname, ("torch.nn.functional", "F"))
    return f"{spelled}({arguments})", edits
