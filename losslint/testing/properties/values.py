"""The loss's values along the way from uninformative to perfect predictions.

baseline: at uninformative outputs the loss equals its random baseline (log K for cross-entropy).
improves: raising the true-class margin from its start to 3 lowers the loss step by step, and the
gradient at the start is non-zero.
minimum: along the path to perfect, confident predictions the loss comes down to its infimum.
"""

from __future__ import annotations

import math

import torch

from losslint.testing.catalog import CLASSIFICATION_TASKS
from losslint.testing.context import HarnessContext, Verdict, fmt
from losslint.testing.tasks import IMPROVE_END
from losslint.testing.tolerances import close

IMPROVE_STEPS = 13
RANDOM_LOGIT_SCALE = 0.1
# Copies of the batch for the small-random-logits baseline: 32 for 8 examples of 10 classes, one
# when a single batch is already this large (a 50k vocabulary).
RANDOM_BASELINE_ELEMENTS = 4096

UNINFORMATIVE = {
    "regression": "zero predictions",
    "reconstruction": "a uniform 0.5 reconstruction",
    "ranking": "equal scores",
    "embedding": "positive and negative equally far from the anchor",
}


def baseline(ctx: HarnessContext) -> Verdict:
    assert ctx.baseline is not None
    loss, task, tol = ctx.loss, ctx.task, ctx.tolerances
    expected = ctx.baseline * ctx.per_element(ctx.base)
    at = UNINFORMATIVE.get(task.name, "zero logits")
    expectation = f"{fmt(expected)} (±{tol.baseline:g} at {at}"
    with torch.no_grad():
        uninformative = task.uninformative(ctx.base)
        exact = float(loss(uninformative))
        measured = f"{fmt(exact)} at {at}"
        if not close(exact, expected, tol.baseline):
            return Verdict(False, measured, expectation + ")", _baseline_cause(ctx, exact, expected))
        if task.name not in CLASSIFICATION_TASKS:
            return Verdict(True, measured, expectation + ")")
        # Small random logits move the loss linearly with their correlation to the targets; over many
        # logits that averages out, leaving the quadratic rise (+σ²/2·(1−1/K) for CE).
        many = ctx.base
        while many.outputs[0].numel() * 2 <= RANDOM_BASELINE_ELEMENTS:
            many = many.concat(many)
        many = task.uninformative(many)
        gen = ctx.generator("baseline")
        noisy_logits = many.outputs[0] + RANDOM_LOGIT_SCALE * torch.randn(many.outputs[0].shape, generator=gen)
        noisy = float(loss(many.with_outputs(noisy_logits)))
        noisy_expected = ctx.baseline * ctx.per_element(many)
    measured += f"; {fmt(noisy)} at N(0, {RANDOM_LOGIT_SCALE:g}²) logits"
    expectation += f", ±{tol.random_baseline:g} at small random logits)"
    if close(noisy, noisy_expected, tol.random_baseline):
        return Verdict(True, measured, expectation)
    return Verdict(False, measured, expectation,
                   f"exact at zero logits but {fmt(noisy)} at small random ones: the loss treats zero specially "
                   "(a threshold or a sign test on the logits?)")


def _baseline_cause(ctx: HarnessContext, value: float, expected: float) -> str:
    if not math.isfinite(value):
        return f"the loss is {value} at {UNINFORMATIVE.get(ctx.task.name, 'zero logits')}"
    if expected and close(value, -expected, ctx.tolerances.baseline):
        return "the loss is the negative of its baseline: a sign error?"
    ratio = value / expected if expected else math.inf
    if math.isfinite(ratio) and ratio > 1.5 and close(ratio, round(ratio), 1e-3):
        return (f"the loss is {round(ratio)} times its baseline: it sums over {round(ratio)} elements (labels, "
                f"time steps, features) where the baseline assumes a mean; if that is intended pass "
                f"baseline={fmt(value)}")
    return (f"{fmt(value)} instead of {fmt(expected)}: if the loss is meant to differ at uninformative outputs "
            "(focal, label smoothing, a margin), pass its baseline=<value> (or baseline=None to skip)")


def improves(ctx: HarnessContext) -> Verdict:
    loss, task, tol = ctx.loss, ctx.task, ctx.tolerances
    start = task.improve_start
    margins = [start + (IMPROVE_END - start) * i / (IMPROVE_STEPS - 1) for i in range(IMPROVE_STEPS)]
    with torch.no_grad():
        values = [float(loss(task.along_path(ctx.base, m))) for m in margins]
    first = task.along_path(ctx.base, start).leaves()
    value = loss(first)
    connected = value.requires_grad
    gradient_norm = 0.0
    if connected:
        grads = torch.autograd.grad(value, first.outputs, allow_unused=True)
        gradient_norm = math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads if g is not None))
    measured = (f"loss {fmt(values[0])} → {fmt(values[-1])} as the margin grows {start:g} → {IMPROVE_END:g}; "
                f"|grad| {gradient_norm:.3g} at {start:g}")
    expected = "falls at every step; non-zero gradient"

    if not all(math.isfinite(v) for v in values):
        return Verdict(False, measured, expected, "the loss is not finite for moderate predictions")
    if not connected:
        return Verdict(False, measured, expected,
                       "the loss does not depend differentiably on the outputs (detach, .item(), argmax, round or a "
                       "comparison cuts the graph)")
    if values[-1] > values[0] + tol.monotonic * max(1.0, abs(values[0])):
        return Verdict(False, measured, expected,
                       f"the loss rises from {fmt(values[0])} to {fmt(values[-1])} as predictions get better: "
                       "a sign error (maximising instead of minimising, or target and prediction swapped)?")
    if values[-1] >= values[0] - tol.monotonic * max(1.0, abs(values[0])):
        return Verdict(False, measured, expected,
                       "the loss does not change as predictions get better: it ignores the outputs?")
    for (m0, v0), (m1, v1) in zip(zip(margins, values), zip(margins[1:], values[1:])):
        if v1 > v0 + tol.monotonic * max(1.0, abs(v0)):
            return Verdict(False, measured, expected,
                           f"not monotonic: the loss rises from {fmt(v0)} to {fmt(v1)} between margins {m0:.3g} "
                           f"and {m1:.3g}")
    if gradient_norm == 0.0:
        return Verdict(False, measured, expected,
                       "the gradient is exactly zero although the loss changes: a step (round, argmax, threshold, "
                       "comparison) makes it piecewise constant, so training gets no signal")
    return Verdict(True, measured, expected)


def minimum(ctx: HarnessContext) -> Verdict:
    assert ctx.minimum is not None
    tol = ctx.tolerances
    weight = ctx.per_element(ctx.base)
    expected = ctx.minimum * weight
    expectation = f"{fmt(expected)} (±{tol.minimum:g})"
    lowest = ctx.perfect_loss()
    if lowest is None:
        return Verdict(False, "no finite value", expectation,
                       "the loss is not finite anywhere on the way to perfect predictions")
    value, margin = lowest
    measured = f"{fmt(value)} at margin {margin:g}" + _non_finite_note(ctx)
    if close(value, expected, tol.minimum):
        return Verdict(True, measured, expectation)
    if value < expected:
        return Verdict(False, measured, expectation,
                       f"the loss goes below its declared minimum {fmt(expected)}: pass the true infimum as minimum= "
                       "(None skips the check; a Gaussian NLL, for one, can be negative)")
    floor = ctx.task.floor_after_activation(ctx.base)
    if floor is not None and close(value / weight, floor[0], 0.01):
        return Verdict(False, measured, expectation, f"loss stays ≥ {floor[0]:.4g} = {floor[1]}")
    return Verdict(False, measured, expectation,
                   f"the loss stays ≥ {fmt(value)} even for perfect, confident predictions: a constant or epsilon "
                   "added to it, a clamp, or an activation applied before a loss that expects raw outputs; a "
                   "label-smoothed loss has a positive infimum (pass minimum=<its value>)")


def _non_finite_note(ctx: HarnessContext) -> str:
    bad = [m for m, v in ctx.perfect_path() if not math.isfinite(v)]
    return f" (not finite from margin {bad[0]:g} on: see stability)" if bad else ""
