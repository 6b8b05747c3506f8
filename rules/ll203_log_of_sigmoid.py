"""LL203: the log of sigmoid (or of 1 - sigmoid), which underflows to -inf."""

import libcst as cst

from losslint import numerics
from losslint.findings import Applicability
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class LogOfSigmoid(Rule):
    """
    ## What it does
    Finds `torch.log(torch.sigmoid(x))` and `torch.log(1 - torch.sigmoid(x))`, in every spelling
    (`x.sigmoid().log()`, `F.sigmoid`, `torch.special.expit`, `nn.Sigmoid`, a hand-written
    `1 / (1 + torch.exp(-x))`, a model whose `forward` ends in a sigmoid), with or without an added
    epsilon or a clamp. When both logs form a hand-written binary cross-entropy, LL204 reports it instead.

    ## Why is this bad?
    `sigmoid(x)` is computed as 1 / (1 + exp(-x)): for x ≤ −88.7 (float32; −17.3 in float16) exp(−x)
    overflows, the sigmoid is 0 and its log `-inf`, although the true value (≈ x) is an ordinary
    number. `1 - sigmoid(x)` is worse: it rounds to exactly 0 from x ≥ 16.6 in float32 (8.3 in
    float16, 6.25 in bfloat16), logits any confident classifier produces, and `log(1 - sigmoid(x))`
    is `-inf` with a NaN gradient. An epsilon or clamp keeps it finite but caps the term at log(eps)
    and kills its gradient there. `F.logsigmoid(x)` is exact for any x, and
    log(1 − sigmoid(x)) = logsigmoid(−x).

    ## Example
    ```python
    log_p = torch.log(torch.sigmoid(logits))
    log_not_p = torch.log(1 - torch.sigmoid(logits))
    ```

    ## Use instead
    ```python
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    ```

    ## Fix safety
    `log(sigmoid(x))` → `F.logsigmoid(x)` and `log(1 - sigmoid(x))` → `F.logsigmoid(-x)` are **safe**
    (the same value, computed stably). When the original adds an epsilon or clamps, dropping it changes
    the value where the probability is below eps: **unsafe**. No fix when the sigmoid sits in another
    statement (the probabilities may be used elsewhere) or is an `nn.Sigmoid` module or a helper.

    ## References
    - [torch.nn.functional.logsigmoid](https://pytorch.org/docs/stable/generated/torch.nn.functional.logsigmoid.html)
    - [torch.nn.BCEWithLogitsLoss](https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html):
      "more numerically stable than using a plain Sigmoid followed by a BCELoss … log-sum-exp trick".
    """

    code = "LL203"
    name = "log-of-sigmoid"
    summary = "log(sigmoid(x)) / log(1 - sigmoid(x)) underflow to -inf; use F.logsigmoid(x) / F.logsigmoid(-x)"
    fix_availability = Applicability.SAFE
    tokens = ("log",)
    probe = "overflow"
    # The hand-written sigmoid inside the log is part of the same hand-written logsigmoid.
    supersedes = ("LL208",)

    def check(self, ctx):
        for site in numerics.log_sites(ctx, numerics.SIGMOID):
            what = "log(1 - sigmoid)" if site.complement else "log of sigmoid"
            if site.guarded:
                consequence = ("the epsilon / clamp keeps it finite, but the term is capped at log(eps) and its "
                               "gradient vanishes for confident predictions")
            elif site.complement:
                consequence = ("1 - sigmoid(x) rounds to 0 from x = 16.6 in float32 (8.3 in float16, 6.25 in "
                               "bfloat16), making it -inf and the gradient NaN")
            else:
                consequence = "sigmoid(x) underflows to 0 for x < -88.7 in float32 (-17.3 in float16), making it -inf"
            yield Report(
                node=site.node,
                message=f"{what} {ctx.describe(site.argument, site.probabilities)}: {consequence}",
                evidence=(*ctx.chain(site.probabilities), f"line {ctx.line(site.node)}: log taken here"),
                hint=self._hint(ctx, site),
                fix=self._fix(ctx, site),
            )

    def _hint(self, ctx, site):
        logits = numerics.logits_text(ctx, site.probabilities, site.node)
        if site.complement:
            return f"use F.logsigmoid({numerics.negation(logits)})" if logits else \
                "use F.logsigmoid(-x) for log(1 - sigmoid(x))"
        return f"use F.logsigmoid({logits})" if logits else "use F.logsigmoid(x) for log(sigmoid(x))"

    def _fix(self, ctx, site):
        inner, guarded = numerics.unguarded(ctx, site.argument)
        if site.complement:
            if not (isinstance(inner, cst.BinaryOperation) and isinstance(inner.operator, cst.Subtract)):
                return None
            inner = inner.right
        x = numerics.sigmoid_input(ctx, inner)
        if x is None:
            return None
        if site.complement:
            x = numerics.negation(x)
        spelled, edits = numerics.functional(ctx, "logsigmoid")
        applicability = Applicability.UNSAFE if guarded else Applicability.SAFE
        title = "Use F.logsigmoid" + (" (drops the epsilon / clamp)" if guarded else "")
        return FixPlan(title, applicability, ((site.node, f"{spelled}({x})"),), edits)

    flagged = (
        Flagged(
            """
            import torch

            def log_likelihood(logits):
                return torch.log(torch.sigmoid(logits))
            """,
            anchor="torch.log(torch.sigmoid(logits))",
            fixed="""
            import torch

            def log_likelihood(logits):
                return torch.nn.functional.logsigmoid(logits)
            """,
        ),
        Flagged(
            """
            import torch.nn.functional as F

            def negative_term(scores):
                return (1 - F.sigmoid(scores)).log()
            """,
            anchor="(1 - F.sigmoid(scores)).log()",
            fixed="""
            import torch.nn.functional as F

            def negative_term(scores):
                return F.logsigmoid(-scores)
            """,
        ),
        Flagged(
            """
            import torch
            import torch.nn.functional as F

            def gate_penalty(a, b):
                return torch.log(1 - torch.sigmoid(a - b) + 1e-6).mean()
            """,
            anchor="torch.log(1 - torch.sigmoid(a - b) + 1e-6)",
            fixed="""
            import torch
            import torch.nn.functional as F

            def gate_penalty(a, b):
                return F.logsigmoid(-(a - b)).mean()
            """,
        ),
        Flagged(
            """
            import torch
            from torch import nn

            class Discriminator(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.net = nn.Sequential(nn.Linear(784, 1), nn.Sigmoid())

                def generator_loss(self, fake):
                    return -torch.log(self.net(fake)).mean()
            """,
            anchor="torch.log(self.net(fake))",
        ),
        Flagged(
            """
            import torch

            def pairwise_ranking(pos, neg):
                p = 1 / (1 + torch.exp(-(pos - neg)))
                return -torch.log(p).mean()
            """,
            anchor="torch.log(p)",
        ),
        Flagged(
            """
            from torch import exp, log

            def pairwise_ranking(pos, neg):
                return -log(1 / (1 + exp(neg - pos))).mean()
            """,
            anchor="log(1 / (1 + exp(neg - pos)))",
            fixed="""
            from torch import exp, log
            import torch.nn.functional as F

            def pairwise_ranking(pos, neg):
                return -F.logsigmoid(-(neg - pos)).mean()
            """,
        ),
    )
    silent = (
        Silent(
            """
            import torch

            @torch.no_grad()
            def matching_cost(logits, alpha=0.25):
                prob = logits.sigmoid()
                negative = (1 - alpha) * prob ** 2 * -(1 - prob + 1e-8).log()
                positive = alpha * (1 - prob) ** 2 * -(prob + 1e-8).log()
                return positive - negative
            """,
            why="A guarded log under no_grad (a Hungarian matching cost): finite, and no gradient to vanish.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def bce(logits, y):
                return -(y * F.logsigmoid(logits) + (1 - y) * F.logsigmoid(-logits)).mean()
            """,
            why="logsigmoid is the stable form.",
        ),
        Silent(
            """
            import torch
            import torch.nn.functional as F

            def step(logits, y):
                loss = F.binary_cross_entropy_with_logits(logits, y)
                acc = ((torch.sigmoid(logits) > 0.5).float() == y).float().mean()
                return loss, acc
            """,
            why="A sigmoid used for accuracy while the loss gets the logits.",
        ),
        Silent(
            """
            import torch

            def log_rate(log_lambda, scale):
                return torch.log(scale) + log_lambda
            """,
            why="The log of a scale is not the log of a sigmoid.",
        ),
    )
