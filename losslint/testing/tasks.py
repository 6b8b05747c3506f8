"""Synthetic inputs for each task kind.

A task knows the layout of one batch (which tensors the loss receives, their
shapes and dtypes) and how to place predictions at a chosen quality relative to
the targets: uninformative (the random baseline), along a path that improves
from a start to perfect, confidently right or wrong at a large scale. Every
property is written against this interface, so it holds for all task kinds
without knowing what a logit or an embedding is.

Throughout, a *unit* is one thing the loss scores: an example (multiclass,
binary, ranking, embedding), a token (sequence) or an element (regression,
multilabel, reconstruction). Masks, padding, "wrong" predictions and element
counts are expressed over units.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from losslint.testing.catalog import NUM_CLASSES_AS_FEATURES, NUM_CLASSES_REQUIRED, TASKS

# The improvement sweep's end: a true-class margin of 3 (probabilities of ~0.7–0.95), where a
# label-smoothed loss is still improving.
IMPROVE_END = 3.0


@dataclass(frozen=True)
class Batch:
    """The arguments of one loss call: the model outputs (differentiable), the target, an optional mask."""

    outputs: tuple[torch.Tensor, ...]
    target: torch.Tensor | None
    # Boolean, True where a unit counts; only passed to losses that take a `mask` parameter.
    mask: torch.Tensor | None = None

    def positional(self) -> tuple[torch.Tensor, ...]:
        return self.outputs + ((self.target,) if self.target is not None else ())

    def with_outputs(self, *outputs: torch.Tensor) -> Batch:
        return replace(self, outputs=tuple(outputs))

    def leaves(self) -> Batch:
        """A copy whose outputs are fresh leaves that record gradients."""
        return self.with_outputs(*(o.detach().clone().requires_grad_(True) for o in self.outputs))

    def to(self, dtype: torch.dtype) -> Batch:
        """Floating-point outputs and target cast to `dtype`; class indices and masks unchanged."""
        def cast(t: torch.Tensor | None) -> torch.Tensor | None:
            return t.to(dtype) if t is not None and t.is_floating_point() else t
        return Batch(tuple(cast(o) for o in self.outputs), cast(self.target), self.mask)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        """Apply `fn` to every tensor (outputs, target, mask), e.g. indexing along the batch dimension."""
        def apply(t: torch.Tensor | None) -> torch.Tensor | None:
            return fn(t) if t is not None else None
        return Batch(tuple(fn(o) for o in self.outputs), apply(self.target), apply(self.mask))

    def select(self, index: torch.Tensor | slice) -> Batch:
        return self.map(lambda t: t[index])

    def concat(self, other: Batch, dim: int = 0) -> Batch:
        def join(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
            return torch.cat([a, b], dim) if a is not None and b is not None else None
        return Batch(tuple(torch.cat([a, b], dim) for a, b in zip(self.outputs, other.outputs)),
                     join(self.target, other.target), join(self.mask, other.mask))

    @property
    def batch_size(self) -> int:
        return self.outputs[0].shape[0]


@dataclass(frozen=True)
class Probe:
    """A deliberately malformed call for the shape/dtype contract, with the well-formed call it corresponds to."""

    description: str
    malformed: Batch
    well_formed: Batch


@dataclass(frozen=True)
class WeightProbe:
    """How to up-weight one class: the loss parameter, its shape, and the units the class owns."""

    parameter: str
    size: int
    up_weighted: int  # index into the weight vector
    owned: torch.Tensor  # bool over units: the units whose gradient the weight scales


def _where_units(units: torch.Tensor, inside: torch.Tensor, outside: torch.Tensor) -> torch.Tensor:
    """torch.where with a unit-shaped condition broadcast over the trailing (class, feature) dims."""
    while units.dim() < inside.dim():
        units = units.unsqueeze(-1)
    return torch.where(units, inside, outside)


def _balanced_labels(count: int, classes: int, gen: torch.Generator) -> torch.Tensor:
    """Class indices that cover as many classes as possible, shuffled (so no class is missing by chance)."""
    labels = torch.arange(count) % classes
    return labels[torch.randperm(count, generator=gen)]


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


class Task:
    """Base class: the shared mechanics of masking, padding and counting over units."""

    name: str = ""
    batch_size: int = 8
    # Where the improvement sweep starts (the true-class margin); it ends at IMPROVE_END.
    improve_start: float = 0.0
    # Whether a confidently wrong unit must keep a non-zero gradient (see stability).
    saturation_check: bool = True
    # Leading output dims that index independent model inputs (2 for tokens in [B, T, V]).
    input_dims: int = 1
    # Padding extends the batch along this dim (time for sequences, examples otherwise).
    extension_dim: int = 0
    # Whether each example's loss is its own (duplicating the batch keeps a mean); in-batch
    # contrastive losses compare examples with each other.
    independent_examples: bool = True

    def __init__(self, size: int, *, uses_mask: bool, ignore_index: int = -100) -> None:
        self.size = size
        self.uses_mask = uses_mask
        self.ignore_index = ignore_index

    # --- layout -----------------------------------------------------------------------------------

    def sample(self, gen: torch.Generator, batch_size: int | None = None) -> Batch:
        """A well-formed batch with moderate random outputs; every unit counts."""
        raise NotImplementedError

    def random_outputs(self, shape: torch.Size, gen: torch.Generator) -> torch.Tensor:
        """Fresh output values in the task's output domain (used to overwrite padded positions)."""
        return 3.0 * torch.randn(shape, generator=gen)

    def random_targets(self, target: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def unit_shape(self, batch: Batch) -> torch.Size:
        return batch.outputs[0].shape[:1]

    def adapt(self, batch: Batch) -> None:
        """Take sizes from a user-supplied batch, so that the batches sampled later match it."""
        self.batch_size = batch.batch_size

    def describe(self, batch: Batch) -> str:
        def show(t: torch.Tensor) -> str:
            return f"{list(t.shape)} {str(t.dtype).removeprefix('torch.')}"
        parts = [show(o) for o in batch.outputs] + ([show(batch.target)] if batch.target is not None else [])
        return ", ".join(parts)

    def settings(self) -> str:
        return self.name

    # --- which units count ------------------------------------------------------------------------

    def counted(self, batch: Batch) -> torch.Tensor:
        if batch.mask is not None:
            return batch.mask
        return torch.ones(self.unit_shape(batch), dtype=torch.bool)

    def element_count(self, batch: Batch) -> int:
        """How many loss elements a mean averages over (what a sum adds up)."""
        return int(self.counted(batch).sum())

    def with_counted(self, batch: Batch, counted: torch.Tensor) -> Batch:
        """The batch with only `counted` units taking part (through the mask)."""
        return replace(batch, mask=counted)

    def pad_pattern(self, batch: Batch, gen: torch.Generator) -> torch.Tensor:
        """Which units stay counted in the masking check: about a third are masked, never all or none."""
        shape = self.unit_shape(batch)
        counted = torch.rand(shape, generator=gen) > 0.35
        flat = counted.view(-1)
        flat[0], flat[-1] = True, False
        return counted

    def padded(self, batch: Batch, gen: torch.Generator) -> Batch:
        return self.with_counted(batch, self.pad_pattern(batch, gen))

    def emptied(self, batch: Batch) -> Batch:
        return self.with_counted(batch, torch.zeros(self.unit_shape(batch), dtype=torch.bool))

    def perturb_uncounted(self, batch: Batch, gen: torch.Generator) -> Batch:
        """New outputs, and new targets where the mask allows it, at every unit that does not count."""
        counted = self.counted(batch)
        outputs = tuple(_where_units(counted, o, self.random_outputs(o.shape, gen)) for o in batch.outputs)
        target = batch.target
        if target is not None and batch.mask is not None:
            target = _where_units(counted, target, self.random_targets(target, gen))
        return Batch(outputs, target, batch.mask)

    def extended(self, batch: Batch, extra: int, gen: torch.Generator) -> Batch:
        """The batch with `extra` more units along `extension_dim`, none of which count."""
        addition = self.sample(gen, batch_size=extra)
        addition = addition.with_outputs(*(self.random_outputs(o.shape, gen) for o in addition.outputs))
        return batch.concat(self.emptied(addition))

    # --- predictions of a chosen quality -----------------------------------------------------------

    def uninformative(self, batch: Batch) -> Batch:
        """Outputs that carry no information about the target (zero logits, equal scores, ...)."""
        raise NotImplementedError

    def along_path(self, batch: Batch, margin: float) -> Batch:
        """Outputs at true-class margin `margin`: uninformative at 0 (or wrong below), better as it grows."""
        raise NotImplementedError

    def extreme(self, batch: Batch, scale: float, gen: torch.Generator) -> tuple[Batch, torch.Tensor]:
        """Outputs of magnitude `scale`, confidently right on some units and wrong on the others (returned)."""
        raise NotImplementedError

    def fitted(self, batch: Batch) -> float:
        """The fraction of counted units the outputs get right (the overfit check's second half)."""
        return float(self.right(batch)[self.counted(batch)].float().mean())

    def right(self, batch: Batch) -> torch.Tensor:
        """Per unit: whether the outputs get it right."""
        raise NotImplementedError

    def probes(self, batch: Batch, gen: torch.Generator) -> list[Probe]:
        """Malformed calls that must be loud (an error or a warning) rather than silently reinterpreted."""
        return []

    def weight_probes(self, batch: Batch, parameters: set[str]) -> list[WeightProbe]:
        return []

    def floor_after_activation(self, batch: Batch) -> tuple[float, str] | None:
        """The per-unit loss floor, and its story, if the outputs were squashed twice (softmax before CE)."""
        return None

    def overfit_activation(self, raw: torch.Tensor) -> torch.Tensor:
        """Maps a linear head's output into the task's output domain."""
        return raw


class Multiclass(Task):
    name = "multiclass"

    def adapt(self, batch: Batch) -> None:
        super().adapt(batch)
        self.size = batch.outputs[0].shape[-1]

    def settings(self) -> str:
        return f"multiclass, K={self.size}"

    def sample(self, gen: torch.Generator, batch_size: int | None = None) -> Batch:
        b = batch_size or self.batch_size
        target = _balanced_labels(b, self.size, gen)
        mask = torch.ones(b, dtype=torch.bool) if self.uses_mask else None
        return Batch((torch.randn(b, self.size, generator=gen),), target, mask)

    def random_targets(self, target: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return torch.randint(0, self.size, target.shape, generator=gen)

    def uninformative(self, batch: Batch) -> Batch:
        return batch.with_outputs(torch.zeros_like(batch.outputs[0]))

    def along_path(self, batch: Batch, margin: float) -> Batch:
        logits = margin * F.one_hot(batch.target.clamp_min(0), self.size).to(batch.outputs[0].dtype)
        return batch.with_outputs(logits)

    def extreme(self, batch: Batch, scale: float, gen: torch.Generator) -> tuple[Batch, torch.Tensor]:
        z = torch.randn(batch.outputs[0].shape, generator=gen)
        wrong = torch.arange(z[..., 0].numel()).view(z.shape[:-1]) % 2 == 1
        true = batch.target.clamp_min(0).unsqueeze(-1)
        right_value = z.max(-1, keepdim=True).values + 1.0
        wrong_value = z.min(-1, keepdim=True).values - 1.0
        z = z.scatter(-1, true, torch.where(wrong.unsqueeze(-1), wrong_value, right_value))
        return batch.with_outputs(scale * z), wrong

    def right(self, batch: Batch) -> torch.Tensor:
        return batch.outputs[0].argmax(-1) == batch.target

    def probes(self, batch: Batch, gen: torch.Generator) -> list[Probe]:
        # Class indices stored as floats: torch refuses them; a loss that silently casts them is fine,
        # one that reads them as something else (probabilities, weights) is not.
        return [Probe(f"class indices as float {list(batch.target.shape)}",
                      replace(batch, target=batch.target.float()), batch)]

    def weight_probes(self, batch: Batch, parameters: set[str]) -> list[WeightProbe]:
        if "weight" not in parameters:
            return []
        counted_targets = batch.target[self.counted(batch)]
        up = int(counted_targets[0])
        return [WeightProbe("weight", self.size, up, (batch.target == up) & self.counted(batch))]

    def floor_after_activation(self, batch: Batch) -> tuple[float, str]:
        k = self.size
        return (math.log(1 + (k - 1) / math.e),
                "log(1 + (K-1)/e) for perfect predictions: a softmax is probably applied before cross_entropy")


class Sequence(Multiclass):
    """Token classification over a vocabulary: `[B, T, V]` logits, `[B, T]` targets, padding at the end."""

    name = "sequence"
    batch_size = 4
    length = 6
    input_dims = 2
    extension_dim = 1

    def settings(self) -> str:
        padding = "a mask" if self.uses_mask else f"ignore_index={self.ignore_index}"
        return f"sequence, V={self.size}, padding marked by {padding}"

    def adapt(self, batch: Batch) -> None:
        super().adapt(batch)
        self.length = batch.target.shape[1]

    def sample(self, gen: torch.Generator, batch_size: int | None = None) -> Batch:
        return self._sample(gen, batch_size or self.batch_size, self.length)

    def _sample(self, gen: torch.Generator, batch_size: int, length: int) -> Batch:
        target = self.random_targets(torch.empty(batch_size, length, dtype=torch.long), gen)
        mask = torch.ones(batch_size, length, dtype=torch.bool) if self.uses_mask else None
        return Batch((torch.randn(batch_size, length, self.size, generator=gen),), target, mask)

    def unit_shape(self, batch: Batch) -> torch.Size:
        return batch.outputs[0].shape[:2]

    def random_targets(self, target: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        # A real token never carries the padding id, even when it is a vocabulary id (pad token 0).
        if not 0 <= self.ignore_index < self.size:
            return super().random_targets(target, gen)
        tokens = torch.randint(0, self.size - 1, target.shape, generator=gen)
        return tokens + (tokens >= self.ignore_index).long()

    def counted(self, batch: Batch) -> torch.Tensor:
        if batch.mask is not None:
            return batch.mask
        return batch.target != self.ignore_index

    def with_counted(self, batch: Batch, counted: torch.Tensor) -> Batch:
        if self.uses_mask:
            return replace(batch, mask=counted)
        return replace(batch, target=torch.where(counted, batch.target, self.ignore_index), mask=None)

    def pad_pattern(self, batch: Batch, gen: torch.Generator) -> torch.Tensor:
        """Right padding to random lengths; the first sequence is full, every sequence has a real token."""
        b, t = self.unit_shape(batch)
        if t < 2:  # one-token sequences: pad whole sequences instead
            return super().pad_pattern(batch, gen)
        lengths = torch.randint(1, t, (b,), generator=gen)
        lengths[0] = t
        return torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)

    def extended(self, batch: Batch, extra: int, gen: torch.Generator) -> Batch:
        addition = self._sample(gen, batch.batch_size, extra)
        addition = addition.with_outputs(*(self.random_outputs(o.shape, gen) for o in addition.outputs))
        return batch.concat(self.emptied(addition), dim=1)

    def probes(self, batch: Batch, gen: torch.Generator) -> list[Probe]:
        return [Probe(f"token ids as float {list(batch.target.shape)}",
                      replace(batch, target=batch.target.float()), batch)]

    def floor_after_activation(self, batch: Batch) -> tuple[float, str]:
        v = self.size
        return (math.log(1 + (v - 1) / math.e),
                "log(1 + (V-1)/e) for perfect predictions: a softmax is probably applied before cross_entropy")


class Binary(Task):
    """One logit per example, float 0/1 targets."""

    name = "binary"

    def sample(self, gen: torch.Generator, batch_size: int | None = None) -> Batch:
        b = batch_size or self.batch_size
        target = _balanced_labels(b, 2, gen).float()
        mask = torch.ones(target.shape, dtype=torch.bool) if self.uses_mask else None
        return Batch((torch.randn(target.shape, generator=gen),), target, mask)

    def unit_shape(self, batch: Batch) -> torch.Size:
        return batch.outputs[0].shape  # one unit per logit

    def random_targets(self, target: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return torch.randint(0, 2, target.shape, generator=gen).to(target.dtype)

    def _sign(self, batch: Batch) -> torch.Tensor:
        return 2.0 * batch.target.to(batch.outputs[0].dtype) - 1.0

    def uninformative(self, batch: Batch) -> Batch:
        return batch.with_outputs(torch.zeros_like(batch.outputs[0]))

    def along_path(self, batch: Batch, margin: float) -> Batch:
        return batch.with_outputs(margin * self._sign(batch))

    def extreme(self, batch: Batch, scale: float, gen: torch.Generator) -> tuple[Batch, torch.Tensor]:
        shape = batch.outputs[0].shape
        wrong = (torch.arange(math.prod(shape)) % 2 == 1).view(shape)
        magnitude = 0.5 + torch.randn(shape, generator=gen).abs()
        direction = torch.where(wrong, -1.0, 1.0) * self._sign(batch)
        return batch.with_outputs(scale * magnitude * direction), wrong

    def right(self, batch: Batch) -> torch.Tensor:
        return (batch.outputs[0] > 0) == (batch.target > 0.5)

    def probes(self, batch: Batch, gen: torch.Generator) -> list[Probe]:
        return [Probe("integer 0/1 targets", replace(batch, target=batch.target.long()), batch)]

    def weight_probes(self, batch: Batch, parameters: set[str]) -> list[WeightProbe]:
        if "pos_weight" not in parameters:
            return []
        return [WeightProbe("pos_weight", 1, 0, (batch.target > 0.5) & self.counted(batch))]

    def adapt(self, batch: Batch) -> None:
        super().adapt(batch)
        self.size = batch.outputs[0].shape[-1] if batch.outputs[0].dim() > 1 else 0

    def floor_after_activation(self, batch: Batch) -> tuple[float, str]:
        # sigmoid then BCE-with-logits: a positive bottoms out at log(1 + 1/e), a negative at log 2.
        positives = float((batch.target > 0.5).float().mean())
        floor = positives * math.log(1 + 1 / math.e) + (1 - positives) * math.log(2)
        return floor, ("the floor of a sigmoid applied twice (log(1 + 1/e) per positive, log 2 per negative): "
                       "a sigmoid is probably applied before binary_cross_entropy_with_logits")


class Multilabel(Binary):
    """`[B, K]` logits with independent float 0/1 targets."""

    name = "multilabel"

    def settings(self) -> str:
        return f"multilabel, K={self.size}"

    def sample(self, gen: torch.Generator, batch_size: int | None = None) -> Batch:
        b = batch_size or self.batch_size
        target = (torch.rand(b, self.size, generator=gen) < 0.5).float()
        target[0] = 1.0 - target[-1]  # every label has a positive and a negative
        mask = torch.ones(target.shape, dtype=torch.bool) if self.uses_mask else None
        return Batch((torch.randn(b, self.size, generator=gen),), target, mask)

    def weight_probes(self, batch: Batch, parameters: set[str]) -> list[WeightProbe]:
        counted = self.counted(batch)
        positives = (batch.target > 0.5) & counted
        label = int(positives.sum(0).argmax())
        column = torch.zeros_like(counted)
        column[:, label] = True
        probes = []
        if "pos_weight" in parameters:
            probes.append(WeightProbe("pos_weight", self.size, label, positives & column))
        if "weight" in parameters:
            probes.append(WeightProbe("weight", self.size, label, column & counted))
        return probes


class Regression(Task):
    """Predictions and targets of the same shape `[B, D]`."""

    name = "regression"
    saturation_check = False  # robust losses (Welsch, Tukey) stop pushing on outliers on purpose

    def __init__(self, size: int, *, uses_mask: bool, ignore_index: int = -100) -> None:
        super().__init__(size, uses_mask=uses_mask, ignore_index=ignore_index)
        self.feature_shape: tuple[int, ...] = (size,)

    def settings(self) -> str:
        return f"regression, [B, {', '.join(map(str, self.feature_shape))}]"

    def adapt(self, batch: Batch) -> None:
        super().adapt(batch)
        self.feature_shape = tuple(batch.target.shape[1:])

    def sample(self, gen: torch.Generator, batch_size: int | None = None) -> Batch:
        b = batch_size or self.batch_size
        target = torch.randn(b, *self.feature_shape, generator=gen)
        mask = torch.ones(target.shape, dtype=torch.bool) if self.uses_mask else None
        return Batch((target + torch.randn(target.shape, generator=gen),), target, mask)

    def unit_shape(self, batch: Batch) -> torch.Size:
        return batch.target.shape

    def random_targets(self, target: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return 3.0 * torch.randn(target.shape, generator=gen, dtype=target.dtype)

    def uninformative(self, batch: Batch) -> Batch:
        return batch.with_outputs(torch.zeros_like(batch.outputs[0]))

    def along_path(self, batch: Batch, margin: float) -> Batch:
        # The prediction moves in a straight line from the sampled one to the target, reached at margin 3.
        remaining = max(0.0, 1.0 - margin / IMPROVE_END)
        return batch.with_outputs(batch.target + remaining * (batch.outputs[0] - batch.target))

    def extreme(self, batch: Batch, scale: float, gen: torch.Generator) -> tuple[Batch, torch.Tensor]:
        noise = torch.randn(batch.target.shape, generator=gen)
        return batch.with_outputs(batch.target + scale * noise), torch.ones(batch.target.shape, dtype=torch.bool)

    def right(self, batch: Batch) -> torch.Tensor:
        # Within a tenth of the targets' spread.
        counted = self.counted(batch)
        spread = batch.target[counted].std() if counted.sum() > 1 else batch.target.abs().max()
        return (batch.outputs[0] - batch.target).abs() <= 0.1 * spread.clamp_min(1e-6)

    def probes(self, batch: Batch, gen: torch.Generator) -> list[Probe]:
        # The classic: a model's [B, 1] head against [B] targets broadcasts to [B, B]; torch only warns.
        b = batch.batch_size
        column = torch.randn(b, 1, generator=gen)
        flat = torch.randn(b, generator=gen)
        return [
            Probe("prediction [B, 1] against target [B]", Batch((column,), flat), Batch((column.view(b),), flat)),
            Probe("prediction [B] against target [B, 1]", Batch((flat,), column), Batch((flat,), column.view(b))),
        ]


class Reconstruction(Regression):
    """A reconstructed image in [0, 1] (after the decoder's sigmoid) against a binary `[B, 1, H, W]` image."""

    name = "reconstruction"
    saturation_check = True

    def __init__(self, size: int, *, uses_mask: bool, ignore_index: int = -100) -> None:
        super().__init__(size, uses_mask=uses_mask, ignore_index=ignore_index)
        self.feature_shape = (1, 4, 4)

    def settings(self) -> str:
        return f"reconstruction, [B, {', '.join(map(str, self.feature_shape))}] in [0, 1]"

    def sample(self, gen: torch.Generator, batch_size: int | None = None) -> Batch:
        b = batch_size or self.batch_size
        shape = (b, *self.feature_shape)
        target = (torch.rand(shape, generator=gen) < 0.5).float()
        mask = torch.ones(shape, dtype=torch.bool) if self.uses_mask else None
        return Batch((0.2 + 0.6 * torch.rand(shape, generator=gen),), target, mask)

    def random_outputs(self, shape: torch.Size, gen: torch.Generator) -> torch.Tensor:
        return torch.rand(shape, generator=gen)

    def random_targets(self, target: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return torch.randint(0, 2, target.shape, generator=gen).to(target.dtype)

    def uninformative(self, batch: Batch) -> Batch:
        return batch.with_outputs(torch.full_like(batch.outputs[0], 0.5))

    def along_path(self, batch: Batch, margin: float) -> Batch:
        # A blend from the sampled image (grey noise) towards the target: 95% of the way at margin 3,
        # exactly there only far out on the perfect path (an exact 0 or 1 is an extreme, not a moderate
        # prediction: a log of it belongs to stability).
        reached = 1.0 - math.exp(-margin)
        return batch.with_outputs(reached * batch.target + (1 - reached) * batch.outputs[0])

    def extreme(self, batch: Batch, scale: float, gen: torch.Generator) -> tuple[Batch, torch.Tensor]:
        # A decoder's logits at `scale` through its sigmoid: pixels saturate to exactly 0 or 1.
        shape = batch.target.shape
        wrong = (torch.arange(math.prod(shape)) % 2 == 1).view(shape)
        magnitude = 0.5 + torch.randn(shape, generator=gen).abs()
        direction = torch.where(wrong, -1.0, 1.0) * (2.0 * batch.target - 1.0)
        return batch.with_outputs(torch.sigmoid(scale * magnitude * direction)), wrong

    def right(self, batch: Batch) -> torch.Tensor:
        return (batch.outputs[0] - batch.target).abs() < 0.5

    def probes(self, batch: Batch, gen: torch.Generator) -> list[Probe]:
        return []  # see properties/contract.py: the shape probes are regression's [B, 1] against [B]

    def overfit_activation(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(raw)


class Ranking(Task):
    """Pairwise preferences: `loss_fn(s1, s2, y)` with `y` = 1 when s1 should rank higher, −1 otherwise."""

    name = "ranking"
    # A margin-0 hinge is flat at equal scores, so the sweep starts from the wrong order.
    improve_start = -1.0

    def sample(self, gen: torch.Generator, batch_size: int | None = None) -> Batch:
        b = batch_size or self.batch_size
        y = 2.0 * _balanced_labels(b, 2, gen).float() - 1.0
        mask = torch.ones(b, dtype=torch.bool) if self.uses_mask else None
        return Batch((torch.randn(b, generator=gen), torch.randn(b, generator=gen)), y, mask)

    def random_targets(self, target: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return torch.where(torch.rand(target.shape, generator=gen) < 0.5, -1.0, 1.0).to(target.dtype)

    def _offset(self, batch: Batch) -> torch.Tensor:
        return (batch.outputs[0] + batch.outputs[1]) / 2

    def uninformative(self, batch: Batch) -> Batch:
        zeros = torch.zeros_like(batch.outputs[0])
        return batch.with_outputs(zeros, zeros.clone())

    def along_path(self, batch: Batch, margin: float) -> Batch:
        offset, half = self._offset(batch), margin * batch.target.to(batch.outputs[0].dtype) / 2
        return batch.with_outputs(offset + half, offset - half)

    def extreme(self, batch: Batch, scale: float, gen: torch.Generator) -> tuple[Batch, torch.Tensor]:
        b = batch.batch_size
        wrong = torch.arange(b) % 2 == 1
        gap = (0.5 + torch.randn(b, generator=gen).abs()) * torch.where(wrong, -1.0, 1.0) * batch.target
        offset = torch.randn(b, generator=gen)
        return batch.with_outputs(scale * (offset + gap / 2), scale * (offset - gap / 2)), wrong

    def right(self, batch: Batch) -> torch.Tensor:
        s1, s2 = batch.outputs
        return batch.target * (s1 - s2) > 0


class Embedding(Task):
    """Triplets: `loss_fn(anchor, positive, negative)`, each `[B, D]`; no target."""

    name = "embedding"
    independent_examples = False

    def adapt(self, batch: Batch) -> None:
        super().adapt(batch)
        self.size = batch.outputs[0].shape[-1]

    def settings(self) -> str:
        return f"embedding, D={self.size}"

    def sample(self, gen: torch.Generator, batch_size: int | None = None) -> Batch:
        b = batch_size or self.batch_size
        mask = torch.ones(b, dtype=torch.bool) if self.uses_mask else None
        return Batch(tuple(torch.randn(b, self.size, generator=gen) for _ in range(3)), None, mask)

    def random_targets(self, target: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        raise AssertionError("embedding batches have no target")

    def _frame(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Unit anchor, and unit directions towards positive and negative orthogonal to it."""
        anchor = _unit(batch.outputs[0])

        def orthogonal(x: torch.Tensor) -> torch.Tensor:
            return _unit(x - (x * anchor).sum(-1, keepdim=True) * anchor)
        return anchor, orthogonal(batch.outputs[1]), orthogonal(batch.outputs[2])

    def uninformative(self, batch: Batch) -> Batch:
        return self.along_path(batch, 0.0)

    def along_path(self, batch: Batch, margin: float) -> Batch:
        # Positive and negative start equally far (1.5) from the anchor, both orthogonal to it. The
        # positive closes in (1.5·e^(−m/2)); the negative moves away (1.5 + m) while turning towards
        # −anchor, so every distance — Euclidean, cosine, dot product — sees the triplet get better
        # and, for large m, perfect (positive on the anchor, negative opposite it).
        anchor, toward_positive, toward_negative = self._frame(batch)
        positive = anchor + 1.5 * math.exp(-margin / 2) * toward_positive
        turn = (math.pi / 2) * (1 - math.exp(-margin / 3))
        away = math.cos(turn) * toward_negative - math.sin(turn) * anchor
        negative = anchor + (1.5 + margin) * away
        return batch.with_outputs(anchor, positive, negative)

    def extreme(self, batch: Batch, scale: float, gen: torch.Generator) -> tuple[Batch, torch.Tensor]:
        anchor, toward_positive, toward_negative = self._frame(batch)
        wrong = torch.arange(batch.batch_size) % 2 == 1
        near, far = torch.tensor(0.3), torch.tensor(2.0)
        positive_radius = torch.where(wrong, far, near).unsqueeze(-1)
        negative_radius = torch.where(wrong, near, far).unsqueeze(-1)
        outputs = (anchor, anchor + positive_radius * toward_positive, anchor + negative_radius * toward_negative)
        return batch.with_outputs(*(scale * o for o in outputs)), wrong

    def right(self, batch: Batch) -> torch.Tensor:
        anchor, positive, negative = batch.outputs
        closer = (anchor - positive).norm(dim=-1) < (anchor - negative).norm(dim=-1)
        more_similar = F.cosine_similarity(anchor, positive, dim=-1) > F.cosine_similarity(anchor, negative, dim=-1)
        return closer | more_similar


_TASK_CLASSES: dict[str, type[Task]] = {
    cls.name: cls for cls in (Regression, Binary, Multiclass, Multilabel, Sequence, Ranking, Embedding, Reconstruction)
}
assert set(_TASK_CLASSES) == set(TASKS)

_DEFAULT_FEATURES = {"regression": 3, "embedding": 8}


def make_task(name: str, num_classes: int | None, *, uses_mask: bool, ignore_index: int) -> Task:
    """The task object for `check_loss`'s arguments (validated by the caller)."""
    if name in NUM_CLASSES_REQUIRED:
        size = num_classes
    elif name in NUM_CLASSES_AS_FEATURES:
        size = num_classes or _DEFAULT_FEATURES[name]
    else:
        size = 0
    return _TASK_CLASSES[name](size, uses_mask=uses_mask, ignore_index=ignore_index)
