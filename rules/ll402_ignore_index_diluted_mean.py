"""LL402: a per-element loss with ignore_index averaged with a plain mean over all positions."""

import libcst as cst

from losslint.context import shorten
from losslint.domains import every
from losslint.findings import Applicability
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class IgnoreIndexDilutedMean(Rule):
    """
    ## What it does
    Finds `cross_entropy(..., ignore_index=..., reduction="none")` (or `nll_loss`, functional or
    module) whose per-element result is averaged with `.mean()` / `torch.mean` over all positions,
    directly or after reshaping, scaling, or multiplying by a mask or weights.

    A per-element loss multiplied by a mask *without* an ignore_index and then averaged with
    `.mean()` has the same arithmetic, but is not reported: normalising by a fixed number of
    positions is sometimes deliberate (e.g. constant-length normalisation in RL fine-tuning), while
    an explicit ignore_index says the ignored positions were never meant to count.

    ## Why is this bad?
    With `reduction="none"` the ignored positions get a loss of exactly 0, and a plain mean still
    counts them in the denominator. The loss is scaled by the fraction of real tokens: with 40% of
    the positions padded, the loss and its gradients are 0.6 times what `reduction="mean"` gives,
    and the scale changes from batch to batch with the amount of padding — short batches train with
    a smaller learning rate than long ones. `reduction="mean"` divides by the number of
    non-ignored targets instead.

    ## Example
    ```python
    losses = F.cross_entropy(logits, labels, ignore_index=pad_id, reduction="none")
    loss = losses.mean()
    ```

    ## Use instead
    ```python
    losses = F.cross_entropy(logits, labels, ignore_index=pad_id, reduction="none")
    loss = losses.sum() / (labels != pad_id).sum().clamp_min(1)
    # or simply: F.cross_entropy(logits, labels, ignore_index=pad_id)
    ```

    ## Fix safety
    When the mean is applied directly to the loss call, the fix drops `reduction="none"` and the
    `.mean()`, so torch averages over the non-ignored targets. It is **unsafe**: it changes the
    loss value (to the intended one), and with it the effective learning rate. Other forms get no
    automatic fix.

    ## References
    - [torch.nn.CrossEntropyLoss](https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html):
      "ignore_index: ... Note that ignore_index is only applicable when the target contains class
      indices" and, for `reduction='mean'`, the sum is divided by the total weight of the
      non-ignored targets.
    """

    code = "LL402"
    name = "ignore-index-diluted-mean"
    summary = "Per-element loss with ignore_index averaged by .mean(): ignored positions dilute the loss"
    fix_availability = Applicability.UNSAFE
    tokens = ("ignore_index",)
    probe = "ignore-dilution"

    def check(self, ctx):
        for call in ctx.calls:
            averaged = _averaged(ctx, call)
            if averaged is None or not every(averaged, lambda v: v.ignored_zeros):
                continue
            loss = averaged[0]
            label = f"`{loss.producer}` loss"
            if loss.producer_node is not None:
                label += f" (line {ctx.line(loss.producer_node)})"
            yield Report(
                node=call.node,
                message=(f"`{shorten(ctx.text(call.node))}` averages the per-element {label} over all "
                         "positions: the ignore_index positions hold zeros that still count in the denominator, "
                         "so the loss shrinks with the share of ignored targets"),
                evidence=_evidence(ctx, loss, call.node),
                hint="divide the sum by the number of non-ignored targets, or let the loss reduce with "
                     "reduction=\"mean\"",
                fix=_drop_reduction(ctx, call),
            )

    flagged = (
        Flagged(
            """
            import torch.nn.functional as F

            def lm_loss(logits, labels, pad_id):
                losses = F.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1), ignore_index=pad_id,
                                         reduction="none")
                return losses.mean()
            """,
            anchor="losses.mean()",
        ),
        Flagged(
            """
            import torch.nn.functional as F

            def lm_loss(logits, labels):
                return F.cross_entropy(logits, labels, ignore_index=0, reduction="none").mean()
            """,
            anchor='F.cross_entropy(logits, labels, ignore_index=0, reduction="none").mean()',
            fixed="""
            import torch.nn.functional as F

            def lm_loss(logits, labels):
                return F.cross_entropy(logits, labels, ignore_index=0)
            """,
        ),
        Flagged(
            """
            import torch
            from torch import nn

            class Seq2Seq(nn.Module):
                def __init__(self, pad_idx):
                    super().__init__()
                    self.criterion = nn.CrossEntropyLoss(ignore_index=pad_idx, reduction="none")

                def loss(self, logits, targets, weights):
                    per_token = self.criterion(logits.transpose(1, 2), targets) * weights
                    return torch.mean(per_token)
            """,
            anchor="torch.mean(per_token)",
        ),
        Flagged(
            """
            import torch.nn.functional as F

            def token_nll(log_probs, targets):
                return F.nll_loss(log_probs, targets, ignore_index=-1, reduction="none")

            def step(log_probs, targets, mask):
                nll = token_nll(log_probs, targets) * mask
                return nll.mean()
            """,
            anchor="nll.mean()",
        ),
    )
    silent = (
        Silent(
            """
            import torch.nn.functional as F

            def lm_loss(logits, labels):
                return F.cross_entropy(logits, labels, ignore_index=0)
            """,
            why="reduction='mean' divides by the number of non-ignored targets.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def lm_loss(logits, labels):
                losses = F.cross_entropy(logits, labels, ignore_index=0, reduction="none")
                return losses.sum() / (labels != 0).sum().clamp_min(1)
            """,
            why="The sum is divided by the number of real targets.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def lm_loss(logits, labels):
                losses = F.cross_entropy(logits, labels, ignore_index=0, reduction="none")
                return losses[labels != 0].mean()
            """,
            why="The mean runs over the selected, non-ignored positions only.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def sequence_loss(logits, labels, lengths):
                losses = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=0, reduction="none")
                return (losses.sum(1) / lengths).mean()
            """,
            why="Per-sequence sums normalised by length, then a mean over sequences: no ignored zeros averaged.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def weighted(logits, labels, weights):
                return (F.cross_entropy(logits, labels, reduction="none") * weights).mean()
            """,
            why="No ignore_index: a weighted mean over every position is intended.",
        ),
    )


def _averaged(ctx, call):
    if call.method in ("mean", "nanmean") and call.receiver is not None:
        return call.receiver
    if call.qualname in ("torch.mean", "torch.nanmean") and call.node.args and call.node.args[0].keyword is None:
        return ctx.value(call.node.args[0].value)
    return None


def _evidence(ctx, loss, node) -> tuple[str, ...]:
    steps = []
    if loss.producer_node is not None:
        steps.append(f"line {ctx.line(loss.producer_node)}: `{shorten(ctx.text(loss.producer_node))}` keeps one "
                     "loss per position, 0 at ignored targets")
    steps.extend(f"line {ctx.line(step.node)}: stored in `{step.text}`" for step in loss.trail if step.node)
    steps.append(f"line {ctx.line(node)}: averaged over every position")
    return tuple(steps)


def _drop_reduction(ctx, call) -> FixPlan | None:
    """`F.cross_entropy(x, y, ignore_index=p, reduction="none").mean()` → `F.cross_entropy(x, y, ignore_index=p)`."""
    node = call.node
    if call.method != "mean" or node.args or not isinstance(node.func, cst.Attribute):
        return None
    inner = node.func.value
    if not isinstance(inner, cst.Call) or any(v.producer_node is not inner for v in call.receiver):
        return None
    args = [arg for arg in inner.args if not (arg.keyword is not None and arg.keyword.value == "reduction")]
    if len(args) == len(inner.args):
        return None
    if args:
        args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    fixed = ctx.module.code_for_node(inner.with_changes(args=args))
    return FixPlan("Let the loss average over the non-ignored targets", Applicability.UNSAFE, ((node, fixed),))
