"""How the dataflow recognises masks, counts, pad ids and emptiness checks (the LL4 model).

A value is a **mask** when it is
- a comparison (`labels != -100`, `lengths > t`), a mask method or function (`labels.ne(pad_id)`,
  `x.isfinite()`, `torch.logical_and(a, b)`), `.bool()`, `~mask`, or a product / `&` / `|` of masks:
  its elements are known to be 0 or 1 (`Value.binary`);
- a 0/1 cast of a mask (`mask.float()`, `mask.long()`, `mask.to(dtype)`), or `1 - mask`: still binary;
- a parameter, attribute, string key or otherwise unknown value whose *name* says mask
  (`attention_mask`, `batch["loss_mask"]`, `self.pad_mask`, `valid`, `non_pad`): names are weak
  evidence, so such a mask may be soft and fixes that rely on 0/1 values are unsafe. A name never
  overrides a known domain, and never applies to arithmetic (`(1 - mask) * -1e4` is not a mask).

The **count** of a mask is its sum (`mask.sum()`, `mask.sum(-1)`, `torch.sum(mask)`, `mask.float().sum()`)
or `count_nonzero`; `.item()`, `float()`, casts and scaling by a number keep it a count. A count is
**guarded** (`Form.GUARDED_COUNT`) by a clamp with a lower bound, `max(n, 1)`, `torch.maximum`, an added
term (`n + eps`), a fill of its zeros (`n[n == 0] = 1`, `n.masked_fill(n == 0, 1)`), or an **emptiness
check**: in the branch of an `if` / conditional expression / `torch.where` / after an `assert` or an early
`return` / `continue` / `raise` where the check proves the mask, its count or a selection non-empty
(`if n > 0:`, `if mask.any():`, `if not mask.sum(): return`, `assert valid.any()`), the checked names
are refined: their values become `nonempty`, counts become guarded, and the counts computed earlier from
a checked mask are guarded too.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import libcst as cst

from losslint import torch_api as api
from losslint.domains import AbsVal, Domain, Form, Padding, Value
from losslint.objects import literal

_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def name_tokens(name: str) -> list[str]:
    """`attention_mask` → [attention, mask]; `padMask` → [pad, mask]."""
    return [token.lower() for part in name.split("_") for token in _WORD.findall(part)]


def is_mask_name(name: str) -> bool:
    """`mask`, `attention_mask`, `key_padding_mask`, `valid`, `non_pad` (not `num_masks`, `mask_token_id`)."""
    if name.lower() in api.MASK_NAMES:
        return True
    tokens = name_tokens(name)
    if not tokens:
        return False
    if tokens[-1] in api.MASK_NAME_TOKENS:
        return not api.NOT_MASK_PREFIX_TOKENS.intersection(tokens[:-1])
    return len(tokens) == 2 and tokens[0] in api.MASK_NAME_TOKENS and tokens[1] not in api.NOT_MASK_SUFFIX_TOKENS


def is_pad_name(text: str) -> bool:
    """`pad_id`, `self.pad_idx`, `tokenizer.pad_token_id`, `PAD`, `padding_value` (not `pad_len`, `padding_side`)."""
    last = text.rsplit(".", 1)[-1]
    tokens = name_tokens(last)
    if not tokens or not api.PAD_NAME_TOKENS.intersection(tokens):
        return False
    return set(tokens) - api.PAD_NAME_TOKENS <= api.PAD_ID_TOKENS


def named_mask(name: str, node: cst.CSTNode) -> Value:
    """A value that is a mask only because of its name (possibly soft)."""
    return Value(Domain.MASK, f"named `{name}`", node)


def mark_by_name(name: str, value: AbsVal, node: cst.CSTNode) -> AbsVal:
    """Unknown values stored under a mask name become (possibly soft) masks."""
    if not is_mask_name(name):
        return value
    return tuple(
        v.but(domain=Domain.MASK, producer=f"named `{name}`", producer_node=node,
              trail=tuple(step for step in v.trail if step.node is not node))
        if v.domain is Domain.UNKNOWN and v.obj is None and v.qualname is None and v.form is None
        and not v.per_element and v.padding is None else v
        for v in value
    )


def padding_of(node: cst.BaseExpression | None, text: str) -> Padding | None:
    """The padding a fill value stands for: a number literal, or a pad id's name."""
    if node is None:
        return None
    number = literal(node)
    if _is_number(number):
        return Padding(float(number), text, node)
    if is_pad_name(text):
        return Padding(None, text, node)
    return None


# -- emptiness checks ------------------------------------------------------

_TRANSPARENT_METHODS = frozenset({"sum", "any", "numel", "nelement", "item", "float", "long", "int", "bool",
                                  "count_nonzero", "detach", "cpu"})
_TRANSPARENT_CALLS = frozenset({"len", "int", "float", "bool", "torch.any", "torch.sum", "torch.count_nonzero",
                                "any", "sum"})
_NONEMPTY_WHEN_TRUE = {cst.GreaterThan: 0, cst.NotEqual: 0, cst.GreaterThanEqual: 1}
_NONEMPTY_WHEN_FALSE = {cst.Equal: 0, cst.LessThan: 1, cst.LessThanEqual: 0}
_MIRROR = {cst.GreaterThan: cst.LessThan, cst.LessThan: cst.GreaterThan, cst.GreaterThanEqual: cst.LessThanEqual,
           cst.LessThanEqual: cst.GreaterThanEqual, cst.Equal: cst.Equal, cst.NotEqual: cst.NotEqual}


FACT = "#"  # environment keys that hold facts about expressions, not variables
PROVEN = FACT + "nonempty:"
CONDITION = FACT + "condition:"


def checked_names(test: cst.BaseExpression, truth: bool,
                  resolve: Callable[[str], cst.BaseExpression | None] | None = None, depth: int = 0) -> set[str]:
    """What an emptiness check proves non-empty when `test` evaluates to `truth`: variable names, and
    `proven_key`s of other expressions (`~mask`, `batch["mask"]`). `resolve(name)` gives the condition
    a boolean variable was assigned (`exists = n > 0` … `if exists:`)."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        return checked_names(test.expression, not truth, resolve, depth)
    if isinstance(test, cst.BooleanOperation):
        both = isinstance(test.operator, cst.And) == truth
        if both:
            return checked_names(test.left, truth, resolve, depth) | checked_names(test.right, truth, resolve, depth)
        return set()
    if isinstance(test, cst.Name) and resolve is not None and depth < 3:
        condition = resolve(test.value)
        if condition is not None:
            return checked_names(condition, truth, resolve, depth + 1)
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        target = test.comparisons[0]
        operator, left, right = type(target.operator), test.left, target.comparator
        bound = literal(right)
        if not _is_number(bound):
            bound, left, operator = literal(left), right, _MIRROR.get(operator)
        if not _is_number(bound) or operator is None:
            return set()
        table = _NONEMPTY_WHEN_TRUE if truth else _NONEMPTY_WHEN_FALSE
        name = _checked_key(left)
        return {name} if name and table.get(operator) == bound else set()
    name = _checked_key(test)
    return {name} if name and truth else set()


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _checked_key(node: cst.BaseExpression) -> str | None:
    """The variable an emptiness test is about, or the key of the expression it is about."""
    checked = _checked_expression(node)
    if checked is None:
        return None
    return checked.value if isinstance(checked, cst.Name) else proven_key(checked)


def proven_key(node: cst.BaseExpression) -> str:
    """The environment key under which an emptiness check of `node` (not a plain name) is remembered."""
    return PROVEN + "".join(cst.Module([]).code_for_node(node.with_changes(lpar=(), rpar=())).split())


def root_name(node: cst.BaseExpression) -> str | None:
    """The name an emptiness test is about: `mask` in `mask.sum().item()`, `n` in `int(n)`."""
    checked = _checked_expression(node)
    return checked.value if isinstance(checked, cst.Name) else None


def _checked_expression(node: cst.BaseExpression) -> cst.BaseExpression | None:
    """`mask` in `mask.sum().item() > 0`, `~mask` in `(~mask).any()`."""
    while True:
        if isinstance(node, cst.Name):
            return node
        if isinstance(node, cst.Call):
            func = node.func
            if isinstance(func, cst.Attribute) and func.attr.value in _TRANSPARENT_METHODS:
                node = func.value
                continue
            dotted = _dotted(func)
            if dotted in _TRANSPARENT_CALLS and node.args:
                node = node.args[0].value
                continue
            return None
        if isinstance(node, cst.UnaryOperation | cst.Subscript | cst.Attribute) and _has_name(node):
            return node
        return None


def _has_name(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.Name) or any(_has_name(child) for child in node.children)


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def proven_nonempty(value: AbsVal) -> AbsVal:
    """Values after an emptiness check: non-empty, and counts guarded."""
    return tuple(
        v.but(nonempty=True, form=Form.GUARDED_COUNT) if v.form is Form.COUNT else v.but(nonempty=True)
        for v in value
    )


def counts_of(value: AbsVal, mask_name: str) -> bool:
    """Whether `value` holds a count of the mask stored in `mask_name`."""
    return any(v.form is Form.COUNT and v.form_arg is not None and root_name(v.form_arg) == mask_name
               for v in value)
