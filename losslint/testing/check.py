"""`check_loss`: the sanity checks a careful ML engineer runs by hand on a loss, in one call.

This module validates the arguments without torch; torch is imported only when the checks run,
so that the pytest plugin (which imports this package in every test run) costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from losslint.testing.catalog import NUM_CLASSES_AS_FEATURES, NUM_CLASSES_REQUIRED, PROPERTY_NAMES, TASKS
from losslint.testing.report import HarnessReport, LossCheckError
from losslint.testing.tolerances import KEYWORDS, Tolerances

if TYPE_CHECKING:
    import torch

INSTALL_HINT = "pip install 'torch-losslint[runtime]'"


def check_loss(
    loss_fn: Callable[..., Any],
    task: str,
    num_classes: int | None = None,
    *,
    checks: Iterable[str] | None = None,
    skip: Iterable[str] = (),
    baseline: float | str | None = "auto",
    minimum: float | None = 0.0,
    reduction: str = "mean",
    ignore_index: int = -100,
    mixed_precision: bool = False,
    seed: int = 0,
    inputs: Callable[[torch.Generator], Sequence[Any]] | None = None,
    baseline_tolerance: float = Tolerances.baseline,
    random_baseline_tolerance: float = Tolerances.random_baseline,
    minimum_tolerance: float = Tolerances.minimum,
    monotonic_tolerance: float = Tolerances.monotonic,
    invariance_tolerance: float = Tolerances.invariance,
    duplication_tolerance: float = Tolerances.duplication,
    overfit_gap: float = Tolerances.overfit_gap,
    overfit_fit: float = Tolerances.overfit_fit,
    overfit_steps: int = Tolerances.overfit_steps,
    weight_gain: float = Tolerances.weight_gain,
) -> HarnessReport:
    """Run every applicable property of `loss_fn` on synthetic inputs for `task`.

    Returns the report when every property passes; raises `LossCheckError` (an `AssertionError`
    whose message is the report's table) when one fails. Raises `ValueError` for arguments that
    make no sense and `ImportError` when torch is missing.

    loss_fn: a function `(output, target) -> loss`, an `nn.Module` instance, or any callable; a
        `mask` parameter in its signature makes it receive a boolean mask (True = counts).
    task: regression, binary, multiclass, multilabel, sequence, ranking, embedding or reconstruction.
    num_classes: K for multiclass / multilabel, the vocabulary size V for sequence (required there);
        the feature size for regression and the embedding size for embedding (optional).
    checks / skip: property names (see `losslint.testing.PROPERTY_NAMES`) to run / leave out.
    baseline: the loss at uninformative outputs; "auto" is log K (multiclass, sequence), log 2
        (binary, multilabel) and unchecked elsewhere; None skips. Per element, like `minimum`.
    minimum: the loss's infimum for perfect predictions; None skips.
    reduction: "mean" or "sum" over the batch; with "sum" the harness multiplies its per-element
        expectations by the number of loss elements.
    ignore_index: the target value marking padding in the sequence task (when the loss takes no mask).
    mixed_precision: also check float16 and bfloat16 under autocast.
    seed: every random number the harness draws derives from it.
    inputs: `inputs(generator) -> (outputs..., target[, {"mask": mask}])` in the task's layout;
        the harness takes targets, sizes and mask from it and builds its own predictions.
    The remaining keywords are the tolerances documented in `losslint.testing.Tolerances`.
    """
    tolerances = Tolerances(
        baseline=baseline_tolerance, random_baseline=random_baseline_tolerance, minimum=minimum_tolerance,
        monotonic=monotonic_tolerance, invariance=invariance_tolerance, duplication=duplication_tolerance,
        overfit_gap=overfit_gap, overfit_fit=overfit_fit, overfit_steps=overfit_steps, weight_gain=weight_gain,
    )
    selected = _validate(task, num_classes, checks, skip, baseline, minimum, reduction, seed, inputs, tolerances,
                         has_inputs=inputs is not None)
    try:
        from losslint.testing import runner
    except ImportError as error:
        if error.name == "torch" or "torch" in str(error):
            raise ImportError(f"check_loss needs torch: {INSTALL_HINT}") from error
        raise
    report = runner.run(
        loss_fn, task, num_classes, selected=selected, explicit=checks is not None,
        baseline=baseline, minimum=minimum, reduction=reduction, ignore_index=ignore_index,
        mixed_precision=mixed_precision, seed=seed, inputs=inputs, tolerances=tolerances,
    )
    if not report.passed:
        raise LossCheckError(report)
    return report


def _names(value: Iterable[str] | str, argument: str) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value)
    unknown = [name for name in names if name not in PROPERTY_NAMES]
    if unknown:
        raise ValueError(f"unknown {argument} {unknown}; the properties are {', '.join(PROPERTY_NAMES)}")
    return names


def _validate(
    task: str,
    num_classes: int | None,
    checks: Iterable[str] | None,
    skip: Iterable[str],
    baseline: float | str | None,
    minimum: float | None,
    reduction: str,
    seed: int,
    inputs: object,
    tolerances: Tolerances,
    *,
    has_inputs: bool,
) -> tuple[str, ...]:
    """Usage errors, before torch is imported; returns the property names to run."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)):
        raise ValueError(f"num_classes must be an int, not {num_classes!r}")
    if task in NUM_CLASSES_REQUIRED:
        if num_classes is None and not has_inputs:
            raise ValueError(f"task {task!r} needs num_classes (K, or the vocabulary size for sequence)")
        if num_classes is not None and num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, not {num_classes}")
    elif task in NUM_CLASSES_AS_FEATURES:
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes (the feature size for {task}) must be positive, not {num_classes}")
    elif num_classes is not None and not (task == "binary" and num_classes in (1, 2)):
        raise ValueError(f"num_classes does not apply to task {task!r}")
    if baseline != "auto" and baseline is not None and not _is_number(baseline):
        raise ValueError(f"baseline must be 'auto', a number or None, not {baseline!r}")
    if minimum is not None and not _is_number(minimum):
        raise ValueError(f"minimum must be a number or None, not {minimum!r}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', not {reduction!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, not {seed!r}")
    if inputs is not None and not callable(inputs):
        raise ValueError("inputs must be a callable taking a torch.Generator")
    for name, keyword in KEYWORDS.items():
        value = getattr(tolerances, name)
        if not (_is_number(value) and value > 0):
            raise ValueError(f"{keyword} must be a positive number, not {value!r}")
    selected = _names(checks, "checks") if checks is not None else PROPERTY_NAMES
    skipped = set(_names(skip, "skip"))
    return tuple(name for name in selected if name not in skipped)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
