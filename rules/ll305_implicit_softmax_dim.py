"""LL305: softmax / log_softmax / softmin (functional or module) without an explicit `dim`."""

import libcst as cst

from losslint import torch_api as api
from losslint.facts import bind_arguments
from losslint.findings import Applicability, Severity
from losslint.labels import short
from losslint.objects import MISSING, Layer, literal
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent
from losslint.tensors import rank_of, shape_of, show


class ImplicitSoftmaxDim(Rule):
    """
    ## What it does
    Finds `F.softmax`, `F.log_softmax`, `F.softmin` called without `dim` (or with `dim=None`), and
    `nn.Softmax()`, `nn.LogSoftmax()`, `nn.Softmin()` built without one.

    ## Why is this bad?
    Without a `dim` torch guesses one from the input's rank — dim 0 for 0-, 1- and 3-D inputs, dim 1
    otherwise — and warns "Implicit dimension choice for softmax has been deprecated". The guess is
    right for `[B, C]` and `[B, C, H, W]`, but for a 3-D `[B, T, V]` sequence output it normalises
    over the **batch**: each sample's probabilities then depend on the other samples of the batch,
    and a batch of one gives probability 1 everywhere.

    ## Example
    ```python
    probs = F.softmax(logits)  # logits: [B, C]
    ```

    ## Use instead
    ```python
    probs = F.softmax(logits, dim=1)
    ```

    ## Fix safety
    When the input's rank is known and is not 3, the fix writes the dim torch uses today
    (`dim=1` for 2-D inputs, `dim=0` for 1-D ones): it is **safe**, the result is unchanged and the
    warning goes away. For a module, every call of it must have an input of known rank giving the
    same dim. When the rank is unknown, or is 3 (where torch's guess is the batch dimension and the
    intended dim is almost certainly another), no fix is offered: choose the class dimension yourself.

    ## References
    - [torch.nn.functional.softmax](https://pytorch.org/docs/stable/generated/torch.nn.functional.softmax.html):
      "dim (int) – A dimension along which softmax will be computed."
    - `torch/nn/functional.py`, `_get_softmax_dim`: `0 if ndim in (0, 1, 3) else 1`.
    """

    code = "LL305"
    name = "implicit-softmax-dim"
    summary = "softmax / log_softmax without dim: torch guesses it from the rank (the batch dim for 3-D inputs)"
    severity = Severity.WARNING
    fix_availability = Applicability.SAFE
    tokens = ("softmax", "Softmax", "softmin", "Softmin")
    probe = "runs-as-written"

    def check(self, ctx):
        for call in ctx.calls:
            if call.qualname in api.IMPLICIT_DIM_FUNCTIONS:
                bound = bind_arguments(call.node, api.DIM_PARAMS_FUNCTIONAL)
                if bound is None or not _implicit(bound.get("dim")) or "input" not in bound:
                    continue
                inputs = [bound["input"]]
            elif call.qualname in api.DIM_ACTIVATION_MODULES:
                bound = bind_arguments(call.node, api.DIM_PARAMS_MODULE)
                if bound is None or not _implicit(bound.get("dim")):
                    continue
                inputs = _module_inputs(ctx, call.node)
            else:
                continue
            yield self._report(ctx, call.node, bound.get("dim"), inputs)

    def _report(self, ctx, node: cst.Call, dim_arg, inputs) -> Report:
        name = ctx.text(node.func)
        ranks = {rank_of(ctx.value(arg)) for arg in inputs}
        rank = ranks.pop() if len(ranks) == 1 else None
        fix = None
        if rank is None:
            consequence = ("torch picks one from the input's rank (dim 0 for 0-, 1- and 3-D inputs, dim 1 otherwise) "
                           "and warns; for a 3-D [B, T, V] input that is the batch dimension")
        elif rank == 3:
            shape = shape_of(ctx.value(inputs[0])) if len(inputs) == 1 else None
            described = f"this 3-D {show(shape)} input" if shape else "this 3-D input"
            consequence = (f"for {described} torch picks dim=0, the batch dimension, so each sample's "
                           "probabilities depend on the rest of the batch")
        else:
            implicit = 0 if rank in (0, 1) else 1
            consequence = f"torch picks dim={implicit} for this {rank}-D input and warns that the choice is deprecated"
            fix = FixPlan(f"Write the dim torch uses (`dim={implicit}`)", Applicability.SAFE,
                          ((node, _with_dim(ctx, node, dim_arg, implicit)),))
        input_text = f" on `{ctx.text(inputs[0])}`" if len(inputs) == 1 else ""
        return Report(
            node=node,
            message=f"`{name}`{input_text} has no `dim`: {consequence}",
            evidence=tuple(_shape_evidence(ctx, arg) for arg in inputs if shape_of(ctx.value(arg)) is not None),
            hint="pass the class dimension explicitly, usually `dim=-1`",
            fix=fix,
        )

    flagged = (
        Flagged(
            """
            import torch
            import torch.nn.functional as F

            def predict(model, x):
                logits = model(x)  # [B, C]
                return F.softmax(logits)
            """,
            anchor="F.softmax(logits)",
            fixed="""
            import torch
            import torch.nn.functional as F

            def predict(model, x):
                logits = model(x)  # [B, C]
                return F.softmax(logits, dim=1)
            """,
        ),
        Flagged(
            """
            from torch import nn

            class Classifier(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(128, 10)
                    self.log_softmax = nn.LogSoftmax()

                def forward(self, x):
                    B, D = x.shape
                    return self.log_softmax(self.fc(x))
            """,
            anchor="nn.LogSoftmax()",
            fixed="""
            from torch import nn

            class Classifier(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(128, 10)
                    self.log_softmax = nn.LogSoftmax(dim=1)

                def forward(self, x):
                    B, D = x.shape
                    return self.log_softmax(self.fc(x))
            """,
        ),
        Flagged(
            """
            import torch.nn.functional as F

            def attend(scores):
                B, T, S = scores.shape
                return F.softmax(scores)
            """,
            anchor="F.softmax(scores)",
        ),
        Flagged(
            """
            from torch.nn.functional import log_softmax

            def score(logits):
                return log_softmax(logits, dim=None)
            """,
            anchor="log_softmax(logits, dim=None)",
        ),
    )
    silent = (
        Silent(
            """
            import torch.nn.functional as F

            def predict(logits):
                return F.softmax(logits, dim=-1), F.log_softmax(logits, 1)
            """,
            why="The dim is explicit, by keyword or by position.",
        ),
        Silent(
            """
            from torch import nn

            head = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1), nn.Softmax2d())
            """,
            why="nn.Softmax with a dim; nn.Softmax2d has no dim to give.",
        ),
        Silent(
            """
            import torch

            def predict(logits, axis):
                return torch.softmax(logits, axis)
            """,
            why="A dim held in a variable is explicit.",
        ),
    )


def _shape_evidence(ctx, arg) -> str:
    value = ctx.value(arg)
    shape = shape_of(value)
    source = value[0].shape_node
    where = f" (from `{short(ctx.text(source))}`, line {ctx.line(source)})" if source is not None else ""
    return f"line {ctx.line(arg)}: `{short(ctx.text(arg))}` is {show(shape)}{where}"


def _implicit(dim_arg) -> bool:
    return dim_arg is None or (literal(dim_arg) is None and literal(dim_arg) is not MISSING)


def _module_inputs(ctx, node: cst.Call) -> list[cst.BaseExpression]:
    """The inputs of every call of the module built at `node`; none when one call's input is unknown."""
    built = ctx.constructions.get(node)
    layer = built.obj if built is not None and isinstance(built.obj, Layer) else None
    if layer is None:
        return []
    inputs = []
    for call in ctx.calls:
        if any(value.obj is layer for value in ctx.value(call.node.func)):
            if not call.node.args or call.node.args[0].keyword is not None or call.node.args[0].star:
                return []
            inputs.append(call.node.args[0].value)
    return inputs


def _with_dim(ctx, node: cst.Call, dim_arg, dim: int) -> str:
    """The call's text with `dim=<dim>` added (or written over an explicit `dim=None`)."""
    number = cst.Integer(str(dim))
    if dim_arg is not None:
        args = [arg.with_changes(value=number) if arg.value is dim_arg else arg for arg in node.args]
    else:
        args = list(node.args)
        if args and args[-1].comma is cst.MaybeSentinel.DEFAULT:
            args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        args.append(cst.Arg(value=number, keyword=cst.Name("dim"), equal=cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))))
    return ctx.module.code_for_node(node.with_changes(args=args))
