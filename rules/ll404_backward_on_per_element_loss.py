"""LL404: `.backward()` on a loss that still holds one value per element."""

import libcst as cst

from losslint import torch_api as api
from losslint.context import shorten
from losslint.domains import every
from losslint.findings import Applicability
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class BackwardOnPerElementLoss(Rule):
    """
    ## What it does
    Finds `.backward()` (and `torch.autograd.backward(loss)`, `scaler.scale(loss).backward()`,
    `accelerator.backward(loss)`, `self.manual_backward(loss)`) called without a `gradient` on a loss
    built with `reduction="none"` — directly, through a helper that returns it, or after elementwise
    arithmetic (masking, weighting, scaling) and partial reductions such as `.sum(-1)` that leave more
    than one element. An index (`losses[i]`) may pick a single element and ends the tracking.

    ## Why is this bad?
    Autograd can only start from a scalar: on any tensor with more than one element `backward()`
    raises `RuntimeError: grad can be implicitly created only for scalar outputs`. The training run
    crashes at its first step — or, in a rarely taken branch, hours later.

    ## Example
    ```python
    criterion = nn.CrossEntropyLoss(reduction="none")
    loss = criterion(logits, labels) * weights
    loss.backward()
    ```

    ## Use instead
    ```python
    criterion = nn.CrossEntropyLoss(reduction="none")
    loss = (criterion(logits, labels) * weights).mean()
    loss.backward()
    ```

    ## Fix safety
    The fix reduces with `.mean()` before `.backward()`. It is **unsafe**: whether the sum or the
    mean (or a mean over valid elements only) is intended decides the gradient scale, which the
    linter cannot know. No fix is offered when the loss has ignore_index positions (a plain mean
    would count them, see LL402).

    ## References
    - [torch.Tensor.backward](https://pytorch.org/docs/stable/generated/torch.Tensor.backward.html):
      "If the tensor is non-scalar (i.e. its data has more than one element) and requires gradient,
      the function additionally requires specifying a `gradient`."
    """

    code = "LL404"
    name = "backward-on-per-element-loss"
    summary = "backward() on a per-element (reduction='none') loss: runtime error, not a scalar"
    fix_availability = Applicability.UNSAFE
    tokens = ("backward",)
    probe = "runs-as-written"

    def check(self, ctx):
        for call in ctx.calls:
            loss, loss_node = _differentiated(ctx, call)
            if loss is None or not every(loss, lambda v: v.per_element):
                continue
            origin = loss[0]
            where = f" (line {ctx.line(origin.producer_node)})" if origin.producer_node is not None else ""
            steps = []
            if origin.producer_node is not None:
                steps.append(f"line {ctx.line(origin.producer_node)}: "
                             f"`{shorten(ctx.text(origin.producer_node))}` keeps one loss per element")
            steps.extend(f"line {ctx.line(step.node)}: stored in `{step.text}`" for step in origin.trail if step.node)
            steps.append(f"line {ctx.line(call.node)}: backward() with no reduction and no gradient")
            yield Report(
                node=call.node,
                message=(f"`{shorten(ctx.text(loss_node))}` is the per-element `{origin.producer}` loss{where}, "
                         "not a scalar: backward() raises \"grad can be implicitly created only for scalar "
                         "outputs\""),
                evidence=tuple(steps),
                hint="reduce the loss first (`.mean()`, `.sum()`, or a sum divided by the number of valid "
                     "elements)",
                fix=_reduce_first(ctx, call, loss_node, loss),
            )

    flagged = (
        Flagged(
            """
            from torch import nn

            criterion = nn.CrossEntropyLoss(reduction="none")

            def train_step(model, optimizer, x, y, weights):
                loss = criterion(model(x), y) * weights
                loss.backward()
                optimizer.step()
            """,
            anchor="loss.backward()",
            fixed="""
            from torch import nn

            criterion = nn.CrossEntropyLoss(reduction="none")

            def train_step(model, optimizer, x, y, weights):
                loss = criterion(model(x), y) * weights
                loss.mean().backward()
                optimizer.step()
            """,
        ),
        Flagged(
            """
            import torch.nn.functional as F

            def train_step(pred, target):
                F.mse_loss(pred, target, reduction="none").backward()
            """,
            anchor='F.mse_loss(pred, target, reduction="none").backward()',
        ),
        Flagged(
            """
            import torch
            import torch.nn.functional as F

            def per_sample(logits, y):
                return F.binary_cross_entropy_with_logits(logits, y, reduction="none").sum(-1)

            def step(logits, y):
                torch.autograd.backward(per_sample(logits, y))
            """,
            anchor="torch.autograd.backward(per_sample(logits, y))",
        ),
        Flagged(
            """
            import torch.nn as nn

            class Trainer:
                def __init__(self):
                    self.loss_fn = nn.SmoothL1Loss(reduction="none")

                def step(self, pred, target, mask):
                    loss = self.loss_fn(pred, target)
                    loss = -loss * mask
                    loss.backward(retain_graph=True)
            """,
            anchor="loss.backward(retain_graph=True)",
        ),
        Flagged(
            """
            import torch.nn.functional as F

            def training_step(accelerator, scaler, model, x, y):
                per_sample = F.binary_cross_entropy_with_logits(model(x), y, reduction="none")
                accelerator.backward(per_sample)
            """,
            anchor="accelerator.backward(per_sample)",
            fixed="""
            import torch.nn.functional as F

            def training_step(accelerator, scaler, model, x, y):
                per_sample = F.binary_cross_entropy_with_logits(model(x), y, reduction="none")
                accelerator.backward(per_sample.mean())
            """,
        ),
        Flagged(
            """
            import torch

            def amp_step(model, criterion_none, scaler, x, y):
                with torch.autocast("cuda"):
                    loss = torch.nn.functional.l1_loss(model(x), y, reduction="none")
                scaler.scale(loss).backward()
            """,
            anchor="scaler.scale(loss).backward()",
        ),
    )
    silent = (
        Silent(
            """
            from torch import nn

            criterion = nn.CrossEntropyLoss(reduction="none")

            def train_step(x, y, weights):
                loss = (criterion(x, y) * weights).mean()
                loss.backward()
            """,
            why="The per-element loss is reduced before backward().",
        ),
        Silent(
            """
            import torch
            import torch.nn.functional as F

            def train_step(pred, target):
                loss = F.mse_loss(pred, target, reduction="none")
                loss.backward(torch.ones_like(loss))
            """,
            why="An explicit gradient makes backward() on a non-scalar valid.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def train_step(pred, target, mask):
                loss = F.mse_loss(pred, target, reduction="none")
                loss = (loss * mask).sum() / mask.sum().clamp_min(1)
                loss.backward()
            """,
            why="The masked sum divided by the count is a scalar.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def train_step(losses_fn, pred, target, i):
                losses = F.mse_loss(pred, target, reduction="none")
                losses[i].backward()
            """,
            why="Indexing may pick one element: not provably non-scalar.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def train_step(pred, target, reduction):
                loss = F.mse_loss(pred, target, reduction=reduction)
                loss.backward()
            """,
            why="The reduction is not known to be 'none'.",
        ),
    )


def _differentiated(ctx, call):
    """The loss a backward call starts from, when no gradient is given."""
    node = call.node
    if call.method in api.BACKWARD_DELEGATES and isinstance(node.func, cst.Attribute) and node.args \
            and node.args[0].keyword is None and not any(v.per_element for v in call.receiver or ()):
        # accelerator.backward(loss), self.manual_backward(loss): the argument is the loss.
        return ctx.value(node.args[0].value), node.args[0].value
    if call.method in api.BACKWARD_METHODS and isinstance(node.func, cst.Attribute):
        gives_gradient = any(arg.keyword is None or arg.keyword.value == "gradient" for arg in node.args)
        return (None, None) if gives_gradient else (call.receiver, node.func.value)
    gradient_param = api.BACKWARD_FUNCTIONS.get(call.qualname or "")
    if gradient_param is not None and node.args and node.args[0].keyword is None:
        positional = [arg for arg in node.args if arg.keyword is None]
        if len(positional) > 1 or any(arg.keyword is not None and arg.keyword.value == gradient_param
                                      for arg in node.args):
            return None, None
        return ctx.value(node.args[0].value), node.args[0].value
    return None, None


def _reduce_first(ctx, call, loss_node, loss) -> FixPlan | None:
    if any(v.ignored_zeros for v in loss):
        return None
    text = ctx.text(loss_node)
    atomic = isinstance(loss_node, cst.Name | cst.Attribute | cst.Call | cst.Subscript)
    reduced = f"{text}.mean()" if atomic else f"({text}).mean()"
    return FixPlan("Average the loss before backward()", Applicability.UNSAFE, ((loss_node, reduced),))
