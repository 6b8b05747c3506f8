"""LL302: integer (or boolean) targets passed to the BCE family."""

from losslint import labels
from losslint import torch_api as api
from losslint.domains import Domain
from losslint.findings import Applicability
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent
from losslint.tensors import dtype_of

_INTEGER_OR_BOOL = api.INTEGER_DTYPES | {"bool"}
# Torch's error message, by loss.
_ERRORS = {
    "binary_cross_entropy_with_logits": "result type Float can't be cast to the desired output type Long",
    "binary_cross_entropy": "Found dtype Long but expected Float",
}


class IntegerBceTargets(Rule):
    """
    ## What it does
    Finds the target of `F.binary_cross_entropy_with_logits` / `nn.BCEWithLogitsLoss` /
    `F.binary_cross_entropy` / `nn.BCELoss` known to be an integer or boolean tensor: cast with
    `.long()`, `.int()`, `.bool()`, `.to(torch.long)`, built with `dtype=torch.long`, from integer
    literals (`torch.tensor([1, 0, 1])`), `F.one_hot(...)` (int64) or `argmax`.

    ## Why is this bad?
    The BCE losses compute `target * log(p) + (1 - target) * log(1 - p)` in the input's floating
    dtype and need a floating-point target. With an int64 target the first training step crashes:
    `BCEWithLogitsLoss` raises "result type Float can't be cast to the desired output type Long",
    `BCELoss` raises "Found dtype Long but expected Float" (and the same for int32, uint8, bool).

    ## Example
    ```python
    loss = F.binary_cross_entropy_with_logits(logits, labels.long())
    ```

    ## Use instead
    ```python
    loss = F.binary_cross_entropy_with_logits(logits, labels.float())
    ```

    ## Fix safety
    The fix casts with `.float()` instead (or adds `.float()` to `F.one_hot(...)`). It is **safe**
    when the values are already whole numbers (a comparison, a mask, class indices, an integer
    tensor, a one-hot): `.float()` gives exactly the numbers the integer cast gave. It is **unsafe**
    when the integer cast may have truncated fractional values, or when the input is known not to
    be float32 (the target must then match the input's dtype).

    ## References
    - [torch.nn.BCEWithLogitsLoss](https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html):
      "Target: (*), same shape as the input" — a floating-point tensor of probabilities.
    """

    code = "LL302"
    name = "integer-bce-targets"
    summary = "Integer or boolean target for BCE / BCEWithLogits: a runtime error, the target must be float"
    fix_availability = Applicability.SAFE
    tokens = ("binary_cross_entropy", "BCELoss", "BCEWithLogitsLoss")
    probe = "runs-as-written"

    def check(self, ctx):
        for loss_call in ctx.loss_calls:
            if not loss_call.contract.float_target:
                continue
            node = loss_call.target_arg
            target = loss_call.target
            if node is None or not all(value.dtype in _INTEGER_OR_BOOL for value in target):
                continue
            value = target[0]
            error = _ERRORS.get(loss_call.contract.key, "a dtype error").replace("Long", _torch_name(value.dtype))
            yield Report(
                node=node,
                message=(f"`{ctx.text(node)}` is {labels.dtype_origin(ctx, value, node)} and reaches "
                         f"{ctx.loss_label(loss_call)} as `{loss_call.contract.target_param}`, which needs a "
                         f"floating-point target: torch raises \"{error}\""),
                evidence=ctx.loss_evidence(loss_call, loss_call.contract.target_param, value),
                hint="pass the target as float (`.float()`, or the input's dtype)",
                fix=None if loss_call.helper_call is not None else _float_target(ctx, loss_call, node),
            )

    flagged = (
        Flagged(
            """
            import torch.nn.functional as F

            def step(logits, labels):
                return F.binary_cross_entropy_with_logits(logits, (labels > 0).long())
            """,
            anchor="(labels > 0).long()",
            fixed="""
            import torch.nn.functional as F

            def step(logits, labels):
                return F.binary_cross_entropy_with_logits(logits, (labels > 0).float())
            """,
        ),
        Flagged(
            """
            import torch
            from torch import nn

            class Tagger(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.head = nn.Linear(16, 4)
                    self.criterion = nn.BCEWithLogitsLoss()

                def forward(self, x, tags):
                    return self.criterion(self.head(x), tags.to(torch.long))
            """,
            anchor="tags.to(torch.long)",
            fixed="""
            import torch
            from torch import nn

            class Tagger(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.head = nn.Linear(16, 4)
                    self.criterion = nn.BCEWithLogitsLoss()

                def forward(self, x, tags):
                    return self.criterion(self.head(x), tags.float())
            """,
        ),
        Flagged(
            """
            import torch
            import torch.nn.functional as F

            def multilabel(logits, y, num_classes):
                return F.binary_cross_entropy(torch.sigmoid(logits), F.one_hot(y, num_classes))
            """,
            anchor="F.one_hot(y, num_classes)",
            fixed="""
            import torch
            import torch.nn.functional as F

            def multilabel(logits, y, num_classes):
                return F.binary_cross_entropy(torch.sigmoid(logits), F.one_hot(y, num_classes).float())
            """,
        ),
        Flagged(
            """
            import torch
            from torch.nn import BCEWithLogitsLoss

            loss_fn = BCEWithLogitsLoss()
            targets = torch.tensor([1, 0, 1, 1])
            loss = loss_fn(torch.randn(4), targets)
            """,
            anchor="targets",
        ),
    )
    silent = (
        Silent(
            """
            import torch.nn.functional as F

            def step(logits, labels):
                return F.binary_cross_entropy_with_logits(logits, labels.float())
            """,
            why="A float target is what BCE needs.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def step(logits, labels):
                return F.cross_entropy(logits, labels.long())
            """,
            why="Class-index losses need int64 targets.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def step(logits, labels, train):
                target = labels.long() if train else labels.float()
                return F.binary_cross_entropy_with_logits(logits, target)
            """,
            why="Only one reaching definition is an integer: precision first.",
        ),
        Silent(
            """
            import torch
            import torch.nn.functional as F

            def step(logits, labels):
                return F.binary_cross_entropy_with_logits(logits, labels.long().to(torch.float32))
            """,
            why="The last cast wins: the target is float32.",
        ),
    )


def _torch_name(dtype: str | None) -> str:
    return {"int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}.get(
        dtype or "", "Long")


def _float_target(ctx, loss_call, node):
    """`.float()` in place of the integer cast written in the loss call (or after a one-hot)."""
    receiver = labels.cast_receiver(ctx, node)
    fact = ctx.call(node)
    if receiver is not None:
        replacement = f"{ctx.text(receiver)}.float()"
        whole = _whole_numbers(ctx.value(receiver))
    elif fact is not None and any(value.domain is Domain.FLOAT_TARGETS for value in fact.result):
        replacement = f"{ctx.text(node)}.float()"  # F.one_hot(...)
        whole = True
    else:
        return None
    input_dtype = dtype_of(loss_call.input)
    safe = whole and input_dtype in (None, "float32")
    return FixPlan("Cast the target with `.float()`", Applicability.SAFE if safe else Applicability.UNSAFE,
                   ((node, replacement),))


def _whole_numbers(values) -> bool:
    """Values `.float()` keeps exactly as the integer cast did: booleans, masks, class indices, integers."""
    return bool(values) and all(
        value.dtype in _INTEGER_OR_BOOL or value.domain is Domain.CLASS_INDICES
        or (value.domain is Domain.MASK and value.binary) for value in values)
