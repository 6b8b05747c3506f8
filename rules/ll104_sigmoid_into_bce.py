"""LL104: BCELoss / binary_cross_entropy on a sigmoid output (use BCEWithLogitsLoss on the logits)."""

import libcst as cst

from losslint import contracts
from losslint.domains import Domain
from losslint.findings import Applicability, Severity
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent

_WITH_LOGITS = "torch.nn.functional.binary_cross_entropy_with_logits"


class SigmoidIntoBce(Rule):
    """
    ## What it does
    Finds the output of a sigmoid (`torch.sigmoid`, `x.sigmoid()`, `nn.Sigmoid`, a hand-written
    `1 / (1 + exp(-x))`, or a model whose `forward` ends in one) passed to
    `F.binary_cross_entropy` / `nn.BCELoss`.

    ## Why is this bad?
    The sigmoid saturates: in float32, sigmoid(x) rounds to exactly 1.0 for x ≥ 16.6, and
    `BCELoss` then clamps log(1 − p) at −100 to avoid inf. From there the loss is a flat 100
    and **the gradient with respect to the logit is exactly 0**: a confidently wrong example
    stops teaching the model (measured at x = 30, 60, 100, 200 with target 0). In float16 the
    saturation starts at x ≈ 8.3. `BCEWithLogitsLoss` computes the same loss from the logits
    with the log-sum-exp trick: finite, with gradient sigmoid(x) − y, at any logit.

    ## Example
    ```python
    probs = torch.sigmoid(logits)
    loss = nn.BCELoss()(probs, targets)
    ```

    ## Use instead
    ```python
    loss = nn.BCEWithLogitsLoss()(logits, targets)
    ```

    ## Fix safety
    The fix is **unsafe**: it changes the loss object (and the meaning of `weight` /
    `pos_weight` arguments if added later), and the values differ where BCELoss clamped.
    It is offered for the functional form and for a loss module built and called in one
    expression, when the sigmoid is written directly inside the call.

    ## References
    - [torch.nn.BCELoss](https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html):
      "BCELoss clamps its log function outputs to be greater than or equal to -100".
    - [torch.nn.BCEWithLogitsLoss](https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html):
      "more numerically stable than using a plain Sigmoid followed by a BCELoss".
    """

    code = "LL104"
    name = "sigmoid-into-bce"
    summary = "BCELoss on a sigmoid output: saturates and kills the gradient; use BCEWithLogitsLoss on logits"
    severity = Severity.WARNING
    fix_availability = Applicability.UNSAFE
    tokens = ("binary_cross_entropy", "BCELoss")
    probe = "vanishing-gradient"

    def check(self, ctx):
        for mismatch in contracts.mismatches(ctx, role="input", expected=Domain.PROBABILITIES,
                                             found=Domain.PROBABILITIES, producers=("sigmoid",),
                                             contracts=("binary_cross_entropy",)):
            yield Report(
                node=mismatch.node,
                message=contracts.message(
                    ctx, mismatch,
                    "but a sigmoid followed by BCELoss saturates: for |logit| > 16.6 (float32) the loss is clamped "
                    "at 100 and the gradient is exactly 0; BCEWithLogitsLoss on the logits stays exact"),
                evidence=contracts.evidence(ctx, mismatch),
                hint="drop the sigmoid and use BCEWithLogitsLoss / binary_cross_entropy_with_logits on the logits",
                fix=self._fix(ctx, mismatch),
            )

    def _fix(self, ctx, mismatch):
        inner = contracts.activation_input(ctx, mismatch.node)
        loss_call = mismatch.loss_call
        if inner is None or loss_call.helper_call is not None:
            return None
        if loss_call.instance is None:
            callee_node = loss_call.node.func
        elif loss_call.node.func is loss_call.instance.node:
            callee_node = loss_call.instance.node.func
        else:
            return None
        target = _WITH_LOGITS if loss_call.instance is None else "torch.nn.BCEWithLogitsLoss"
        spelled, edits = ctx.reference(target, ("torch.nn.functional", "F") if loss_call.instance is None else None)
        if not isinstance(callee_node, cst.Name | cst.Attribute):
            return None
        return FixPlan(
            "Use BCEWithLogitsLoss on the logits", Applicability.UNSAFE,
            ((callee_node, spelled), (mismatch.node, ctx.text(inner))), edits,
        )

    flagged = (
        Flagged(
            """
            import torch
            import torch.nn.functional as F

            def loss(logits, y):
                return F.binary_cross_entropy(torch.sigmoid(logits), y)
            """,
            anchor="torch.sigmoid(logits)",
            fixed="""
            import torch
            import torch.nn.functional as F

            def loss(logits, y):
                return F.binary_cross_entropy_with_logits(logits, y)
            """,
        ),
        Flagged(
            """
            import torch
            from torch import nn

            def loss(logits, y):
                return nn.BCELoss()(logits.sigmoid(), y)
            """,
            anchor="logits.sigmoid()",
            fixed="""
            import torch
            from torch import nn

            def loss(logits, y):
                return nn.BCEWithLogitsLoss()(logits, y)
            """,
        ),
        Flagged(
            """
            import torch
            from torch import nn

            class Model(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(10, 1)
                    self.act = nn.Sigmoid()
                    self.criterion = nn.BCELoss()

                def forward(self, x):
                    return self.act(self.fc(x))

                def training_step(self, batch):
                    x, y = batch
                    out = self(x)
                    return self.criterion(out.squeeze(-1), y)
            """,
            anchor="out.squeeze(-1)",
        ),
    )
    silent = (
        Silent(
            """
            import torch
            import torch.nn.functional as F

            def loss(probs, y):
                return F.binary_cross_entropy(probs, y)
            """,
            why="Probabilities of unknown origin (e.g. from a mixture model) are what BCELoss expects.",
        ),
        Silent(
            """
            import torch
            import torch.nn.functional as F

            def loss(logits, y):
                p = torch.softmax(logits, dim=1)[:, 1]
                return F.binary_cross_entropy(p, y)
            """,
            why="A softmax probability has no logit-space BCE counterpart; BCELoss is a fair choice here.",
        ),
    )
