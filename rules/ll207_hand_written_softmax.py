"""LL207: softmax written as exp(x) / exp(x).sum() without subtracting the maximum."""

import libcst as cst

from losslint import numerics
from losslint.context import shorten
from losslint.domains import Form, every
from losslint.findings import Applicability
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class HandWrittenSoftmax(Rule):
    """
    ## What it does
    Finds softmax written by hand without subtracting the maximum: `torch.exp(x) / torch.exp(x).sum(d,
    keepdim=True)`, `e / e.sum(-1, keepdim=True)` with `e = x.exp()`, `torch.exp(x) / torch.sum(torch.exp(x),
    dim=1, keepdim=True)`. The max-shifted form `exp(x - x.max(d, keepdim=True).values) / …` (inline or
    through a variable) is stable and not reported.

    ## Why is this bad?
    `exp(x)` overflows to `inf` for any entry above 88.7 in float32 (11.1 in float16, 88.5 in
    bfloat16), and `inf / inf` is NaN for the whole row; when every entry is below −104 (−17.3 in
    float16) all exponentials are 0 and `0 / 0` is NaN too. Attention scores, logits divided by a
    small temperature and energies reach those ranges. `torch.softmax` subtracts the row maximum
    first and is exact for any input.

    ## Example
    ```python
    weights = torch.exp(scores) / torch.exp(scores).sum(dim=-1, keepdim=True)
    ```

    ## Use instead
    ```python
    weights = torch.softmax(scores, dim=-1)
    ```

    ## Fix safety
    The rewrite to `torch.softmax(x, dim)` (`x.softmax(dim)` when the exponential was a tensor method)
    is **safe**: the same value, computed stably. It is offered when both exponentials are written
    in the expression and the sum has a `dim` and `keepdim=True` (without keepdim the division
    broadcasts differently).

    ## References
    - [torch.nn.functional.softmax](https://pytorch.org/docs/stable/generated/torch.nn.functional.softmax.html)
    - [CS231n notes, "Practical issues: Numeric stability"](https://cs231n.github.io/linear-classify/#softmax):
      shift the values so that the highest is zero.
    """

    code = "LL207"
    name = "hand-written-softmax"
    summary = "exp(x) / exp(x).sum() without max subtraction overflows to NaN; use torch.softmax(x, dim)"
    fix_availability = Applicability.SAFE
    tokens = ("exp",)
    probe = "overflow"

    def check(self, ctx):
        for fact in ctx.binops:
            if fact.operator != "/" or not isinstance(fact.node, cst.BinaryOperation):
                continue
            if not (every(fact.left, lambda v: v.form is Form.EXP)
                    and every(fact.right, lambda v: v.form is Form.EXP_SUM)
                    and every(fact.result, lambda v: numerics.kind(v) == numerics.SOFTMAX)):
                continue
            exponent = fact.left[0].form_arg
            yield Report(
                node=fact.node,
                message=f"hand-written softmax `{shorten(ctx.text(fact.node))}` without max subtraction: "
                        f"exp({shorten(ctx.text(exponent))}) overflows to inf above 88.7 in float32 (11.1 in float16) "
                        "and inf / inf is NaN; when every entry is below -104, 0 / 0 is NaN",
                evidence=(f"line {ctx.line(exponent)}: exp of `{shorten(ctx.text(exponent))}`",
                          f"line {ctx.line(fact.node)}: divided by the sum of the exponentials"),
                hint=f"use torch.softmax({ctx.text(exponent)}, dim), which subtracts the row maximum first",
                fix=self._fix(ctx, fact.node),
            )

    def _fix(self, ctx, node):
        parts = numerics.hand_written_softmax(ctx, node)
        if parts is None:
            return None
        x, reduction, method = parts
        dims = numerics.dim_text(ctx, numerics.Reduction(reduction.summand, reduction.dim, reduction.dim_keyword,
                                                         None))
        if method:
            return FixPlan("Use softmax", Applicability.SAFE, ((node, f"{ctx.text(x)}.softmax({dims})"),))
        spelled, edits = ctx.reference("torch.softmax")
        return FixPlan("Use torch.softmax", Applicability.SAFE, ((node, f"{spelled}({ctx.text(x)}, {dims})"),),
                       edits)

    flagged = (
        Flagged(
            """
            import torch

            def attend(q, k, v):
                scores = q @ k.transpose(-2, -1)
                weights = torch.exp(scores) / torch.exp(scores).sum(dim=-1, keepdim=True)
                return weights @ v
            """,
            anchor="torch.exp(scores) / torch.exp(scores).sum(dim=-1, keepdim=True)",
            fixed="""
            import torch

            def attend(q, k, v):
                scores = q @ k.transpose(-2, -1)
                weights = torch.softmax(scores, dim=-1)
                return weights @ v
            """,
        ),
        Flagged(
            """
            import torch

            def normalise(logits, temperature):
                return (logits / temperature).exp() / torch.sum((logits / temperature).exp(), 1, keepdim=True)
            """,
            anchor="(logits / temperature).exp() / torch.sum((logits / temperature).exp(), 1, keepdim=True)",
            fixed="""
            import torch

            def normalise(logits, temperature):
                return (logits / temperature).softmax(1)
            """,
        ),
        Flagged(
            """
            import torch
            from torch import nn

            class Pooling(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.score = nn.Linear(128, 1)

                def forward(self, h):
                    e = self.score(h).exp()
                    alpha = e / e.sum(dim=1, keepdim=True)
                    return (alpha * h).sum(1)
            """,
            anchor="e / e.sum(dim=1, keepdim=True)",
        ),
        Flagged(
            """
            import torch as T

            def probs(x):
                return T.exp(x) / T.exp(x).sum(1, keepdim=True)
            """,
            anchor="T.exp(x) / T.exp(x).sum(1, keepdim=True)",
            fixed="""
            import torch as T

            def probs(x):
                return T.softmax(x, 1)
            """,
        ),
    )
    silent = (
        Silent(
            """
            import torch

            def stable_softmax(x):
                z = x - x.max(dim=-1, keepdim=True).values
                return torch.exp(z) / torch.exp(z).sum(dim=-1, keepdim=True)
            """,
            why="The max-shifted hand-written softmax is stable.",
        ),
        Silent(
            """
            import torch

            def stable_softmax(x):
                m, _ = x.max(1, keepdim=True)
                e = torch.exp(x - m)
                return e / e.sum(1, keepdim=True)
            """,
            why="The maximum subtracted through a variable is still the stable form.",
        ),
        Silent(
            """
            import torch

            def normalise(w):
                return w / w.sum(dim=-1, keepdim=True)
            """,
            why="Normalising non-negative weights involves no exponential.",
        ),
        Silent(
            """
            import torch
            import torch.nn.functional as F

            def renormalise(logits, keep):
                log_p = F.log_softmax(logits, -1)
                return torch.exp(log_p) * keep / (torch.exp(log_p) * keep).sum(-1, keepdim=True)
            """,
            why="exp of log-probabilities is at most 1: it cannot overflow.",
        ),
    )
