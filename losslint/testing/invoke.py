"""Calling the loss under test: any callable, an `nn.Module` instance, or a function with extra keywords.

The adapter reads the loss's signature (and a module's attributes) once: does it
take a `mask`, can its `reduction` be chosen, does it support `weight` /
`pos_weight`. Every call runs under a fixed seed, so a loss that samples (negative
mining, dropout) gives the same value for the same inputs and the equality checks
stay meaningful; the caller's global RNG state is left untouched.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable
from typing import Any

import torch

from losslint.testing.tasks import Batch

WEIGHT_PARAMETERS = ("weight", "pos_weight")


class LossContractError(Exception):
    """The loss returned something that is not a scalar tensor; `property` is the property that names it."""

    def __init__(self, returned: str, cause: str, property: str) -> None:
        super().__init__(f"the loss returned {returned}: {cause}")
        self.returned, self.cause, self.property = returned, cause, property


def describe_callable(fn: Callable[..., Any]) -> str:
    """A short readable name: `cross_entropy`, `CrossEntropyLoss()`, `partial(cross_entropy, ...)`."""
    if isinstance(fn, functools.partial):
        return f"partial({describe_callable(fn.func)}, ...)"
    if isinstance(fn, torch.nn.Module):
        return f"{type(fn).__name__}()"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__
    return name.rsplit("<locals>.", 1)[-1]


def _parameters(fn: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    target = fn.forward if isinstance(fn, torch.nn.Module) else fn
    try:
        return dict(inspect.signature(target).parameters)
    except (TypeError, ValueError):  # builtins without a signature
        return {}


class LossUnderTest:
    """The user's loss with the harness's calling convention: `outputs..., target[, mask=]` → scalar."""

    def __init__(self, fn: Callable[..., Any], *, seed: int, overrides: dict[str, Any] | None = None) -> None:
        self.fn = fn
        self.seed = seed
        # Keyword arguments this adapter adds to every call (a chosen reduction or weight).
        self.overrides = dict(overrides or {})
        self.name = describe_callable(fn)
        parameters = _parameters(fn)
        self.takes_mask = "mask" in parameters
        self.is_module = isinstance(fn, torch.nn.Module)
        if self.is_module:
            self.reduction_control = isinstance(getattr(fn, "reduction", None), str)
            self.weight_parameters = {p for p in WEIGHT_PARAMETERS if hasattr(fn, p)}
        else:
            self.reduction_control = "reduction" in parameters
            self.weight_parameters = {p for p in WEIGHT_PARAMETERS if p in parameters}
        # Class weights a function applies unless told otherwise (a partial's bound `weight=`).
        self.default_weights = {p: parameters[p].default for p in self.weight_parameters
                                if not self.is_module and isinstance(parameters[p].default, torch.Tensor)}

    @property
    def module_reduction(self) -> str | None:
        return getattr(self.fn, "reduction", None) if self.is_module else None

    def current_weight(self, parameter: str) -> torch.Tensor | None:
        """The class weight the loss applies as called (a module's buffer, a partial's bound argument)."""
        if self.is_module:
            return getattr(self.fn, parameter, None)
        return self.overrides.get(parameter, self.default_weights.get(parameter))

    def variant(self, **options: Any) -> LossUnderTest:
        """The same loss with `reduction=` / `weight=` / `pos_weight=` set.

        A module is copied and its attributes changed (the user's instance is never touched);
        a function receives them as keyword arguments.
        """
        if not self.is_module:
            return LossUnderTest(self.fn, seed=self.seed, overrides={**self.overrides, **options})
        module = copy.deepcopy(self.fn)
        for key, value in options.items():
            setattr(module, key, value)
        return LossUnderTest(module, seed=self.seed, overrides=self.overrides)

    def in_dtype(self, dtype: torch.dtype) -> LossUnderTest:
        """A module's own tensors (class weights) cast to `dtype`, so float64 inputs meet float64 weights."""
        if not self.is_module:
            return self
        return LossUnderTest(copy.deepcopy(self.fn).to(dtype), seed=self.seed, overrides=self.overrides)

    def raw(self, batch: Batch, **extra: Any) -> Any:
        """Call the loss exactly as the task lays out its arguments, under the harness's seed."""
        kwargs = {**self.overrides, **extra}
        if self.takes_mask and batch.mask is not None:
            kwargs["mask"] = batch.mask
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return self.fn(*batch.positional(), **kwargs)

    def __call__(self, batch: Batch, **extra: Any) -> torch.Tensor:
        """The loss as a 0-dim tensor; `LossContractError` if it is not a scalar tensor."""
        value = self.raw(batch, **extra)
        if not isinstance(value, torch.Tensor):
            raise LossContractError(
                f"a {type(value).__name__}, not a tensor",
                "return the loss tensor itself (not .item() or float()) so it can be differentiated",
                property="improves",
            )
        if value.numel() != 1:
            raise LossContractError(
                f"shape {list(value.shape)}, not a scalar",
                "reduce it with .mean() or .sum() (reduction='none' gives per-element losses; check_loss "
                "tests the reduced loss)",
                property="reduction",
            )
        return value.reshape(())

    def value_and_grads(self, batch: Batch) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """The loss and its gradient with respect to each output (zeros where the loss does not depend on it).

        `batch` must hold leaf outputs (`Batch.leaves()`).
        """
        value = self(batch)
        if not value.requires_grad:
            return value.detach(), tuple(torch.zeros_like(o) for o in batch.outputs)
        grads = torch.autograd.grad(value, batch.outputs, allow_unused=True)
        return value.detach(), tuple(torch.zeros_like(o) if g is None else g for o, g in zip(batch.outputs, grads))
