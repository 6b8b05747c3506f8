"""What `--confirm` may execute, written out name by name, and the check that enforces it.

A slice runs only if every name, attribute and call in it is listed here. There is
no "anything under torch": `torch.load`, `torch.save`, `torch.from_file`,
`torch.hub`, `torch.ops`, `torch.compile`, `torch.utils`, `torch.cuda`,
`torch.distributed`, `torch.backends` and `torch.library` are simply absent, as
is every module other than torch and math. The check reads the exact program
text that the worker compiles (Python's `ast`), and the worker runs it again
before compiling; the worker also hands the program namespaces that contain
only these names, so a name missing here does not exist for the program.

This module never imports torch: the lists are plain strings.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from losslint.torch_api import LOSSES

# -- torch: functions and constants ---------------------------------------------------------

_TORCH_MATH = (
    "abs", "neg", "negative", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt",
    "pow", "square", "reciprocal", "sign", "sin", "cos", "tanh", "sigmoid", "logit", "erf", "floor", "ceil",
    "round", "trunc", "clamp", "clamp_min", "clamp_max", "clip", "where", "maximum", "minimum", "fmax", "fmin",
    "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "matmul", "mm", "bmm",
    "einsum", "outer", "dot", "xlogy", "logaddexp", "nan_to_num", "lerp",
)
_TORCH_REDUCTIONS = (
    "sum", "nansum", "mean", "nanmean", "prod", "std", "var", "norm", "max", "min", "amax", "amin",
    "logsumexp", "cumsum", "cumprod", "argmax", "argmin", "all", "any", "count_nonzero", "topk", "sort",
    "argsort", "median",
)
_TORCH_ACTIVATIONS = ("softmax", "log_softmax", "relu")
_TORCH_COMPARISONS = (
    "eq", "ne", "lt", "le", "gt", "ge", "isnan", "isinf", "isfinite", "isclose", "allclose", "equal",
    "logical_and", "logical_or", "logical_not", "logical_xor",
)
_TORCH_SHAPES = (
    "reshape", "squeeze", "unsqueeze", "flatten", "transpose", "permute", "movedim", "moveaxis", "swapaxes",
    "swapdims", "t", "clone", "narrow", "select", "gather", "index_select", "take_along_dim", "masked_select",
    "masked_fill", "scatter", "scatter_add", "cat", "concat", "concatenate", "stack", "split", "chunk",
    "unbind", "broadcast_to", "broadcast_tensors", "broadcast_shapes", "tril", "triu", "diag", "diagonal",
    "flip", "roll", "nonzero", "numel",
)
# Creation with explicit sizes or data; a huge size meets the worker's memory limit.
_TORCH_CREATION = (
    "zeros", "ones", "full", "empty", "arange", "linspace", "eye", "zeros_like", "ones_like", "full_like",
    "empty_like", "rand", "randn", "randint", "rand_like", "randn_like", "randint_like", "tensor",
    "as_tensor", "scalar_tensor",
)
_TORCH_CONSTANTS = (
    "float32", "float", "float16", "half", "bfloat16", "float64", "double", "int64", "long", "int32", "int",
    "int16", "int8", "uint8", "bool", "inf", "nan", "pi", "e", "finfo", "iinfo",
)
_SPECIAL = ("expit", "logit", "log_softmax", "softmax", "logsumexp", "xlogy", "log1p", "expm1", "entr", "erf")

# torch.nn.functional: the activations and helpers loss code uses, and every loss in the contract table.
_FUNCTIONAL = (
    "softmax", "log_softmax", "softmin", "sigmoid", "logsigmoid", "softplus", "tanh", "relu", "gelu", "silu",
    "elu", "leaky_relu", "one_hot", "normalize", "pad", "cosine_similarity", "pairwise_distance",
)
# torch.nn: activation modules (the loss modules come from the contract table).
_ACTIVATION_MODULES = (
    "Softmax", "LogSoftmax", "Softmin", "Softmax2d", "Sigmoid", "LogSigmoid", "Softplus", "Tanh", "ReLU",
    "GELU", "SiLU", "Identity",
)

_MATH = (
    "log", "log1p", "log2", "log10", "exp", "expm1", "sqrt", "pow", "tanh", "ceil", "floor", "isfinite",
    "isnan", "isinf", "fabs", "pi", "e", "inf", "nan",
)

LOSS_FUNCTIONS = frozenset(c.functional for c in LOSSES if c.functional)
LOSS_MODULES = frozenset(c.module for c in LOSSES if c.module)

ALLOWED_QUALNAMES: frozenset[str] = frozenset(
    {f"torch.{name}" for group in (_TORCH_MATH, _TORCH_REDUCTIONS, _TORCH_ACTIVATIONS, _TORCH_COMPARISONS,
                                   _TORCH_SHAPES, _TORCH_CREATION, _TORCH_CONSTANTS) for name in group}
    | {f"torch.special.{name}" for name in _SPECIAL}
    | {"torch.autograd.backward", "torch.autograd.grad"}  # autograd on the slice's own tensors
    | {f"torch.nn.functional.{name}" for name in _FUNCTIONAL}
    | {f"torch.nn.{name}" for name in _ACTIVATION_MODULES}
    | LOSS_FUNCTIONS
    | LOSS_MODULES
    | {f"math.{name}" for name in _MATH}
)
# The roots a program may name; everything below them must be in ALLOWED_QUALNAMES.
NAMESPACE_ROOTS = ("torch", "math")

# -- tensor methods and attributes -----------------------------------------------------------

TENSOR_METHODS: frozenset[str] = frozenset(
    set(_TORCH_MATH) | set(_TORCH_REDUCTIONS) | set(_TORCH_ACTIVATIONS) | set(_TORCH_COMPARISONS)
    | (set(_TORCH_SHAPES) - {"cat", "concat", "concatenate", "stack", "broadcast_tensors", "broadcast_shapes"})
    | {
        "view", "view_as", "reshape_as", "expand", "expand_as", "repeat", "repeat_interleave", "contiguous",
        "unflatten", "size", "dim", "ndimension", "float", "double", "half", "bfloat16", "long", "int", "bool",
        "to", "type_as", "cpu", "detach", "item", "tolist", "log_softmax", "exp_", "log_", "clamp_",
        "clamp_min_", "clamp_max_", "add_", "sub_", "mul_", "div_", "fill_", "zero_", "masked_fill_",
        "scatter_", "index_fill", "masked_scatter", "new_zeros", "new_ones", "new_full", "new_tensor",
        "new_empty", "sum_to_size", "is_floating_point", "backward", "requires_grad_", "squeeze_",
        "unsqueeze_", "t_", "neg_", "abs_", "sigmoid_", "tanh_", "relu_", "nan_to_num_", "copy_", "type",
    }
)
TENSOR_ATTRIBUTES = frozenset({
    "shape", "dtype", "ndim", "T", "mT", "data", "values", "indices", "device", "requires_grad", "grad",
    # torch.finfo / torch.iinfo fields
    "eps", "tiny", "bits", "resolution", "smallest_normal",
})
# Attributes of the loss and activation modules a program constructs (their constructor options).
MODULE_ATTRIBUTES = frozenset({param for c in LOSSES for param in c.ctor_params} | {"dim", "beta", "threshold"})
ALLOWED_ATTRIBUTES = TENSOR_METHODS | TENSOR_ATTRIBUTES | MODULE_ATTRIBUTES

# -- builtins ---------------------------------------------------------------------------------

SAFE_BUILTINS = frozenset({
    "range", "len", "min", "max", "sum", "abs", "float", "int", "bool", "round", "tuple", "list", "dict",
    "zip", "enumerate", "all", "any", "pow", "slice", "reversed", "sorted", "divmod", "Ellipsis",
})
# The ways out of a sandbox, refused by name (with a message that says so) unless the slice binds the
# name itself; the slicer refuses them wherever they appear, even in the parts that are never executed.
FORBIDDEN_NAMES = frozenset({
    "eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "hasattr", "globals", "locals",
    "vars", "dir", "input", "breakpoint", "help", "memoryview", "object", "type", "super", "classmethod",
    "staticmethod", "property", "exit", "quit", "print", "id", "hash", "callable", "issubclass", "isinstance",
    "format", "repr", "ascii", "chr", "ord", "bytes", "bytearray", "iter", "next", "aiter", "anext",
})

# -- syntax -----------------------------------------------------------------------------------

_ALLOWED_NODES = (
    ast.Module, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.FunctionDef, ast.Return, ast.If,
    ast.For, ast.While, ast.Pass, ast.Break, ast.Continue, ast.Tuple, ast.List, ast.Dict, ast.Set,
    ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.comprehension, ast.IfExp, ast.BoolOp,
    ast.BinOp, ast.UnaryOp, ast.Compare, ast.Call, ast.keyword, ast.Attribute, ast.Subscript, ast.Slice,
    ast.Starred, ast.Name, ast.Constant, ast.arguments, ast.arg, ast.Load, ast.Store,
    ast.boolop, ast.operator, ast.unaryop, ast.cmpop, ast.expr_context,
)
_SYNTAX_NAMES = {
    ast.Import: "import", ast.ImportFrom: "import", ast.Global: "global", ast.Nonlocal: "nonlocal",
    ast.ClassDef: "class definition", ast.AsyncFunctionDef: "async def", ast.Await: "await", ast.Yield: "yield",
    ast.YieldFrom: "yield from", ast.With: "with", ast.AsyncWith: "async with", ast.Try: "try",
    ast.Raise: "raise", ast.Delete: "del", ast.Lambda: "lambda", ast.JoinedStr: "f-string",
    ast.NamedExpr: "assignment expression", ast.Match: "match", ast.AsyncFor: "async for",
}


@dataclass(frozen=True)
class Refusal:
    """Why a program may not run: the offending name (or syntax) and where."""

    offender: str
    reason: str
    line: int = 0

    def __str__(self) -> str:
        return f"`{self.offender}` {self.reason}"


def is_dunder(name: str) -> bool:
    return name.startswith("__") or name.endswith("__")


def check_program(source: str, inputs: frozenset[str] | set[str] = frozenset()) -> list[Refusal]:
    """Every reason `source` may not run (empty when it may). `inputs` are the names bound from outside."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        return [Refusal("<program>", f"does not parse: {error.msg}", error.lineno or 0)]
    bound = _bound_names(tree)
    refusals: list[Refusal] = []
    for root in NAMESPACE_ROOTS:
        if root in bound or root in inputs:
            refusals.append(Refusal(root, "is rebound, which would hide the allowed namespace"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        line = getattr(node, "lineno", 0)
        if not isinstance(node, _ALLOWED_NODES):
            label = _SYNTAX_NAMES.get(type(node), type(node).__name__)
            refusals.append(Refusal(label, "is not allowed in a confirmed slice", line))
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
            refusals.append(Refusal("bytes literal", "is not allowed in a confirmed slice", line))
        elif isinstance(node, ast.Name):
            refusals.extend(_check_name(node, bound, inputs))
        elif isinstance(node, ast.Attribute):
            chain = dotted(node)
            if chain is not None and chain.split(".")[0] in NAMESPACE_ROOTS:
                if chain not in ALLOWED_QUALNAMES:
                    refusals.append(Refusal(chain, "is not on the allow-list", line))
                # The chain is judged as a whole: skip its inner attributes and its root name.
                inner = node.value
                while isinstance(inner, ast.Attribute):
                    skip.add(id(inner))
                    inner = inner.value
                skip.add(id(inner))
            elif is_dunder(node.attr) or node.attr.startswith("_"):
                refusals.append(Refusal(f".{node.attr}", "is a private or dunder attribute", line))
            elif node.attr not in ALLOWED_ATTRIBUTES:
                refusals.append(Refusal(f".{node.attr}", "is not an allowed tensor method or attribute", line))
        elif isinstance(node, ast.FunctionDef):
            if node.decorator_list:
                refusals.append(Refusal("decorator", "is not allowed in a confirmed slice", line))
            if is_dunder(node.name):
                refusals.append(Refusal(node.name, "is a dunder name", line))
        elif isinstance(node, ast.arg) and is_dunder(node.arg):
            refusals.append(Refusal(node.arg, "is a dunder name", line))
        elif isinstance(node, ast.keyword) and node.arg is not None and is_dunder(node.arg):
            refusals.append(Refusal(node.arg, "is a dunder name", line))
    return refusals


def _check_name(node: ast.Name, bound: set[str], inputs) -> list[Refusal]:
    name, line = node.id, node.lineno
    if is_dunder(name):
        return [Refusal(name, "is a dunder name", line)]
    if isinstance(node.ctx, ast.Store) or name in bound or name in inputs:
        return []  # the slice's own variable (a parameter called `input` is not the builtin)
    if name in FORBIDDEN_NAMES:
        return [Refusal(name, "is never allowed (it could reach files, processes or the interpreter)", line)]
    if name in SAFE_BUILTINS:
        return []
    if name in NAMESPACE_ROOTS:
        return [Refusal(name, "may only be used as `torch.<allowed name>` / `math.<allowed name>`", line)]
    return [Refusal(name, "is not defined in the slice and not an allowed builtin", line)]


def _bound_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def dotted(node: ast.AST) -> str | None:
    """`torch.nn.functional.softmax` for a pure Name/Attribute chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def allowed_qualname(qualname: str) -> bool:
    return qualname in ALLOWED_QUALNAMES


# -- the namespaces a program sees -------------------------------------------------------------


class Namespace:
    """A stand-in for `torch`, `torch.nn`, `math`, ... that holds only the allowed names."""

    def __init__(self, path: str) -> None:
        object.__setattr__(self, "_path", path)

    def __getattr__(self, name: str):
        raise AttributeError(f"{self._path}.{name} is not on the allow-list")

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"{self._path} is read-only")

    def __repr__(self) -> str:
        return f"<allowed namespace {self._path}>"


def namespaces(modules: dict[str, object]) -> dict[str, Namespace]:
    """`{"torch": Namespace, "math": Namespace}` exposing exactly ALLOWED_QUALNAMES of the real `modules`."""
    roots = {root: Namespace(root) for root in NAMESPACE_ROOTS}
    for qualname in sorted(ALLOWED_QUALNAMES):
        parts = qualname.split(".")
        target = modules[parts[0]]
        try:
            for part in parts[1:]:
                target = getattr(target, part)
        except AttributeError:
            continue  # not in this torch version: the program cannot use it
        space = roots[parts[0]]
        for depth in range(1, len(parts) - 1):
            child = space.__dict__.get(parts[depth])
            if child is None:
                child = Namespace(".".join(parts[: depth + 1]))
                space.__dict__[parts[depth]] = child
            space = child
        space.__dict__[parts[-1]] = target
    return roots


def safe_builtins() -> dict[str, object]:
    """The builtins a program runs with: SAFE_BUILTINS, plus an `__import__` for torch's own C code.

    torch's C functions (e.g. `torch.tensor([0, 1])`) look up `torch.storage` through the
    caller's builtins. A program cannot name `__import__` (dunders are refused), and this
    one only hands back torch modules that are already loaded.
    """
    import builtins
    import sys

    def loaded_torch_module(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and (name == "torch" or name.startswith("torch.")) and name in sys.modules:
            return builtins.__import__(name, globals, locals, fromlist, level)
        raise ImportError(f"{name} cannot be imported by a confirmed slice")

    allowed: dict[str, object] = {name: getattr(builtins, name) for name in SAFE_BUILTINS}
    allowed["__import__"] = loaded_torch_module
    return allowed
