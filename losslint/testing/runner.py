"""Runs the selected properties in dependency order and collects the report (imports torch)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch

from losslint.testing.catalog import PROPERTIES, run_order
from losslint.testing.context import HarnessContext, Verdict, one_line
from losslint.testing.invoke import LossContractError, LossUnderTest
from losslint.testing.properties import CHECKS
from losslint.testing.report import CALL, HarnessReport, PropertyResult
from losslint.testing.tasks import Batch, Task, make_task
from losslint.testing.tolerances import Tolerances

OUTPUT_COUNT = {"ranking": 2, "embedding": 3}
LAYOUT = {
    "regression": "(prediction, target)",
    "binary": "(logits [B], target [B] float)",
    "multiclass": "(logits [B, K], target [B] int64)",
    "multilabel": "(logits [B, K], target [B, K] float)",
    "sequence": "(logits [B, T, V], target [B, T] int64)",
    "ranking": "(s1 [B], s2 [B], y [B] in {1, -1})",
    "embedding": "(anchor [B, D], positive [B, D], negative [B, D])",
    "reconstruction": "(reconstruction [B, ...] in [0, 1], target [B, ...])",
}


def run(
    loss_fn: Callable[..., Any],
    task_name: str,
    num_classes: int | None,
    *,
    selected: Sequence[str],
    explicit: bool,
    baseline: float | str | None,
    minimum: float | None,
    reduction: str,
    ignore_index: int,
    mixed_precision: bool,
    seed: int,
    inputs: Callable[[torch.Generator], Sequence[Any]] | None,
    tolerances: Tolerances,
) -> HarnessReport:
    loss = LossUnderTest(loss_fn, seed=seed)
    task = make_task(task_name, num_classes, uses_mask=loss.takes_mask, ignore_index=ignore_index)
    threads = torch.get_num_threads()
    # The harness's own calls (malformed probes, float32 gradcheck) warn on purpose: warnings are
    # silenced, and the contract check records the ones it judges. The global RNG is forked and
    # seeded, so whatever draws from it (gradcheck's directions, a loss that samples) is
    # reproducible and the caller's RNG state is left as it was. One thread: the tensors are tiny.
    with warnings.catch_warnings(), torch.enable_grad(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        try:
            if inputs is not None:
                base = _user_batch(task, inputs, seed, num_classes)
            else:
                base = task.sample(torch.Generator().manual_seed(seed))
            settings = f"{task.settings()}, reduction={reduction}, seed={seed}"
            settings += ", mixed precision" if mixed_precision else ""
            failures = _preflight(loss, task, base, selected)
            if failures:
                return HarnessReport(loss.name, settings, failures)
            ctx = HarnessContext(loss, task, base, seed, _resolve_baseline(baseline, task), minimum, reduction,
                                 mixed_precision, tolerances)
            return _run_properties(ctx, selected, settings, explicit=explicit)
        finally:
            torch.set_num_threads(threads)


def _run_properties(ctx: HarnessContext, selected: Sequence[str], settings: str, *, explicit: bool) -> HarnessReport:
    not_applicable = {name: reason for name in selected if (reason := CHECKS[name][1](ctx)) is not None}
    if explicit and not_applicable:
        # The caller named these checks; silently not running one would hide a mistake.
        raise ValueError("; ".join(f"check {name!r} does not apply: {why}" for name, why in not_applicable.items()))
    verdicts: dict[str, PropertyResult] = {}
    for spec in run_order():
        if spec.name not in selected or spec.name in not_applicable:
            continue
        failed_prerequisites = [name for name in spec.requires
                                if name in verdicts and verdicts[name].status != "pass"]
        if failed_prerequisites:
            verdicts[spec.name] = PropertyResult(spec.name, "blocked", f"not run: {', '.join(failed_prerequisites)} "
                                                 "did not pass", "")
            continue
        verdicts[spec.name] = _result(spec.name, _safely(CHECKS[spec.name][0], ctx))
    ordered = tuple(verdicts[spec.name] for spec in PROPERTIES if spec.name in verdicts)
    return HarnessReport(ctx.loss.name, settings, ordered, not_applicable)


def _safely(check: Callable[[HarnessContext], Verdict], ctx: HarnessContext) -> Verdict:
    try:
        return check(ctx)
    except Exception as error:  # the loss raising on the property's inputs is a finding, not a crash
        return Verdict(False, f"raised {one_line(error)}", "no error",
                       "the loss raised on inputs this property builds (see the measured column)")


def _result(name: str, verdict: Verdict) -> PropertyResult:
    return PropertyResult(name, "pass" if verdict.passed else "fail", verdict.measured, verdict.expected,
                          verdict.cause)


def _preflight(loss: LossUnderTest, task: Task, base: Batch, selected: Sequence[str]) -> tuple[PropertyResult, ...]:
    """One call on well-formed inputs; if it fails there is nothing else worth running.

    An error is reported as `call`; a result that is not a scalar tensor fails the property that
    names it (reduction for a shape, improves for a float) and blocks the others.
    """
    try:
        loss(base)
    except LossContractError as error:
        expected = f"a scalar loss tensor for {task.describe(base)}"
        return tuple(
            PropertyResult(spec.name, "fail", f"returns {error.returned}", expected, error.cause)
            if spec.name == error.property
            else PropertyResult(spec.name, "blocked", "not run: no scalar loss to test", "")
            for spec in PROPERTIES if spec.name == error.property or spec.name in selected
        )
    except Exception as error:
        return (PropertyResult(
            CALL, "fail", one_line(error), f"a scalar loss for {task.describe(base)}",
            f"the loss cannot be called on well-formed {task.name} inputs {LAYOUT[task.name]}: check task= and "
            "num_classes=, or wrap the loss (functools.partial, a lambda) to take them",
        ),)
    return ()


def _resolve_baseline(baseline: float | str | None, task: Task) -> float | None:
    if baseline != "auto":
        return baseline  # type: ignore[return-value]
    if task.name in ("multiclass", "sequence"):
        return math.log(task.size)
    if task.name in ("binary", "multilabel"):
        return math.log(2)
    return None


def _user_batch(task: Task, inputs: Callable[[torch.Generator], Sequence[Any]], seed: int,
                num_classes: int | None) -> Batch:
    """The base batch from the user's `inputs` factory; later batches are sized to match it."""
    produced = list(inputs(torch.Generator().manual_seed(seed)))
    keywords = produced.pop() if produced and isinstance(produced[-1], dict) else {}
    unknown = set(keywords) - {"mask"}
    if unknown:
        raise ValueError(f"inputs() may only add a 'mask' keyword, not {sorted(unknown)}: bind other keyword "
                         "arguments to the loss with functools.partial")
    outputs_count = OUTPUT_COUNT.get(task.name, 1)
    has_target = task.name != "embedding"
    if len(produced) != outputs_count + has_target or not all(isinstance(t, torch.Tensor) for t in produced):
        raise ValueError(f"inputs() must return the tensors {LAYOUT[task.name]} (then optionally a dict with "
                         f"'mask'), got {len(produced)} values")
    outputs = tuple(t.detach() for t in produced[:outputs_count])
    target = produced[outputs_count].detach() if has_target else None
    mask = keywords.get("mask")
    batch = Batch(outputs, target, mask.bool() if mask is not None else None)
    task.adapt(batch)
    if num_classes is not None and task.size and task.size != num_classes and task.name != "regression":
        raise ValueError(f"num_classes={num_classes} but inputs() produced outputs of size {task.size}")
    if task.uses_mask and batch.mask is None:
        batch = Batch(outputs, target, torch.ones(task.unit_shape(batch), dtype=torch.bool))
    return batch
