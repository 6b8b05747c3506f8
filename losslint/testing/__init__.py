"""The loss test harness: `check_loss` turns the hand-run sanity checks of a loss into one line of a test.

    from losslint.testing import check_loss

    def test_my_loss():
        check_loss(my_loss, task="multiclass", num_classes=10)

Importing this package does not import torch (the pytest plugin loads it in every test run);
torch is imported when a check runs and comes with the `runtime` extra.
"""

from losslint.testing.catalog import PROPERTY_NAMES, TASKS
from losslint.testing.check import check_loss
from losslint.testing.report import HarnessReport, LossCheckError, PropertyResult
from losslint.testing.tolerances import Tolerances

__all__ = [
    "PROPERTY_NAMES",
    "TASKS",
    "HarnessReport",
    "LossCheckError",
    "PropertyResult",
    "Tolerances",
    "check_loss",
]
