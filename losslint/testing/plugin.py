"""The pytest plugin (entry point `pytest11: losslint`): provides the `loss_check` fixture.

Entry points cannot depend on extras, so this module loads in every pytest run wherever losslint
is installed. It therefore imports no torch and registers nothing but the fixture: test runs that
do not ask for `loss_check` are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from losslint.testing.check import check_loss


@pytest.fixture
def loss_check() -> Callable[..., Any]:
    """`check_loss` itself: `loss_check(my_loss, task="multiclass", num_classes=10)`."""
    return check_loss
