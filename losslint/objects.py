"""Non-tensor things an expression can denote: loss instances, layers, models, helpers.

They ride on `Value.obj` so that assignments, attributes and calls carry them
like any other value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import libcst as cst

from losslint.torch_api import LossContract, Producer

if TYPE_CHECKING:
    from losslint.domains import AbsVal


MISSING = object()  # an argument whose value is not a literal


@dataclass(eq=False)
class LossObject:
    """An instance of a torch loss module, e.g. `nn.CrossEntropyLoss(ignore_index=0)`."""

    contract: LossContract
    node: cst.Call
    args: dict[str, cst.BaseExpression]
    options: dict[str, object]


@dataclass(eq=False)
class LossClass:
    """A torch loss class itself, not instantiated (`self.loss = nn.CrossEntropyLoss`)."""

    contract: LossContract
    node: cst.CSTNode


@dataclass(eq=False)
class Layer:
    """An instance of an nn.Module whose output domain is known (nn.Softmax, nn.Linear, ...)."""

    producer: Producer
    node: cst.Call
    qualname: str


@dataclass(eq=False)
class Sequential:
    """`nn.Sequential(...)`: calling it yields what its last layer yields."""

    last: AbsVal | None
    node: cst.Call


@dataclass(eq=False)
class PatchedModel:
    """A model of unknown class whose final layer was replaced (`model.fc = nn.Linear(512, 10)`)."""

    head: AbsVal
    attribute: str


@dataclass(eq=False)
class Function:
    """A function or method defined in the file."""

    node: cst.FunctionDef
    owner: ClassInfo | None = None
    defaults: dict[str, AbsVal] = field(default_factory=dict)
    closure: dict[str, AbsVal] | None = None

    @property
    def name(self) -> str:
        return self.node.name.value


@dataclass(eq=False)
class ClassInfo:
    """A class defined in the file: its methods, bases and what `self.<attr>` holds."""

    node: cst.ClassDef
    bases: tuple[AbsVal, ...]
    methods: dict[str, Function] = field(default_factory=dict)
    attributes: dict[str, AbsVal] = field(default_factory=dict)
    analysed: bool = False

    @property
    def name(self) -> str:
        return self.node.name.value

    def find_method(self, name: str) -> Function | None:
        if name in self.methods:
            return self.methods[name]
        for base in self.bases:
            for value in base:
                if isinstance(value.obj, ClassInfo) and value.obj is not self:
                    found = value.obj.find_method(name)
                    if found:
                        return found
        return None

    def find_attribute(self, name: str) -> AbsVal | None:
        if name in self.attributes:
            return self.attributes[name]
        for base in self.bases:
            for value in base:
                if isinstance(value.obj, ClassInfo) and value.obj is not self:
                    found = value.obj.find_attribute(name)
                    if found is not None:
                        return found
        return None

    def torch_bases(self) -> list[str]:
        return [value.qualname for base in self.bases for value in base if value.qualname]


@dataclass(eq=False)
class Instance:
    """An instance of a class defined in the file (`model = Net()`)."""

    cls: ClassInfo
    node: cst.Call


@dataclass(eq=False)
class BoundMethod:
    function: Function
    receiver: Instance | None


@dataclass(eq=False)
class Sequence:
    """A tuple or list literal whose elements are tracked (`return logits, probs`)."""

    items: tuple[AbsVal, ...]


@dataclass(eq=False)
class Mapping:
    """A dict literal with string keys (`return {"logits": x}`)."""

    items: dict[str, AbsVal]


@dataclass(eq=False)
class Iterable:
    """Something a for loop walks whose steps are known: a DataLoader with a local collate_fn yields
    what that function returns (`for inputs, labels in loader:`)."""

    element: AbsVal


def literal(node: cst.BaseExpression | None) -> Any:
    """The python value of a literal expression, or MISSING."""
    if node is None:
        return MISSING
    if isinstance(node, cst.Integer | cst.Float):
        return node.evaluated_value
    if isinstance(node, cst.SimpleString):
        return node.evaluated_value
    if isinstance(node, cst.Name) and node.value in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[node.value]
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        inner = literal(node.expression)
        if isinstance(inner, int | float) and not isinstance(inner, bool):
            return -inner
    return MISSING
