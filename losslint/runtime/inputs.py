"""What each synthetic input of a slice is: its role, shape and dtype, inferred without torch.

Every cut (a parameter, `self.x`, `model(x)`, `batch["labels"]`, ...) becomes an input
whose *role* comes, in order, from:

1. the static analysis (the value's domain: logits, probabilities from a softmax,
   class indices, a mask, ...);
2. a literal default of the parameter (`T=2.0`);
3. how the slice uses it, read from the loss contracts in `losslint.torch_api`
   (cross_entropy's input → logits, its target → class indices, BCE's target → 0/1
   floats, `weight=` → class weights, ...), from activations (`softmax(x)` → x is
   logits, and its `dim` is the class axis), from indexing (`p[range(B), y]`,
   `gather(1, y)`, `one_hot(y)` → class indices), from masking (`x[m]`, `~m`,
   `masked_fill(m, ...)`) and from arithmetic with scalars;
4. its name, for the few conventional ones (`mask`, `temperature`, `eps`, `device`).

An input whose role stays unknown makes the finding not executable. Shapes: the
rank and class axis come from `B, T, V = x.shape`, shape comments such as
`# [B, T, V]`, the analysis' shape facts and `dim` arguments; where they stay open
the worker tries the few layouts that remain (2-D first) and keeps the first one
the slice runs on.
"""

from __future__ import annotations

import ast
import re
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from losslint import torch_api as api
from losslint.domains import AbsVal, Domain
from losslint.objects import MISSING
from losslint.runtime.verdict import NotExecutable

if TYPE_CHECKING:
    from losslint.runtime.slicer import Slice


class Role(str, Enum):
    LOGITS = "logits"  # float scores: the variable the stress schedules drive
    PROBABILITIES = "probabilities"  # softmax/sigmoid of a logits root
    LOG_PROBABILITIES = "log-probabilities"  # log_softmax/logsigmoid of a logits root
    CLASS_INDICES = "class indices"
    BINARY_TARGETS = "binary targets"  # 0/1 floats of the prediction's shape
    PROBABILITY_TARGETS = "probability targets"  # a distribution over the class axis
    LOG_PROBABILITY_TARGETS = "log-probability targets"
    REGRESSION_TARGETS = "regression targets"  # floats of the prediction's shape
    VALUES = "values"  # per-element non-negative floats (e.g. a per-token loss)
    SIGNS = "±1 labels"  # labels multiplying a score, as in log(1 + exp(-y * margin))
    MASK = "mask"
    WEIGHT = "class weights"
    NUMBER = "number"
    DEVICE = "device"


# Roles whose tensor carries the class axis.
FULL_SHAPE_ROLES = frozenset({
    Role.LOGITS, Role.PROBABILITIES, Role.LOG_PROBABILITIES, Role.PROBABILITY_TARGETS,
    Role.LOG_PROBABILITY_TARGETS, Role.BINARY_TARGETS, Role.REGRESSION_TARGETS, Role.SIGNS,
})
# Roles that depend on a logits root the schedules drive.
DRIVEN_ROLES = frozenset({Role.LOGITS, Role.PROBABILITIES, Role.LOG_PROBABILITIES})
TARGET_ROLES = frozenset({Role.CLASS_INDICES, Role.BINARY_TARGETS, Role.PROBABILITY_TARGETS,
                          Role.LOG_PROBABILITY_TARGETS, Role.REGRESSION_TARGETS})

BATCH, CLASSES, TIME = 16, 10, 4

# What takes scores (logits) as its argument: the producers in torch_api (softmax, sigmoid, log_softmax,
# logsigmoid: their `dim` is the class axis), plus the exponentials the numerics rules look at.
_SCORE_TAKERS = {name: ("dim" if name in api.DIM_ACTIVATION_FUNCTIONS else None)
                 for name, producer in api.FUNCTION_PRODUCERS.items() if producer.domain is not Domain.LOGITS}
_ACTIVATION_FUNCTIONS = {
    **_SCORE_TAKERS,
    **{name: None for name in api.EXP_FUNCTIONS},
    "torch.logsumexp": "dim", "torch.nn.functional.softmin": "dim", "torch.nn.functional.softplus": None,
    "torch.tanh": None,
}
_ACTIVATION_METHODS = {
    **{name: ("dim" if name in api.DIM_ACTIVATION_METHODS else None) for name in api.METHOD_PRODUCERS},
    "logsumexp": "dim", "exp": None,
}
# Activation modules: their constructor's first argument is the `dim`, where they have one.
_ACTIVATION_MODULES = {
    name: (0 if name in api.DIM_ACTIVATION_MODULES else None) for name, producer in api.MODULE_PRODUCERS.items()
    if producer.domain is not Domain.LOGITS
}
# Methods and functions that hand the same values on (reshaped, retyped): a role flows through them.
_FLOW_METHODS = frozenset({
    "view", "reshape", "float", "double", "half", "bfloat16", "to", "type_as", "contiguous", "squeeze",
    "unsqueeze", "flatten", "transpose", "permute", "detach", "clone", "long", "int", "view_as", "reshape_as",
    "expand", "expand_as", "movedim", "swapaxes", "cpu", "requires_grad_", "unflatten", "narrow", "t",
})
_FLOW_FUNCTIONS = frozenset({
    "torch.reshape", "torch.flatten", "torch.transpose", "torch.permute", "torch.squeeze", "torch.unsqueeze",
    "torch.clone", "torch.narrow", "torch.movedim", "torch.tensor", "torch.as_tensor",
})
_INDEX_ARGUMENT = {"gather": 1, "scatter": 1, "scatter_add": 1, "take_along_dim": 0}
_INDEX_FUNCTIONS = {"torch.gather": 2, "torch.take_along_dim": 1, "torch.nn.functional.one_hot": 0}

_MASK_NAME = re.compile(r"(^|_)(mask|masks|valid|keep|padding_mask|attn_mask|attention_mask)($|_)", re.I)
_NUMBER_NAME = re.compile(r"^(temp|temperature|tau|scale|alpha|beta|gamma|smoothing|lam|lambda_|coef"
                          r"|factor|eps|epsilon)$", re.I)
_INDEX_VALUE_NAME = re.compile(r"^(pad|pad_id|pad_idx|pad_index|pad_token_id|padding_idx|padding_value|ignore_index"
                               r"|ignore_idx|ignore_id|ignore_label)$", re.I)
_LABEL_NAME = re.compile(r"^(y|labels?|targets?|signs?)$", re.I)
_PROBABILITY_NAME = re.compile(r"prob|dist|soft", re.I)
_EPSILON_NAME = re.compile(r"^(eps|epsilon)$", re.I)
_DEVICE_NAME = re.compile(r"^device$", re.I)
_SHAPE_COMMENT = re.compile(r"[\[(]\s*([A-Za-z_0-9]+(?:\s*[,x×]\s*[A-Za-z_0-9]+)+)\s*[\])]")
_CLASS_SYMBOLS = frozenset({"K", "C", "V", "NUM_CLASSES", "N_CLASSES", "CLASSES", "VOCAB", "VOCAB_SIZE", "LABELS"})
_CLASS_WORDS = re.compile(r"class|tag|label|vocab|token|categor", re.I)
_BATCH_SYMBOLS = frozenset({"B", "N", "BS", "BATCH", "BATCH_SIZE"})
_TIME_SYMBOLS = frozenset({"T", "L", "S", "SEQ", "SEQ_LEN", "LEN", "LENGTH", "H", "W"})


def is_class_symbol(symbol: str) -> bool:
    """`V`, `C`, `num_classes`, `num_tags`, `vocab_size`: a dimension that counts classes."""
    return symbol.upper() in _CLASS_SYMBOLS or bool(_CLASS_WORDS.search(symbol))


def class_axis_of(shape: tuple[str, ...]) -> int:
    return next((i for i, symbol in enumerate(shape) if is_class_symbol(symbol)), len(shape) - 1)


@dataclass(frozen=True)
class InputSpec:
    name: str
    role: Role
    source: str  # the user's text this input stands for
    line: int = 0
    activation: str | None = None  # softmax / sigmoid / log_softmax / logsigmoid for derived roles
    shape: tuple[str, ...] | None = None  # a pinned symbolic shape, e.g. ("B", "T", "V")
    value: Any = None  # for numbers and devices
    floating_mask: bool = False
    # The role in reference runs, when the reference needs the value in the domain the loss expects.
    reference_role: Role | None = None
    # Nothing said what it is: a plain float tensor stands in (lenient probes only).
    guessed: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["role"] = self.role.value
        data["reference_role"] = self.reference_role.value if self.reference_role else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSpec:
        data = dict(data)
        data["role"] = Role(data["role"])
        data["reference_role"] = Role(data["reference_role"]) if data.get("reference_role") else None
        data["shape"] = tuple(data["shape"]) if data.get("shape") is not None else None
        return cls(**data)

    def describe(self) -> str:
        extra = f" ({self.activation})" if self.activation else ""
        value = f" = {self.value!r}" if self.role in (Role.NUMBER, Role.DEVICE) else ""
        return f"`{self.source}` as {self.role.value}{extra}{value}"


@dataclass(frozen=True)
class Layout:
    """Sizes and the class axis the worker builds the tensors with."""

    rank: int = 2
    class_axis: int = 1
    batch: int = BATCH
    classes: int = CLASSES
    time: int = TIME
    # Masks and per-element values: one per prediction (False) or one per entry of the prediction (True,
    # as for a regression or binary loss with reduction="none").
    per_entry: bool = False

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> Layout:
        return cls(**data)

    def full_shape(self) -> tuple[int, ...]:
        other = [self.batch] + [self.time] * (self.rank - 2)
        other.insert(self.class_axis, self.classes)
        return tuple(other)

    def element_shape(self) -> tuple[int, ...]:
        return tuple(size for axis, size in enumerate(self.full_shape()) if axis != self.class_axis)

    def size_of(self, symbol: str) -> int:
        upper = symbol.upper()
        if symbol.isdigit():
            return int(symbol)
        if upper in _BATCH_SYMBOLS:
            return self.batch
        if is_class_symbol(symbol):
            return self.classes
        if upper in _TIME_SYMBOLS:
            return self.time
        return 5


@dataclass
class _Votes:
    roles: dict[str, list[tuple[int, Role, str | None]]] = field(default_factory=dict)
    axes: dict[str, int] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)
    class_counts: set[int] = field(default_factory=set)
    options: dict[str, Any] = field(default_factory=dict)

    def vote(self, name: str, priority: int, role: Role, activation: str | None = None) -> None:
        self.roles.setdefault(name, []).append((priority, role, activation))


# Vote priorities: a stronger use wins over a weaker one.
_P_INDEX, _P_TARGET, _P_INPUT, _P_SIGNS, _P_WEIGHT, _P_ACTIVATION, _P_VALUES = 80, 70, 60, 58, 55, 50, 45
_P_MASK, _P_PRODUCT_TARGET, _P_DEVICE, _P_VALUES_REDUCED, _P_NUMBER, _P_HINT = 40, 35, 30, 25, 20, 15
# Weakest: an input only ranked (`x.argmax(-1)`) holds scores; one only measured (`x.size(-1)`) is any tensor.
_P_COMPARED, _P_SCORES, _P_SHAPE = 22, 12, 10


@dataclass(frozen=True)
class Inputs:
    specs: tuple[InputSpec, ...]
    layouts: tuple[Layout, ...]


def infer(piece: Slice, lenient: bool = False) -> Inputs:
    """The inputs of a slice and the layouts to try, or NotExecutable naming the input it cannot place.

    `lenient`: an input whose role stays unknown becomes a plain float tensor instead.
    """
    tree = ast.parse(piece.source)
    facts = {name: fact[0] for name, cut in piece.cuts.items() if (fact := _role_from_facts(cut.values))}
    votes = _Usage(tree, set(piece.cuts), facts).run()
    specs = []
    for name, cut in piece.cuts.items():
        try:
            specs.append(_spec(name, cut, votes))
        except NotExecutable:
            if not lenient:
                raise
            specs.append(InputSpec(name=name, role=Role.REGRESSION_TARGETS, source=cut.text, line=cut.line,
                                   shape=_pinned_shape(cut.values, cut.comment), guessed=True))
    return Inputs(tuple(specs), _layouts(specs, votes))


def _spec(name: str, cut, votes: _Votes) -> InputSpec:
    shape = _pinned_shape(cut.values, cut.comment)
    if shape is None and name in votes.ranks and not any(
            role in FULL_SHAPE_ROLES or role is Role.CLASS_INDICES for _, role, _ in votes.roles.get(name, ())):
        # Unpacked (`B, D = x.shape`) but otherwise only measured: any tensor of that rank.
        shape = ("B", *(f"D{i}" for i in range(1, votes.ranks[name])))
    base = dict(name=name, source=cut.text, line=cut.line, shape=shape)
    default = cut.default
    if isinstance(default, bool) or (isinstance(default, int | float) and default is not MISSING):
        return InputSpec(role=Role.NUMBER, value=default, **base)
    fact = _role_from_facts(cut.values)
    best = _best(votes, name)
    if fact is not None:
        role, activation = fact
        if role is Role.BINARY_TARGETS and best is not None:
            role = best[1]  # float targets: the loss says which kind
        elif role is Role.MASK and best is not None and best[0] >= _P_INPUT:
            role, activation = best[1], best[2]  # a mask by its name only, but a loss says what it is
        return InputSpec(role=role, activation=activation, **base)
    if best is not None:
        priority, role, activation = best
        if role is Role.NUMBER:
            return InputSpec(role=role, value=_neutral_number(name, votes), **base)
        if role is Role.DEVICE:
            return InputSpec(role=role, value="cpu", **base)
        if role is Role.MASK:
            return InputSpec(role=role, floating_mask=False, **base)
        return InputSpec(role=role, activation=activation, **base)
    if default is None:
        return InputSpec(role=Role.NUMBER, value=None, **base)
    line = f" (line {cut.line})" if cut.line else ""
    raise NotExecutable(f"could not infer what `{cut.text}`{line} holds from how the slice uses it")


def _best(votes: _Votes, name: str):
    candidates = votes.roles.get(name)
    if not candidates:
        return None
    return max(candidates, key=lambda item: item[0])


def _neutral_number(name: str, votes: _Votes) -> float:
    """A scalar that leaves the maths as written: 1 for factors and divisors, 0 for offsets, 1e-8 for an eps."""
    return votes.options.get(f"neutral:{name}", 1.0)


def _role_from_facts(values: AbsVal) -> tuple[Role, str | None] | None:
    if not values or any(v.obj is not None or v.qualname is not None for v in values):
        return None
    domains = {v.domain for v in values}
    if len(domains) != 1:
        return None
    domain = domains.pop()
    producers = " ".join(v.producer or "" for v in values)
    if domain is Domain.LOGITS:
        return Role.LOGITS, None
    if domain is Domain.PROBABILITIES:
        return Role.PROBABILITIES, "sigmoid" if "sigmoid" in producers else "softmax"
    if domain is Domain.LOG_PROBABILITIES:
        return Role.LOG_PROBABILITIES, "logsigmoid" if "sigmoid" in producers else "log_softmax"
    if domain is Domain.CLASS_INDICES:
        return Role.CLASS_INDICES, None
    if domain is Domain.FLOAT_TARGETS:
        return Role.BINARY_TARGETS, None
    if domain is Domain.MASK:
        return Role.MASK, None
    return None


def _pinned_shape(values: AbsVal, comment: str) -> tuple[str, ...] | None:
    shapes = {v.shape for v in values if v.shape}
    if len(shapes) == 1 and len(values) == len([v for v in values if v.shape]):
        return tuple(str(s) for s in shapes.pop())
    match = _SHAPE_COMMENT.search(comment or "")
    if match:
        return tuple(part.strip() for part in re.split(r"[,x×]", match.group(1)))
    return None


def _layouts(specs: list[InputSpec], votes: _Votes) -> tuple[Layout, ...]:
    full = [s for s in specs if s.role in FULL_SHAPE_ROLES]
    elements = [s for s in specs if s.role in (Role.VALUES, Role.MASK, Role.CLASS_INDICES)]
    pinned_ranks = {len(s.shape) for s in full if s.shape}
    vote_ranks = {votes.ranks[s.name] for s in full if s.name in votes.ranks}
    # An element-wise input (class indices, a mask) of rank r means predictions of rank r + 1.
    element_ranks = {len(s.shape) + 1 for s in elements if s.shape} | {
        votes.ranks[s.name] + 1 for s in elements if s.name in votes.ranks}
    if not full:
        ranks = sorted(element_ranks) or [3, 2]
    else:
        ranks = sorted(pinned_ranks) or sorted(vote_ranks) or sorted(element_ranks) or [2, 3]
    axes_by_rank: dict[int, list[int]] = {}
    for rank in ranks:
        axes: list[int] = []
        for spec in full:
            if spec.shape and len(spec.shape) == rank:
                axes.append(class_axis_of(spec.shape))
            if spec.name in votes.axes:
                axes.append(votes.axes[spec.name] % rank)
        # Votes first; a 3-D prediction may still hold its classes in either place.
        axes += [rank - 1, 1] if rank == 3 else [rank - 1]
        axes_by_rank[rank] = list(dict.fromkeys(axes))
    classes = [CLASSES] + sorted(k for k in votes.class_counts if 2 <= k <= 4096 and k not in (CLASSES, BATCH, TIME))
    layouts = [Layout(rank, axis, classes=k) for rank in ranks for axis in axes_by_rank[rank] for k in classes[:3]]
    if full and elements and not any(s.role is Role.CLASS_INDICES for s in specs):
        layouts += [replace(layout, per_entry=True) for layout in layouts]
    return tuple(dict.fromkeys(layouts))[:12]


class _Usage:
    """Reads the program's syntax for how each input is used."""

    def __init__(self, tree: ast.Module, inputs: set[str], facts: dict[str, Role] | None = None) -> None:
        self.tree = tree
        self.inputs = inputs
        self.facts = facts or {}
        self.votes = _Votes()
        self.definitions: dict[str, list[ast.expr]] = {}
        self.constructors: dict[str, tuple[str, ast.Call]] = {}
        self.helpers = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple) and \
                            len(target.elts) == len(node.value.elts):
                        for element, value in zip(target.elts, node.value.elts):
                            if isinstance(element, ast.Name):
                                self.definitions.setdefault(element.id, []).append(value)
                    if isinstance(target, ast.Name):
                        self.definitions.setdefault(target.id, []).append(node.value)
                        if isinstance(node.value, ast.Call):
                            callee = _dotted(node.value.func)
                            if callee:
                                self.constructors[target.id] = (callee, node.value)

    def run(self) -> _Votes:
        for name in self.inputs:
            self._hint(name)
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Attribute) and node.attr in ("shape", "ndim"):
                for name in self.origins(node.value):
                    self.votes.vote(name, _P_SHAPE, Role.VALUES)
            if isinstance(node, ast.Call):
                self._call(node)
            elif isinstance(node, ast.Subscript):
                self._subscript(node)
            elif isinstance(node, ast.Compare):
                self._compared(node)
            elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
                for name in self.direct(node.operand):
                    self.votes.vote(name, _P_MASK, Role.MASK)
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Tuple):
                self._unpack(node.targets[0], node.value)
        # Arithmetic last: whether an input is a scalar, a target or per-element values depends on the other side.
        for node in ast.walk(self.tree):
            if isinstance(node, ast.BinOp):
                self._arithmetic(node)
            elif isinstance(node, ast.Call) and _dotted(node.func) in _CREATION:
                for arg in node.args:
                    for value in _integers(arg):
                        self.votes.class_counts.add(value)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("sum", "mean", "nansum", "nanmean") and isinstance(node.func.value, ast.Name):
                if node.func.value.id in self.inputs:
                    self.votes.vote(node.func.value.id, _P_VALUES_REDUCED, Role.VALUES)
        return self.votes

    def _hint(self, name: str) -> None:
        """Conventional names: a weak vote that any real use outweighs."""
        bare = name[len("self_"):] if name.startswith("self_") else name
        if _MASK_NAME.search(bare):
            self.votes.vote(name, _P_MASK, Role.MASK)
        elif _DEVICE_NAME.match(bare):
            self.votes.vote(name, _P_DEVICE, Role.DEVICE)
        elif _NUMBER_NAME.match(bare):
            self.votes.vote(name, _P_HINT, Role.NUMBER)
            self.votes.options[f"neutral:{name}"] = 1e-8 if _EPSILON_NAME.match(bare) else 1.0
        elif _INDEX_VALUE_NAME.search(bare):
            # A padding id or an ignore index: the value the empty-batch probe fills targets with.
            self.votes.vote(name, _P_NUMBER, Role.NUMBER)
            self.votes.options[f"neutral:{name}"] = -100 if "ignore" in bare.lower() else 0

    def _is_mask(self, name: str) -> bool:
        return any(role is Role.MASK for _, role, _ in self.votes.roles.get(name, ()))

    def _is_driven(self, name: str) -> bool:
        if name in self.facts:
            return self.facts[name] in DRIVEN_ROLES
        return any(role in DRIVEN_ROLES for _, role, _ in self.votes.roles.get(name, ()))

    def _mask_valued(self, node: ast.AST, seen: frozenset[str] = frozenset()) -> bool:
        """A comparison, `~m`, `.bool()`, or a 0/1 cast of one (`(labels != -100).float()`)."""
        if isinstance(node, ast.Compare) or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert)):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "bool":
                return True
            if node.func.attr in ("float", "long", "int", "half", "double", "to", "type_as"):
                return self._mask_valued(node.func.value, seen)
        if isinstance(node, ast.Name) and node.id not in seen:
            if node.id in self.inputs:
                return self._is_mask(node.id)
            values = self.definitions.get(node.id, ())
            return len(values) == 1 and self._mask_valued(values[0], seen | {node.id})
        return False

    def _is_tensor(self, name: str) -> bool:
        """Known to hold a tensor: from the analysis, or from a use that says so."""
        if name in self.facts:
            return self.facts[name] is not Role.NUMBER
        return any(role not in (Role.NUMBER, Role.DEVICE) for _, role, _ in self.votes.roles.get(name, ()))

    def _is_loss_output(self, node: ast.AST) -> bool:
        """`node` is (or is computed from) the result of a loss call."""
        seen: set[str] = set()
        stack = [node]
        while stack:
            for child in ast.walk(stack.pop()):
                if isinstance(child, ast.Call):
                    callee = _dotted(child.func)
                    constructed = self.constructors.get(callee) if callee else None
                    if callee in api.LOSS_BY_FUNCTIONAL or (constructed and constructed[0] in api.LOSS_BY_MODULE):
                        return True
                elif isinstance(child, ast.Name) and child.id not in seen and child.id not in self.inputs:
                    seen.add(child.id)
                    stack.extend(self.definitions.get(child.id, ()))
        return False

    def depends(self, node: ast.AST) -> set[str]:
        """Every input `node` is computed from, through any operation."""
        found: set[str] = set()
        seen: set[str] = set()
        stack = [node]
        while stack:
            current = stack.pop()
            for child in ast.walk(current):
                if isinstance(child, ast.Name):
                    if child.id in self.inputs:
                        found.add(child.id)
                    elif child.id not in seen:
                        seen.add(child.id)
                        stack.extend(self.definitions.get(child.id, ()))
        return found

    # -- flows ------------------------------------------------------------

    def direct(self, node: ast.AST) -> set[str]:
        """Like `origins`, but not through comparisons: `labels != -100` is a mask, `labels` is not."""
        return set() if isinstance(node, ast.Compare) else self.origins(node, comparisons=False)

    def origins(self, node: ast.AST, seen: frozenset[str] = frozenset(), comparisons: bool = True) -> set[str]:
        """The inputs whose values reach `node` unchanged in kind (reshaped, retyped, scaled, indexed)."""
        if isinstance(node, ast.Name):
            if node.id in self.inputs:
                return {node.id}
            if node.id in seen:
                return set()
            found: set[str] = set()
            for value in self.definitions.get(node.id, ()):
                found |= self.origins(value, seen | {node.id}, comparisons)
            return found
        if isinstance(node, ast.Attribute) and node.attr in ("T", "mT", "data"):
            return self.origins(node.value, seen, comparisons)
        if isinstance(node, ast.Call):
            callee = _dotted(node.func)
            if isinstance(node.func, ast.Attribute) and node.func.attr in _FLOW_METHODS and callee is None:
                return self.origins(node.func.value, seen, comparisons)
            if isinstance(node.func, ast.Attribute) and node.func.attr in _FLOW_METHODS and \
                    not (callee or "").startswith("torch."):
                return self.origins(node.func.value, seen, comparisons)
            if callee in _FLOW_FUNCTIONS and node.args:
                return self.origins(node.args[0], seen, comparisons)
            if isinstance(node.func, ast.Name) and node.func.id in self.helpers:
                # A helper of the slice: what it returns is made from what it is given.
                found: set[str] = set()
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    found |= self.origins(arg, seen, comparisons)
                return found
            return set()
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Div | ast.FloorDiv):
                return self.origins(node.left, seen, comparisons)
            return self.origins(node.left, seen, comparisons) | self.origins(node.right, seen, comparisons)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            return self.origins(node.operand, seen, comparisons)
        if isinstance(node, ast.Subscript):
            return self.origins(node.value, seen, comparisons)
        if isinstance(node, ast.IfExp):
            return self.origins(node.body, seen, comparisons) | self.origins(node.orelse, seen, comparisons)
        if isinstance(node, ast.Compare) and comparisons:  # `labels > 0`, `y != pad`: made from the compared values
            found = self.origins(node.left, seen, comparisons)
            for comparator in node.comparators:
                found |= self.origins(comparator, seen, comparisons)
            return found
        return set()

    # -- uses -------------------------------------------------------------

    def _call(self, node: ast.Call) -> None:
        callee = _dotted(node.func)
        constructed = self.constructors.get(callee) if callee else None
        if isinstance(node.func, ast.Call) and _dotted(node.func.func):
            constructed = (_dotted(node.func.func), node.func)  # built and called at once: nn.BCELoss()(p, y)
        if callee in api.LOSS_BY_FUNCTIONAL:
            contract = api.LOSS_BY_FUNCTIONAL[callee]
            self._loss(contract, _bind(node, contract.params), _literal_options(node, contract.params))
            return
        if constructed is not None and constructed[0] in api.LOSS_BY_MODULE:
            contract = api.LOSS_BY_MODULE[constructed[0]]
            options = _literal_options(constructed[1], contract.ctor_params)
            ctor_bound = _bind(constructed[1], contract.ctor_params)
            self._options(contract, ctor_bound)
            self._loss(contract, _bind(node, contract.forward_params), options)
            return
        if callee in _ACTIVATION_FUNCTIONS and node.args:
            dim_name = _ACTIVATION_FUNCTIONS[callee]
            dim = _argument(node, 1, dim_name) if dim_name else None
            self._activation(node.args[0], dim)
            if callee == "torch.nn.functional.one_hot":
                return
            return
        if constructed is not None and constructed[0] in _ACTIVATION_MODULES and node.args:
            position = _ACTIVATION_MODULES[constructed[0]]
            dim = _argument(constructed[1], position, "dim") if position is not None else None
            self._activation(node.args[0], dim)
            return
        if callee in _INDEX_FUNCTIONS:
            index = _argument(node, _INDEX_FUNCTIONS[callee], "index" if callee != _ONE_HOT else "tensor")
            if index is not None:
                for name in self.origins(index):
                    self.votes.vote(name, _P_INDEX, Role.CLASS_INDICES)
            if callee == _ONE_HOT:
                classes = _argument(node, 1, "num_classes")
                count = _literal(classes)
                if isinstance(count, int):
                    self.votes.class_counts.add(count)
                elif classes is not None:
                    for name in self._names(classes):
                        self.votes.vote(name, _P_NUMBER, Role.NUMBER)
                        self.votes.options[f"neutral:{name}"] = CLASSES
            return
        if callee == "torch.where" and node.args:
            for name in self.direct(node.args[0]):
                self.votes.vote(name, _P_MASK, Role.MASK)
            return
        if isinstance(node.func, ast.Attribute):
            self._method(node, node.func.attr, node.func.value)
        for keyword in node.keywords:
            if keyword.arg == "device":
                for name in self._names(keyword.value):
                    self.votes.vote(name, _P_DEVICE, Role.DEVICE)

    def _method(self, node: ast.Call, method: str, receiver: ast.expr) -> None:
        if method in _ACTIVATION_METHODS:
            dim_name = _ACTIVATION_METHODS[method]
            self._activation(receiver, _argument(node, 0, dim_name) if dim_name else None)
        elif method in _INDEX_ARGUMENT:
            index = _argument(node, _INDEX_ARGUMENT[method], "index")
            if index is not None:
                for name in self.origins(index):
                    self.votes.vote(name, _P_INDEX, Role.CLASS_INDICES)
        elif method == "permute" and len(node.args) > 1 and all(isinstance(_literal(a), int) for a in node.args):
            for name in self.origins(receiver):  # `x.permute(0, 2, 3, 1)`: x has four dimensions
                self.votes.ranks.setdefault(name, len(node.args))
        elif method in _COMPARISON_METHODS and node.args:
            self._compared(ast.Compare(left=receiver, ops=[ast.Eq()], comparators=[node.args[0]]))
        elif method in _SCORE_METHODS:
            for name in self.origins(receiver):
                self.votes.vote(name, _P_SCORES, Role.LOGITS)
        elif method in _SHAPE_METHODS:
            for name in self.origins(receiver):
                self.votes.vote(name, _P_SHAPE, Role.VALUES)
        elif method == "bool":
            for name in self.direct(receiver):
                self.votes.vote(name, _P_MASK, Role.MASK)
        elif method in ("masked_fill", "masked_fill_", "masked_select", "masked_scatter"):
            mask = _argument(node, 0, "mask")
            if mask is not None:
                for name in self.direct(mask):
                    self.votes.vote(name, _P_MASK, Role.MASK)
        elif method == "to" and node.args and isinstance(node.args[0], ast.Name):
            if node.args[0].id in self.inputs:
                self.votes.vote(node.args[0].id, _P_DEVICE, Role.DEVICE)
        elif method in ("view", "reshape") and node.args:
            for arg in node.args:
                value = _literal(arg)
                if isinstance(value, int) and value > 1:
                    self.votes.class_counts.add(value)
                for name in self._names(arg):
                    self.votes.vote(name, _P_NUMBER, Role.NUMBER)
                    self.votes.options[f"neutral:{name}"] = CLASSES

    def _scores(self, node: ast.expr) -> set[str]:
        """The inputs that make up a score; next to others, a conventional scalar name (`eps`, `T`) is a factor."""
        found = self.origins(node)
        scalars = {name for name in found if _NUMBER_NAME.match(name.removeprefix("self_"))}
        return found - scalars if found - scalars else found

    def _activation(self, argument: ast.expr, dim: ast.expr | None) -> None:
        axis = _literal(dim) if dim is not None else None
        for name in self._scores(argument):
            self.votes.vote(name, _P_ACTIVATION, Role.LOGITS)
            if isinstance(axis, int):
                self.votes.axes.setdefault(name, axis)

    def _loss(self, contract: api.LossContract, bound: dict[str, ast.expr], options: dict[str, Any]) -> None:
        prediction = bound.get(contract.input_param)
        target = bound.get(contract.target_param)
        expected = contract.expected_input(options)
        if prediction is not None:
            role, activation = _input_role(contract, expected)
            for name in self._scores(prediction):
                self.votes.vote(name, _P_INPUT, role, activation)
                if contract.index_target:
                    self.votes.axes.setdefault(name, 1)
        if target is not None:
            role = _target_role(contract, options)
            if role is not None:
                for name in self.origins(target):
                    self.votes.vote(name, _P_TARGET, role)
        self._options(contract, bound)

    def _options(self, contract: api.LossContract, bound: dict[str, ast.expr]) -> None:
        for option in ("weight", "pos_weight"):
            if option in bound:
                for name in self.origins(bound[option]):
                    self.votes.vote(name, _P_WEIGHT, Role.WEIGHT)
        if "ignore_index" in bound:
            for name in self._names(bound["ignore_index"]):
                self.votes.vote(name, _P_NUMBER, Role.NUMBER)
                self.votes.options[f"neutral:{name}"] = contract.defaults.get("ignore_index", -100)

    def _subscript(self, node: ast.Subscript) -> None:
        index = node.slice
        if isinstance(index, ast.Tuple):
            for element in index.elts:
                if isinstance(element, ast.Slice) or _is_range(element):
                    continue
                for name in self.origins(element):
                    self.votes.vote(name, _P_INDEX, Role.CLASS_INDICES)
        elif not isinstance(index, ast.Slice | ast.Constant):
            for name in self.direct(index):
                self.votes.vote(name, _P_MASK, Role.MASK)

    def _arithmetic(self, node: ast.BinOp) -> None:
        """What an input is from the operand next to it.

        Next to a mask (`loss * mask`): per-element values. A factor of a *transformed* score
        (`y * log(p)`, `(1 - y) * log(1 - p)`, `t * log_softmax(s)`): a target. A label-like
        name multiplying a score (`-y * margin`): ±1 labels. Otherwise a scalar that leaves the
        maths as written (`x / T`, `x * s`: 1; `x + b`: 0).
        """
        for side, other in ((node.left, node.right), (node.right, node.left)):
            mine = self.origins(side)
            if not mine:
                continue
            flows = self.origins(other) - mine
            if any(self._is_mask(name) for name in flows) or self._mask_valued(other):
                for name in mine:
                    if not self._is_mask(name):
                        self.votes.vote(name, _P_VALUES, Role.VALUES)
                continue
            if isinstance(node.op, ast.Mult) and self._is_loss_output(other):
                for name in mine:  # `loss * weights`: per-element weights of a per-element loss
                    self.votes.vote(name, _P_VALUES, Role.VALUES)
                continue
            if isinstance(node.op, ast.Mult):
                transformed = {n for n in self.depends(other) - flows - mine if self._is_driven(n)}
                if transformed:
                    for name in mine:
                        role = Role.PROBABILITY_TARGETS if _PROBABILITY_NAME.search(name) else Role.BINARY_TARGETS
                        self.votes.vote(name, _P_PRODUCT_TARGET, role)
                    continue
                if any(self._is_driven(n) for n in flows):
                    for name in mine:
                        if _LABEL_NAME.match(name):
                            self.votes.vote(name, _P_SIGNS, Role.SIGNS)
            if not (isinstance(side, ast.Name) and side.id in self.inputs) or not any(map(self._is_tensor, flows)):
                continue
            if isinstance(node.op, ast.Div | ast.FloorDiv) and side is node.left:
                continue
            neutral = 0.0 if isinstance(node.op, ast.Add | ast.Sub) else 1.0
            self.votes.vote(side.id, _P_NUMBER, Role.NUMBER)
            self.votes.options.setdefault(f"neutral:{side.id}", neutral)

    def _compared(self, node: ast.Compare) -> None:
        """`labels != -100`, `y == pad_id`: a tensor compared with an integer is most likely labels."""
        operands = [node.left, *node.comparators]
        integers = [o for o in operands if isinstance(_literal(o), int) or self._integer_constant(o)
                    or (isinstance(o, ast.Name) and _INDEX_VALUE_NAME.search(o.id))]
        if not integers:
            return
        for operand in operands:
            if operand in integers:
                continue
            for name in self.direct(operand):
                self.votes.vote(name, _P_COMPARED, Role.CLASS_INDICES)

    def _integer_constant(self, node: ast.expr) -> bool:
        if not isinstance(node, ast.Name) or node.id in self.inputs:
            return False
        return any(isinstance(_literal(value), int) for value in self.definitions.get(node.id, ()))

    def _unpack(self, target: ast.Tuple, value: ast.expr) -> None:
        source = value.func.value if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) \
            and value.func.attr == "size" else value.value if isinstance(value, ast.Attribute) \
            and value.attr == "shape" else None
        if source is None:
            return
        for name in self.origins(source):
            self.votes.ranks[name] = len(target.elts)

    def _names(self, node: ast.AST) -> set[str]:
        return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in self.inputs}


_ONE_HOT = "torch.nn.functional.one_hot"
_SCORE_METHODS = frozenset({"argmax", "argmin", "topk", "argsort"})
_COMPARISON_METHODS = frozenset({"eq", "ne", "lt", "le", "gt", "ge"})
_SHAPE_METHODS = frozenset({"size", "dim", "numel", "ndimension"})
_CREATION = frozenset({"torch.ones", "torch.zeros", "torch.full", "torch.empty", "torch.rand", "torch.randn"})


def _integers(node: ast.AST) -> list[int]:
    """Integer literals in a size argument (`5`, `(5,)`, `[4, 5]`) that could be a class count."""
    value = _literal(node)
    values = value if isinstance(value, tuple | list) else [value]
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool) and v > 1]


def _input_role(contract: api.LossContract, expected: Domain | None) -> tuple[Role, str | None]:
    if expected is Domain.PROBABILITIES:
        return Role.PROBABILITIES, "sigmoid" if contract.float_target else "softmax"
    if expected is Domain.LOG_PROBABILITIES:
        return Role.LOG_PROBABILITIES, "log_softmax"
    return Role.LOGITS, None


def _target_role(contract: api.LossContract, options: dict[str, Any]) -> Role | None:
    if contract.index_target:
        return Role.CLASS_INDICES
    if contract.float_target:
        return Role.BINARY_TARGETS
    expected = contract.expected_target(options)
    if expected is Domain.PROBABILITIES:
        return Role.PROBABILITY_TARGETS
    if expected is Domain.LOG_PROBABILITIES:
        return Role.LOG_PROBABILITY_TARGETS
    if contract.regression:
        return Role.REGRESSION_TARGETS
    return None


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _bind(call: ast.Call, params: tuple[str, ...]) -> dict[str, ast.expr]:
    bound: dict[str, ast.expr] = {}
    for index, arg in enumerate(call.args):
        if isinstance(arg, ast.Starred):
            break
        if index < len(params):
            bound[params[index]] = arg
    for keyword in call.keywords:
        if keyword.arg is not None:
            bound[keyword.arg] = keyword.value
    return bound


def _literal_options(call: ast.Call, params: tuple[str, ...]) -> dict[str, Any]:
    options = {}
    for name, node in _bind(call, params).items():
        value = _literal(node)
        if value is not _NOT_LITERAL:
            options[name] = value
    return options


_NOT_LITERAL = object()


def _literal(node: ast.AST | None) -> Any:
    if node is None:
        return _NOT_LITERAL
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NOT_LITERAL


def _argument(call: ast.Call, position: int | None, keyword: str | None) -> ast.expr | None:
    for item in call.keywords:
        if keyword is not None and item.arg == keyword:
            return item.value
    if position is not None and position < len(call.args) and not isinstance(call.args[position], ast.Starred):
        return call.args[position]
    return None


def _is_range(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and _dotted(node.func) in ("range", "torch.arange")
