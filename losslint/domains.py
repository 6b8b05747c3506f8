"""The abstract values the dataflow computes for every expression.

A `Value` says what kind of tensor (or object) an expression holds: its value
domain (logits, probabilities, ...), which operation produced that domain, the
names it flowed through, and the shape / dtype / graph facts known about it.
An expression evaluates to an `AbsVal`: one `Value` per reaching definition, so
rules can require that *every* path agrees before they report (precision first).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import libcst as cst


class Domain(str, Enum):
    LOGITS = "logits"
    PROBABILITIES = "probabilities"
    LOG_PROBABILITIES = "log-probabilities"
    CLASS_INDICES = "class indices"
    FLOAT_TARGETS = "float targets"
    MASK = "mask"
    NUMBER = "python number"
    UNKNOWN = "unknown"


class Form(str, Enum):
    """Hand-written numeric building blocks that the numerics rules look for."""

    EXP = "exp(x)"
    EXP_SUM = "exp(x).sum()"
    ONE_PLUS_EXP = "1 + exp(x)"
    COMPLEMENT = "1 - p"
    LOG_COMPLEMENT = "log(1 - p)"
    LOG_SUM_EXP = "log(sum(exp(x)))"
    SOFTPLUS = "log(1 + exp(x))"
    MAX_SHIFTED = "x - max(x)"
    # The row maximum (or logsumexp) of `form_arg`: subtracting it from `form_arg` gives MAX_SHIFTED.
    MAX_OF = "max(x)"
    # Signs known from the operation, so that exp(-|x|) is not mistaken for an overflowing exp.
    NON_NEGATIVE = "|x|"
    NON_POSITIVE = "-|x|"
    ELEMENTWISE_MINIMUM = "minimum(a, b)"
    ELEMENTWISE_MAXIMUM = "maximum(a, b)"
    # The entries of the target classes, picked out of (log-)probabilities; `form_arg` is the picking
    # subscript or gather call.
    PICKED = "p[range(B), y]"
    # A log-probability times a weight (targets, 1 - y, a constant); the producer is the log's, and
    # `form_arg` is the weight.
    WEIGHTED_LOG = "w * log(p)"
    COUNT = "mask.sum()"
    GUARDED_COUNT = "mask.sum().clamp_min(...)"


@dataclass(frozen=True)
class Step:
    """One hop of an evidence chain: `text` happened at `node`."""

    text: str
    node: cst.CSTNode | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class Padding:
    """What padding positions hold: a literal number when known, and the expression's text."""

    number: float | None
    text: str
    node: cst.CSTNode | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class Value:
    domain: Domain = Domain.UNKNOWN
    # The operation that gave the domain, e.g. "softmax", "sigmoid", "log of softmax",
    # "linear layer"; with the node where it happened.
    producer: str | None = None
    producer_node: cst.CSTNode | None = field(default=None, compare=False, hash=False)
    # Names the value was stored in on its way, oldest first.
    trail: tuple[Step, ...] = ()
    # Dotted name when the expression denotes an importable object (`torch.nn.functional`).
    qualname: str | None = None
    # A non-tensor object: a loss instance, an activation module, a model, a local class/function.
    obj: Any = field(default=None, compare=False, hash=False)
    form: Form | None = None
    # The expression the form is about (e.g. the x of exp(x)).
    form_arg: cst.CSTNode | None = field(default=None, compare=False, hash=False)
    # Extra facts other rule families rely on.
    shape: tuple[str, ...] | None = None
    dtype: str | None = None
    carries_graph: bool | None = None
    per_element: bool = False
    # The producing call was wrapped in a clamp or had an epsilon added.
    guarded: bool = False
    # Index of the function parameter this value came from (for summaries).
    param: int | None = None
    # Masking and padding facts (LL4). `binary`: every element is 0 or 1 (a boolean mask, a 0/1
    # cast of one, or the count of such a mask); a mask known only by its name may be soft.
    binary: bool = False
    # An emptiness check on this path proved the mask / count / selection non-empty.
    nonempty: bool = False
    # The elements a boolean mask selected (`x[mask]`): there may be none.
    selection: bool = False
    # A per-element loss whose ignore_index positions hold zeros that a mean still counts.
    ignored_zeros: bool = False
    # The value targets were padded with (pad_sequence, F.pad, a pad id).
    padding: Padding | None = None
    # Index of the parameter whose sum this value is (for summaries: a count when the caller passes a mask).
    summed_param: int | None = None
    # A sum of a tensor's elements (`x.sum()`, `(x * mask).sum(-1)`): the numerator of a mean.
    total: bool = False
    # Shape and dtype facts (LL3, see `tensors`): where the shape became known (a view, an
    # unpacking of `.shape`, a shape comment) and where the dtype was set explicitly (a cast).
    shape_node: cst.CSTNode | None = field(default=None, compare=False, hash=False)
    dtype_node: cst.CSTNode | None = field(default=None, compare=False, hash=False)
    # For a value that came from outside the function (a parameter, a loop variable, an unpacked or
    # subscripted batch element) under the name of data-set labels: that name (`labels`, `batch["target"]`).
    source_name: str | None = None

    def through(self, name: str, node: cst.CSTNode) -> Value:
        return replace(self, trail=self.trail + (Step(name, node),))

    def but(self, **changes: Any) -> Value:
        return replace(self, **changes)


AbsVal = tuple[Value, ...]

UNKNOWN_VALUE = Value()
UNKNOWN: AbsVal = (UNKNOWN_VALUE,)


def single(value: Value) -> AbsVal:
    return (value,)


# Beyond this many distinct alternatives a value is treated as unknown: rules need agreement
# anyway, and it keeps joins in long functions and loops from growing without bound.
MAX_ALTERNATIVES = 6


def _identity(value: Value) -> tuple:
    """What distinguishes two alternatives for the rules (the trail of names does not)."""
    return (value.domain, value.producer, value.form, value.qualname, id(value.obj) if value.obj is not None else None,
            value.param, value.guarded, value.per_element, value.dtype, value.shape, value.carries_graph,
            value.binary, value.nonempty, value.selection, value.ignored_zeros, value.padding, value.summed_param,
            value.total)


def join(*alternatives: AbsVal | None) -> AbsVal:
    """The values an expression may hold when control flow merges."""
    seen: dict[tuple, Value] = {}
    for alternative in alternatives:
        for value in alternative or ():
            seen.setdefault(_identity(value), value)
    if len(seen) > MAX_ALTERNATIVES:
        return UNKNOWN
    return tuple(seen.values()) or UNKNOWN


def every(absval: AbsVal, predicate: Any) -> bool:
    return bool(absval) and all(predicate(value) for value in absval)


