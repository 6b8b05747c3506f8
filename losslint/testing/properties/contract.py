"""Malformed targets are loud; well-formed ones are quiet.

A malformed call (a `[B, 1]` prediction against a `[B]` target, class indices stored as floats)
passes if the loss raises, warns (torch's `mse_loss` warns, which counts), or handles it and
returns exactly the well-formed value. It fails if the loss silently returns something else — the
broadcast `[B, B]` difference or a reinterpreted target. On well-formed inputs the loss must not
emit a size / shape / broadcast warning.

Which malformations are probed per task is in `Task.probes`: the shape mistake torch itself only
warns about (regression's `[B, 1]` against `[B]`) and target dtypes whose silent acceptance changes
the meaning (class indices as floats). Shape probes are not run for the other tasks: torch's losses
raise there, and a hand-written elementwise loss (an unstable BCE, say) would fail them on top of
its real bug.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from losslint.testing.context import HarnessContext, Verdict, fmt
from losslint.testing.tasks import Batch
from losslint.testing.tolerances import close

SHAPE_WARNING = re.compile(r"size|shape|broadcast", re.IGNORECASE)


def _recording(call: Callable[[], Any]) -> tuple[Any, BaseException | None, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return call(), None, list(caught)
        except Exception as error:  # a loud refusal is what the contract asks for
            return None, error, list(caught)


def _masked(ctx: HarnessContext, batch: Batch) -> Batch:
    """A loss with a `mask` parameter gets an all-true, target-shaped mask, so its masked path is exercised."""
    if not ctx.loss.takes_mask or batch.mask is not None:
        return batch
    return replace(batch, mask=torch.ones(batch.target.shape, dtype=torch.bool))


def shape_contract(ctx: HarnessContext) -> Verdict:
    loss, task = ctx.loss, ctx.task
    problems: list[str] = []
    causes: list[str] = []
    seen: list[str] = []
    with torch.no_grad():
        _, _, caught = _recording(lambda: loss(ctx.base))
        noisy = [str(w.message) for w in caught if SHAPE_WARNING.search(str(w.message))]
        if noisy:
            problems.append(f"warns on well-formed inputs ({task.describe(ctx.base)}): {noisy[0][:120]}")
            causes.append("the loss reshapes or broadcasts its inputs internally; make the shapes match exactly")
        for probe in task.probes(ctx.base, ctx.generator("shape_contract")):
            malformed = _masked(ctx, probe.malformed)
            value, error, caught = _recording(lambda: loss.raw(malformed))
            if error is not None:
                seen.append(f"{probe.description}: {type(error).__name__}")
                continue
            if caught:
                seen.append(f"{probe.description}: {caught[0].category.__name__}")
                continue
            reference = float(loss(_masked(ctx, probe.well_formed)))
            handled = (isinstance(value, torch.Tensor) and value.numel() == 1
                       and close(float(value), reference, ctx.tolerances.invariance))
            if handled:
                seen.append(f"{probe.description}: handled")
                continue
            shown = (f"shape {list(value.shape)}" if isinstance(value, torch.Tensor) and value.numel() != 1
                     else fmt(float(value)) if isinstance(value, torch.Tensor) else type(value).__name__)
            problems.append(f"{probe.description}: silently returns {shown} (well-formed: {fmt(reference)})")
            causes.append("a malformed target is silently broadcast or reinterpreted: check shapes and dtypes "
                          "(assert prediction.shape == target.shape, or use the torch loss, which warns or raises)")
    expected = "malformed targets raise or warn; well-formed inputs are quiet"
    if problems:
        return Verdict(False, "; ".join(problems), expected, " ".join(dict.fromkeys(causes)))
    return Verdict(True, "; ".join(seen) or "no warning on well-formed inputs", expected)
