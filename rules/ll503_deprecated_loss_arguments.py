"""LL503: deprecated `size_average` / `reduce` loss arguments and deprecated loss classes (`NLLLoss2d`)."""

import libcst as cst

from losslint import torch_api as api
from losslint.facts import bind_arguments
from losslint.findings import Applicability, Severity
from losslint.objects import MISSING, LossObject, literal
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent

_LEGACY = api.LEGACY_REDUCTION_ARGS


class DeprecatedLossArguments(Rule):
    """
    ## What it does
    Finds the legacy `size_average` and `reduce` arguments of torch losses (functional or module,
    by keyword or by position) and constructions of deprecated loss classes (`nn.NLLLoss2d(...)`).
    A wrapper forwarding its own legacy parameters (`size_average=size_average`) is left to its callers.

    ## Why is this bad?
    Both arguments have been deprecated since torch 0.4.1 in favour of `reduction`; torch warns on
    every construction ("size_average and reduce args will be deprecated, please use
    reduction='sum' instead"). They also **override** an explicit `reduction`:
    `nn.CrossEntropyLoss(reduction="none", reduce=True)` averages the loss. `NLLLoss2d` is an alias
    of `NLLLoss`, deprecated with a warning.

    ## Example
    ```python
    criterion = nn.MSELoss(size_average=False)
    ```

    ## Use instead
    ```python
    criterion = nn.MSELoss(reduction="sum")
    ```

    ## Fix safety
    The fix is **safe**: it writes the `reduction` torch derives from the legacy values
    (`torch/nn/_reduction.py`, `legacy_get_string`: `None` counts as `True`; `reduce=False` gives
    `"none"`, else `size_average=False` gives `"sum"`, else `"mean"`; when both are `None` torch keeps
    `reduction`), and removes an explicit `reduction` the legacy values overrode. It is offered only
    when the legacy values are literals passed by keyword. `NLLLoss2d` becomes `NLLLoss`, which
    behaves identically.

    ## References
    - [torch.nn.MSELoss](https://pytorch.org/docs/stable/generated/torch.nn.MSELoss.html): "size_average
      (bool, optional) – Deprecated (see reduction)".
    """

    code = "LL503"
    name = "deprecated-loss-arguments"
    summary = "Deprecated size_average / reduce loss arguments or NLLLoss2d: use reduction= / NLLLoss"
    severity = Severity.WARNING
    fix_availability = Applicability.SAFE
    # Legacy values passed by position carry no keyword: any loss name may hide one.
    tokens = ("size_average", "reduce", "NLLLoss2d", "Loss", "_loss", "cross_entropy", "kl_div")
    probe = "runs-as-written"

    def check(self, ctx):
        for call, params in _loss_calls(ctx):
            if _native(ctx, call):
                params = ()  # only keywords can be trusted
            bound = bind_arguments(call, params)
            if bound is None:
                continue
            legacy = {name: bound[name] for name in _LEGACY if name in bound}
            if legacy and not all(_forwarded(name, node) for name, node in legacy.items()):
                yield _legacy_report(ctx, call, bound, legacy)
        yield from _deprecated_classes(ctx)

    flagged = (
        Flagged(
            """
            import torch.nn as nn

            criterion = nn.MSELoss(size_average=False)
            """,
            anchor="size_average=False",
            fixed="""
            import torch.nn as nn

            criterion = nn.MSELoss(reduction="sum")
            """,
        ),
        Flagged(
            """
            import torch.nn.functional as F

            def step(logits, y):
                return F.cross_entropy(logits, y, reduction="none", reduce=True, ignore_index=0)
            """,
            anchor="reduce=True",
            fixed="""
            import torch.nn.functional as F

            def step(logits, y):
                return F.cross_entropy(logits, y, reduction="mean", ignore_index=0)
            """,
        ),
        Flagged(
            """
            from torch import nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.kl = nn.KLDivLoss(size_average=False, reduce=False)
            """,
            anchor="size_average=False",
            fixed="""
            from torch import nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.kl = nn.KLDivLoss(reduction="none")
            """,
        ),
        Flagged(
            """
            import torch

            criterion = torch.nn.NLLLoss2d(ignore_index=255)
            """,
            anchor="torch.nn.NLLLoss2d",
            fixed="""
            import torch

            criterion = torch.nn.NLLLoss(ignore_index=255)
            """,
        ),
        Flagged(
            """
            import torch.nn as nn

            def make(weights, average):
                return nn.NLLLoss(weights, average)
            """,
            anchor="average",
        ),
    )
    silent = (
        Silent(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            criterion = nn.MSELoss(reduction="sum")
            other = F.l1_loss(a, b, reduction="none")
            """,
            why="`reduction` is the current API.",
        ),
        Silent(
            """
            from functools import reduce

            total = reduce(lambda a, b: a + b, [1, 2, 3])
            loss = nn.HuberLoss(reduction="mean")
            """,
            why="`reduce` from functools is not a loss argument; HuberLoss never had the legacy ones.",
        ),
        Silent(
            """
            import torch
            import torch.nn.functional as F

            def smooth_l1(input, target, size_average=None, reduce=None, reduction="mean"):
                return F.l1_loss(input, target, size_average=size_average, reduce=reduce, reduction=reduction)

            SKIPPED = {torch.nn.Module, torch.nn.NLLLoss2d}
            """,
            why="A wrapper forwarding its own legacy parameters (its callers decide); a reference to the "
                "deprecated class by identity, which a rename would change.",
        ),
        Silent(
            """
            import torch

            def native(input, target, reduction_enum):
                return torch._C._nn.l1_loss(input, target, reduction_enum)
            """,
            why="The native binding takes the reduction as its third positional argument.",
        ),
    )


def _loss_calls(ctx):
    """Every functional loss call and torch loss construction, with the parameters they bind."""
    seen = set()
    for loss_call in ctx.loss_calls:
        if loss_call.instance is None and loss_call.helper_call is None and loss_call.node not in seen:
            seen.add(loss_call.node)
            yield loss_call.node, loss_call.contract.params
    for node, built in ctx.constructions.items():
        fact = ctx.call(node)
        if isinstance(built.obj, LossObject) and built.obj.node is node and fact is not None and \
                fact.qualname in api.LOSS_BY_MODULE and node not in seen:
            seen.add(node)
            yield node, built.obj.contract.ctor_params


def _native(ctx, call: cst.Call) -> bool:
    """`torch._C._nn.l1_loss(...)`: a native binding, whose positional parameters differ."""
    return any(value.qualname and value.qualname.startswith(api.NATIVE_PREFIXES) for value in ctx.value(call.func))


def _forwarded(name: str, node: cst.BaseExpression) -> bool:
    """`size_average=size_average`: a wrapper passing on its own legacy parameter (its callers decide)."""
    return isinstance(node, cst.Name) and node.value == name


def _legacy_report(ctx, call: cst.Call, bound, legacy) -> Report:
    args = {id(arg.value): arg for arg in call.args}
    nodes = [args[id(node)] if args[id(node)].keyword is not None else node for node in legacy.values()]
    values = {name: literal(node) for name, node in legacy.items()}
    known = all(value is MISSING or isinstance(value, bool | int) or value is None for value in values.values()) and \
        MISSING not in values.values()
    explicit = literal(bound["reduction"]) if "reduction" in bound else MISSING
    spelled = ", ".join(f"`{node.keyword.value}={ctx.text(node.value)}`" if isinstance(node, cst.Arg)
                        else f"`{ctx.text(node)}` (as `{name}`)" for name, node in zip(legacy, nodes))
    if known and all(value is None for value in values.values()):
        outcome = "both are None, so torch keeps `reduction`"
    elif known:
        mapped = api.legacy_reduction(values.get("size_average"), values.get("reduce"))
        outcome = f"torch maps {'them' if len(nodes) > 1 else 'it'} to `reduction=\"{mapped}\"`"
        if isinstance(explicit, str) and explicit != mapped:
            outcome += f", overriding the explicit `reduction=\"{explicit}\"`"
    else:
        outcome = "torch maps the legacy values to a `reduction` and overrides any explicit one"
    return Report(
        node=nodes[0],
        message=f"{spelled} {'are' if len(nodes) > 1 else 'is'} deprecated ({outcome}); torch warns on every call",
        evidence=(f"line {ctx.line(call)}: `{ctx.text(call.func)}` receives the legacy argument(s)",),
        hint="use `reduction=\"mean\" | \"sum\" | \"none\"`",
        fix=_reduction_fix(ctx, call, bound, legacy, values) if known else None,
        covers=tuple(nodes[1:]),
    )


def _reduction_fix(ctx, call: cst.Call, bound, legacy, values) -> FixPlan | None:
    """One `reduction=` in place of the legacy keywords (and of the `reduction` they overrode)."""
    legacy_args = [arg for arg in call.args if arg.keyword is not None and arg.keyword.value in legacy]
    if len(legacy_args) != len(legacy):
        return None  # passed by position: rewriting would shift the other positional arguments
    keep_reduction = all(value is None for value in values.values())
    reduction_arg = next((arg for arg in call.args if arg.value is bound.get("reduction")), None)
    if reduction_arg is not None and reduction_arg.keyword is None and not keep_reduction:
        return None
    mapped = api.legacy_reduction(values.get("size_average"), values.get("reduce"))
    dropped = {id(arg) for arg in legacy_args}
    if not keep_reduction and reduction_arg is not None:
        dropped.add(id(reduction_arg))
    first = next(arg for arg in call.args if id(arg) in dropped)
    args = []
    for arg in call.args:
        if arg is first and not keep_reduction:
            args.append(arg.with_changes(keyword=cst.Name("reduction"), value=cst.SimpleString(f'"{mapped}"')))
        elif id(arg) not in dropped:
            args.append(arg)
    if args and not isinstance(args[-1].comma, cst.MaybeSentinel) and isinstance(call.args[-1].comma,
                                                                                 cst.MaybeSentinel):
        args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    title = "Remove the legacy arguments" if keep_reduction else f"Use `reduction=\"{mapped}\"`"
    return FixPlan(title, Applicability.SAFE, ((call, ctx.module.code_for_node(call.with_changes(args=args))),))


def _deprecated_classes(ctx):
    """Constructions of deprecated loss classes: `nn.NLLLoss2d(...)`, or a name imported as it."""
    # Only constructions (calls): a reference by identity (a set of types, isinstance) must stay.
    for call in ctx.calls:
        node = call.node.func
        values = ctx.value(node)
        if not isinstance(node, cst.Name | cst.Attribute) or len(values) != 1 or not values[0].qualname:
            continue
        deprecated = api.canonical(values[0].qualname)
        replacement = api.DEPRECATED_LOSS_CLASSES.get(deprecated)
        if replacement is None:
            continue
        old, new = deprecated.rsplit(".", 1)[1], replacement.rsplit(".", 1)[1]
        fix = None
        if isinstance(node, cst.Attribute):
            fix = FixPlan(f"Use `{new}`", Applicability.SAFE, ((node.attr, new),))
        elif ctx.spell(replacement) is not None:
            fix = FixPlan(f"Use `{new}`", Applicability.SAFE, ((node, ctx.spell(replacement)),))
        yield Report(
            node=node,
            message=f"`{ctx.text(node)}` is deprecated: `{old}` is an alias of `{new}` that warns on construction",
            hint=f"use `{new}`, which handles the same inputs",
            fix=fix,
        )
