"""What a loss target is made of: class-index evidence and dtype evidence, phrased for messages.

Shared by the target rules (LL301, LL302). A value is taken to hold **class indices** when
- its domain says so (`argmax`, `argmin`), or
- the shapes say so: a target with one dimension fewer than the input (`[B]` for `[B, C]`), or
- it came from outside the function under a data-set label's name (`labels`, `y`, `batch["target"]`,
  `gt_labels`) and nothing in its names says distribution (`soft_labels`, `y_onehot`, `mixed_targets`,
  `teacher_probs`): weak evidence, enough for a message, never for a safe fix.
"""

from __future__ import annotations

from collections.abc import Iterable

import libcst as cst

from losslint import torch_api as api
from losslint.context import Context
from losslint.domains import AbsVal, Domain, Value
from losslint.masks import name_tokens
from losslint.tensors import is_label_name, rank_of, shape_of, show

# Domains that are distributions or scores, never class indices.
DISTRIBUTIONS = (Domain.PROBABILITIES, Domain.LOG_PROBABILITIES, Domain.LOGITS, Domain.FLOAT_TARGETS, Domain.MASK)


def sounds_soft(names: Iterable[str]) -> bool:
    """Whether any of the names says the values are a distribution (`soft_labels`, `y_onehot`, `mix_target`)."""
    return any(api.SOFT_TARGET_TOKENS.intersection(name_tokens(name)) for name in names if name)


def names_of(value: Value, node: cst.CSTNode | None, ctx: Context) -> list[str]:
    """Every name the value went by: where it came from, where it was stored, how the argument spells it."""
    names = [value.source_name or "", *(step.text.rsplit(".", 1)[-1] for step in value.trail)]
    if node is not None:
        names.extend(_identifiers(node))
    return names


def _identifiers(node: cst.CSTNode) -> list[str]:
    found: list[str] = []

    class Collect(cst.CSTVisitor):
        def visit_Attribute(self, attribute: cst.Attribute) -> bool:
            # `labels.float()`, `cfg.target`: the object's name counts, a method or field name does not.
            attribute.value.visit(self)
            return False

        def visit_Name(self, name: cst.Name) -> None:
            found.append(name.value)

        def visit_SimpleString(self, string: cst.SimpleString) -> None:
            found.append(string.evaluated_value if isinstance(string.evaluated_value, str) else "")

    node.visit(Collect())
    return found


def class_index_evidence(ctx: Context, value: Value, target: AbsVal, input_value: AbsVal,
                         node: cst.CSTNode | None) -> str | None:
    """Why `value` (one reaching definition of a class-index loss's target) holds class indices, or None."""
    if value.domain in DISTRIBUTIONS:
        return None
    if value.domain is Domain.CLASS_INDICES:
        where = f" (line {ctx.line(value.producer_node)})" if value.producer_node is not None else ""
        return f"class indices from {value.producer}{where}"
    input_rank, target_rank = rank_of(input_value), rank_of(target)
    if input_rank is not None and target_rank is not None:
        if target_rank == input_rank - 1:
            return (f"a {show(shape_of(target))} target for a {show(shape_of(input_value))} input, "
                    "the layout of class indices")
        return None
    if is_label_name(value.source_name) and not sounds_soft(names_of(value, node, ctx)):
        return f"the data-set labels `{value.source_name}`"
    return None


def dtype_origin(ctx: Context, value: Value, node: cst.CSTNode) -> str:
    """`cast to float32 here`, `cast to float32 by `y.double()` (line 12)`, `int64 from `F.one_hot(y, 10)` (line 3)`."""
    if value.dtype_node is None:
        return f"of dtype {value.dtype}"
    how = "cast to" if _is_cast(value.dtype_node) else "of dtype"
    if value.dtype_node is node:
        return f"cast to {value.dtype} here" if how == "cast to" else f"of dtype {value.dtype}"
    where = f"`{short(ctx.text(value.dtype_node))}` (line {ctx.line(value.dtype_node)})"
    return f"{how} {value.dtype} by {where}" if how == "cast to" else f"{how} {value.dtype}, from {where}"


def _is_cast(node: cst.CSTNode) -> bool:
    """`x.float()`, `x.to(torch.long)`, `torch.tensor(y, dtype=torch.float)`: a dtype chosen in the code."""
    if not isinstance(node, cst.Call):
        return False
    if isinstance(node.func, cst.Attribute) and node.func.attr.value in {*api.DTYPE_METHODS, "to", "type", "type_as"}:
        return True
    return any(arg.keyword is not None and arg.keyword.value == "dtype" for arg in node.args)


def cast_receiver(ctx: Context, node: cst.BaseExpression) -> cst.BaseExpression | None:
    """`labels` when `node` is a dtype cast written in place: `labels.float()`, `labels.to(torch.float32)`."""
    if not isinstance(node, cst.Call) or not isinstance(node.func, cst.Attribute):
        return None
    fact = ctx.call(node)
    if fact is None or fact.method is None:
        return None
    if fact.method in api.DTYPE_METHODS and not node.args:
        return node.func.value
    if fact.method in ("to", "type") and len(node.args) == 1 and all(v.dtype_node is node for v in fact.result):
        return node.func.value
    return None


def short(text: str, limit: int = 50) -> str:
    """One line of at most `limit` characters, for messages."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
