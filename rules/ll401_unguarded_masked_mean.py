"""LL401: a masked mean whose denominator, the count of the mask, can be zero."""

import libcst as cst

from losslint.context import shorten
from losslint.domains import Domain, Form, Value, every
from losslint.findings import Applicability
from losslint.masks import name_tokens
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent
from losslint.torch_api import LOSS_BY_KEY

_ATOMIC = (cst.Name, cst.Attribute, cst.Call, cst.Subscript)


class UnguardedMaskedMean(Rule):
    """
    ## What it does
    Finds averages over the elements a mask selects whose denominator can be zero:
    `(x * mask).sum() / mask.sum()`, `loss /= mask.sum()`, `x.sum(-1) / mask.sum(-1)`,
    `total / (labels != -100).sum().item()`, and `x[mask].mean()`, when no `clamp_min`,
    `clamp(min=...)`, `max(n, 1)`, `torch.maximum`, `+ eps`, zero fill (`n[n == 0] = 1`) or emptiness
    check (`if n > 0:`, `if not mask.any(): return`, `assert mask.any()`, `torch.where(n > 0, ...)`)
    guards it. A division inside a helper (`def masked_mean(values, mask)`) is reported once, in the
    helper, when its parameter is named like a mask or a caller passes one.

    What counts as a mask: a comparison (`labels != -100`, `labels.ne(pad_id)`), `.bool()`, `~m`,
    a 0/1 cast of a mask (`m.float()`), a product of masks, or a parameter / attribute / key / variable
    whose name says so (`attention_mask`, `batch["loss_mask"]`, `valid`, `non_pad`). A sum of anything
    else is not a count: `loss.sum() / num_tokens` with an unknown `num_tokens` is not reported. The
    numerator must make it a mean — a sum, a loss, a python running total: dividing a mask by its count
    (normalised weights) or coordinates by a valid width is not reported.

    ## Why is this bad?
    A batch (or a row) in which the mask selects nothing — every label ignored after truncation, a
    sequence of only padding, a sampled subset that came out empty — gives 0 / 0 = NaN. The NaN
    loss poisons the gradients (the gradient of x / n at n = 0 is NaN too), the optimizer step writes
    NaN into every parameter, and the run is lost; `x[mask].mean()` of an empty selection is NaN as
    well. Measured on torch 2.13: `(l * m).sum() / m.sum()` with an all-zero `m` gives NaN loss and NaN
    gradient; with `m.sum().clamp_min(1)` it gives 0 and a finite gradient.

    ## Example
    ```python
    mask = (labels != -100).float()
    loss = (token_loss * mask).sum() / mask.sum()
    ```

    ## Use instead
    ```python
    mask = (labels != -100).float()
    loss = (token_loss * mask).sum() / mask.sum().clamp_min(1)
    ```

    ## Fix safety
    The fix clamps the denominator at 1 (`max(n, 1)` for a python number). It is **safe** when the
    mask is known to hold only 0 and 1 (a comparison, a boolean, a 0/1 cast of one): the count is then
    0 or at least 1, so only the empty case changes, from NaN to 0. It is **unsafe** when the mask is
    known only by its name and may be soft: a sum of weights in (0, 1) would be raised to 1 and change
    the average. `x[mask].mean()` gets no automatic fix (write
    `x[mask].sum() / mask.sum().clamp_min(1)` or check `mask.any()` first).

    ## References
    - [torch.Tensor.clamp_min](https://pytorch.org/docs/stable/generated/torch.clamp.html)
    - [torch.mean](https://pytorch.org/docs/stable/generated/torch.mean.html): the mean of an empty
      tensor is NaN.
    """

    code = "LL401"
    name = "unguarded-masked-mean"
    summary = "Masked mean divided by the mask's count with no guard: NaN when the mask is empty"
    fix_availability = Applicability.SAFE
    tokens = ("sum", "mean", "count_nonzero", "masked_select")
    probe = "empty-mask"

    def check(self, ctx):
        for fact in (*ctx.binops, *ctx.derived_binops):
            if fact.operator != "/" or fact.right_node is None:
                continue
            if not every(fact.right, lambda v: v.form is Form.COUNT and not v.nonempty):
                continue
            if isinstance(fact.left_node, cst.Integer | cst.Float) or not every(fact.left, _is_total):
                continue  # `1.0 / n` is a step size or a weight, not a mean
            yield self._division(ctx, fact)
        for call in ctx.calls:
            selected = _mean_of(ctx, call)
            # The mean of selected booleans is a rate (an accuracy), not a loss: no gradient to poison.
            if selected is not None and every(
                    selected, lambda v: v.selection and not v.nonempty and v.domain is not Domain.MASK):
                yield Report(
                    node=call.node,
                    message=f"`{shorten(ctx.text(call.node))}` averages the elements a mask selects: when it "
                            "selects none, the mean of the empty tensor is NaN",
                    evidence=_selection_evidence(ctx, call.node),
                    hint="divide the masked sum by `mask.sum().clamp_min(1)`, or check `mask.any()` first",
                )

    def _division(self, ctx, fact) -> Report:
        denominator = fact.right_node
        count = fact.right[0]
        mask = _mask_value(ctx, count)
        counted = f"`{shorten(ctx.text(count.form_arg))}`" if count.form_arg is not None else "a mask"
        if mask is not None and mask.producer_node is not None:
            counted += f" ({mask.producer}, line {ctx.line(mask.producer_node)})"
        where = ""
        if fact.helper_call is not None:
            where = f" inside `{fact.helper_name}` as called at line {ctx.line(fact.helper_call)}"
        message = (f"`{shorten(ctx.text(denominator))}`{where} is the count of {counted} and can be 0: when the "
                   "mask selects nothing the average is 0/0 = NaN, and so is its gradient")
        evidence = list(ctx.chain(mask)) if mask is not None else []
        evidence.append(f"line {ctx.line(denominator)}: divides by `{shorten(ctx.text(denominator))}` with no "
                        "clamp, epsilon or emptiness check")
        return Report(node=denominator, message=message, evidence=tuple(evidence),
                      hint="clamp the count: `.clamp_min(1)` (or `max(n, 1)`), or return early when it is 0",
                      fix=_clamp_fix(ctx, fact))

    flagged = (
        Flagged(
            """
            def token_loss(per_token, labels):
                mask = (labels != -100).float()
                return (per_token * mask).sum() / mask.sum()
            """,
            anchor="mask.sum()",
            fixed="""
            def token_loss(per_token, labels):
                mask = (labels != -100).float()
                return (per_token * mask).sum() / mask.sum().clamp_min(1)
            """,
        ),
        Flagged(
            """
            import torch.nn.functional as F

            def lm_loss(logits, labels, pad_id):
                per_token = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")
                valid = labels.ne(pad_id)
                loss = (per_token * valid).sum()
                loss /= valid.sum()
                return loss
            """,
            anchor="valid.sum()",
            fixed="""
            import torch.nn.functional as F

            def lm_loss(logits, labels, pad_id):
                per_token = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")
                valid = labels.ne(pad_id)
                loss = (per_token * valid).sum()
                loss /= valid.sum().clamp_min(1)
                return loss
            """,
        ),
        Flagged(
            """
            import torch

            def mean_pool(hidden, batch):
                mask = batch["attention_mask"].unsqueeze(-1)
                return torch.sum(hidden * mask, 1) / torch.sum(mask, 1)
            """,
            anchor="torch.sum(mask, 1)",
            fixed="""
            import torch

            def mean_pool(hidden, batch):
                mask = batch["attention_mask"].unsqueeze(-1)
                return torch.sum(hidden * mask, 1) / torch.sum(mask, 1).clamp_min(1)
            """,
        ),
        Flagged(
            """
            def masked_mean(values, m):
                return (values * m).sum() / m.sum()

            def step(losses, labels):
                return masked_mean(losses, labels != -100)
            """,
            anchor="m.sum()",
        ),
        Flagged(
            """
            from torch import nn

            class Head(nn.Module):
                def forward(self, x, target):
                    per_elem = (x - target) ** 2
                    return per_elem[self.loss_mask].mean()
            """,
            anchor="per_elem[self.loss_mask].mean()",
        ),
        Flagged(
            """
            def evaluate(loss_sum, labels):
                n_tokens = (labels != -100).sum().item()
                return loss_sum / n_tokens
            """,
            anchor="n_tokens",
            fixed="""
            def evaluate(loss_sum, labels):
                n_tokens = (labels != -100).sum().item()
                return loss_sum / max(n_tokens, 1)
            """,
        ),
    )
    silent = (
        Silent(
            """
            def token_loss(per_token, mask):
                return (per_token * mask).sum() / mask.sum().clamp(min=1)
            """,
            why="The denominator is clamped: an empty mask gives 0, not NaN.",
        ),
        Silent(
            """
            def token_loss(per_token, mask, eps=1e-8):
                return (per_token * mask).sum() / (mask.sum() + eps)
            """,
            why="An epsilon keeps the denominator away from 0.",
        ),
        Silent(
            """
            def token_loss(per_token, labels):
                valid = labels != -100
                n = valid.sum()
                if n == 0:
                    return per_token.sum() * 0.0
                return (per_token * valid).sum() / n
            """,
            why="An early return handles the empty mask before the division.",
        ),
        Silent(
            """
            def selected_mean(x, mask):
                if mask.any():
                    return x[mask].mean()
                return x.new_zeros(())
            """,
            why="The mean of the selection only runs when the mask selects something.",
        ),
        Silent(
            """
            def validation_step(preds, batch):
                mask = batch["labels"] != -100
                return (preds[mask] == batch["labels"][mask]).float().mean()
            """,
            why="The mean of selected booleans is an accuracy metric, not a loss: no gradient to poison.",
        ),
        Silent(
            """
            import torch

            def token_loss(per_token, mask):
                n = mask.sum()
                return torch.where(n > 0, (per_token * mask).sum() / n, torch.zeros_like(n))
            """,
            why="torch.where chooses the division only where the count is positive.",
        ),
        Silent(
            """
            def token_loss(per_token, num_tokens):
                return per_token.sum() / num_tokens
            """,
            why="An unknown denominator is not known to be the count of a mask.",
        ),
        Silent(
            """
            def ratio(x, y):
                return x.sum() / y.sum()
            """,
            why="A sum of values that are not a mask is not a count.",
        ),
        Silent(
            """
            def average(per_token, mask):
                denom = mask.sum(-1)
                denom[denom == 0] = 1
                return (per_token * mask).sum(-1) / denom
            """,
            why="Zero counts are replaced by 1 before the division.",
        ),
        Silent(
            """
            def token_loss(per_token, mask):
                assert mask.any(), "empty batch"
                return (per_token * mask).sum() / mask.sum()
            """,
            why="The assertion proves the mask non-empty.",
        ),
    )


def _is_total(value: Value) -> bool:
    """A numerator that makes the division a mean: a sum, a loss, a python running total."""
    return (value.total or value.per_element or value.domain is Domain.NUMBER or value.producer in LOSS_BY_KEY
            or value.form is Form.WEIGHTED_LOG or any("loss" in name_tokens(step.text) for step in value.trail[-1:]))


def _mean_of(ctx, call) -> tuple[Value, ...] | None:
    """The values averaged by `x.mean()` / `torch.mean(x)`."""
    if call.method in ("mean", "nanmean") and call.receiver is not None:
        return call.receiver
    if call.qualname in ("torch.mean", "torch.nanmean") and call.node.args and call.node.args[0].keyword is None:
        return ctx.value(call.node.args[0].value)
    return None


def _mask_value(ctx, count: Value) -> Value | None:
    if count.form_arg is None:
        return None
    for value in ctx.value(count.form_arg):
        if value.domain is Domain.MASK:
            return value
    return None


def _selection_evidence(ctx, node) -> tuple[str, ...]:
    """Where the selecting mask came from (when the mean is taken right on `x[mask]`), then the mean."""
    subject = node.func.value if isinstance(node.func, cst.Attribute) else node.args[0].value
    steps: list[str] = []
    index = subject.slice[0].slice if isinstance(subject, cst.Subscript) and len(subject.slice) == 1 else None
    if isinstance(index, cst.Index):
        masks = [v for v in ctx.value(index.value) if v.domain is Domain.MASK]
        if masks and masks[0].producer_node is not None:
            steps.extend(ctx.chain(masks[0]))
    steps.append(f"line {ctx.line(node)}: `{shorten(ctx.text(node))}` takes the mean of a boolean-mask selection "
                 "with no emptiness check")
    return tuple(steps)


def _clamp_fix(ctx, fact) -> FixPlan:
    denominator = fact.right_node
    text = ctx.text(denominator)
    if every(fact.right, lambda v: v.domain is Domain.NUMBER):
        replacement = f"max({text}, 1)"
    else:
        replacement = f"{text}.clamp_min(1)" if isinstance(denominator, _ATOMIC) else f"({text}).clamp_min(1)"
    binary = every(fact.right, lambda v: v.binary)
    return FixPlan("Clamp the count at 1", Applicability.SAFE if binary else Applicability.UNSAFE,
                   ((denominator, replacement),))
