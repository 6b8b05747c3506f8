"""The harness's tolerances, with their defaults and what each one bounds (no torch here).

Every comparison uses `close(measured, expected, tol)`: |measured − expected| ≤ tol · max(1, |expected|),
i.e. absolute for values below 1 and relative above. Losses reduced with "sum" are compared after
the harness scales its expectation by the number of loss elements, so the tolerances are per element.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Tolerances:
    # Loss at exactly uninformative outputs (zero logits) against `baseline`.
    baseline: float = 1e-3
    # Loss at small random logits (N(0, 0.1²)) against `baseline`; cross-entropy sits ~0.2% above log K there.
    random_baseline: float = 0.02
    # Lowest loss reached along the perfect-prediction path against `minimum`.
    minimum: float = 1e-3
    # Largest rise allowed between two steps of the improvement sweep (float32 rounding is ~1e-7).
    monotonic: float = 1e-5
    # Equalities that hold exactly in real arithmetic: masked changes, batch permutation and duplication,
    # reduction='none' against 'mean'/'sum', weights of 1.
    invariance: float = 1e-5
    # Duplicating the batch must keep a mean (double a sum) within this fraction. Not exact for
    # batch-level losses with a smoothing constant (Dice: 6% on 8 examples); the bugs it looks for,
    # a sum taken for a mean or a hard-coded batch size, are off by 2×.
    duplication: float = 0.25
    # Overfit succeeds when the loss has closed all but this fraction of the gap between its
    # initial value and its value at perfect predictions (and the batch is fitted).
    overfit_gap: float = 0.1
    # ... and gets at least this fraction of the units right. Not all: a batch-level loss (Dice) may
    # trade one element off, and is still a loss a model trains with.
    overfit_fit: float = 0.9
    # Optimiser steps the overfit check may take (Adam, lr 0.05); it stops as soon as it succeeds.
    overfit_steps: int = 300
    # Up-weighting one class by 3 must raise its share of the gradient norm by at least this factor
    # (torch's losses raise it by exactly 3).
    weight_gain: float = 1.5

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


# check_loss's keyword argument for each field: comparisons end in `_tolerance`, the overfit budget
# and the weight gain keep their names.
KEYWORDS: dict[str, str] = {
    name: name if name.startswith(("overfit_", "weight_")) else f"{name}_tolerance" for name in Tolerances.names()
}


def close(measured: float, expected: float, tolerance: float) -> bool:
    return abs(measured - expected) <= tolerance * max(1.0, abs(expected))
