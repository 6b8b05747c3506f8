"""LL105: probabilities passed to nll_loss, which needs log-probabilities."""

from losslint import contracts
from losslint.domains import Domain
from losslint.findings import Applicability
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class ProbabilitiesIntoNllLoss(Rule):
    """
    ## What it does
    Finds probabilities (the output of `softmax`, `sigmoid`, `nn.Softmax`, or a model whose
    `forward` ends in one) passed as the input of `F.nll_loss` / `nn.NLLLoss`.

    ## Why is this bad?
    `nll_loss` only picks −input[target]: it expects log-probabilities. Given probabilities,
    the "loss" is −p[target], a different objective: it is bounded in [−1, 0], its gradient
    does not grow for confidently wrong predictions, and a reported loss near −1 looks
    like a bug in the logging rather than in the model. Training typically stalls.

    ## Example
    ```python
    probs = F.softmax(logits, dim=1)
    loss = F.nll_loss(probs, targets)
    ```

    ## Use instead
    ```python
    loss = F.nll_loss(F.log_softmax(logits, dim=1), targets)
    # or simply
    loss = F.cross_entropy(logits, targets)
    ```

    ## Fix safety
    Replacing the softmax by `log_softmax` is **unsafe**: it changes the objective (from
    −p to −log p). Offered only when the softmax call is written directly inside the loss call.

    ## References
    - [torch.nn.NLLLoss](https://pytorch.org/docs/stable/generated/torch.nn.NLLLoss.html):
      "The input given through a forward call is expected to contain log-probabilities of each class."
    """

    code = "LL105"
    name = "probabilities-into-nll-loss"
    summary = "Probabilities passed to nll_loss, which expects log-probabilities"
    fix_availability = Applicability.UNSAFE
    tokens = ("nll_loss", "NLLLoss")
    probe = "wrong-input-domain"

    def check(self, ctx):
        for mismatch in contracts.mismatches(ctx, role="input", expected=Domain.LOG_PROBABILITIES,
                                             found=Domain.PROBABILITIES, contracts=("nll_loss", "nll_loss2d")):
            fix = None
            rewritten = contracts.log_space_call(ctx, mismatch.node)
            if rewritten is not None and mismatch.loss_call.helper_call is None:
                text, edits = rewritten
                fix = FixPlan("Use log_softmax instead of softmax", Applicability.UNSAFE, ((mismatch.node, text),),
                              edits)
            yield Report(
                node=mismatch.node,
                message=contracts.message(ctx, mismatch, "nll_loss then minimises -p[target] instead of "
                                                         "-log p[target], a different and much weaker objective"),
                evidence=contracts.evidence(ctx, mismatch),
                hint="use log_softmax before nll_loss, or cross_entropy on the logits",
                fix=fix,
            )

    flagged = (
        Flagged(
            """
            import torch.nn.functional as F

            def loss(logits, y):
                return F.nll_loss(F.softmax(logits, dim=1), y)
            """,
            anchor="F.softmax(logits, dim=1)",
            fixed="""
            import torch.nn.functional as F

            def loss(logits, y):
                return F.nll_loss(F.log_softmax(logits, dim=1), y)
            """,
        ),
        Flagged(
            """
            import torch
            import torch.nn as nn

            criterion = nn.NLLLoss(ignore_index=0)

            def step(model, x, y):
                probs = model(x).softmax(dim=-1)
                return criterion(probs, y)
            """,
            anchor="probs",
        ),
    )
    silent = (
        Silent(
            """
            import torch.nn.functional as F

            def loss(logits, y):
                return F.nll_loss(F.log_softmax(logits, dim=1), y)
            """,
            why="log_softmax into nll_loss is correct.",
        ),
        Silent(
            """
            import torch
            import torch.nn.functional as F

            def loss(logits, y):
                probs = torch.softmax(logits, dim=1)
                return F.nll_loss(torch.log(probs + 1e-8), y)
            """,
            why="Log of probabilities are log-probabilities (its instability is LL201's business).",
        ),
    )
