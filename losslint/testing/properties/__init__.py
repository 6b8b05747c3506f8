"""The properties, one function each, and when each applies.

A property is `(HarnessContext) -> Verdict`; `applies` returns None when it applies, otherwise
the reason it does not (shown under the report). Names and dependencies live in
`losslint.testing.catalog`.
"""

from __future__ import annotations

from collections.abc import Callable

from losslint.testing.catalog import CLASSIFICATION_TASKS
from losslint.testing.context import HarnessContext, Verdict
from losslint.testing.properties.contract import shape_contract
from losslint.testing.properties.masking import empty_batch, masking
from losslint.testing.properties.numerics import gradcheck, stability
from losslint.testing.properties.reduction import reduction
from losslint.testing.properties.training import overfit
from losslint.testing.properties.values import baseline, improves, minimum
from losslint.testing.properties.weighting import applicable_probes, weights

Check = Callable[[HarnessContext], Verdict]


def _always(ctx: HarnessContext) -> str | None:
    return None


def _has_baseline(ctx: HarnessContext) -> str | None:
    if ctx.baseline is not None:
        return None
    if ctx.task.name in CLASSIFICATION_TASKS:  # these always have a default, so None was asked for
        return "baseline=None"
    return f"{ctx.task.name} has no default baseline (pass baseline=<value>)"


def _has_minimum(ctx: HarnessContext) -> str | None:
    return None if ctx.minimum is not None else "minimum=None"


def _has_padding(ctx: HarnessContext) -> str | None:
    if ctx.task.name == "sequence" or ctx.loss.takes_mask:
        return None
    return "the loss takes no mask parameter"


def _has_class_weights(ctx: HarnessContext) -> str | None:
    if applicable_probes(ctx):
        return None
    return f"no class-weight parameter (weight / pos_weight) for {ctx.task.name}"


CHECKS: dict[str, tuple[Check, Callable[[HarnessContext], str | None]]] = {
    "baseline": (baseline, _has_baseline),
    "improves": (improves, _always),
    "minimum": (minimum, _has_minimum),
    "stability": (stability, _always),
    "masking": (masking, _has_padding),
    "empty_batch": (empty_batch, _has_padding),
    "reduction": (reduction, _always),
    "gradcheck": (gradcheck, _always),
    "shape_contract": (shape_contract, _always),
    "overfit": (overfit, _always),
    "weights": (weights, _has_class_weights),
}
