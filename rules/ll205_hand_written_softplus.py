"""LL205: softplus written as log(1 + exp(x)), which overflows."""

from losslint import numerics
from losslint.context import shorten
from losslint.domains import Form, every
from losslint.findings import Applicability
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class HandWrittenSoftplus(Rule):
    """
    ## What it does
    Finds softplus written by hand: `torch.log(1 + torch.exp(x))`, `torch.log(torch.exp(x) + 1)`,
    `torch.exp(x).add(1).log()` and `torch.log1p(torch.exp(x))`, also when the exponential was
    computed on an earlier line. Exponents known to be ≤ 0 (`-x.abs()`, `x - x.max()`, a clamped
    exponent) are the stable textbook form and are not reported.

    ## Why is this bad?
    `exp(x)` overflows to `inf` for x > 88.7 in float32 (11.1 in float16, 88.5 in bfloat16): the
    result is `inf` and the gradient exp(x) / (1 + exp(x)) = inf / inf = NaN, although the true value
    is just ≈ x. `log(1 + exp(x))` also loses everything for x < −16.6 in float32, where 1 + exp(x)
    rounds to 1 and the result is 0 instead of exp(x). Wrapping it in `torch.where(x > 20, x, …)` does
    not help: both branches are evaluated and the NaN gradient of the unused one still poisons the
    backward pass. `F.softplus(x)` is exact and finite everywhere.

    ## Example
    ```python
    loss = torch.log(1 + torch.exp(-y * margin)).mean()
    ```

    ## Use instead
    ```python
    loss = F.softplus(-y * margin).mean()
    ```

    ## Fix safety
    `log(1 + exp(x))` and `log1p(exp(x))` equal `softplus(x)` exactly, so the rewrite to `F.softplus(x)`
    is **safe** (torch switches to the identity above x = 20, where the two differ by at most 2.1e-9).
    The fix is offered when the exponential is written inside the log; no fix when it comes from
    another statement.

    ## References
    - [torch.nn.functional.softplus](https://pytorch.org/docs/stable/generated/torch.nn.functional.softplus.html):
      "For numerical stability the implementation reverts to the linear function when input × β > threshold."
    """

    code = "LL205"
    name = "hand-written-softplus"
    summary = "log(1 + exp(x)) overflows to inf (NaN gradients) for large x; use F.softplus(x)"
    fix_availability = Applicability.SAFE
    tokens = ("exp",)
    probe = "overflow"

    def check(self, ctx):
        for fact in ctx.calls:
            values = fact.result
            if not every(values, lambda v: v.form is Form.SOFTPLUS and v.producer_node is fact.node):
                continue
            exponent = values[0].form_arg
            yield Report(
                node=fact.node,
                message=f"hand-written softplus `{shorten(ctx.text(fact.node))}`: exp({shorten(ctx.text(exponent))}) "
                        "overflows to inf for arguments above 88.7 in float32 (11.1 in float16), making the result "
                        "inf and its gradient NaN",
                evidence=(f"line {ctx.line(exponent)}: exp of `{shorten(ctx.text(exponent))}`",
                          f"line {ctx.line(fact.node)}: log(1 + exp) taken here"),
                hint=f"use F.softplus({ctx.text(exponent)})",
                fix=self._fix(ctx, fact.node, values),
            )

    def _fix(self, ctx, node, values):
        exponent = values[0].form_arg
        if len({ctx.text(v.form_arg) for v in values}) != 1 or not numerics.inside(ctx, exponent, node):
            return None
        spelled, edits = numerics.functional(ctx, "softplus")
        return FixPlan("Use F.softplus", Applicability.SAFE, ((node, f"{spelled}({ctx.text(exponent)})"),), edits)

    flagged = (
        Flagged(
            """
            import torch

            def logistic_loss(margin, y):
                return torch.log(1 + torch.exp(-y * margin)).mean()
            """,
            anchor="torch.log(1 + torch.exp(-y * margin))",
            fixed="""
            import torch

            def logistic_loss(margin, y):
                return torch.nn.functional.softplus(-y * margin).mean()
            """,
        ),
        Flagged(
            """
            import torch.nn.functional as F

            def positive_scale(raw):
                return raw.exp().add(1).log()
            """,
            anchor="raw.exp().add(1).log()",
            fixed="""
            import torch.nn.functional as F

            def positive_scale(raw):
                return F.softplus(raw)
            """,
        ),
        Flagged(
            """
            import torch

            def std_from_raw(raw_std):
                return torch.where(raw_std > 20, raw_std, torch.log1p(torch.exp(raw_std)))
            """,
            anchor="torch.log1p(torch.exp(raw_std))",
        ),
        Flagged(
            """
            import torch
            from torch import nn

            class PairwiseRanker(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.score = nn.Linear(32, 1)

                def forward(self, better, worse):
                    gap = self.score(worse) - self.score(better)
                    e = torch.exp(gap)
                    return torch.log(e + 1).mean()
            """,
            anchor="torch.log(e + 1)",
        ),
    )
    silent = (
        Silent(
            """
            import torch

            def stable_softplus(x):
                return torch.clamp(x, min=0) + torch.log1p(torch.exp(-torch.abs(x)))
            """,
            why="exp(-|x|) is at most 1: this is the stable textbook softplus.",
        ),
        Silent(
            """
            import torch

            def log_likelihood(x):
                return torch.log1p(x) + torch.log(1 + x ** 2)
            """,
            why="log1p / log of non-exponentials.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def positive(raw):
                return F.softplus(raw) + 1e-4
            """,
            why="F.softplus is the stable form.",
        ),
        Silent(
            """
            import math

            def warmup(step, k=0.01):
                return math.log(1 + math.exp(k * step))
            """,
            why="Python floats from the math module are not tensors in the training graph.",
        ),
    )
