"""How torch operations transform abstract values (the dataflow's transfer functions).

Each function takes the abstract values of an operation's operands and returns
the abstract value of its result. They are pure: the interpreter records facts.
"""

from __future__ import annotations

import libcst as cst

from losslint.domains import UNKNOWN, AbsVal, Domain, Form, Value

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
        return value.but(guarded=True)
    return _map(absval, one)


def log(arg: AbsVal, node: cst.CSTNode) -> AbsVal:
    def one(value: Value) -> Value:
        if value.domain is Domain.PROBABILITIES:
            if value.form is Form.COMPLEMENT:
                return Value(Domain.LOG_PROBABILITIES, f"log of 1 - {value.producer}", node, form=Form.LOG_COMPLEMENT,
                             form_arg=value.form_arg, carries_graph=value.carries_graph, shape=value.shape)
            return Value(Domain.LOG_PROBABILITIES, f"log of {value.producer}", node,
                         carries_graph=value.carries_graph, shape=value.shape)
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
        if value.form is Form.MAX_SHIFTED:
            # exp(x - max(x)) never overflows: not a raw exponential.
            return Value(carries_graph=value.carries_graph)
        return Value(form=Form.EXP, form_arg=arg_node, producer_node=node, carries_graph=value.carries_graph)
    return _map(arg, one)


def reduce_sum(arg: AbsVal, node: cst.CSTNode) -> AbsVal:
    def one(value: Value) -> Value:
        if value.form is Form.EXP:
            return Value(form=Form.EXP_SUM, form_arg=value.form_arg, producer_node=node)
        if value.domain is Domain.MASK:
            return Value(form=Form.COUNT, producer_node=node, producer="count of the mask")
        if value.domain is Domain.PROBABILITIES:
            return Value(form=Form.EXP_SUM if value.form is Form.EXP else None, carries_graph=value.carries_graph)
        return Value(carries_graph=value.carries_graph)
    return _map(arg, one)


def reduce_mean(arg: AbsVal) -> AbsVal:
    return _map(arg, lambda value: Value(carries_graph=value.carries_graph))


def to_number(arg: AbsVal) -> AbsVal:
    return (Value(Domain.NUMBER, carries_graph=False),)


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
    results: list[Value] = []
    for lv in left:
        for rv in right:
            results.append(_binary_one(module, operator, lv, rv, left_node, right_node, node))
    return tuple(results) or UNKNOWN


def _binary_one(module, operator, lv: Value, rv: Value, left_node, right_node, node) -> Value:
    graph = lv.carries_graph or rv.carries_graph
    if operator == "+":
        for a, b, b_node in ((lv, rv, right_node), (rv, lv, left_node)):
            if a.form is Form.EXP and _is_one(b_node):
                return Value(form=Form.ONE_PLUS_EXP, form_arg=a.form_arg, producer_node=node)
            if a.domain is Domain.PROBABILITIES and _is_small_constant(b, b_node):
                return a.but(guarded=True, trail=())
            if a.form is Form.COUNT and (b.domain is Domain.NUMBER or isinstance(b_node, cst.Float | cst.Integer)):
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
    if operator in ("*", "&") and Domain.MASK in (lv.domain, rv.domain) and lv.domain is rv.domain:
        return Value(Domain.MASK, carries_graph=False)
    return Value(carries_graph=graph, per_element=lv.per_element or rv.per_element)


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
