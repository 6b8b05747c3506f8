"""Synthetic tensors for a slice's inputs, under one stress scenario (worker side: imports torch).

Every driven input (logits, and probabilities / log-probabilities computed from a
logits root) gets the scenario's pattern along its class axis; targets, masks and
the rest follow the scenario's modes, consistently with the driven inputs (perfect
predictions put the logit spike on the target class).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from losslint.runtime.inputs import DRIVEN_ROLES, FULL_SHAPE_ROLES, InputSpec, Layout, Role, class_axis_of

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}

# How each pattern shapes the logits at stress level d (along the class axis; class 0 is "the top class"):
PATTERNS = {
    "random": "scale·N(0, 1)",
    "gap": "0 for one class, −d for the others (a logit gap of d)",
    "spike": "d for one class, 0 for the others",
    "rise": "every logit equal to d",
    "fall": "every logit equal to −d",
    "perfect": "a spike of d on the target class (perfect, confident predictions)",
}


@dataclass(frozen=True)
class Scenario:
    dtype: str = "float32"
    pattern: str = "random"
    level: float = 1.0
    # random | adversarial (targets on the classes the pattern pushes down) | perfect | fill | ignore
    targets: str = "random"
    fill: float | int | None = None
    fraction: float = 0.0
    masks: str = "full"  # full | random | empty
    # The driven inputs that get the pattern (None: all); the others hold zeros.
    stressed: tuple[str, ...] | None = None
    batch: int | None = None
    reference: bool = False  # generate inputs in the domain the reference expects
    seed: int = 0

    def but(self, **changes: Any) -> Scenario:
        return replace(self, **changes)


@dataclass
class Materialized:
    inputs: dict[str, Any]
    leaves: list[torch.Tensor]  # tensors the gradient is taken with respect to (logits roots, per-element values)
    logits: torch.Tensor | None  # the first logits root (for per-row statistics)
    class_axis: int


def cast(value: float, dtype: str) -> float:
    """`value` rounded to `dtype` (what a tensor of that dtype actually holds)."""
    return float(torch.tensor(value, dtype=torch.float64).to(DTYPES[dtype]).double())


@dataclass(frozen=True)
class _Frame:
    """The prediction's shape and class axis for one materialization (a pinned shape wins over the layout)."""

    full: tuple[int, ...]
    axis: int

    @property
    def element(self) -> tuple[int, ...]:
        return tuple(size for index, size in enumerate(self.full) if index != self.axis)

    @property
    def classes(self) -> int:
        return self.full[self.axis]


def materialize(specs: tuple[InputSpec, ...], layout: Layout, scenario: Scenario) -> Materialized:
    if scenario.batch is not None:
        layout = replace(layout, batch=scenario.batch)
    generator = torch.Generator().manual_seed(1234 + scenario.seed)
    dtype = DTYPES[scenario.dtype]
    prediction = next((s for s in specs if s.role in DRIVEN_ROLES and s.shape), None)
    if prediction is not None:
        frame = _Frame(_shape_for(layout, prediction.shape, True), class_axis_of(prediction.shape))
    else:
        frame = _Frame(layout.full_shape(), layout.class_axis)
    classes = _target_classes(frame, scenario, generator)
    binary = _binary_targets(specs, frame, layout, scenario, generator)
    inputs: dict[str, Any] = {}
    leaves: list[torch.Tensor] = []
    first_logits: torch.Tensor | None = None
    for index, spec in enumerate(specs):
        role = spec.reference_role if scenario.reference and spec.reference_role else spec.role
        full_role = spec.role in FULL_SHAPE_ROLES or role in FULL_SHAPE_ROLES
        if spec.shape:
            shape, axis = _shape_for(layout, spec.shape, full_role), class_axis_of(spec.shape)
        elif layout.per_entry and role in (Role.MASK, Role.VALUES):
            shape, axis = frame.full, frame.axis
        else:
            shape, axis = (frame.full if full_role else frame.element), frame.axis
        if role in DRIVEN_ROLES:
            held = scenario.stressed is not None and spec.name not in scenario.stressed
            root = (torch.zeros(shape, dtype=torch.float64) if held
                    else _pattern(shape, axis, scenario, classes, binary, generator, index)).to(dtype)
            root.requires_grad_(True)
            leaves.append(root)
            first_logits = root if first_logits is None else first_logits
            inputs[spec.name] = _activate(root, role, spec.activation, axis)
        elif role is Role.CLASS_INDICES:
            inputs[spec.name] = _class_indices(shape, frame, scenario, classes, generator)
        elif role is Role.BINARY_TARGETS:
            inputs[spec.name] = (binary if binary is not None and tuple(binary.shape) == shape
                                 else torch.randint(0, 2, shape, generator=generator).double()).to(dtype)
        elif role in (Role.PROBABILITY_TARGETS, Role.LOG_PROBABILITY_TARGETS):
            source = _pattern(shape, axis, scenario if scenario.targets == "perfect" else scenario.but(
                pattern="random", level=1.0), classes, binary, generator, index + 100).to(dtype)
            inputs[spec.name] = (torch.softmax(source, axis) if role is Role.PROBABILITY_TARGETS
                                 else torch.log_softmax(source, axis))
        elif role is Role.REGRESSION_TARGETS:
            if scenario.targets == "perfect" and first_logits is not None and tuple(first_logits.shape) == shape:
                inputs[spec.name] = first_logits.detach().clone()
            else:
                inputs[spec.name] = torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)
        elif role is Role.SIGNS:
            if scenario.targets == "adversarial":
                signs = -torch.ones(shape, dtype=torch.float64)
            else:
                signs = torch.randint(0, 2, shape, generator=generator).double() * 2 - 1
            inputs[spec.name] = signs.to(dtype)
        elif role is Role.VALUES:
            values = (torch.randn(shape, generator=generator, dtype=torch.float64).abs() + 0.1).to(dtype)
            values.requires_grad_(True)
            leaves.append(values)
            inputs[spec.name] = values
        elif role is Role.MASK:
            inputs[spec.name] = _mask(shape, scenario, generator, dtype if spec.floating_mask else torch.bool)
        elif role is Role.WEIGHT:
            inputs[spec.name] = torch.ones(frame.classes, dtype=dtype)
        elif role in (Role.NUMBER, Role.DEVICE):
            inputs[spec.name] = spec.value
    return Materialized(inputs, leaves, first_logits, frame.axis)


def _shape_for(layout: Layout, pinned: tuple[str, ...] | None, full: bool) -> tuple[int, ...]:
    if pinned:
        return tuple(layout.size_of(symbol) for symbol in pinned)
    return layout.full_shape() if full else layout.element_shape()


def _target_classes(frame: _Frame, scenario: Scenario, generator: torch.Generator) -> torch.Tensor:
    """The class of each prediction (element shape): perfect targets and the spike positions."""
    count = 1
    for size in frame.element:
        count *= size
    if scenario.targets == "adversarial" and frame.classes > 1:
        # Never class 0, which the gap/spike patterns favour; covers classes 1..K-1.
        flat = 1 + torch.arange(count) % (frame.classes - 1)
    else:
        flat = torch.arange(count) % frame.classes
        flat = flat[torch.randperm(count, generator=generator)]
    return flat.reshape(frame.element)


def _binary_targets(specs, frame: _Frame, layout: Layout, scenario: Scenario, generator) -> torch.Tensor | None:
    own = next((s for s in specs if s.role is Role.BINARY_TARGETS), None)
    if own is None:
        return None
    shape = _shape_for(layout, own.shape, full=True) if own.shape else frame.full
    if scenario.targets == "adversarial":
        # Confidently wrong: 0 where the pattern pushes the logit up, 1 where it pushes it down.
        probe = _pattern(shape, frame.axis, scenario, None, None, generator, 0)
        return (probe < 0).double() if scenario.pattern != "random" else torch.zeros(shape, dtype=torch.float64)
    return torch.randint(0, 2, shape, generator=generator).double()


def _pattern(shape, axis, scenario: Scenario, classes, binary, generator, index: int) -> torch.Tensor:
    level = scenario.level
    pattern = scenario.pattern
    if pattern == "random":
        seeded = torch.Generator().manual_seed(99 + scenario.seed * 31 + index)
        return level * torch.randn(shape, generator=seeded, dtype=torch.float64)
    if pattern == "rise":
        return torch.full(shape, float(level), dtype=torch.float64)
    if pattern == "fall":
        return torch.full(shape, -float(level), dtype=torch.float64)
    top = _one_hot_along(shape, axis, None)
    if pattern == "gap":
        return -level * (1 - top)
    if pattern == "spike":
        return level * top
    if pattern == "perfect":
        if binary is not None and tuple(binary.shape) == tuple(shape):
            return level * (2 * binary - 1)
        return level * _one_hot_along(shape, axis, classes)
    raise ValueError(f"unknown pattern {pattern}")


def _one_hot_along(shape, axis: int, classes: torch.Tensor | None) -> torch.Tensor:
    """1 at class 0 (or at `classes`, one per position) along `axis`, 0 elsewhere."""
    size = shape[axis]
    moved = list(shape[:axis]) + list(shape[axis + 1:])
    if classes is None or list(classes.shape) != moved:
        index = torch.zeros(moved, dtype=torch.long)
    else:
        index = classes.clamp_max(size - 1)
    hot = torch.nn.functional.one_hot(index, size).double()
    return hot.movedim(-1, axis)


def _activate(root: torch.Tensor, role: Role, activation: str | None, axis: int) -> torch.Tensor:
    if role is Role.PROBABILITIES:
        return torch.sigmoid(root) if activation == "sigmoid" else torch.softmax(root, axis)
    if role is Role.LOG_PROBABILITIES:
        return torch.nn.functional.logsigmoid(root) if activation == "logsigmoid" else torch.log_softmax(root, axis)
    return root


def _class_indices(shape, frame: _Frame, scenario: Scenario, classes, generator) -> torch.Tensor:
    if tuple(classes.shape) == tuple(shape):
        values = classes.clone()
    else:
        values = torch.randint(0, frame.classes, shape, generator=generator)
    if scenario.targets == "fill":
        values = torch.full(shape, int(scenario.fill), dtype=torch.long)
    elif scenario.targets == "ignore":
        count = values.numel()
        chosen = torch.randperm(count, generator=generator)[: round(count * scenario.fraction)]
        flat = values.reshape(-1).clone()
        flat[chosen] = int(scenario.fill)
        values = flat.reshape(shape)
    return values.long()


def _mask(shape, scenario: Scenario, generator, dtype) -> torch.Tensor:
    if scenario.masks == "empty":
        mask = torch.zeros(shape, dtype=torch.bool)
    elif scenario.masks == "random":
        mask = torch.rand(shape, generator=generator) < 0.7
        mask.view(-1)[0] = True
    else:
        mask = torch.ones(shape, dtype=torch.bool)
    return mask.to(dtype)
