"""The harness's properties and task kinds, as data (no torch here).

`check_loss`, the command line and the docs all read these tables: a property's
name, its one-line title, and the properties it builds on. A property whose
prerequisite ran and failed is reported as *blocked* rather than run, so a bug
shows up once, on the property that names it, instead of as a cascade (a loss
with a sign error does not also "fail to overfit").
"""

from __future__ import annotations

from dataclasses import dataclass

TASKS: tuple[str, ...] = (
    "regression",
    "binary",
    "multiclass",
    "multilabel",
    "sequence",
    "ranking",
    "embedding",
    "reconstruction",
)

# Tasks whose outputs are logits over classes: they have a default baseline and a
# "small random logits" variant of it.
CLASSIFICATION_TASKS: frozenset[str] = frozenset({"binary", "multiclass", "multilabel", "sequence"})

# The tasks where `num_classes` is required (K, or the vocabulary size V) and the
# ones where it optionally sets the feature / embedding size.
NUM_CLASSES_REQUIRED: frozenset[str] = frozenset({"multiclass", "multilabel", "sequence"})
NUM_CLASSES_AS_FEATURES: frozenset[str] = frozenset({"regression", "embedding"})


@dataclass(frozen=True)
class PropertySpec:
    name: str
    title: str
    # Properties this one is only meaningful after; listed names must come earlier in PROPERTIES' run order.
    requires: tuple[str, ...] = ()


# In the order of the issue (and of the report).
PROPERTIES: tuple[PropertySpec, ...] = (
    # A wrong floor can also move the value at uninformative outputs (a sigmoid applied twice gives
    # 0.724 instead of log 2 there), so the baseline is judged once the floor is right.
    PropertySpec("baseline", "random baseline", requires=("improves", "reduction", "minimum")),
    PropertySpec("improves", "improves with better predictions"),
    PropertySpec("minimum", "reaches its minimum", requires=("improves", "reduction")),
    # A vanishing gradient on confident errors is also what a wrong floor (double softmax) does,
    # so stability is judged once the floor is right.
    PropertySpec("stability", "large-input stability", requires=("improves", "minimum")),
    PropertySpec("masking", "masking and padding", requires=("improves",)),
    PropertySpec("empty_batch", "empty batch", requires=("masking",)),
    PropertySpec("reduction", "reduction consistency"),
    PropertySpec("gradcheck", "gradient correctness", requires=("improves",)),
    PropertySpec("shape_contract", "shape and dtype contract"),
    PropertySpec("overfit", "overfits a tiny batch", requires=("improves", "minimum", "stability", "gradcheck")),
    PropertySpec("weights", "class weighting", requires=("improves", "gradcheck")),
)

PROPERTY_NAMES: tuple[str, ...] = tuple(spec.name for spec in PROPERTIES)
SPECS: dict[str, PropertySpec] = {spec.name: spec for spec in PROPERTIES}


def run_order() -> tuple[PropertySpec, ...]:
    """PROPERTIES sorted so that every property runs after the ones it requires."""
    ordered: list[PropertySpec] = []
    placed: set[str] = set()
    pending = list(PROPERTIES)
    while pending:
        ready = [spec for spec in pending if set(spec.requires) <= placed]
        for spec in ready:
            ordered.append(spec)
            placed.add(spec.name)
            pending.remove(spec)
    return tuple(ordered)
