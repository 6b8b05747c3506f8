"""Facts the dataflow records for the rules to query.

The interpreter walks each function once (loops twice) and records, for every
call, binary operation and statement that rules care about, the abstract values
involved and the control context. Rules never walk the tree themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from losslint.domains import UNKNOWN, AbsVal
from losslint.objects import Function, LossObject
from losslint.torch_api import LossContract


@dataclass(frozen=True)
class Frame:
    """Where a fact happened: the enclosing function and compound statements, innermost last."""

    function: Function | None
    blocks: tuple[cst.CSTNode, ...] = ()
    # Qualified names of the context managers around the fact (e.g. "torch.no_grad").
    contexts: tuple[str, ...] = ()

    @property
    def loops(self) -> tuple[cst.CSTNode, ...]:
        return tuple(b for b in self.blocks if isinstance(b, cst.For | cst.While))


@dataclass
class CallFact:
    node: cst.Call
    # Canonical qualified name of the callee when it is an importable object (torch.log, ...).
    qualname: str | None
    # Method name when the call is `receiver.method(...)` on a value.
    method: str | None
    receiver: AbsVal | None
    result: AbsVal
    frame: Frame
    statement: cst.CSTNode | None = None


@dataclass
class BinOpFact:
    node: cst.BinaryOperation | cst.AugAssign
    operator: str  # "+", "-", "*", "/", ...
    left: AbsVal
    right: AbsVal
    result: AbsVal
    frame: Frame
    left_node: cst.BaseExpression | None = None
    right_node: cst.BaseExpression | None = None
    # Set when the operation sits inside a helper and an operand's value comes from this call of it.
    helper_call: cst.Call | None = None
    helper_name: str | None = None


@dataclass
class StatementFact:
    """Assignments and augmented assignments, with the values they store."""

    node: cst.CSTNode
    targets: tuple[cst.BaseExpression, ...]
    value: AbsVal
    frame: Frame


@dataclass
class LossCall:
    """A call of a torch loss, functional or through an instance, with its bound arguments."""

    node: cst.Call
    contract: LossContract
    # How the loss was reached, for messages: "F.cross_entropy", "self.criterion".
    callee_text: str
    instance: LossObject | None
    args: dict[str, cst.BaseExpression]
    values: dict[str, AbsVal]
    options: dict[str, object]
    option_nodes: dict[str, cst.BaseExpression]
    frame: Frame
    # Set when the loss sits inside a helper and the offending value comes from its caller.
    helper_call: cst.Call | None = None
    helper_name: str | None = None
    derived: dict[str, cst.BaseExpression] = field(default_factory=dict)
    # Set when the values come from re-interpreting the enclosing function for one caller.
    context_call: cst.Call | None = None

    def value(self, param: str) -> AbsVal:
        return self.values.get(param, UNKNOWN)

    def arg(self, param: str) -> cst.BaseExpression | None:
        return self.derived.get(param) or self.args.get(param)

    @property
    def input(self) -> AbsVal:
        return self.value(self.contract.input_param)

    @property
    def target(self) -> AbsVal:
        return self.value(self.contract.target_param)

    @property
    def input_arg(self) -> cst.BaseExpression | None:
        return self.arg(self.contract.input_param)

    @property
    def target_arg(self) -> cst.BaseExpression | None:
        return self.arg(self.contract.target_param)

    def option(self, name: str) -> object:
        return self.options.get(name, self.contract.defaults.get(name))

    def expected_input(self):
        return self.contract.expected_input(self._option_view())

    def expected_target(self):
        return self.contract.expected_target(self._option_view())

    def _option_view(self) -> dict[str, object]:
        return {**self.contract.defaults, **self.options}


def bind_arguments(
    call: cst.Call, params: tuple[str, ...], skip_first: int = 0
) -> dict[str, cst.BaseExpression] | None:
    """Map a call's arguments to parameter names (positional by order, keywords by name).

    Returns None when `*args` / `**kwargs` make the binding unknowable.
    """
    bound: dict[str, cst.BaseExpression] = {}
    position = skip_first
    for arg in call.args:
        if arg.star:
            return None
        if arg.keyword is not None:
            bound[arg.keyword.value] = arg.value
        else:
            if position < len(params):
                bound[params[position]] = arg.value
            position += 1
    return bound
