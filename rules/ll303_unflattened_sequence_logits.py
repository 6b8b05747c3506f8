"""LL303: [B, T, V] sequence logits given to cross_entropy without flattening or moving the class dim."""

import libcst as cst

from losslint.findings import Applicability
from losslint.labels import short
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent
from losslint.tensors import is_class_dim, same_dim, shape_of, show


class UnflattenedSequenceLogits(Rule):
    """
    ## What it does
    Finds `F.cross_entropy` / `nn.CrossEntropyLoss` / `F.nll_loss` / `nn.NLLLoss` given a 3-D input
    laid out `[B, T, V]` (classes last; also `[B, H, W, C]`) with no `view(-1, V)` / `reshape` /
    `transpose(1, 2)` / `permute(0, 2, 1)` before the call. The layout is known from a shape unpacking
    (`B, T, V = logits.shape`), a view (`.view(B, T, V)`), an `nn.Linear` applied to a known
    `[B, T, d]` tensor, a shape comment on the assignment (`logits = head(x)  # [B, T, V]`) or a
    model whose `forward` says so; and either the target is known to be `[B, T]` or the last
    dimension is named like a class count (`V`, `C`, `vocab_size`, `num_classes`).

    ## Why is this bad?
    For inputs with more than two dimensions these losses take the classes from **dim 1**: a
    `[B, T, V]` input is read as `B × V` positions of `T` classes. With a `[B, T]` target torch
    stops with "Expected target size [B, V], got [B, T]" — after the forward pass of the first
    batch — and when `T == V` (e.g. a square attention map, or a sequence length equal to the number
    of classes) it trains silently on the wrong axis.

    ## Example
    ```python
    logits = self.lm_head(hidden)  # [B, T, V]
    loss = F.cross_entropy(logits, targets)
    ```

    ## Use instead
    ```python
    logits = self.lm_head(hidden)  # [B, T, V]
    loss = F.cross_entropy(logits.transpose(1, 2), targets)
    # or: F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
    ```

    ## Fix safety
    The fix moves the classes to dim 1 with `.transpose(1, 2)` (`.movedim(-1, 1)` for 4-D and more),
    which gives the per-position losses (and their mean) of the flattened form. It is **unsafe**: it changes what the call computes
    (a crash, or the loss over the wrong axis when `T == V`, becomes the intended loss).

    ## References
    - [torch.nn.CrossEntropyLoss](https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html):
      input "(N, C, d1, d2, ..., dK) with K ≥ 1 in the case of K-dimensional loss", target "(N, d1, ..., dK)".
    """

    code = "LL303"
    name = "unflattened-sequence-logits"
    summary = "3-D [B, T, V] logits passed to cross_entropy: the classes are read from dim 1"
    fix_availability = Applicability.UNSAFE
    tokens = ("cross_entropy", "CrossEntropyLoss", "nll_loss", "NLLLoss")
    probe = "runs-as-written"

    def check(self, ctx):
        for loss_call in ctx.loss_calls:
            if not loss_call.contract.index_target:
                continue
            node = loss_call.input_arg
            shape = shape_of(loss_call.input)
            if node is None or shape is None or len(shape) < 3:
                continue
            target_shape = shape_of(loss_call.target)
            reason = _classes_last(shape, target_shape, loss_call.input)
            if reason is None:
                continue
            value = loss_call.input[0]
            where = f" (line {ctx.line(value.shape_node)})" if value.shape_node is not None else ""
            fix = None
            if loss_call.helper_call is None:
                text = ctx.text(node)
                inner = text if _is_primary(node) else f"({text})"
                moved = ".transpose(1, 2)" if len(shape) == 3 else ".movedim(-1, 1)"
                fix = FixPlan(f"Move the classes to dim 1 with `{moved}`", Applicability.UNSAFE,
                              ((node, f"{inner}{moved}"),))
            evidence = list(ctx.loss_evidence(loss_call, loss_call.contract.input_param, value))
            if value.shape_node is not None:
                evidence.insert(0, f"line {ctx.line(value.shape_node)}: the shape {show(shape)} is stated or computed "
                                   f"by `{short(ctx.text(value.shape_node))}`")
            yield Report(
                node=node,
                message=(f"`{ctx.text(node)}` is {show(shape)}{where}, {reason}, and reaches "
                         f"{ctx.loss_label(loss_call)}, which reads the classes from dim 1 (`{shape[1]}`): "
                         f"a size error at run time, or a silently wrong loss when {shape[1]} == {shape[-1]}"),
                evidence=tuple(evidence),
                hint="move the classes to dim 1 (`.transpose(1, 2)`) or flatten both: "
                     "`logits.view(-1, V)`, `targets.view(-1)`",
                fix=fix,
            )

    flagged = (
        Flagged(
            """
            import torch.nn.functional as F

            def lm_loss(model, idx, targets):
                logits = model(idx)  # [B, T, V]
                return F.cross_entropy(logits, targets)
            """,
            anchor="logits",
            fixed="""
            import torch.nn.functional as F

            def lm_loss(model, idx, targets):
                logits = model(idx)  # [B, T, V]
                return F.cross_entropy(logits.transpose(1, 2), targets)
            """,
        ),
        Flagged(
            """
            import torch
            from torch import nn

            class Tagger(nn.Module):
                def __init__(self, hidden, num_tags):
                    super().__init__()
                    self.proj = nn.Linear(hidden, num_tags)
                    self.criterion = nn.CrossEntropyLoss(ignore_index=-100)

                def forward(self, states, tags):
                    B, T, H = states.shape
                    B, T = tags.shape
                    scores = self.proj(states)
                    return self.criterion(scores, tags)
            """,
            anchor="scores",
        ),
        Flagged(
            """
            import torch.nn.functional as F

            def step(model, x, y):
                out = model(x)
                B, T, C = out.shape
                log_probs = F.log_softmax(out, dim=-1)
                return F.nll_loss(log_probs, y)
            """,
            anchor="log_probs",
        ),
        Flagged(
            """
            import torch.nn.functional as F

            def segmentation_loss(model, images, masks):
                out = model(images).permute(0, 2, 3, 1)  # [B, H, W, num_classes]
                return F.cross_entropy(out, masks)
            """,
            anchor="out",
            fixed="""
            import torch.nn.functional as F

            def segmentation_loss(model, images, masks):
                out = model(images).permute(0, 2, 3, 1)  # [B, H, W, num_classes]
                return F.cross_entropy(out.movedim(-1, 1), masks)
            """,
        ),
    )
    silent = (
        Silent(
            """
            import torch.nn.functional as F

            def lm_loss(model, idx, targets):
                logits = model(idx)  # [B, T, V]
                B, T, V = logits.shape
                return F.cross_entropy(logits.view(B * T, V), targets.view(B * T))
            """,
            why="Flattened to [B*T, V] and [B*T]: the classes are on dim 1.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def lm_loss(model, idx, targets):
                logits = model(idx)  # [B, T, V]
                return F.cross_entropy(logits.permute(0, 2, 1), targets)
            """,
            why="Permuted to [B, V, T]: the classes are on dim 1.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def segment(model, audio, labels):
                N, C, L = model(audio).shape
                out = model(audio)  # (N, C, L)
                return F.cross_entropy(out, labels)
            """,
            why="An [N, C, L] input already has the classes on dim 1.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def step(model, x, y):
                out = model(x)  # [B, T, H]
                return F.cross_entropy(out, y)
            """,
            why="Nothing says which dimension holds the classes and the target's shape is unknown.",
        ),
    )


def _classes_last(shape, target_shape, values) -> str | None:
    """Why the classes of an input of rank 3 or more sit on its last dimension, or None.

    Torch wants the target to be the input's shape without dim 1; a target that is the input's shape
    without its *last* dim says the classes are last (unless the two sizes are the same symbol). So
    does a class-count name in last place, or a shape computed by a linear layer (its output features
    are last: the class scores of a classification head).
    """
    if same_dim(shape[1], shape[-1]):
        return None
    if target_shape is not None:
        if len(target_shape) == len(shape) - 1 and all(same_dim(a, b) for a, b in zip(target_shape, shape[:-1])):
            return f"the target is {show(target_shape)}"
        return None
    if any(is_class_dim(dim) for dim in shape[:-1]):
        return None
    if is_class_dim(shape[-1]):
        return f"its last dimension `{shape[-1]}` is the classes"
    if all(value.producer == "linear layer" and value.shape_node is not None and
           value.shape_node is value.producer_node for value in values):
        return f"its last dimension `{shape[-1]}` holds the output features of a linear layer, the classes"
    return None


def _is_primary(node) -> bool:
    return isinstance(node, cst.Name | cst.Attribute | cst.Call | cst.Subscript)
