"""LL304: a [B, 1] prediction against a [B] target (or the reverse) in a regression loss."""

import libcst as cst

from losslint.findings import Applicability
from losslint.labels import short
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent
from losslint.tensors import UNKNOWN_DIM, shape_of, show


class BroadcastRegressionShapes(Rule):
    """
    ## What it does
    Finds `F.mse_loss` / `nn.MSELoss`, `F.l1_loss` / `nn.L1Loss`, `F.smooth_l1_loss` /
    `nn.SmoothL1Loss`, `F.huber_loss` / `nn.HuberLoss` and `F.gaussian_nll_loss` whose two tensors
    are known to differ by a trailing singleton dimension: a `[B, 1]` prediction (`nn.Linear(d, 1)`
    on a known `[B, d]`, `.view(-1, 1)`, `.unsqueeze(1)`, a shape comment) against a `[B]` target
    (`.view(-1)`, `.squeeze(-1)`, `torch.randn(B)`, a shape comment), or the reverse.

    ## Why is this bad?
    The losses broadcast `[B, 1]` against `[B]` to `[B, B]` and only emit a UserWarning ("Using a
    target size that is different to the input size … will likely lead to incorrect results due to
    broadcasting"). The loss then compares every prediction with every target: for B = 64 it
    averages 4096 cross pairs instead of 64 errors, and the model learns to predict the batch mean.

    ## Example
    ```python
    pred = self.head(x)  # [B, 1]
    loss = F.mse_loss(pred, y)  # y: [B]
    ```

    ## Use instead
    ```python
    pred = self.head(x).squeeze(-1)  # [B]
    loss = F.mse_loss(pred, y)
    ```

    ## Fix safety
    The fix squeezes the trailing singleton dimension (`.squeeze(-1)`) of the argument that has it.
    It is **unsafe**: the loss value and its gradients change (from the broadcast `[B, B]` average
    to the intended per-sample average).

    ## References
    - [torch.nn.MSELoss](https://pytorch.org/docs/stable/generated/torch.nn.MSELoss.html): "Input: (*)
      … Target: (*), same shape as the input."
    - [Broadcasting semantics](https://pytorch.org/docs/stable/notes/broadcasting.html).
    """

    code = "LL304"
    name = "broadcast-regression-shapes"
    summary = "Regression loss on a [B, 1] prediction and a [B] target: broadcast to [B, B]"
    fix_availability = Applicability.UNSAFE
    tokens = ("mse_loss", "MSELoss", "l1_loss", "L1Loss", "smooth_l1_loss", "SmoothL1Loss", "huber_loss",
              "HuberLoss", "gaussian_nll_loss", "GaussianNLLLoss")
    probe = "broadcast"

    def check(self, ctx):
        for loss_call in ctx.loss_calls:
            if not loss_call.contract.regression:
                continue
            params = (loss_call.contract.input_param, loss_call.contract.target_param)
            shapes = [shape_of(loss_call.value(param)) for param in params]
            nodes = [loss_call.arg(param) for param in params]
            if None in shapes or None in nodes:
                continue
            for wide, narrow in ((0, 1), (1, 0)):
                if not _one_extra_singleton(shapes[wide], shapes[narrow]):
                    continue
                node, value = nodes[wide], loss_call.value(params[wide])[0]
                other, other_value = nodes[narrow], loss_call.value(params[narrow])[0]
                broadcast = show(_broadcast(shapes[wide], shapes[narrow]))
                fix = None
                if loss_call.helper_call is None:
                    text = ctx.text(node)
                    inner = text if isinstance(node, cst.Name | cst.Attribute | cst.Call | cst.Subscript) \
                        else f"({text})"
                    fix = FixPlan("Squeeze the trailing singleton dimension", Applicability.UNSAFE,
                                  ((node, f"{inner}.squeeze(-1)"),))
                evidence = [_shape_step(ctx, param_value, shape)
                            for param_value, shape in ((value, shapes[wide]), (other_value, shapes[narrow]))
                            if param_value.shape_node is not None]
                evidence.append(f"line {ctx.line(node)}: both reach {ctx.loss_label(loss_call)}")
                yield Report(
                    node=node,
                    message=(f"`{ctx.text(node)}` is {show(shapes[wide])} and `{ctx.text(other)}` is "
                             f"{show(shapes[narrow])}: {ctx.loss_label(loss_call)} broadcasts them to {broadcast} "
                             "(with only a warning) and averages every prediction against every target"),
                    evidence=tuple(evidence),
                    hint="give both the same shape: `.squeeze(-1)` the [B, 1] one, or `.unsqueeze(-1)` the [B] one",
                    fix=fix,
                )

    flagged = (
        Flagged(
            """
            import torch.nn.functional as F

            def step(model, x, y):
                pred = model(x)  # [B, 1]
                return F.mse_loss(pred, y.view(-1))
            """,
            anchor="pred",
            fixed="""
            import torch.nn.functional as F

            def step(model, x, y):
                pred = model(x)  # [B, 1]
                return F.mse_loss(pred.squeeze(-1), y.view(-1))
            """,
        ),
        Flagged(
            """
            import torch
            from torch import nn

            class Regressor(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.head = nn.Linear(64, 1)
                    self.criterion = nn.SmoothL1Loss()

                def forward(self, features, target):
                    B, D = features.shape
                    value = self.head(features)
                    return self.criterion(value, target.squeeze(1).view(B))
            """,
            anchor="value",
        ),
        Flagged(
            """
            import torch
            import torch.nn as nn

            loss_fn = nn.L1Loss()
            prediction = torch.randn(32)
            target = torch.randn(32).unsqueeze(1)
            loss = loss_fn(prediction, target)
            """,
            anchor="target",
        ),
    )
    silent = (
        Silent(
            """
            import torch.nn.functional as F

            def step(model, x, y):
                pred = model(x)  # [B, 1]
                return F.mse_loss(pred, y.view(-1, 1))
            """,
            why="Both are [B, 1].",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def step(model, x, y):
                pred = model(x).squeeze(-1)  # [B]
                return F.mse_loss(pred, y)
            """,
            why="The target's shape is unknown: no evidence of a mismatch.",
        ),
        Silent(
            """
            import torch
            import torch.nn.functional as F

            scale = torch.ones(1)
            pred = torch.randn(8, 1)
            loss = F.mse_loss(pred, scale)
            """,
            why="A [1] target broadcasts without multiplying the pairs.",
        ),
    )


def _one_extra_singleton(wide, narrow) -> bool:
    """`[B, 1]` against `[B]` (more generally `[..., 1]` against `[...]` with a non-singleton last size)."""
    if len(wide) != len(narrow) + 1 or not narrow or wide[-1] != "1" or narrow[-1] == "1":
        return False
    return all(a == b or UNKNOWN_DIM in (a, b) for a, b in zip(wide[:-1], narrow))


def _shape_step(ctx, value, shape) -> str:
    return f"line {ctx.line(value.shape_node)}: {show(shape)} from `{short(ctx.text(value.shape_node))}`"


def _broadcast(a, b):
    """The shape torch broadcasts `a` and `b` to (sizes aligned from the right)."""
    width = max(len(a), len(b))
    a, b = ("1",) * (width - len(a)) + tuple(a), ("1",) * (width - len(b)) + tuple(b)
    return tuple(y if x == "1" else x if y == "1" or x == y else UNKNOWN_DIM for x, y in zip(a, b))
