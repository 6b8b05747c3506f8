"""The loss reduces over the batch the way it says it does.

A mean is invariant to permuting the batch and to duplicating it (the duplicate batch is twice as
large with the same per-example losses); a sum is permutation-invariant and doubles. Permutation is
checked to `invariance`, duplication to the looser `duplication` (batch-level losses such as Dice
with a smoothing constant are only nearly invariant). For losses
whose `reduction` can be chosen, 'sum' equals the sum of 'none', and 'mean' its (weighted) mean.
"""

from __future__ import annotations

import torch

from losslint.testing.context import HarnessContext, Verdict, fmt
from losslint.testing.tolerances import close


def reduction(ctx: HarnessContext) -> Verdict:
    loss, task, tol = ctx.loss, ctx.task, ctx.tolerances.invariance
    base = ctx.base
    gen = ctx.generator("reduction")
    problems: list[str] = []
    causes: list[str] = []
    checked: list[str] = []
    with torch.no_grad():
        value = float(loss(base))
        permuted = float(loss(base.select(torch.randperm(base.batch_size, generator=gen))))
        checked.append("permutation")
        if not close(permuted, value, tol):
            problems.append(f"permuting the batch moves the loss {fmt(value)} → {fmt(permuted)}")
            causes.append("the loss depends on the order of the examples (a reduction over the wrong dimension, "
                          "or examples paired by position)")
        if task.independent_examples:
            factor = 2.0 if ctx.reduction == "sum" else 1.0
            doubled = float(loss(base.concat(base)))
            checked.append("duplication")
            if not close(doubled, factor * value, ctx.tolerances.duplication):
                ratio = doubled / value if value else float("nan")
                problems.append(f"duplicating the batch multiplies the loss by {ratio:.4g} (expected {factor:g})")
                causes.append(_duplication_cause(ctx, ratio))
        if loss.reduction_control and loss.module_reduction in (None, "mean", "sum", "none"):
            checked.append("reduction='none' / 'mean' / 'sum'")
            problems_and_causes = _modes(ctx)
            problems += [p for p, _ in problems_and_causes]
            causes += [c for _, c in problems_and_causes]
    expected = ("invariant to permutation" + (" and duplication" if task.independent_examples else "")
                if ctx.reduction == "mean" else "permutation-invariant, doubles with the batch")
    if loss.reduction_control:
        expected += "; 'sum' = sum of 'none', 'mean' = (weighted) mean of 'none'"
    if problems:
        return Verdict(False, "; ".join(problems), expected, " ".join(dict.fromkeys(causes)))
    return Verdict(True, f"consistent under {', '.join(checked)} ({ctx.reduction}: {fmt(value)})", expected)


def _duplication_cause(ctx: HarnessContext, ratio: float) -> str:
    declared = ctx.reduction
    if declared == "mean" and close(ratio, 2.0, 1e-3):
        own = ctx.loss.module_reduction
        hint = f" (the module's reduction is {own!r})" if own and own != "mean" else ""
        return ("the loss sums over the batch although check_loss was told reduction='mean'" + hint +
                ": use .mean(), or pass reduction='sum' if a sum is intended")
    if declared == "sum" and close(ratio, 1.0, 1e-3):
        return "the loss averages over the batch although check_loss was told reduction='sum'"
    return "the loss is normalised by something that grows with the batch other than its size"


def _modes(ctx: HarnessContext) -> list[tuple[str, str]]:
    loss, base, tol = ctx.loss, ctx.base, ctx.tolerances.invariance
    per_element = loss.variant(reduction="none").raw(base)
    total = float(loss.variant(reduction="sum")(base))
    mean = float(loss.variant(reduction="mean")(base))
    if not isinstance(per_element, torch.Tensor):
        return [(f"reduction='none' returned {type(per_element).__name__}",
                 "reduction='none' must return the per-element losses as a tensor")]
    none_sum = float(per_element.sum())
    found = []
    if not close(total, none_sum, tol):
        found.append((f"reduction='sum' gives {fmt(total)}, the sum of reduction='none' is {fmt(none_sum)}",
                      "the 'sum' and 'none' branches of the loss disagree"))
    denominators = {per_element.numel(), ctx.task.element_count(base)}
    weight = loss.current_weight("weight")
    if weight is not None and base.target is not None and not base.target.is_floating_point():
        denominators.add(float(weight[base.target[ctx.task.counted(base)]].sum()))
    if not any(close(mean, none_sum / d, tol) for d in denominators if d):
        expected = fmt(none_sum / per_element.numel()) if per_element.numel() else "nan"
        found.append((f"reduction='mean' gives {fmt(mean)}, the mean of reduction='none' is {expected}",
                      "the 'mean' branch divides by the wrong count (or does not average at all)"))
    return found
