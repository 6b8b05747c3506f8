"""A tiny model trained with the loss fits a tiny batch.

Each output gets fixed random features; one shared linear head (plus the task's output activation,
a sigmoid for reconstructions) maps them to outputs of the batch's shapes. With at least as many
features as units to fit, a linear head can fit any targets, so failing here is the loss's fault.
Adam takes up to `overfit_steps` steps and stops as soon as the loss has closed all but
`overfit_gap` of the way from its initial value to its value at perfect predictions (measured on
the perfect-prediction path, so a loss with a positive infimum is judged against it) and at least
`overfit_fit` of the units are right.
"""

from __future__ import annotations

import math

import torch

from losslint.testing.context import HarnessContext, Verdict, fmt
from losslint.testing.tasks import Batch

LEARNING_RATE = 0.05
MIN_FEATURES = 32


def overfit(ctx: HarnessContext) -> Verdict:
    task, loss, tol = ctx.task, ctx.loss, ctx.tolerances
    gen = ctx.generator("overfit")
    base = ctx.base
    perfect = ctx.perfect_loss()
    if perfect is None:
        return Verdict(False, "no finite loss at perfect predictions", "a finite target value",
                       "the loss is not finite for perfect predictions")
    goal_value = perfect[0]

    inputs_per_output = [math.prod(o.shape[: task.input_dims]) for o in base.outputs]
    features = max(MIN_FEATURES, 2 * sum(inputs_per_output))
    # One linear head shared by all outputs (ranking scores both items, embedding encodes all three).
    head_size = math.prod(base.outputs[0].shape[task.input_dims:])
    weight = (torch.randn(head_size, features, generator=gen) / math.sqrt(features)).requires_grad_(True)
    bias = torch.zeros(head_size, requires_grad=True)
    xs = [torch.randn(*o.shape[: task.input_dims], features, generator=gen) for o in base.outputs]

    def outputs() -> Batch:
        return base.with_outputs(*(task.overfit_activation(x @ weight.T + bias).reshape(o.shape)
                                   for x, o in zip(xs, base.outputs)))

    optimizer = _Adam([weight, bias], LEARNING_RATE)
    batch = outputs()
    current = loss(batch)
    initial = float(current)
    goal = goal_value + tol.overfit_gap * max(initial - goal_value, 0.0)
    expected = f"≤ {fmt(goal)} and ≥ {tol.overfit_fit:.0%} of units right within {tol.overfit_steps} steps"
    step = 0
    while True:
        value, fitted = float(current), task.fitted(batch)
        if not math.isfinite(value):
            break
        if value <= goal and fitted >= tol.overfit_fit:
            return Verdict(True, f"loss {fmt(initial)} → {fmt(value)} in {step} steps, {fitted:.0%} of units right",
                           expected)
        if step == tol.overfit_steps or not current.requires_grad:
            break
        optimizer.step(torch.autograd.grad(current, optimizer.parameters, allow_unused=True))
        step += 1
        batch = outputs()
        current = loss(batch)
    measured = f"loss {fmt(initial)} → {fmt(value)} after {step} steps; {fitted:.0%} of units right"
    if not math.isfinite(value):
        cause = "training diverged to a non-finite loss"
    elif value > goal:
        cause = ("the loss does not come down to its value at perfect predictions "
                 f"({fmt(goal_value)}) under training: its gradient does not lead there")
    else:
        cause = ("the loss reaches its value at perfect predictions while the predictions stay wrong: it ignores "
                 "part of the outputs, or is invariant to something a fit must pin down (the scale, for a cosine "
                 "loss)")
    return Verdict(False, measured, expected, cause)


class _Adam:
    """Adam for the head's two tensors. torch.optim would do, but its first use imports torch._dynamo
    (about 3 s), which a check meant to live in a normal test run cannot afford."""

    def __init__(self, parameters: list[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.parameters, self.lr, self.betas, self.eps = parameters, lr, betas, eps
        self.first = [torch.zeros_like(p) for p in parameters]
        self.second = [torch.zeros_like(p) for p in parameters]
        self.steps = 0

    @torch.no_grad()
    def step(self, grads: tuple[torch.Tensor | None, ...]) -> None:
        self.steps += 1
        b1, b2 = self.betas
        for parameter, grad, first, second in zip(self.parameters, grads, self.first, self.second):
            if grad is None:
                continue
            first.mul_(b1).add_(grad, alpha=1 - b1)
            second.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            denominator = (second / (1 - b2**self.steps)).sqrt_().add_(self.eps)
            parameter.addcdiv_(first, denominator, value=-self.lr / (1 - b1**self.steps))
