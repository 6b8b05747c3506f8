"""Shared building blocks for the LL2 family: hand-written exp/log maths that overflows or underflows.

The dataflow marks the forms (log of softmax, 1 - sigmoid, exp(x).sum(), a picked target entry, a
weighted log term, ...); this module finds the expressions the LL2 rules anchor on, recognises the
inline calls their fixes rewrite, and spells the rewrites, so that each rule only states its pattern,
its consequence and its fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

from losslint import contracts
from losslint import torch_api as api
from losslint.context import Context
from losslint.domains import Domain, Form, Value, every
from losslint.objects import literal

SOFTMAX = api.SOFTMAX.op
SIGMOID = api.SIGMOID.op

_SOFTMAX_FUNCTIONS = {"torch.softmax": "torch.log_softmax", "torch.nn.functional.softmax":
                      "torch.nn.functional.log_softmax"}
_SIGMOID_FUNCTIONS = frozenset({"torch.sigmoid"})
_F = ("torch.nn.functional", "F")


def kind(value: Value) -> str | None:
    """"softmax" or "sigmoid" for probabilities made by one (a call, a module, a hand-written formula)."""
    if value.domain is not Domain.PROBABILITIES or not value.producer:
        return None
    base = value.producer.split(" (", 1)[0]
    return base if base in (SOFTMAX, SIGMOID) else None


# -- logs of probabilities ---------------------------------------------------


@dataclass(frozen=True)
class LogSite:
    """`torch.log(p)` / `p.log()` where `p` holds probabilities of one kind on every path."""

    node: cst.Call
    argument: cst.BaseExpression
    probabilities: Value  # a representative of the argument's values
    kind: str  # "softmax" or "sigmoid"
    complement: bool  # log(1 - p)
    guarded: bool  # an epsilon was added or a clamp applied before the log


def log_argument(ctx: Context, node: cst.CSTNode) -> cst.BaseExpression | None:
    """`p` in `torch.log(p)` or `p.log()`."""
    fact = ctx.call(node)
    if fact is None:
        return None
    if fact.method == "log" and isinstance(node.func, cst.Attribute):
        return node.func.value
    if fact.qualname in api.LOG_FUNCTIONS:
        return argument(node, 0, "input")
    return None


def log_site(ctx: Context, node: cst.CSTNode) -> LogSite | None:
    arg = log_argument(ctx, node)
    if arg is None:
        return None
    values = ctx.value(arg)
    kinds = {kind(v) for v in values}
    complements = {v.form is Form.COMPLEMENT for v in values}
    if len(kinds) != 1 or None in kinds or len(complements) != 1:
        return None
    guarded = any(v.guarded for v in values)
    if guarded and all(v.carries_graph is False for v in values):
        # With an epsilon the value stays finite, and without autograd (`torch.no_grad()`, e.g. a
        # matching cost) there is no gradient to vanish: nothing left to fix.
        return None
    return LogSite(node, arg, values[0], kinds.pop(), complements.pop(), guarded)


def log_sites(ctx: Context, of: str) -> Iterator[LogSite]:
    """Every log of `of` ("softmax" / "sigmoid") probabilities in the file."""
    for fact in ctx.calls:
        if fact.method == "log" or fact.qualname in api.LOG_FUNCTIONS:
            site = log_site(ctx, fact.node)
            if site is not None and site.kind == of:
                yield site


def same_probabilities(ctx: Context, a: Value, b: Value) -> bool:
    """Two probability values computed by the same call, or by calls written identically."""
    if a.producer_node is None or b.producer_node is None:
        return False
    return a.producer_node is b.producer_node or ctx.text(a.producer_node) == ctx.text(b.producer_node)


def weighted_log_sites(ctx: Context, node: cst.CSTNode) -> tuple[LogSite, ...] | None:
    """The logs behind a weighted log term (`y * torch.log(p)`), when every path has one."""
    values = ctx.value(node)
    if not every(values, lambda v: v.form is Form.WEIGHTED_LOG and v.producer_node is not None):
        return None
    sites = tuple(log_site(ctx, v.producer_node) for v in values)
    return None if any(site is None for site in sites) else sites


# -- guards, inline calls, arguments ------------------------------------------


def argument(call: cst.Call, position: int, keyword: str) -> cst.BaseExpression | None:
    """The argument at `position` (counting positional arguments) or passed as `keyword`."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
    return positional[position].value if position < len(positional) else None


def _is_epsilon(ctx: Context, node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.Float | cst.Integer):
        return 0 < float(node.evaluated_value) < 1
    return every(ctx.value(node), lambda v: v.domain is Domain.NUMBER)


def unguarded(ctx: Context, node: cst.BaseExpression) -> tuple[cst.BaseExpression, bool]:
    """The expression inside epsilons and clamps: `p` and True for `p + 1e-8`, `p.clamp(min=1e-7)`,
    `torch.clamp(p, 1e-7, 1)`; `node` and False otherwise."""
    guarded = False
    while True:
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
            if _is_epsilon(ctx, node.right):
                node, guarded = node.left, True
                continue
            if _is_epsilon(ctx, node.left):
                node, guarded = node.right, True
                continue
        fact = ctx.call(node)
        if fact is not None and fact.method in api.CLAMP_METHODS and isinstance(node.func, cst.Attribute):
            node, guarded = node.func.value, True
            continue
        if fact is not None and fact.qualname in api.CLAMP_FUNCTIONS and argument(node, 0, "input") is not None:
            node, guarded = argument(node, 0, "input"), True
            continue
        return node, guarded


def inline_activation(ctx: Context, node: cst.BaseExpression, of: str) -> cst.Call | None:
    """`node` when it is a softmax / sigmoid call written right here (a function or a tensor method,
    not an nn.Module whose construction decides the dim, not a helper)."""
    fact = ctx.call(node)
    if fact is None or not every(fact.result, lambda v: v.producer_node is node and kind(v) == of):
        return None
    if fact.method == of:
        return node
    functions = _SOFTMAX_FUNCTIONS if of == SOFTMAX else _SIGMOID_FUNCTIONS
    return node if fact.qualname in functions else None


def exp_input(ctx: Context, node: cst.BaseExpression) -> cst.BaseExpression | None:
    """`x` in an inline `torch.exp(x)` / `x.exp()`."""
    fact = ctx.call(node)
    if fact is None:
        return None
    if fact.method == "exp" and isinstance(node.func, cst.Attribute):
        return node.func.value
    if fact.qualname in api.EXP_FUNCTIONS:
        return argument(node, 0, "input")
    return None


@dataclass(frozen=True)
class Reduction:
    """An inline `x.sum(dim, keepdim=...)` / `torch.sum(x, dim, keepdim=...)`."""

    summand: cst.BaseExpression
    dim: cst.BaseExpression | None
    dim_keyword: bool
    keepdim: cst.BaseExpression | None


def sum_call(ctx: Context, node: cst.BaseExpression) -> Reduction | None:
    fact = ctx.call(node)
    if fact is None:
        return None
    if fact.method == "sum" and isinstance(node.func, cst.Attribute):
        summand, offset = node.func.value, 0
    elif fact.qualname in api.SUM_FUNCTIONS and argument(node, 0, "input") is not None:
        summand, offset = argument(node, 0, "input"), 1
    else:
        return None
    known = {"dim", "keepdim", "input"}
    if any(arg.star or (arg.keyword is not None and arg.keyword.value not in known) for arg in node.args):
        return None
    positional = [arg for arg in node.args if arg.keyword is None]
    if len(positional) > offset + 2:
        return None
    dim = argument(node, offset, "dim")
    return Reduction(summand, dim, any(a.keyword is not None and a.keyword.value == "dim" for a in node.args),
                     argument(node, offset + 1, "keepdim"))


def keeps_dim(reduction: Reduction) -> bool:
    return reduction.keepdim is not None and literal(reduction.keepdim) is True


def hand_written_softmax(ctx: Context, node: cst.CSTNode) -> tuple[cst.BaseExpression, Reduction, bool] | None:
    """`exp(x) / exp(x).sum(dim, keepdim=True)` written inline: (x, the sum, whether exp was a method)."""
    if not isinstance(node, cst.BinaryOperation) or not isinstance(node.operator, cst.Divide):
        return None
    numerator = exp_input(ctx, node.left)
    reduction = sum_call(ctx, node.right)
    if numerator is None or reduction is None or reduction.dim is None or not keeps_dim(reduction):
        return None
    denominator = exp_input(ctx, reduction.summand)
    if denominator is None or ctx.text(numerator) != ctx.text(denominator):
        return None
    return numerator, reduction, ctx.call(node.left).method == "exp"


def inside(ctx: Context, inner: cst.CSTNode, outer: cst.CSTNode) -> bool:
    """Whether `inner` is written within `outer` (the same expression, not an earlier statement)."""
    return ctx.span(outer).contains(ctx.span(inner))


# -- spelling rewrites ---------------------------------------------------------


_ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Integer, cst.Float)


def negation(text: str) -> str:
    """`-x` for the source text `x`, simplifying `-(-x)` to `x` (parenthesised unless `x` is atomic)."""
    node = cst.parse_expression(text)
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus) and not node.lpar:
        return cst.Module([]).code_for_node(node.expression)
    return f"-{text}" if isinstance(node, _ATOMS) or node.lpar else f"-({text})"


def dim_text(ctx: Context, reduction: Reduction) -> str:
    if reduction.dim is None:
        return ""
    dim = ctx.text(reduction.dim)
    keepdim = f", keepdim={ctx.text(reduction.keepdim)}" if reduction.keepdim is not None else ""
    return (f"dim={dim}" if reduction.dim_keyword else dim) + keepdim


def functional(ctx: Context, name: str):
    """`F.<name>` spelled with the file's imports, and the import edit when it has none."""
    return ctx.reference(f"torch.nn.functional.{name}", _F)


def log_softmax_call(ctx: Context, softmax: cst.Call) -> tuple[str, tuple]:
    """The log_softmax call with the same arguments and the same namespace as `softmax`."""
    func = softmax.func
    edits: tuple = ()
    if isinstance(func, cst.Attribute):
        new_func: cst.BaseExpression = func.with_changes(attr=cst.Name("log_softmax"))
    else:
        target = _SOFTMAX_FUNCTIONS[ctx.call(softmax).qualname]
        spelled, edits = ctx.reference(target, _F if target.startswith(_F[0] + ".") else None)
        new_func = cst.parse_expression(spelled)
    return ctx.module.code_for_node(softmax.with_changes(func=new_func)).strip(), edits


def log_softmax_rewrite(ctx: Context, site: LogSite) -> tuple[str, tuple, bool] | None:
    """The log of softmax rewritten as log_softmax: (replacement for the log call, import edits, guarded).

    The softmax must be written inside the log, maybe behind an epsilon or clamp, maybe picked at the
    targets (`log(softmax(x)[range(B), y])` becomes `log_softmax(x)[range(B), y]`)."""
    inner, guarded = unguarded(ctx, site.argument)
    picked = None
    if isinstance(inner, cst.Subscript):
        picked, inner = inner, inner.value
        inner, more = unguarded(ctx, inner)
        guarded = guarded or more
    softmax = inline_activation(ctx, inner, SOFTMAX)
    if softmax is not None:
        text, edits = log_softmax_call(ctx, softmax)
    else:
        parts = hand_written_softmax(ctx, inner)
        if parts is None:
            return None
        x, reduction, method = parts
        if method:
            text, edits = f"{ctx.text(x)}.log_softmax({dim_text(ctx, _without_keepdim(reduction))})", ()
        else:
            spelled, edits = ctx.reference("torch.log_softmax")
            text = f"{spelled}({ctx.text(x)}, {dim_text(ctx, _without_keepdim(reduction))})"
    if picked is not None:
        text = ctx.module.code_for_node(picked.with_changes(value=cst.parse_expression(text))).strip()
    return text, edits, guarded


def _without_keepdim(reduction: Reduction) -> Reduction:
    return Reduction(reduction.summand, reduction.dim, reduction.dim_keyword, None)


def sigmoid_input(ctx: Context, node: cst.BaseExpression) -> str | None:
    """The text of `x` for a sigmoid of x written inline: `torch.sigmoid(x)`, `x.sigmoid()`,
    `1 / (1 + torch.exp(-x))`, `torch.exp(x) / (1 + torch.exp(x))`."""
    call = inline_activation(ctx, node, SIGMOID)
    if call is not None:
        inner = contracts.activation_input(ctx, call)
        return ctx.text(inner) if inner is not None else None
    if not isinstance(node, cst.BinaryOperation) or not isinstance(node.operator, cst.Divide):
        return None
    if not every(ctx.value(node), lambda v: kind(v) == SIGMOID and v.producer_node is node):
        return None
    exponent = next((v.form_arg for v in ctx.value(node.right) if v.form is Form.ONE_PLUS_EXP), None)
    if exponent is None or not inside(ctx, exponent, node):
        return None
    # 1 / (1 + exp(e)) is sigmoid(-e); exp(e) / (1 + exp(e)) is sigmoid(e).
    return ctx.text(exponent) if exp_input(ctx, node.left) is not None else negation(ctx.text(exponent))


def logits_text(ctx: Context, probabilities: Value, near: cst.CSTNode) -> str | None:
    """The source text of the logits that the softmax / sigmoid behind `probabilities` was applied to,
    when it was applied in the same function as `near` (a call, a module or a hand-written formula)."""
    producer = probabilities.producer_node
    fact = ctx.call(producer) or ctx.analysis.binops.get(producer)
    site = ctx.call(near) or ctx.analysis.binops.get(near)
    if fact is None or site is None or fact.frame.function is not site.frame.function:
        return None
    if isinstance(producer, cst.Call):
        inner = contracts.activation_input(ctx, producer)
        return ctx.text(inner) if inner is not None else None
    if kind(probabilities) == SIGMOID:
        return sigmoid_input(ctx, producer)
    return ctx.text(probabilities.form_arg) if probabilities.form_arg is not None else None


# -- the whole loss around a term ------------------------------------------------


def _reduction_around(ctx: Context, node: cst.CSTNode) -> tuple[cst.Call, str] | None:
    """`node.mean()` / `node.sum()` / `torch.mean(node)` / `torch.sum(node)` with no other argument."""
    parent = ctx.parent(node)
    if isinstance(parent, cst.Attribute) and parent.value is node and parent.attr.value in ("mean", "sum"):
        call = ctx.parent(parent)
        if isinstance(call, cst.Call) and call.func is parent and not call.args:
            return call, parent.attr.value
    if isinstance(parent, cst.Arg) and parent.keyword is None:
        call = ctx.parent(parent)
        fact = ctx.call(call)
        if fact is not None and len(call.args) == 1 and fact.qualname in ("torch.mean", "torch.sum"):
            return call, fact.qualname.rsplit(".", 1)[1]
    return None


def _negation_around(ctx: Context, node: cst.CSTNode) -> cst.UnaryOperation | None:
    parent = ctx.parent(node)
    if isinstance(parent, cst.UnaryOperation) and isinstance(parent.operator, cst.Minus):
        return parent
    return None


def reduced_loss(ctx: Context, node: cst.CSTNode, negated: bool) -> tuple[cst.CSTNode, str] | None:
    """The loss expression around a log-likelihood term: `-term.mean()`, `(-term).sum()`, `-torch.mean(term)`
    (or, when the term is `negated` already, `term.mean()`): the outermost node and "mean" / "sum"."""
    if not negated:
        minus = _negation_around(ctx, node)
        if minus is not None:
            reduced = _reduction_around(ctx, minus)
            return (reduced[0], reduced[1]) if reduced else None
    reduced = _reduction_around(ctx, node)
    if reduced is None:
        return None
    if negated:
        return reduced
    minus = _negation_around(ctx, reduced[0])
    return (minus, reduced[1]) if minus is not None else None


def reduction_option(reduction: str) -> str:
    return ', reduction="sum"' if reduction == "sum" else ""
