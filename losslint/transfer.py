"""How torch operations transform abstract values (the dataflow's transfer functions).

Each function takes the abstract values of an operation's operands and returns
the abstract value of its result. They are pure: the interpreter records facts.
"""

from __future__ import annotations

import libcst as cst

from losslint.domains import UNKNOWN, AbsVal, Domain, Form, Value, join
from losslint.objects import Sequence

PROBABILITY_LIKE = (Domain.PROBABILITIES,)


def _map(absval: AbsVal, fn) -> AbsVal:
    return tuple(fn(value) for value in absval) or UNKNOWN


def preserve(absval: AbsVal, **changes) -> AbsVal:
    """Domain-preserving operations (view, reshape, indexing, .float(), ...)."""
    if not changes:
        return tuple(value.but(obj=None, qualname=None) if value.obj is not None else value for value in absval)
    return _map(absval, lambda value: value.but(**changes))


def guard(absval: AbsVal) -> AbsVal:
    """A clamp or an added epsilon: same domain, but the edges moved."""
    def one(value: Value) -> Value:
        if value.form is Form.COUNT:
            return value.but(form=Form.GUARDED_COUNT)
        return value.but(guarded=True, summed_param=None)
    return _map(absval, one)


def log(arg: AbsVal, node: cst.CSTNode) -> AbsVal:
    def one(value: Value) -> Value:
        if value.domain is Domain.PROBABILITIES:
            if value.form is Form.COMPLEMENT:
                return Value(Domain.LOG_PROBABILITIES, f"log of 1 - {value.producer}", node, form=Form.LOG_COMPLEMENT,
                             form_arg=value.form_arg, carries_graph=value.carries_graph, shape=value.shape,
                             guarded=value.guarded)
            picked = value.form is Form.PICKED
            return Value(Domain.LOG_PROBABILITIES, f"log of {value.producer}", node,
                         form=Form.PICKED if picked else None, form_arg=value.form_arg if picked else None,
                         carries_graph=value.carries_graph, shape=value.shape, guarded=value.guarded)
        if value.form is Form.ONE_PLUS_EXP:
            return Value(form=Form.SOFTPLUS, form_arg=value.form_arg, producer_node=node)
        if value.form is Form.EXP_SUM:
            return Value(form=Form.LOG_SUM_EXP, form_arg=value.form_arg, producer_node=node)
        return Value(carries_graph=value.carries_graph)
    return _map(arg, one)


def log1p(arg: AbsVal, node: cst.CSTNode) -> AbsVal:
    def one(value: Value) -> Value:
        if value.form is Form.EXP:
            return Value(form=Form.SOFTPLUS, form_arg=value.form_arg, producer_node=node)
        return Value(carries_graph=value.carries_graph)
    return _map(arg, one)


def exp(arg: AbsVal, arg_node: cst.CSTNode, node: cst.CSTNode) -> AbsVal:
    def one(value: Value) -> Value:
        if value.domain is Domain.LOG_PROBABILITIES:
            return Value(Domain.PROBABILITIES, f"exp of {value.producer}", node, carries_graph=value.carries_graph,
                         shape=value.shape)
        if value.form in (Form.MAX_SHIFTED, Form.NON_POSITIVE) or value.guarded:
            # exp(x - max(x)), exp(-|x|), exp(x.clamp(...)): a bounded exponent, not a raw exponential.
            return Value(carries_graph=value.carries_graph)
        return Value(form=Form.EXP, form_arg=arg_node, producer_node=node, carries_graph=value.carries_graph)
    return _map(arg, one)


def max_of(arg_node: cst.CSTNode | None, node: cst.CSTNode, with_indices: bool) -> AbsVal:
    """`x.max(dim)`, `x.amax(dim)`, `x.logsumexp(dim)`: what `x - <this>` shifts by (a (values, indices) pair
    for `max` with a dim, so that `m, _ = x.max(1)` and `x.max(1)[0]` both give the maximum)."""
    maximum = Value(form=Form.MAX_OF, form_arg=arg_node, producer_node=node)
    if not with_indices:
        return (maximum,)
    indices = Value(Domain.CLASS_INDICES, "argmax", node, dtype="long", carries_graph=False)
    return (maximum.but(obj=Sequence(((maximum,), (indices,)))),)


def non_negative(arg: AbsVal) -> AbsVal:
    """`|x|`, `x ** 2`, `relu(x)`: no longer a domain, but known to be >= 0."""
    return _map(arg, lambda value: Value(form=Form.NON_NEGATIVE, carries_graph=value.carries_graph))


def negate(absval: AbsVal) -> AbsVal:
    """Unary minus: logits stay logits, -|x| is <= 0, -(y * log p) is still a weighted log-probability."""
    def one(value: Value) -> Value:
        if value.domain in (Domain.LOGITS, Domain.NUMBER) or value.per_element or value.form is Form.WEIGHTED_LOG:
            return value.but(trail=())
        if value.form is Form.NON_NEGATIVE:
            return Value(form=Form.NON_POSITIVE, carries_graph=value.carries_graph)
        return Value(carries_graph=value.carries_graph)
    return _map(absval, one)


def pick(absval: AbsVal, node: cst.CSTNode) -> AbsVal:
    """`p[range(B), y]`, `log_p.gather(1, y[:, None])`: the target classes' entries of (log-)probabilities."""
    def one(value: Value) -> Value:
        if value.domain in (Domain.PROBABILITIES, Domain.LOG_PROBABILITIES) and value.form is None:
            return value.but(form=Form.PICKED, form_arg=node)
        return value
    return _map(absval, one)


def reduce_sum(arg: AbsVal, node: cst.CSTNode, mask_node: cst.CSTNode | None = None,
               partial: bool = False) -> AbsVal:
    """A sum; `partial`: over some dimensions only (`.sum(-1)`), so a per-element loss stays per-row."""
    def one(value: Value) -> Value:
        if value.form is Form.EXP:
            return Value(form=Form.EXP_SUM, form_arg=value.form_arg, producer_node=node)
        if value.form is Form.WEIGHTED_LOG:
            return value.but(trail=())  # (y * log p).sum() is still that log-likelihood term
        if value.domain is Domain.MASK:
            return count(value, node, mask_node)
        if value.domain is Domain.PROBABILITIES:
            return Value(form=Form.EXP_SUM if value.form is Form.EXP else None, carries_graph=value.carries_graph)
        if value.per_element and partial:
            return value.but(ignored_zeros=False, trail=(), total=True)
        if value.param is not None:
            return Value(carries_graph=value.carries_graph, summed_param=value.param, total=True)
        return Value(carries_graph=value.carries_graph, total=True)
    return _map(arg, one)


def count(mask: Value, node: cst.CSTNode, mask_node: cst.CSTNode | None, binary: bool | None = None) -> Value:
    """The number of elements a mask selects; `binary` overrides whether it is an integer count."""
    return Value(form=Form.GUARDED_COUNT if mask.nonempty else Form.COUNT, form_arg=mask_node, producer_node=node,
                 producer="count of the mask", binary=mask.binary if binary is None else binary,
                 trail=mask.trail, carries_graph=False)


def reduce_mean(arg: AbsVal, partial: bool = False) -> AbsVal:
    return _map(arg, lambda value: value.but(ignored_zeros=False, trail=()) if value.per_element and partial
                else value.but(trail=()) if value.form is Form.WEIGHTED_LOG
                else Value(carries_graph=value.carries_graph))


def to_number(arg: AbsVal) -> AbsVal:
    """`.item()`, `float(x)`: a python number; a count stays a count."""
    counts = [v.but(domain=Domain.NUMBER) for v in arg if v.form in (Form.COUNT, Form.GUARDED_COUNT)]
    if counts and len(counts) == len(arg):
        return tuple(counts)
    return (Value(Domain.NUMBER, carries_graph=False),)


def refill(arg: AbsVal) -> AbsVal:
    """Some elements replaced (`masked_fill`, `x[m] = v`): padding is gone and a count may no longer be 0."""
    def one(value: Value) -> Value:
        if value.form is Form.COUNT:
            return value.but(form=Form.GUARDED_COUNT)
        return value.but(padding=None) if value.padding is not None else value
    return _map(arg, one)


def cast(arg: AbsVal) -> AbsVal:
    """A dtype cast keeps masks (0/1 stays 0/1), counts and padding; other facts are the caller's business."""
    return preserve(arg)


def _is_one(node: cst.BaseExpression | None) -> bool:
    return isinstance(node, cst.Integer | cst.Float) and node.evaluated_value == 1


def _is_small_constant(value: Value, node: cst.BaseExpression | None) -> bool:
    """An epsilon: a number literal below 1, or a name holding a python number."""
    if isinstance(node, cst.Float | cst.Integer):
        return 0 < float(node.evaluated_value) < 1
    return value.domain is Domain.NUMBER


def _same_text(module: cst.Module, a: cst.CSTNode | None, b: cst.CSTNode | None) -> bool:
    if a is None or b is None:
        return False
    return a is b or module.code_for_node(a) == module.code_for_node(b)


def binary(
    module: cst.Module,
    operator: str,
    left: AbsVal,
    right: AbsVal,
    left_node: cst.BaseExpression | None,
    right_node: cst.BaseExpression | None,
    node: cst.CSTNode,
) -> AbsVal:
    return join(tuple(_binary_one(module, operator, lv, rv, left_node, right_node, node)
                      for lv in left for rv in right))


def _binary_one(module, operator, lv: Value, rv: Value, left_node, right_node, node) -> Value:
    graph = lv.carries_graph or rv.carries_graph
    numeric = _hand_written_maths(module, operator, lv, rv, left_node, right_node, node)
    if numeric is not None:
        return numeric
    if operator == "+":
        for a, b, b_node in ((lv, rv, right_node), (rv, lv, left_node)):
            if a.form is Form.EXP and _is_one(b_node):
                return Value(form=Form.ONE_PLUS_EXP, form_arg=a.form_arg, producer_node=node)
            if a.domain is Domain.PROBABILITIES and _is_small_constant(b, b_node):
                return a.but(guarded=True, trail=())
            if a.form is Form.COUNT:
                # n + eps, n + 1, n + other: no longer the bare count of an empty mask.
                return a.but(form=Form.GUARDED_COUNT)
    if operator == "-":
        if _is_one(left_node) and rv.domain is Domain.PROBABILITIES and rv.form is None:
            return Value(Domain.PROBABILITIES, rv.producer, rv.producer_node, form=Form.COMPLEMENT,
                         form_arg=right_node, carries_graph=graph)
        if lv.domain in (Domain.LOGITS, Domain.UNKNOWN) and _is_max_of(module, right_node, left_node):
            return Value(lv.domain, lv.producer, lv.producer_node, form=Form.MAX_SHIFTED, carries_graph=graph)
        if lv.domain is Domain.LOGITS and rv.domain is Domain.NUMBER:
            return lv.but(trail=())
    if operator == "/":
        if lv.form is Form.EXP and rv.form is Form.EXP_SUM and _same_text(module, lv.form_arg, rv.form_arg):
            return Value(Domain.PROBABILITIES, "softmax (hand-written)", node, form_arg=lv.form_arg,
                         carries_graph=graph)
        if _is_one(left_node) and rv.form is Form.ONE_PLUS_EXP:
            return Value(Domain.PROBABILITIES, "sigmoid (hand-written)", node, form_arg=rv.form_arg,
                         carries_graph=graph)
        if lv.domain is Domain.LOGITS and rv.domain is Domain.NUMBER:
            return lv.but(trail=())  # temperature scaling keeps logits
    if operator == "*" and Domain.NUMBER in (lv.domain, rv.domain):
        other = rv if lv.domain is Domain.NUMBER else lv
        if other.domain is Domain.LOGITS:
            return other.but(trail=())
    if operator in ("*", "&", "|") and Domain.MASK in (lv.domain, rv.domain) and lv.domain is rv.domain:
        return Value(Domain.MASK, "combination of masks", node, carries_graph=False, binary=lv.binary and rv.binary,
                     selection=lv.selection or rv.selection)
    if operator == "-" and _is_one(left_node) and rv.domain is Domain.MASK and rv.binary:
        return rv.but(producer="complement of a mask", producer_node=node, trail=())
    counted = lv if lv.form is Form.COUNT else rv if rv.form is Form.COUNT else None
    if counted is not None and operator in ("*", "/"):
        # n * world_size, n / k: still zero when the mask is empty.
        other = rv if counted is lv else lv
        if other.domain is Domain.NUMBER and (operator == "*" or counted is lv):
            return counted.but(trail=())
    if lv.per_element or rv.per_element:
        # The per-element loss keeps its origin through masks, weights and scaling.
        loss = lv if lv.per_element else rv
        return loss.but(trail=(), domain=Domain.UNKNOWN, form=None,
                        ignored_zeros=loss.ignored_zeros and operator in ("*", "/"), carries_graph=graph)
    if lv.selection or rv.selection:
        # Elementwise with a selection keeps its size: non-empty when a tensor checked non-empty takes part
        # (not a count: a scalar broadcasts against an empty selection).
        nonempty = any(side.nonempty and side.form is None and side.domain is not Domain.NUMBER for side in (lv, rv))
        return Value(carries_graph=graph, selection=True, nonempty=nonempty)
    # A sum scaled, shifted or combined is still the numerator of a mean (`0.5 * x.sum() + reg`).
    return Value(carries_graph=graph, total=lv.total or rv.total)


def _hand_written_maths(module, operator, lv: Value, rv: Value, left_node, right_node, node) -> Value | None:
    """The forms of hand-written exp/log maths (and the signs that make an exponent safe)."""
    if lv.per_element or rv.per_element:
        return None  # a per-element loss keeps its own facts
    graph = lv.carries_graph or rv.carries_graph
    if operator == "+":
        for a, b, b_node in ((lv, rv, right_node), (rv, lv, left_node)):
            if a.form is Form.EXP_SUM and _is_small_constant(b, b_node):
                return a.but(guarded=True, trail=())
    if operator == "-" and lv.form is Form.ELEMENTWISE_MINIMUM and rv.form is Form.ELEMENTWISE_MAXIMUM:
        return Value(form=Form.NON_POSITIVE, carries_graph=graph)
    if operator == "-" and rv.form is Form.MAX_OF and _same_text(module, rv.form_arg, left_node):
        return Value(lv.domain, lv.producer, lv.producer_node, form=Form.MAX_SHIFTED, carries_graph=graph)
    if operator == "/" and lv.form is Form.EXP and rv.form is Form.ONE_PLUS_EXP and _same_text(
            module, lv.form_arg, rv.form_arg):
        # exp(x) / (1 + exp(x)) = sigmoid(x); the form_arg of 1 / (1 + exp(-x)) is -x, of this one x.
        return Value(Domain.PROBABILITIES, "sigmoid (hand-written)", node, form_arg=lv.form_arg, carries_graph=graph)
    if operator == "**" and isinstance(right_node, cst.Integer) and right_node.evaluated_value % 2 == 0:
        return Value(form=Form.NON_NEGATIVE, carries_graph=graph)
    if operator in ("*", "/"):
        signed = lv if lv.form in (Form.MAX_SHIFTED, Form.NON_POSITIVE) else None
        if signed is None and operator == "*" and rv.form in (Form.MAX_SHIFTED, Form.NON_POSITIVE):
            signed = rv
        other = rv if signed is lv else lv
        # A scale or temperature keeps an exponent <= 0 (scales are positive in practice).
        if signed is not None and other.form is None:
            if other.domain is Domain.NUMBER:
                return signed.but(trail=())
            return Value(form=signed.form, carries_graph=graph)
    if operator == "*":
        for log_side, weight, weight_node in ((lv, rv, right_node), (rv, lv, left_node)):
            if weight.domain is Domain.LOG_PROBABILITIES or weight.form is Form.WEIGHTED_LOG:
                continue
            if log_side.domain is Domain.LOG_PROBABILITIES:
                return Value(producer=log_side.producer, producer_node=log_side.producer_node,
                             form=Form.WEIGHTED_LOG, form_arg=weight_node, carries_graph=graph)
            if log_side.form is Form.WEIGHTED_LOG:
                return log_side.but(trail=(), carries_graph=graph)
    if operator == "/" and lv.form is Form.WEIGHTED_LOG and rv.domain is not Domain.LOG_PROBABILITIES:
        return lv.but(trail=(), carries_graph=graph)
    return None


def _is_max_of(module: cst.Module, node: cst.BaseExpression | None, of: cst.BaseExpression | None) -> bool:
    """`x.max(...)`, `x.max(...)[0]`, `x.max(...).values`, `torch.max(x, ...)`, `x.amax(...)` or logsumexp of x."""
    if node is None or of is None:
        return False
    while isinstance(node, cst.Subscript | cst.Attribute) and not (
        isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.attr.value in ("max", "amax")
    ):
        if isinstance(node, cst.Attribute) and node.attr.value not in ("values", "detach", "data"):
            break
        node = node.value
    while isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "detach":
        node = node.func.value
    if not isinstance(node, cst.Call) or not isinstance(node.func, cst.Attribute):
        return False
    name = node.func.attr.value
    if name not in ("max", "amax", "logsumexp"):
        return False
    of_text = module.code_for_node(of)
    receiver_text = module.code_for_node(node.func.value)
    if receiver_text == of_text:
        return True
    return bool(node.args) and module.code_for_node(node.args[0].value) == of_text
