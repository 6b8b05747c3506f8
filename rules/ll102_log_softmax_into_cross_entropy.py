"""LL102: log-probabilities passed to cross_entropy (a harmless redundancy)."""

from losslint import contracts
from losslint.domains import Domain
from losslint.findings import Applicability, Severity
from losslint.objects import literal
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class LogSoftmaxIntoCrossEntropy(Rule):
    """
    ## What it does
    Finds log-probabilities (the output of `log_softmax`, `nn.LogSoftmax`, or a model whose
    `forward` ends in one) passed as the input of `F.cross_entropy` / `nn.CrossEntropyLoss`.
    Off by default: enable it with `--extend-select LL102`.

    ## Why is this bad?
    `cross_entropy` is `nll_loss(log_softmax(x))`. `log_softmax` is idempotent along the class
    dimension (the log-sum-exp of log-probabilities is 0), so the loss value and gradients are
    the same: the extra `log_softmax` is only wasted work and a sign that the author meant
    `nll_loss`. It is not a numerical problem, hence the "info" severity.

    ## Example
    ```python
    loss = F.cross_entropy(F.log_softmax(logits, dim=1), targets)
    ```

    ## Use instead
    ```python
    loss = F.cross_entropy(logits, targets)
    # or, keeping the log-probabilities:
    loss = F.nll_loss(F.log_softmax(logits, dim=1), targets)
    ```

    ## Fix safety
    Removing the `log_softmax` is **safe** when it is taken over dimension 1, the class
    dimension `cross_entropy` normalises over: the value is unchanged. Over another dimension
    the two are not the same computation and no fix is offered.

    ## References
    - [torch.nn.functional.cross_entropy](https://pytorch.org/docs/stable/generated/torch.nn.functional.cross_entropy.html)
    - [torch.nn.NLLLoss](https://pytorch.org/docs/stable/generated/torch.nn.NLLLoss.html)
    """

    code = "LL102"
    name = "log-softmax-into-cross-entropy"
    summary = "Log-probabilities passed to cross_entropy, which applies log_softmax itself (redundant)"
    severity = Severity.INFO
    default_enabled = False
    fix_availability = Applicability.SAFE
    tokens = ("cross_entropy", "CrossEntropyLoss")

    def check(self, ctx):
        for mismatch in contracts.mismatches(ctx, role="input", expected=Domain.LOGITS,
                                             found=Domain.LOG_PROBABILITIES, producers=("log_softmax",),
                                             contracts=("cross_entropy",)):
            fix = None
            inner = contracts.activation_input(ctx, mismatch.node)
            if inner is not None and mismatch.loss_call.helper_call is None and _over_class_dim(mismatch.node):
                fix = FixPlan("Remove the redundant log_softmax", Applicability.SAFE, ((mismatch.node, ctx.text(inner)),))
            yield Report(
                node=mismatch.node,
                message=contracts.message(ctx, mismatch, "cross_entropy applies log_softmax itself, so this one "
                                                         "is redundant (same value, extra work)"),
                evidence=contracts.evidence(ctx, mismatch),
                hint="pass the logits to cross_entropy, or use nll_loss on the log-probabilities",
                fix=fix,
            )

    flagged = (
        Flagged(
            """
            import torch.nn.functional as F

            def loss(logits, y):
                return F.cross_entropy(F.log_softmax(logits, dim=1), y)
            """,
            anchor="F.log_softmax(logits, dim=1)",
            fixed="""
            import torch.nn.functional as F

            def loss(logits, y):
                return F.cross_entropy(logits, y)
            """,
        ),
        Flagged(
            """
            import torch
            from torch import nn

            head = nn.Sequential(nn.Linear(16, 4), nn.LogSoftmax(dim=1))
            criterion = nn.CrossEntropyLoss()

            def step(x, y):
                return criterion(head(x), y)
            """,
            anchor="head(x)",
        ),
    )
    silent = (
        Silent(
            """
            import torch.nn.functional as F

            def loss(logits, y):
                return F.nll_loss(F.log_softmax(logits, dim=1), y)
            """,
            why="log_softmax into nll_loss is the intended pairing.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def loss(logits, y):
                logp = F.log_softmax(logits, dim=1)
                entropy = -(logp.exp() * logp).sum(1).mean()
                return F.cross_entropy(logits, y) - 0.01 * entropy
            """,
            why="Log-probabilities used for an entropy bonus; cross_entropy gets the logits.",
        ),
    )


def _over_class_dim(node) -> bool:
    """The log_softmax is taken over dim 1 (cross_entropy's class dimension)."""
    for arg in node.args:
        if arg.keyword is not None and arg.keyword.value == "dim":
            return literal(arg.value) == 1
    positional = [arg for arg in node.args if arg.keyword is None]
    is_method = hasattr(node.func, "attr") and len(positional) == 1
    dim_arg = positional[0] if is_method else (positional[1] if len(positional) > 1 else None)
    return dim_arg is not None and literal(dim_arg.value) == 1
