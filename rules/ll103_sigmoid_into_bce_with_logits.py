"""LL103: probabilities passed to BCEWithLogitsLoss (double sigmoid)."""

from losslint import contracts
from losslint.domains import Domain
from losslint.findings import Applicability
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class SigmoidIntoBceWithLogits(Rule):
    """
    ## What it does
    Finds probabilities (the output of `sigmoid`, `nn.Sigmoid`, `softmax`, or a model whose
    `forward` ends in one) passed as the input of `F.binary_cross_entropy_with_logits` /
    `nn.BCEWithLogitsLoss`.

    ## Why is this bad?
    `BCEWithLogitsLoss` applies the sigmoid itself. Given probabilities p ∈ (0, 1), it computes
    sigmoid(p) ∈ (0.5, 0.731): the predicted probability can never go below 0.5 or above 0.731.
    The loss for a positive target never drops below −log(0.731) = 0.313, for a negative one
    never below −log(1 − 0.731) = 1.313, and the gradient through the squashed range is tiny
    (at most 0.25 × 0.25). The model barely learns and its outputs are miscalibrated.

    ## Example
    ```python
    loss = F.binary_cross_entropy_with_logits(torch.sigmoid(logits), targets)
    ```

    ## Use instead
    ```python
    loss = F.binary_cross_entropy_with_logits(logits, targets)
    ```

    ## Fix safety
    Removing the sigmoid is **unsafe**: it changes the loss and its gradients (hyperparameters
    tuned on the old loss may need retuning). Offered only when the sigmoid call is written
    directly inside the loss call.

    ## References
    - [torch.nn.BCEWithLogitsLoss](https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html):
      "This loss combines a Sigmoid layer and the BCELoss in one single class."
    """

    code = "LL103"
    name = "sigmoid-into-bce-with-logits"
    summary = "Probabilities (sigmoid output) passed to BCEWithLogitsLoss, which applies the sigmoid again"
    fix_availability = Applicability.UNSAFE
    tokens = ("binary_cross_entropy_with_logits", "BCEWithLogitsLoss")
    probe = "wrong-input-domain"

    def check(self, ctx):
        for mismatch in contracts.mismatches(ctx, role="input", expected=Domain.LOGITS, found=Domain.PROBABILITIES,
                                             contracts=("binary_cross_entropy_with_logits",)):
            fix = None
            inner = contracts.activation_input(ctx, mismatch.node)
            if inner is not None and mismatch.loss_call.helper_call is None:
                fix = FixPlan(f"Remove the {mismatch.value.producer} and pass the logits", Applicability.UNSAFE,
                              ((mismatch.node, ctx.text(inner)),))
            yield Report(
                node=mismatch.node,
                message=contracts.message(ctx, mismatch, f"the loss applies a sigmoid on top of the "
                                                         f"{mismatch.value.producer}, squashing predictions into "
                                                         "(0.5, 0.73)"),
                evidence=contracts.evidence(ctx, mismatch),
                hint="pass the raw logits; keep the sigmoid for metrics or inference",
                fix=fix,
            )

    flagged = (
        Flagged(
            """
            import torch
            import torch.nn.functional as F

            def loss(logits, y):
                return F.binary_cross_entropy_with_logits(torch.sigmoid(logits), y)
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

            class Tagger(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.head = nn.Sequential(nn.Linear(32, 5), nn.Sigmoid())
                    self.loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.ones(5))

                def forward(self, x, labels):
                    scores = self.head(x)
                    return self.loss_fn(scores, labels.float())
            """,
            anchor="scores",
        ),
    )
    silent = (
        Silent(
            """
            import torch
            import torch.nn.functional as F

            def step(logits, y):
                preds = torch.sigmoid(logits) > 0.5
                acc = (preds == y.bool()).float().mean()
                return F.binary_cross_entropy_with_logits(logits, y), acc
            """,
            why="The sigmoid feeds the accuracy; the loss gets the logits.",
        ),
        Silent(
            """
            import torch
            import torch.nn.functional as F

            def distill(student, teacher):
                return F.binary_cross_entropy_with_logits(student, torch.sigmoid(teacher))
            """,
            why="Sigmoid of a teacher as the soft *target* is correct.",
        ),
    )
