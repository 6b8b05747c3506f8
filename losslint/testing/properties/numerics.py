"""Numerical behaviour: large inputs (float32, and float16 / bfloat16 under autocast) and gradient correctness.

stability: at output scales 1e1 … 1e4 the loss and its gradient are finite, and, when the loss keeps
growing with the error (it exceeds twice its uninformative value plus one per element), a confidently
wrong unit still gets a non-zero gradient: a clamped log of a saturated sigmoid gives a finite loss and
a dead gradient, which is as bad as an inf. With mixed precision the same scales run in float16 and
bfloat16 under `torch.autocast`, as in AMP training; there a non-finite batch loss whose per-example
losses are all finite is reported as a reduction that overflows.

gradcheck: `torch.autograd.gradcheck` in float64 (fast mode: one random direction, compared with
central differences), for custom autograd functions and hand-written losses.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from losslint.testing.context import HarnessContext, Verdict, fmt, one_line
from losslint.testing.invoke import LossUnderTest
from losslint.testing.tasks import Batch

SCALES = (1e1, 1e2, 1e3, 1e4)
LOW_PRECISION = (torch.float16, torch.bfloat16)
LOG_SPACE_ADVICE = ("compute it in log space from the raw outputs: F.log_softmax / F.cross_entropy instead of "
                    "log(softmax), F.logsigmoid / F.binary_cross_entropy_with_logits instead of log(sigmoid), "
                    "torch.logsumexp instead of log(sum(exp))")


def _finite(t: torch.Tensor) -> bool:
    return bool(torch.isfinite(t).all())


def _unit_gradient(ctx: HarnessContext, batch: Batch, grads: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Gradient magnitude per unit (summed over classes / features and over all outputs)."""
    units = ctx.task.unit_shape(batch)
    total = torch.zeros(units, dtype=torch.float64)
    for g in grads:
        magnitude = g.double().abs()
        while magnitude.dim() > len(units):
            magnitude = magnitude.sum(-1)
        total = total + magnitude
    return total


def stability(ctx: HarnessContext) -> Verdict:
    gen = ctx.generator("stability")
    problems: list[str] = []
    causes: list[str] = []
    with torch.no_grad():
        uninformative = abs(float(ctx.loss(ctx.task.uninformative(ctx.base))))
    for scale in SCALES:
        batch, wrong = ctx.task.extreme(ctx.base, scale, gen)
        value, grads = ctx.loss.value_and_grads(batch.leaves())
        if not _finite(value):
            problems.append(f"float32 loss {fmt(float(value))} at scale {scale:g}")
            causes.append("the loss overflows at large outputs: " + LOG_SPACE_ADVICE)
            break
        if not all(_finite(g) for g in grads):
            problems.append(f"float32 gradient not finite at scale {scale:g}")
            causes.append("the gradient overflows at large outputs: " + LOG_SPACE_ADVICE)
            break
        # Only a loss that keeps growing with the error owes a gradient on confident mistakes; bounded
        # losses on probabilities (Dice, soft F1) flatten out by design.
        growing = float(value) > 2 * uninformative + ctx.per_element(batch)
        if ctx.task.saturation_check and growing:
            dead = wrong & ctx.task.counted(batch) & (_unit_gradient(ctx, batch, grads) == 0)
            if dead.any():
                problems.append(f"gradient exactly 0 on {int(dead.sum())} of {int(wrong.sum())} confidently wrong "
                                f"units at scale {scale:g}")
                causes.append("the gradient vanishes on confident mistakes: a saturated sigmoid/softmax whose log "
                              "is clamped (as F.binary_cross_entropy(torch.sigmoid(x), y) does) gives a finite loss "
                              "and no signal; " + LOG_SPACE_ADVICE)
                break
    if ctx.mixed_precision:
        for dtype in LOW_PRECISION:
            problem = _low_precision_problem(ctx, dtype, gen)
            if problem is not None:
                problems.append(problem[0])
                causes.append(problem[1])
    dtypes = "float32" + (", float16, bfloat16 (autocast)" if ctx.mixed_precision else "")
    expected = (f"finite loss and gradient in {dtypes}"
                + ("; non-zero gradient on wrong units" if ctx.task.saturation_check else ""))
    if problems:
        return Verdict(False, "; ".join(problems), expected, " ".join(dict.fromkeys(causes)))
    return Verdict(True, f"finite at scales {', '.join(f'{s:g}' for s in SCALES)}", expected)


def _low_precision_problem(ctx: HarnessContext, dtype: torch.dtype, gen: torch.Generator) -> tuple[str, str] | None:
    name = str(dtype).removeprefix("torch.")
    largest = torch.finfo(dtype).max
    for scale in SCALES:
        batch, _ = ctx.task.extreme(ctx.base, scale, gen)
        low = batch.to(dtype)
        with torch.autocast("cpu", dtype=dtype):
            value, grads = ctx.loss.value_and_grads(low.leaves())
        if _finite(value):
            if not all(_finite(g) for g in grads) and _gradient_fits(ctx, low, grads, largest):
                return (f"{name} gradient not finite at scale {scale:g}",
                        f"the backward pass overflows in {name}: compute the loss in float32 (x.float())")
            continue
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype):
            per_example = [float(ctx.loss(low.select([i]))) for i in range(low.batch_size)]
        if all(math.isfinite(v) for v in per_example):
            return (f"{name} loss {fmt(float(value))} at scale {scale:g} although every per-example loss is finite "
                    f"(largest {fmt(max(per_example, key=abs))})",
                    f"the reduction overflows in {name} (max {largest:.4g}): a sum, or a mean written as sum / n, "
                    "accumulates in low precision; use .mean(), or reduce in float32 (loss.float().sum())")
        with torch.no_grad():
            reference = [float(ctx.loss(low.to(torch.float32).select([i]))) for i in range(low.batch_size)]
        representable = [i for i, v in enumerate(per_example)
                         if not math.isfinite(v) and math.isfinite(reference[i]) and abs(reference[i]) <= largest]
        if representable:
            i = representable[0]
            return (f"{name} per-example loss {fmt(per_example[i])} at scale {scale:g} where float32 gives "
                    f"{fmt(reference[i])}",
                    f"an intermediate overflows in {name} although the loss itself fits: compute it in float32 "
                    "(x.float()) or in log space")
        # Otherwise the true per-example values exceed the dtype's range: nothing a loss could return.
    return None


def _gradient_fits(ctx: HarnessContext, low: Batch, grads: tuple[torch.Tensor, ...], largest: float) -> bool:
    """Whether the float32 gradient, where the low-precision one is not finite, fits the low dtype.

    If it does not (BCE on a saturated probability has a gradient near 1e12), no loss could return it.
    """
    _, reference = ctx.loss.value_and_grads(low.to(torch.float32).leaves())
    return any(bool((torch.isfinite(r) & (r.abs() <= largest))[~torch.isfinite(g)].any())
               for g, r in zip(grads, reference))


def gradcheck(ctx: HarnessContext) -> Verdict:
    small = ctx.base.select(slice(0, 3))
    loss, batch, precision = ctx.loss.in_dtype(torch.float64), small.to(torch.float64).leaves(), "float64"
    settings: dict[str, float] = {}
    if not _computes_in_float64(loss, batch):
        # The loss pins float32 (a float32 buffer, an explicit .float()): check it at its own precision.
        loss, batch, precision = ctx.loss, small.leaves(), "float32"
        settings = {"eps": 1e-2, "atol": 1e-2, "rtol": 1e-2}

    def fn(*outputs: torch.Tensor) -> torch.Tensor:
        return loss(batch.with_outputs(*outputs))

    analytical, numerical = _directional_derivatives(fn, batch.outputs, ctx.generator("gradcheck"),
                                                     settings.get("eps", 1e-6))
    measured = f"directional derivative: analytical {fmt(analytical)}, numerical {fmt(numerical)} ({precision})"
    expected = "torch.autograd.gradcheck passes"
    try:
        torch.autograd.gradcheck(fn, batch.outputs, fast_mode=True, **settings)
    except Exception as error:  # GradcheckError, or the backward itself failing
        return Verdict(False, measured, expected,
                       f"{one_line(error, 160)} — the backward disagrees with the forward: a custom autograd "
                       "Function's backward, or a detach/in-place edit that hides part of the computation")
    return Verdict(True, measured, expected)


def _computes_in_float64(loss: LossUnderTest, batch: Batch) -> bool:
    try:
        return loss(batch).dtype == torch.float64
    except Exception:  # e.g. float64 logits against a float32 class weight bound in a partial
        return False


def _directional_derivatives(fn: Callable[..., torch.Tensor], inputs: tuple[torch.Tensor, ...],
                             gen: torch.Generator, eps: float) -> tuple[float, float]:
    """⟨∇f, u⟩ by autograd and by central differences, along one random direction u (for the report)."""
    directions = [torch.randn(x.shape, generator=gen, dtype=torch.float64).to(x.dtype) for x in inputs]
    value = fn(*inputs)
    grads = torch.autograd.grad(value, inputs, allow_unused=True) if value.requires_grad else [None] * len(inputs)
    analytical = sum(float((g * u).sum()) for g, u in zip(grads, directions) if g is not None)
    with torch.no_grad():
        plus = fn(*(x + eps * u for x, u in zip(inputs, directions)))
        minus = fn(*(x - eps * u for x, u in zip(inputs, directions)))
    return analytical, float(plus - minus) / (2 * eps)
