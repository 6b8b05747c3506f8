"""What every property receives: the loss, the task, the base batch, the declared expectations."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from losslint.testing.invoke import LossUnderTest
from losslint.testing.tasks import Batch, Task
from losslint.testing.tolerances import Tolerances

# Margins of the perfect-prediction path: fine steps where a label-smoothed loss has its optimum,
# then out to 30, where cross-entropy is within 1e-12 of 0 and a double softmax sits on its floor.
PERFECT_MARGINS: tuple[float, ...] = tuple(m / 4 for m in range(0, 33)) + tuple(float(m) for m in range(9, 31))


@dataclass(frozen=True)
class Verdict:
    """A property's finding; the runner turns it into a `PropertyResult`."""

    passed: bool
    measured: str
    expected: str
    cause: str = ""


@dataclass
class HarnessContext:
    loss: LossUnderTest
    task: Task
    base: Batch
    seed: int
    baseline: float | None
    minimum: float | None
    reduction: str
    mixed_precision: bool
    tolerances: Tolerances
    _perfect_path: list[tuple[float, float]] | None = field(default=None, repr=False)

    def generator(self, purpose: str) -> torch.Generator:
        """A generator for one property, seeded from the harness seed and the property's name.

        Each property draws its own numbers, so skipping or adding a property changes no other's inputs.
        """
        salt = sum(ord(c) * 31**i for i, c in enumerate(purpose)) % 1_000_003
        return torch.Generator().manual_seed(self.seed * 1_000_003 + salt)

    def per_element(self, batch: Batch) -> float:
        """What one loss element weighs in the reduced loss: 1 for a mean, the element count for a sum."""
        return float(self.task.element_count(batch)) if self.reduction == "sum" else 1.0

    def perfect_path(self) -> list[tuple[float, float]]:
        """(margin, loss) along the path from uninformative to perfect, confident predictions (cached)."""
        if self._perfect_path is None:
            with torch.no_grad():
                self._perfect_path = [(m, float(self.loss(self.task.along_path(self.base, m))))
                                      for m in PERFECT_MARGINS]
        return self._perfect_path

    def perfect_loss(self) -> tuple[float, float] | None:
        """The lowest finite loss on the perfect path and its margin; None when no value is finite."""
        finite = [(value, margin) for margin, value in self.perfect_path() if math.isfinite(value)]
        return min(finite) if finite else None


def fmt(value: float) -> str:
    """A number for the report: 4 significant digits, or nan / inf."""
    return f"{value:.4g}"


def one_line(error: BaseException, limit: int = 200) -> str:
    """"TypeError: first line of the message", for a report cell."""
    message = str(error).strip()
    return f"{type(error).__name__}: {message.splitlines()[0] if message else ''}"[:limit]
