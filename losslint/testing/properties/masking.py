"""Padding must not leak into the loss, and an all-padding batch must not produce NaN.

masking: on a padded batch, (1) new outputs and targets at the padded units, and (2) more padded
units appended, change neither the loss nor the gradient at the real units; the gradient at padded
units is zero. (2) is what catches a mean that divides by every position, padding included.
empty_batch: with every unit padded the loss and its gradient are finite (0/0 is the usual NaN).
"""

from __future__ import annotations

import torch

from losslint.testing.context import HarnessContext, Verdict, fmt
from losslint.testing.tolerances import close

EXTRA_PADDING = 3


def _same(a: torch.Tensor, b: torch.Tensor, tolerance: float) -> bool:
    scale = max(float(a.abs().max()) if a.numel() else 0.0, 1e-12)
    return bool(((a - b).abs() <= tolerance * scale + 1e-12).all())


def masking(ctx: HarnessContext) -> Verdict:
    task, loss, tol = ctx.task, ctx.loss, ctx.tolerances.invariance
    gen = ctx.generator("masking")
    padded = task.padded(ctx.base, gen)
    counted = task.counted(padded)
    marker = "the mask" if padded.mask is not None else f"ignore_index={task.ignore_index}"
    expected = "loss and real-unit gradient unchanged; zero gradient on padding"

    value, grads = loss.value_and_grads(padded.leaves())
    if not torch.isfinite(value):
        return Verdict(False, f"loss {fmt(float(value))} on a padded batch", expected,
                       "the loss is not finite once some positions are padding")
    changed_value, changed_grads = loss.value_and_grads(task.perturb_uncounted(padded, gen).leaves())
    longer = task.extended(padded, EXTRA_PADDING, gen)
    longer_value, longer_grads = loss.value_and_grads(longer.leaves())

    problems, causes = [], []
    if not close(float(changed_value), float(value), tol):
        problems.append(f"new values at padded positions move the loss {fmt(float(value))} → "
                        f"{fmt(float(changed_value))}")
        causes.append(f"padding leaks into the loss: it is not excluded by {marker}")
    if not close(float(longer_value), float(value), tol):
        problems.append(f"{EXTRA_PADDING} more padded positions move the loss {fmt(float(value))} → "
                        f"{fmt(float(longer_value))}")
        causes.append("the mean divides by every position, padding included: divide by the number of real "
                      "positions (mask.sum(), or (target != ignore_index).sum())")
    leaked = max(float(g[~_units_expanded(counted, g)].abs().sum()) for g in grads)
    if leaked > 0:
        problems.append(f"gradient {leaked:.3g} at padded positions")
        causes.append(f"padded positions receive gradient: they are not excluded by {marker}")
    size = padded.outputs[0].shape[task.extension_dim]
    for g, changed, extended in zip(grads, changed_grads, longer_grads):
        real = _units_expanded(counted, g)
        original_part = extended.narrow(task.extension_dim, 0, size)
        if not (_same(g[real], changed[real], tol) and _same(g[real], original_part[real], tol)):
            problems.append("gradient at real positions depends on the padding")
            causes.append("the padding changes how real positions are weighted")
            break
    measured = "; ".join(problems) or f"loss {fmt(float(value))} unchanged, no gradient at padding"
    if problems:
        return Verdict(False, measured, expected, "; ".join(dict.fromkeys(causes)))
    return Verdict(True, measured, expected)


def _units_expanded(units: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A unit-shaped mask broadcast to an output's shape (over its class / feature dims)."""
    while units.dim() < like.dim():
        units = units.unsqueeze(-1)
    return units.expand(like.shape)


def empty_batch(ctx: HarnessContext) -> Verdict:
    task = ctx.task
    empty = task.emptied(ctx.base)
    value, grads = ctx.loss.value_and_grads(empty.leaves())
    grad_finite = all(bool(torch.isfinite(g).all()) for g in grads)
    gradient = "finite" if grad_finite else "not finite"
    measured = f"loss {fmt(float(value))}, gradient {gradient} with every position padded"
    expected = "finite loss and gradient (0 is usual)"
    if bool(torch.isfinite(value)) and grad_finite:
        return Verdict(True, measured, expected)
    if empty.mask is None:
        ii = task.ignore_index
        cause = (f"a mean over zero targets is 0/0: F.cross_entropy(..., ignore_index={ii}) with reduction='mean' "
                 "returns NaN when every target of the batch is ignored; guard the denominator: "
                 f"F.cross_entropy(logits, target, ignore_index={ii}, reduction='sum') / "
                 f"(target != {ii}).sum().clamp_min(1)")
    else:
        cause = ("a masked mean (loss * mask).sum() / mask.sum() is 0/0 = NaN when everything is masked; "
                 "guard the denominator: / mask.sum().clamp_min(1)")
    return Verdict(False, measured, expected, cause)
