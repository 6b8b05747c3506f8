"""How the dataflow knows tensor shapes, dtypes, autograd graphs and labels (the LL3 / LL5 model).

**Shapes** are symbolic: `Value.shape` is a tuple with one entry per dimension, each the source text
of the size (`"B"`, `"T"`, `"self.vocab_size"`, `"B*T"`), a literal size (`"1"`), or `"?"` when the
size is unknown; `shape is None` means the rank itself is unknown. A shape becomes known from
- an unpacking of the shape: `B, T, V = logits.shape` / `logits.size()` (the name is refined);
- a shape comment on the assignment line: `logits = head(x)  # [B, T, V]` (also `(B, T, V)`,
  `shape: ...`, `... -> (B, T, V)`: the last shape after an arrow);
- sized factories (`torch.randn(B, 1)`, `torch.zeros(n, dtype=...)`), `torch.tensor` of a literal,
  `nn.Linear(d, k)` applied to a known shape, `F.one_hot(y, k)`;
and follows views (`.view(B, T, V)`, `.reshape(B, T, -1)`, `.view(-1, V)`, `.flatten()`), `.unsqueeze`,
`.squeeze`, `.transpose` / `.permute` / `.t()` / `.T`, reductions (`.sum()`, `.mean(-1)`, `.argmax(1)`),
slicing, elementwise arithmetic of equal shapes, casts and moves. Everything else forgets it.

**Dtypes** are canonical names (`"float32"`, `"int64"`, `"bool"`, see `torch_api.DTYPES`), set by
casts (`.float()`, `.long()`, `.to(torch.float32)`, `.type(torch.LongTensor)`, `.type_as(y)`),
`dtype=` arguments of factories and `torch.tensor`, integer literals, `argmax`; `Value.dtype_node` is
where the dtype was set.

**Autograd**: `.detach()`, `.data`, `.item()`, `.tolist()`, `.numpy()` cut the graph, and nothing
computed under `torch.no_grad()` / `torch.inference_mode()` (a `with` block or a decorator) carries one.

**Labels**: values that came from outside a function (a parameter, a loop variable, an unpacked or
subscripted batch element) under a data-set label's name (`labels`, `y`, `batch["target"]`) remember it
(`Value.source_name`), so that a rule can tell `labels.float()` (most likely class indices) from
`soft_targets.float()`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import libcst as cst

from losslint import torch_api as api
from losslint.domains import AbsVal, Domain, Value
from losslint.masks import name_tokens
from losslint.objects import MISSING, Layer, literal
from losslint.objects import Sequence as SequenceObject

UNKNOWN_DIM = "?"
Shape = tuple[str, ...]
Values = Mapping[cst.CSTNode, AbsVal]


# -- reading facts ----------------------------------------------------------

def is_tensor(value: Value) -> bool:
    """A value that may be a tensor (not an object, a module or a python number)."""
    return value.obj is None and value.qualname is None and value.domain is not Domain.NUMBER


def shape_of(absval: AbsVal) -> Shape | None:
    """The shape every reaching definition agrees on."""
    shapes = {value.shape for value in absval}
    return shapes.pop() if len(shapes) == 1 else None


def rank_of(absval: AbsVal) -> int | None:
    shape = shape_of(absval)
    return len(shape) if shape is not None else None


def dtype_of(absval: AbsVal) -> str | None:
    dtypes = {value.dtype for value in absval}
    return dtypes.pop() if len(dtypes) == 1 else None


def show(shape: Shape) -> str:
    return "[" + ", ".join(shape) + "]"


def same_dim(a: str, b: str) -> bool:
    """Two sizes known to be equal (the same symbol or the same literal)."""
    return a != UNKNOWN_DIM and a == b


def last_segment(dim: str) -> str:
    """`self.config.vocab_size` → `vocab_size`."""
    return dim.rsplit(".", 1)[-1]


def is_class_dim(dim: str) -> bool:
    return last_segment(dim).lower() in api.CLASS_DIM_NAMES


# -- shapes from syntax -----------------------------------------------------

def dim_text(module: cst.Module, node: cst.BaseExpression) -> str:
    """The symbol of one size argument: `-1` and starred sizes are unknown."""
    number = literal(node)
    if isinstance(number, int) and not isinstance(number, bool):
        return str(number) if number >= 0 else UNKNOWN_DIM
    return "".join(module.code_for_node(node).split())


def sizes(module: cst.Module, args: Sequence[cst.Arg], values: Values) -> Shape | None:
    """The shape spelled by size arguments: `(B, T, V)`, `B, T, V`, `(-1, V)`, `x.shape`, `x.size()`."""
    positional = [arg for arg in args if arg.keyword is None]
    if any(arg.star for arg in positional):
        return None
    if len(positional) == 1:
        only = positional[0].value
        if isinstance(only, cst.Tuple | cst.List):
            if any(isinstance(element, cst.StarredElement) for element in only.elements):
                return None
            return tuple(dim_text(module, element.value) for element in only.elements)
        measured = measured_tensor(only)
        if measured is not None:
            return shape_of(values.get(measured, ()))
        if isinstance(only, cst.Name | cst.Attribute) and not _is_number(values, only) and \
                _SIZE_OBJECT_TOKENS.intersection(name_tokens(last_segment(_dotted(only)))):
            return None  # a size object held in a variable: `x.view(shape)`
    return tuple(dim_text(module, arg.value) for arg in positional)


# Names of variables holding a whole size (`x.view(shape)`, `x.reshape(new_size)`), not one number.
_SIZE_OBJECT_TOKENS = frozenset({"shape", "shapes", "size", "sizes", "dims", "dimensions"})


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return node.value if isinstance(node, cst.Name) else ""


def measured_tensor(node: cst.BaseExpression) -> cst.BaseExpression | None:
    """`x` in `x.shape` / `x.size()`."""
    if isinstance(node, cst.Attribute) and node.attr.value == "shape":
        return node.value
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "size" \
            and not node.args:
        return node.func.value
    return None


def _is_number(values: Values, node: cst.BaseExpression) -> bool:
    absval = values.get(node, ())
    return bool(absval) and all(value.domain is Domain.NUMBER for value in absval)


_GROUP = re.compile(r"[\[(]([^\[\]()]*)[\])]")
_DIM = re.compile(r"^[A-Za-z_][\w.]*$|^\d+$|^[\w.]+(\s*(\*|//|/|\+|-)\s*[\w.]+)+$")
# What may precede the shape: nothing, `shape`, `torch.Size(`, or a label with a colon (`logits:`).
_SHAPE_PREFIX = re.compile(r"^(shape|size|torch\.Size\(|[A-Za-z_][\w.]*\s*:|[A-Za-z_][\w.]*\s+shape\s*:?)$",
                           re.IGNORECASE)
_SINGLE_DIM_WORDS = ("batch", "size", "num", "len", "dim", "n_", "_n", "count")


def comment_shape(comment: str) -> Shape | None:
    """The shape a comment states: `# [B, T, V]`, `# (B, T, vocab_size)`, `# shape: (N, 1)`, `# (B, T) -> (B, T, C)`."""
    text = comment.lstrip("#").strip()
    if "->" in text:
        text = text.rsplit("->", 1)[1]
    groups = _GROUP.findall(text)
    if len(groups) != 1:
        return None
    prefix = text[: text.find(groups[0]) - 1].strip()
    if prefix and not _SHAPE_PREFIX.match(prefix):
        return None
    parts = [part.strip() for part in groups[0].split(",")]
    if parts and parts[-1] == "":
        parts = parts[:-1]
    if not parts or not all(_DIM.match(part) for part in parts):
        return None
    if len(parts) == 1 and not _plausible_single_dim(parts[0], groups[0], text):
        return None
    return tuple("".join(part.split()) for part in parts)


def _plausible_single_dim(part: str, group: str, text: str) -> bool:
    """`# [B]`, `# (N,)`, `# [batch_size]` state a shape; `# (optional)` does not."""
    if group.rstrip().endswith(","):
        return True
    return text.startswith("[") and (len(part) <= 2 or any(word in part.lower() for word in _SINGLE_DIM_WORDS))


# -- dtypes from syntax -----------------------------------------------------

def dtype_named(absval: AbsVal, node: cst.BaseExpression | None) -> str | None:
    """The dtype an argument names: `torch.float32`, `torch.long`, `float`, `torch.LongTensor`, `"torch.FloatTensor"`."""
    if isinstance(node, cst.SimpleString):
        text = literal(node)
        if not isinstance(text, str):
            return None
        return api.TENSOR_TYPES.get(text) or api.DTYPES.get(text) or api.DTYPES.get(f"torch.{text}")
    for value in absval:
        if value.qualname is not None:
            qualname = api.canonical(value.qualname)
            return api.DTYPES.get(qualname) or api.TENSOR_TYPES.get(qualname)
    return None


def _keyword(node: cst.Call, name: str) -> cst.BaseExpression | None:
    for arg in node.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    return None


def _dtype_keyword(node: cst.Call, values: Values) -> str | None:
    given = _keyword(node, "dtype")
    return dtype_named(values.get(given, ()), given) if given is not None else None


def _literal_dtype(node: cst.BaseExpression) -> str | None:
    """The dtype torch infers for literal data: ints → int64, any float → float32, bools → bool."""
    leaves = list(_leaves(node))
    if not leaves:
        return None
    if all(isinstance(leaf, cst.Name) and leaf.value in ("True", "False") for leaf in leaves):
        return "bool"
    if any(isinstance(leaf, cst.Float) for leaf in leaves):
        return "float32"
    if all(isinstance(leaf, cst.Integer) for leaf in leaves):
        return "int64"
    return None


def _leaves(node: cst.BaseExpression):
    if isinstance(node, cst.List | cst.Tuple):
        for element in node.elements:
            yield from _leaves(element.value)
    elif isinstance(node, cst.UnaryOperation):
        yield node.expression
    else:
        yield node


def _literal_shape(node: cst.BaseExpression) -> Shape | None:
    if not isinstance(node, cst.List | cst.Tuple):
        return ()
    inner = [_literal_shape(element.value) for element in node.elements]
    if any(isinstance(element, cst.StarredElement) for element in node.elements) or len(set(inner)) > 1 or \
            None in inner:
        return None
    return (str(len(node.elements)), *(inner[0] if inner else ()))


# -- transfer: calls --------------------------------------------------------

def call(
    module: cst.Module,
    node: cst.Call,
    qualname: str | None,
    method: str | None,
    receiver: AbsVal | None,
    callee: AbsVal,
    result: AbsVal,
    values: Values,
) -> AbsVal:
    """The call's result with what is known of its shape, dtype and graph."""
    if method is not None and receiver is not None:
        return _apply(result, _method_facts(module, node, method, receiver, node.args, values))
    if qualname is not None:
        return _function(module, node, qualname, result, values)
    layers = [value.obj for value in callee if isinstance(value.obj, Layer)]
    if layers and len(layers) == len(callee) and node.args:
        shapes = {_layer_shape(module, layer, shape_of(values.get(node.args[0].value, ()))) for layer in layers}
        shape = shapes.pop() if len(shapes) == 1 else None
        return _apply(result, {"shape": shape, "shape_node": node if shape is not None else None})
    return result


def _apply(result: AbsVal, changes: dict[str, object] | None) -> AbsVal:
    """`result` with `changes` on its tensor values (values already agreeing are kept as they are)."""
    if not changes:
        return result
    return tuple(value.but(**changes) if value.obj is None and value.qualname is None and _differs(value, changes)
                 else value for value in result)


def _differs(value: Value, changes: dict[str, object]) -> bool:
    return any(getattr(value, name) is not wanted and getattr(value, name) != wanted
               for name, wanted in changes.items())


def _method_facts(module, node: cst.Call, method: str, receiver: AbsVal, args: Sequence[cst.Arg],
                  values: Values) -> dict[str, object]:
    """Shape, dtype and graph of `receiver.method(*args)`."""
    shape = shape_of(receiver)
    changes: dict[str, object] = {}
    if method in api.SHAPE_KEEPING_METHODS:
        changes["shape"] = shape
        changes["shape_node"] = receiver[0].shape_node if shape is not None else None
    else:
        new_shape = _reshaped(module, method, shape, args, values)
        changes["shape"] = new_shape
        changes["shape_node"] = node if new_shape is not None else None
    if method in api.DTYPE_METHODS:
        changes.update(dtype=api.DTYPE_METHODS[method], dtype_node=node)
    elif method in ("to", "type") and args:
        candidates = [arg.value for arg in args if arg.keyword is None or arg.keyword.value == "dtype"]
        named = next(filter(None, (dtype_named(values.get(arg, ()), arg) for arg in candidates)), None)
        if named is None and method == "to" and args[0].keyword is None:
            named = dtype_of(values.get(args[0].value, ()))  # `.to(other_tensor)`
        if named is not None:
            changes.update(dtype=named, dtype_node=node)
    elif method == "type_as" and args:
        changes.update(dtype=dtype_of(values.get(args[0].value, ())), dtype_node=node)
    elif method in api.INDEX_REDUCTION_METHODS:
        changes["dtype"] = "int64"
    if method in api.GRAPH_CUTTING_METHODS:
        changes["carries_graph"] = False
    return changes


def _reshaped(module, method: str, shape: Shape | None, args: Sequence[cst.Arg], values: Values) -> Shape | None:
    """The shape after a shape-changing tensor method, or None when it is not known."""
    positional = [arg.value for arg in args if arg.keyword is None and not arg.star]
    if method in ("view", "reshape"):
        if len(positional) == 1 and dtype_named(values.get(positional[0], ()), positional[0]):
            return None  # `x.view(torch.int32)` reinterprets the bytes
        return sizes(module, args, values)
    if method in ("view_as", "reshape_as", "expand_as") and positional:
        return shape_of(values.get(positional[0], ()))
    if method in ("new_zeros", "new_ones", "new_empty") and positional:
        return sizes(module, [arg for arg in args if arg.keyword is None], values)
    if method == "new_full" and positional:
        return sizes(module, [arg for arg in args if arg.keyword is None][:1], values)
    if method == "flatten":
        return _flattened(shape, _ints(positional[:2]) if positional else [])
    if method in ("unsqueeze", "unsqueeze_"):
        where = _ints(positional[:1])
        if shape is None or len(where) != 1:
            return None
        index = _axis(where[0], len(shape) + 1)
        return None if index is None else shape[:index] + ("1",) + shape[index:]
    if method in ("squeeze", "squeeze_"):
        return _squeezed(shape, positional, args)
    if method in ("transpose", "swapaxes", "swapdims"):
        pair = _ints(positional[:2])
        if shape is None or len(pair) != 2:
            return None
        a, b = (_axis(i, len(shape)) for i in pair)
        if a is None or b is None:
            return None
        dims = list(shape)
        dims[a], dims[b] = dims[b], dims[a]
        return tuple(dims)
    if method == "t":
        return shape[::-1] if shape is not None and len(shape) <= 2 else None
    if method == "permute":
        order = _ints(positional[0].elements if len(positional) == 1 and isinstance(
            positional[0], cst.Tuple | cst.List) else positional)
        if shape is None or len(order) != len(shape) or len(positional) == 0:
            return None
        axes = [_axis(i, len(shape)) for i in order]
        return None if None in axes or len(set(axes)) != len(axes) else tuple(shape[a] for a in axes)
    if method in ("movedim", "moveaxis"):
        pair = _ints(positional[:2])
        if shape is None or len(pair) != 2:
            return None
        source, target = (_axis(i, len(shape)) for i in pair)
        if source is None or target is None:
            return None
        dims = list(shape)
        dims.insert(target, dims.pop(source))
        return tuple(dims)
    if method == "expand":
        wanted = sizes(module, args, values)
        if wanted is None or shape is None or len(wanted) != len(shape):
            return wanted
        return tuple(old if new == UNKNOWN_DIM else new for old, new in zip(shape, wanted))
    if method in ("narrow", "index_select"):
        axis = _ints(positional[:1])
        if shape is None or len(axis) != 1 or _axis(axis[0], len(shape)) is None:
            return None
        index = _axis(axis[0], len(shape))
        return shape[:index] + (UNKNOWN_DIM,) + shape[index + 1:]
    if method == "select":
        axis = _ints(positional[:1])
        if shape is None or len(axis) != 1 or _axis(axis[0], len(shape)) is None:
            return None
        index = _axis(axis[0], len(shape))
        return shape[:index] + shape[index + 1:]
    if method == "gather" and len(positional) >= 2:
        return shape_of(values.get(positional[1], ()))
    if method == "masked_select":
        return (UNKNOWN_DIM,)
    if method in api.REDUCTION_METHODS or method in api.INDEX_REDUCTION_METHODS:
        return _reduced(shape, positional, args)
    return None


def _ints(nodes) -> list[int]:
    """Literal integer arguments; an empty list when any of them is not a literal."""
    numbers = []
    for node in nodes:
        value = literal(getattr(node, "value", node)) if isinstance(node, cst.Element) else literal(node)
        if not isinstance(value, int) or isinstance(value, bool):
            return []
        numbers.append(value)
    return numbers


def _axis(index: int, rank: int) -> int | None:
    if -rank <= index < rank:
        return index % rank
    return None


def _flattened(shape: Shape | None, bounds: list[int]) -> Shape | None:
    if not bounds:
        return (UNKNOWN_DIM,)
    if shape is None:
        return None
    start = _axis(bounds[0], len(shape))
    end = _axis(bounds[1], len(shape)) if len(bounds) > 1 else len(shape) - 1
    if start is None or end is None or end < start:
        return None
    return shape[:start] + (UNKNOWN_DIM,) + shape[end + 1:]


def _squeezed(shape: Shape | None, positional, args) -> Shape | None:
    if shape is None:
        return None
    axes = _ints(positional[:1])
    if positional and not axes:
        return None
    if not positional:
        # Symbolic sizes are taken to be more than 1 (a batch of one is the unusual case).
        return tuple(dim for dim in shape if dim != "1") if UNKNOWN_DIM not in shape else None
    index = _axis(axes[0], len(shape))
    if index is None:
        return None
    if shape[index] == "1":
        return shape[:index] + shape[index + 1:]
    return shape if shape[index] != UNKNOWN_DIM else None


def _reduced(shape: Shape | None, positional, args) -> Shape | None:
    dim_node = positional[0] if positional else _keyword_arg(args, "dim")
    keepdim = literal(_keyword_arg(args, "keepdim")) is True or (
        len(positional) > 1 and literal(positional[1]) is True)
    if dim_node is None:
        return ()
    axes = _ints(dim_node.elements if isinstance(dim_node, cst.Tuple | cst.List) else [dim_node])
    if shape is None or not axes:
        return None
    indices = {_axis(axis, len(shape)) for axis in axes}
    if None in indices:
        return None
    return tuple("1" if i in indices else dim for i, dim in enumerate(shape)) if keepdim else \
        tuple(dim for i, dim in enumerate(shape) if i not in indices)


def _keyword_arg(args: Sequence[cst.Arg], name: str) -> cst.BaseExpression | None:
    for arg in args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    return None


# Torch functions that are a tensor method applied to their first argument.
_FUNCTION_METHODS = {
    f"torch.{name}": name
    for name in ("reshape", "squeeze", "unsqueeze", "flatten", "transpose", "swapaxes", "permute", "movedim",
                 "moveaxis", "t", "narrow", "select", "index_select", "gather", "masked_select", "clone", "sum",
                 "mean", "nansum", "nanmean", "prod", "std", "var", "amax", "amin", "logsumexp", "argmax", "argmin",
                 "softmax", "log_softmax", "sigmoid", "exp", "log", "log1p", "abs", "neg", "relu", "tanh", "clamp",
                 "clip", "detach")
}
_FUNCTION_METHODS.update({api.canonical(f"torch.nn.functional.{name}"): name
                          for name in ("softmax", "log_softmax", "relu")})


def _function(module, node: cst.Call, qualname: str, result: AbsVal, values: Values) -> AbsVal:
    positional = [arg for arg in node.args if arg.keyword is None]
    first = values.get(positional[0].value, ()) if positional and not positional[0].star else ()
    if qualname in _FUNCTION_METHODS and first:
        method = _FUNCTION_METHODS[qualname]
        facts = _method_facts(module, node, method, first, node.args[1:], values)
        if method in api.INDEX_REDUCTION_METHODS:
            return (Value(Domain.CLASS_INDICES, method, node, carries_graph=False, **facts),)
        return _apply(result, facts)
    dtype = _dtype_keyword(node, values)
    if qualname in api.SIZED_FACTORIES:
        size_args = [arg for arg in node.args if arg.keyword is None or arg.keyword.value == "size"]
        shape = sizes(module, [cst.Arg(arg.value, star=arg.star) for arg in size_args], values)
        return _fresh(result, shape, node, dtype or api.SIZED_FACTORIES[qualname], node if dtype else None)
    if qualname == "torch.full" and positional:
        fill = positional[1].value if len(positional) > 1 else _keyword(node, "fill_value")
        shape = sizes(module, positional[:1], values)
        return _fresh(result, shape, node, dtype or (_literal_dtype(fill) if fill is not None else None),
                      node if dtype else None)
    if qualname == "torch.randint":
        size_node = _keyword(node, "size") or next(
            (arg.value for arg in positional if isinstance(arg.value, cst.Tuple | cst.List)), None)
        shape = sizes(module, [cst.Arg(size_node)], values) if size_node is not None else None
        return _fresh(result, shape, node, dtype or "int64", node)
    if qualname == "torch.arange":
        floats = any(isinstance(arg.value, cst.Float) for arg in positional)
        count = dim_text(module, positional[0].value) if len(positional) == 1 else UNKNOWN_DIM
        return _fresh(result, (count,), node, dtype or ("float32" if floats else "int64"), node)
    if qualname in api.LIKE_FACTORIES and first:
        return _fresh(result, shape_of(first), node, dtype or dtype_of(first), node if dtype else None)
    if qualname in api.TENSOR_FROM_DATA or qualname in api.TENSOR_TYPES:
        return _from_data(module, node, qualname, positional, first, dtype, values)
    if qualname == api.canonical("torch.nn.functional.one_hot") and positional:
        count = positional[1].value if len(positional) > 1 else _keyword(node, "num_classes")
        base = shape_of(first)
        shape = base + (dim_text(module, count) if count is not None else UNKNOWN_DIM,) if base is not None else None
        return _apply(result, {"shape": shape, "shape_node": node, "dtype": "int64", "dtype_node": node})
    if qualname in api.CONCATENATING_FUNCTIONS:
        return _apply(result, {"shape": None})
    return result


def _fresh(result: AbsVal, shape: Shape | None, node, dtype: str | None, dtype_node) -> AbsVal:
    return _apply(result, {"shape": shape, "shape_node": node if shape is not None else None, "dtype": dtype,
                           "dtype_node": dtype_node})


def _from_data(module, node: cst.Call, qualname: str, positional, first: AbsVal, dtype: str | None,
               values: Values) -> AbsVal:
    """`torch.tensor(data, dtype=...)`, `torch.LongTensor(data)`: the data's facts with the dtype."""
    typed = dtype or api.TENSOR_TYPES.get(qualname)
    if not positional:
        return (Value(dtype=typed, dtype_node=node if typed else None),)
    data = positional[0].value
    if isinstance(data, cst.List | cst.Tuple) or literal(data) is not MISSING:
        if qualname in api.TENSOR_TYPES:
            if not isinstance(data, cst.List | cst.Tuple):  # `torch.LongTensor(3, 4)`: a size
                return (Value(shape=sizes(module, positional, values), dtype=typed or "float32", dtype_node=node),)
        shape = _literal_shape(data)
        return (Value(shape=shape, shape_node=node if shape is not None else None,
                      dtype=typed or _literal_dtype(data), dtype_node=node, carries_graph=False),)
    if len(positional) > 1 or any(isinstance(v.obj, SequenceObject) for v in first):
        return (Value(dtype=typed, dtype_node=node if typed else None),)
    changes: dict[str, object] = {"carries_graph": False}
    if typed:
        changes.update(dtype=typed, dtype_node=node)
    return tuple(value.but(**changes) if is_tensor(value) else Value(dtype=typed) for value in first) or \
        (Value(dtype=typed),)


def _layer_shape(module: cst.Module, layer: Layer, shape: Shape | None) -> Shape | None:
    if shape is None or not shape:
        return None
    if layer.qualname in api.SHAPE_KEEPING_LAYERS:
        return shape
    where = api.FEATURE_LAYERS.get(layer.qualname)
    if where is None:
        return None
    keyword, position = where
    out = _keyword(layer.node, keyword)
    if out is None:
        positional = [arg for arg in layer.node.args if arg.keyword is None]
        if any(arg.star for arg in positional) or position >= len(positional):
            return None
        out = positional[position].value
    return shape[:-1] + (dim_text(module, out),)


# -- transfer: other expressions --------------------------------------------

def attribute(base: AbsVal, attr: str, node: cst.Attribute, result: AbsVal) -> AbsVal:
    """`x.T`, `x.mT`, `x.data` of a tensor; `batch.labels` of an unknown value remembers its name."""
    if not base or not all(value.obj is None and value.qualname is None for value in base):
        return result
    shape = shape_of(base)
    if attr in ("T", "mT") and shape is not None:
        flipped = shape[::-1] if attr == "T" else (shape[:-2] + shape[-2:][::-1] if len(shape) >= 2 else None)
        return _apply(result, {"shape": flipped, "shape_node": node})
    if attr in api.GRAPH_CUTTING_ATTRIBUTES:
        return _apply(result, {"carries_graph": False})
    if is_label_name(attr) and all(_is_raw(value) for value in result):
        return tuple(value.but(source_name=attr) for value in result)
    return result


def subscript(node: cst.Subscript, base: AbsVal, result: AbsVal, values: Values) -> AbsVal:
    """Indexing a tensor: the shape after the index, the dtype kept; `batch["labels"]` remembers its key."""
    if not base or not all(value.obj is None and value.qualname is None for value in base):
        return result
    shape = shape_of(base)
    changes: dict[str, object] = {"shape": _indexed_shape(shape, node.slice, values) if shape is not None else None}
    dtype = dtype_of(base)
    if dtype is not None:
        changes["dtype"] = dtype
    key = literal(node.slice[0].slice.value) if len(node.slice) == 1 and isinstance(
        node.slice[0].slice, cst.Index) else MISSING
    names = {value.source_name for value in base}
    if isinstance(key, str):
        if is_label_name(key):
            changes["source_name"] = key
    elif len(names) == 1 and None not in names and all(value.domain is Domain.UNKNOWN for value in base):
        changes["source_name"] = names.pop()
    return _apply(tuple(value for value in result), changes) if all(
        value.domain is not Domain.NUMBER for value in result) else result


def _indexed_shape(shape: Shape | None, elements: Sequence[cst.SubscriptElement], values: Values) -> Shape | None:
    if shape is None:
        return None
    dims: list[str] = []
    position = 0
    consumed = sum(1 for element in elements if not _inserts_axis(element) and not _is_ellipsis(element))
    for element in elements:
        index = element.slice
        if _is_ellipsis(element):
            skipped = len(shape) - consumed
            if skipped < 0:
                return None
            dims.extend(shape[position:position + skipped])
            position += skipped
        elif _inserts_axis(element):
            dims.append("1")
        elif position >= len(shape):
            return None
        elif isinstance(index, cst.Slice):
            whole = index.lower is None and index.upper is None and index.step is None
            dims.append(shape[position] if whole else UNKNOWN_DIM)
            position += 1
        elif isinstance(literal(index.value), int) or _is_number(values, index.value):
            position += 1
        else:
            return None  # a tensor index: advanced indexing
    return tuple(dims) + shape[position:]


def _is_ellipsis(element: cst.SubscriptElement) -> bool:
    return isinstance(element.slice, cst.Index) and isinstance(element.slice.value, cst.Ellipsis)


def _inserts_axis(element: cst.SubscriptElement) -> bool:
    return isinstance(element.slice, cst.Index) and isinstance(element.slice.value, cst.Name) and \
        element.slice.value.value == "None"


def broadcast(left: AbsVal, right: AbsVal, result: AbsVal) -> AbsVal:
    """Elementwise arithmetic: equal shapes, or a tensor with a python number, keep the shape."""
    shape: Shape | None = None
    left_shape, right_shape = shape_of(left), shape_of(right)
    if all(value.domain is Domain.NUMBER for value in right):
        shape = left_shape
    elif all(value.domain is Domain.NUMBER for value in left):
        shape = right_shape
    elif left_shape is not None and left_shape == right_shape:
        shape = left_shape
    if shape is None:
        return result
    return _apply(result, {"shape": shape})


def without_graph(result: AbsVal) -> AbsVal:
    """Values computed while autograd recording is off."""
    return tuple(value.but(carries_graph=False) if value.carries_graph is not False and
                 value.obj is None and value.qualname is None else value for value in result)


def grad_disabled(contexts: Sequence[str]) -> bool:
    """Whether the innermost autograd context manager (or decorator) turns recording off."""
    for context in reversed(contexts):
        if context in api.NO_GRAD_CONTEXTS:
            return True
        if context in api.ENABLE_GRAD_CONTEXTS:
            return False
    return False


def returned_parameter(returned: Value, passed: AbsVal) -> AbsVal:
    """What a helper returning its parameter (`return y.float()`) gives the caller: the argument, with
    the dtype the helper cast it to and without the graph the helper detached."""
    changes: dict[str, object] = {}
    if returned.dtype_node is not None:
        changes.update(dtype=returned.dtype, dtype_node=returned.dtype_node)
    if returned.carries_graph is False:
        changes["carries_graph"] = False
    return _apply(passed, changes)


def with_shape(absval: AbsVal, shape: Shape, node: cst.CSTNode) -> AbsVal:
    """A name's values once a shape unpacking or comment states its shape (a rank conflict forgets it)."""
    def one(value: Value) -> Value:
        if value.obj is not None or value.qualname is not None:
            return value
        if value.shape is not None and len(value.shape) != len(shape):
            return value.but(shape=None, shape_node=None)
        return value.but(shape=shape, shape_node=node)
    return tuple(one(value) for value in absval)


def unpacked_shape(target: cst.BaseExpression, source: cst.BaseExpression | None) -> tuple[str, Shape] | None:
    """`B, T, V = logits.shape` → ("logits", ("B", "T", "V"))."""
    measured = measured_tensor(source) if source is not None else None
    if not isinstance(measured, cst.Name) or not isinstance(target, cst.Tuple | cst.List):
        return None
    dims = []
    for element in target.elements:
        if not isinstance(element.value, cst.Name) or isinstance(element, cst.StarredElement):
            return None
        dims.append(UNKNOWN_DIM if element.value.value == "_" else element.value.value)
    return measured.value, tuple(dims)


def named_input(value: Value, name: str) -> Value:
    """An unknown value bound to a label's name straight from outside (an unpacked batch, a loop variable)."""
    if value.source_name is None and is_label_name(name) and _is_raw(value):
        return value.but(source_name=name)
    return value


def is_label_name(name: str | None) -> bool:
    """`labels`, `y`, `targets`, `gt_labels`, `batch_target`: the name of data-set labels."""
    if not name:
        return False
    if name.lower() in api.LABEL_NAMES:
        return True
    tokens = name_tokens(name)
    return bool(tokens) and tokens[-1] in api.LABEL_NAME_TOKENS


def _is_raw(value: Value) -> bool:
    return (value.domain is Domain.UNKNOWN and value.producer is None and value.form is None and value.obj is None
            and value.qualname is None and not value.per_element)
