"""LL106: raw logits passed to nll_loss, which needs log-probabilities."""

from losslint import contracts
from losslint.domains import Domain
from losslint.findings import Applicability
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class LogitsIntoNllLoss(Rule):
    """
    ## What it does
    Finds values that are provably raw logits — the direct output of an `nn.Linear` /
    `nn.Conv*` layer (or `F.linear`), or of a model whose `forward` returns such a value —
    passed as the input of `F.nll_loss` / `nn.NLLLoss`. Values that are merely *named*
    logits are not reported: the rule needs proof.

    ## Why is this bad?
    `nll_loss` expects log-probabilities and only computes −input[target]. On raw logits the
    loss is unbounded below: the model lowers it by making the target logit large without
    making the other classes less likely, the loss goes to −∞ and training diverges.

    ## Example
    ```python
    logits = self.classifier(features)  # nn.Linear
    loss = F.nll_loss(logits, targets)
    ```

    ## Use instead
    ```python
    loss = F.cross_entropy(logits, targets)
    # or
    loss = F.nll_loss(F.log_softmax(logits, dim=1), targets)
    ```

    ## Fix safety
    Wrapping the input in `log_softmax(·, dim=1)` is **unsafe**: it changes the objective
    (to the one that was almost certainly intended). Dimension 1 is the class dimension of
    `nll_loss`.

    ## References
    - [torch.nn.NLLLoss](https://pytorch.org/docs/stable/generated/torch.nn.NLLLoss.html):
      "Obtaining log-probabilities in a neural network is easily achieved by adding a LogSoftmax layer".
    """

    code = "LL106"
    name = "logits-into-nll-loss"
    summary = "Raw logits (a Linear/Conv output) passed to nll_loss, which expects log-probabilities"
    fix_availability = Applicability.UNSAFE
    tokens = ("nll_loss", "NLLLoss")
    probe = "wrong-input-domain"

    def check(self, ctx):
        for mismatch in contracts.mismatches(ctx, role="input", expected=Domain.LOG_PROBABILITIES,
                                             found=Domain.LOGITS, producers=("linear layer",),
                                             contracts=("nll_loss", "nll_loss2d")):
            fix = None
            if mismatch.loss_call.helper_call is None:
                text, edits = contracts.reference_call(ctx, "torch.nn.functional.log_softmax",
                                                       f"{ctx.text(mismatch.node)}, dim=1")
                fix = FixPlan("Apply log_softmax over the class dimension", Applicability.UNSAFE,
                              ((mismatch.node, text),), edits)
            yield Report(
                node=mismatch.node,
                message=contracts.message(ctx, mismatch, "nll_loss on raw logits is unbounded below and training "
                                                         "diverges"),
                evidence=contracts.evidence(ctx, mismatch),
                hint="use cross_entropy on the logits, or log_softmax(logits, dim=1) before nll_loss",
                fix=fix,
            )

    flagged = (
        Flagged(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.classifier = nn.Linear(64, 10)

                def forward(self, features, targets):
                    logits = self.classifier(features)
                    return F.nll_loss(logits, targets)
            """,
            anchor="logits",
            fixed="""
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.classifier = nn.Linear(64, 10)

                def forward(self, features, targets):
                    logits = self.classifier(features)
                    return F.nll_loss(F.log_softmax(logits, dim=1), targets)
            """,
        ),
        Flagged(
            """
            import torch
            from torch import nn

            model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
            criterion = nn.NLLLoss()

            def step(x, y):
                return criterion(model(x), y)
            """,
            anchor="model(x)",
            fixed="""
            import torch
            from torch import nn

            model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
            criterion = nn.NLLLoss()

            def step(x, y):
                return criterion(nn.functional.log_softmax(model(x), dim=1), y)
            """,
        ),
    )
    silent = (
        Silent(
            """
            import torch.nn.functional as F

            def step(outputs, y):
                return F.nll_loss(outputs.logits, y)
            """,
            why="Only named `logits`: no proof they are raw (the rule needs a Linear/Conv producer).",
        ),
        Silent(
            """
            import torch.nn as nn
            import torch.nn.functional as F

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(64, 10)

                def forward(self, x):
                    return F.log_softmax(self.fc(x), dim=1)

            def step(net, x, y):
                return F.nll_loss(net(x), y)
            """,
            why="The model's forward ends in log_softmax: correct input for nll_loss.",
        ),
    )
