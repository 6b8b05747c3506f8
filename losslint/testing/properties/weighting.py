"""Class weights do what they say.

For every class-weight parameter the loss supports (`weight` per class for multiclass / sequence /
multilabel, `pos_weight` for binary / multilabel): weights of 1 reproduce the unweighted loss and
gradient, and a weight of 3 on one class raises that class's share of the gradient — the gradient
norm on the units it owns relative to the others — by at least `weight_gain` (exactly 3 for torch's
losses; the share is a ratio, so a weighted mean's renormalisation does not matter).
"""

from __future__ import annotations

import torch

from losslint.testing.context import HarnessContext, Verdict, fmt
from losslint.testing.invoke import LossUnderTest
from losslint.testing.tasks import Batch, WeightProbe
from losslint.testing.tolerances import close

UP_WEIGHT = 3.0


def _share(ctx: HarnessContext, loss: LossUnderTest, batch: Batch, owned: torch.Tensor) -> tuple[float, torch.Tensor,
                                                                                                 torch.Tensor]:
    value, grads = loss.value_and_grads(batch.leaves())
    gradient = grads[0]
    units = owned
    while units.dim() < gradient.dim():
        units = units.unsqueeze(-1)
    units = units.expand(gradient.shape)
    inside, outside = gradient[units].norm(), gradient[~units].norm()
    return float(inside / outside) if outside > 0 else float("inf"), value, gradient


def weights(ctx: HarnessContext) -> Verdict:
    loss, task, tol = ctx.loss, ctx.task, ctx.tolerances
    batch = ctx.base
    probes = task.weight_probes(batch, loss.weight_parameters)
    measured, problems, causes = [], [], []
    for probe in probes:
        unweighted = loss.variant(**{probe.parameter: None})
        ones = torch.ones(probe.size)
        up = ones.clone()
        up[probe.up_weighted] = UP_WEIGHT
        plain_share, plain_value, plain_grad = _share(ctx, unweighted, batch, probe.owned)
        _, ones_value, ones_grad = _share(ctx, loss.variant(**{probe.parameter: ones}), batch, probe.owned)
        up_share, _, _ = _share(ctx, loss.variant(**{probe.parameter: up}), batch, probe.owned)
        gain = up_share / plain_share if plain_share > 0 else float("inf")
        measured.append(f"{probe.parameter}: ones give {fmt(float(ones_value))} vs unweighted "
                        f"{fmt(float(plain_value))}; {UP_WEIGHT:g}× on class {probe.up_weighted} scales its gradient "
                        f"share by {gain:.3g}")
        same_gradient = bool(((ones_grad - plain_grad).abs()
                              <= tol.invariance * float(plain_grad.abs().max()) + 1e-12).all())
        if not (close(float(ones_value), float(plain_value), tol.invariance) and same_gradient):
            problems.append(probe.parameter)
            causes.append(f"{probe.parameter} of 1 changes the loss: the weights are not applied as plain "
                          "multipliers (or the weighted mean normalises differently)")
        if not gain >= tol.weight_gain:
            problems.append(probe.parameter)
            causes.append(f"up-weighting a class does not raise its share of the gradient (×{gain:.3g}): the "
                          f"{probe.parameter} is ignored, inverted or applied to the wrong class")
    expected = f"ones = unweighted; {UP_WEIGHT:g}× raises the class's gradient share ≥ {tol.weight_gain:g}×"
    if problems:
        return Verdict(False, "; ".join(measured), expected, " ".join(dict.fromkeys(causes)))
    return Verdict(True, "; ".join(measured), expected)


def applicable_probes(ctx: HarnessContext) -> list[WeightProbe]:
    return ctx.task.weight_probes(ctx.base, ctx.loss.weight_parameters)
