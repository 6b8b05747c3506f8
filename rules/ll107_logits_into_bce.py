"""LL107: raw logits passed to BCELoss, which needs probabilities."""

from losslint import contracts
from losslint.domains import Domain
from losslint.findings import Applicability
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class LogitsIntoBce(Rule):
    """
    ## What it does
    Finds values that are provably raw logits — the direct output of an `nn.Linear` /
    `nn.Conv*` layer (or `F.linear`), or of a model whose `forward` returns such a value —
    passed as the input of `F.binary_cross_entropy` / `nn.BCELoss`.

    ## Why is this bad?
    `BCELoss` expects probabilities in [0, 1] and raises "all elements of input should be
    between 0 and 1" as soon as a logit leaves that range — usually some steps into
    training, after time has been spent. While the logits happen to stay inside [0, 1] the
    loss is simply the wrong function of the model's output.

    ## Example
    ```python
    logits = self.head(x)  # nn.Linear
    loss = F.binary_cross_entropy(logits, targets)
    ```

    ## Use instead
    ```python
    loss = F.binary_cross_entropy_with_logits(logits, targets)
    ```

    ## Fix safety
    Switching to `binary_cross_entropy_with_logits` is **unsafe**: it changes the loss
    function (to the one that was intended). Offered for the functional form.

    ## References
    - [torch.nn.BCELoss](https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html)
    - [torch.nn.BCEWithLogitsLoss](https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html)
    """

    code = "LL107"
    name = "logits-into-bce"
    summary = "Raw logits (a Linear/Conv output) passed to BCELoss, which expects probabilities"
    fix_availability = Applicability.UNSAFE
    tokens = ("binary_cross_entropy", "BCELoss")
    probe = "wrong-input-domain"

    def check(self, ctx):
        for mismatch in contracts.mismatches(ctx, role="input", expected=Domain.PROBABILITIES,
                                             found=Domain.LOGITS, producers=("linear layer",),
                                             contracts=("binary_cross_entropy",)):
            fix = None
            if mismatch.loss_call.instance is None and mismatch.loss_call.helper_call is None:
                spelled, edits = ctx.reference("torch.nn.functional.binary_cross_entropy_with_logits",
                                               ("torch.nn.functional", "F"))
                fix = FixPlan("Use binary_cross_entropy_with_logits", Applicability.UNSAFE,
                              ((mismatch.loss_call.node.func, spelled),), edits)
            yield Report(
                node=mismatch.node,
                message=contracts.message(ctx, mismatch, "BCELoss fails as soon as a logit leaves [0, 1] "
                                                         "and is the wrong function of the output before that"),
                evidence=contracts.evidence(ctx, mismatch),
                hint="use BCEWithLogitsLoss / binary_cross_entropy_with_logits on the logits",
                fix=fix,
            )

    flagged = (
        Flagged(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Head(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(16, 1)

                def loss(self, x, y):
                    return F.binary_cross_entropy(self.fc(x).squeeze(1), y)
            """,
            anchor="self.fc(x).squeeze(1)",
            fixed="""
            import torch.nn as nn
            import torch.nn.functional as F

            class Head(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(16, 1)

                def loss(self, x, y):
                    return F.binary_cross_entropy_with_logits(self.fc(x).squeeze(1), y)
            """,
        ),
        Flagged(
            """
            import torch
            from torch import nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.out = nn.Linear(8, 1)

                def forward(self, x):
                    return self.out(torch.relu(x))

            net = Net()
            bce = nn.BCELoss()

            def step(x, y):
                return bce(net(x), y)
            """,
            anchor="net(x)",
        ),
    )
    silent = (
        Silent(
            """
            import torch
            import torch.nn as nn
            import torch.nn.functional as F

            class Head(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(16, 1)

                def loss(self, x, y):
                    return F.binary_cross_entropy(torch.sigmoid(self.fc(x)), y)
            """,
            why="The logits went through a sigmoid (LL104 has a better suggestion, but the input domain is right).",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def loss(model_output, y):
                return F.binary_cross_entropy(model_output, y)
            """,
            why="Unknown provenance: the rule only reports provable logits.",
        ),
    )
