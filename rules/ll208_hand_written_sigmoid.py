"""LL208: sigmoid written as 1 / (1 + exp(-x)), whose gradient is NaN for large |x|."""

import libcst as cst

from losslint import numerics
from losslint.context import shorten
from losslint.domains import Form, every
from losslint.findings import Applicability
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class HandWrittenSigmoid(Rule):
    """
    ## What it does
    Finds sigmoid written by hand on tensors: `1 / (1 + torch.exp(-x))`, `1.0 / (torch.exp(-x) + 1)`,
    `1 / (1 + (-x).exp())`, and `torch.exp(x) / (1 + torch.exp(x))`, also when the exponential was
    computed on an earlier line. Python-float schedules (`1 / (1 + math.exp(-k * step))`) are not tensors
    and are not reported.

    ## Why is this bad?
    For x < −88.7 in float32 (−11.1 in float16) `exp(-x)` overflows to `inf`. The forward value
    rounds to 0, which looks harmless, but autograd differentiates the formula:
    exp(−x) / (1 + exp(−x))² = inf / inf = NaN, and one such element makes every gradient NaN.
    `exp(x) / (1 + exp(x))` is NaN already in the forward pass for x > 88.7. `torch.sigmoid` is
    one fused, stable kernel with gradient σ(x)(1 − σ(x)), which is finite everywhere.

    ## Example
    ```python
    gate = 1 / (1 + torch.exp(-self.gate_proj(h)))
    ```

    ## Use instead
    ```python
    gate = torch.sigmoid(self.gate_proj(h))
    ```

    ## Fix safety
    `1 / (1 + exp(-x))` → `torch.sigmoid(x)`, `1 / (1 + exp(x))` → `torch.sigmoid(-x)` and
    `exp(x) / (1 + exp(x))` → `torch.sigmoid(x)` are **safe**: the same value, computed stably.
    Offered when the exponential is written inside the expression.

    ## References
    - [torch.sigmoid](https://pytorch.org/docs/stable/generated/torch.sigmoid.html)
    """

    code = "LL208"
    name = "hand-written-sigmoid"
    summary = "1 / (1 + exp(-x)) has NaN gradients for large |x|; use torch.sigmoid(x)"
    fix_availability = Applicability.SAFE
    tokens = ("exp",)
    probe = "overflow"

    def check(self, ctx):
        for fact in ctx.binops:
            if fact.operator != "/" or not isinstance(fact.node, cst.BinaryOperation):
                continue
            if not (every(fact.right, lambda v: v.form is Form.ONE_PLUS_EXP)
                    and every(fact.result, lambda v: numerics.kind(v) == numerics.SIGMOID
                              and v.producer_node is fact.node)):
                continue
            exponent = fact.right[0].form_arg
            yield Report(
                node=fact.node,
                message=f"hand-written sigmoid `{shorten(ctx.text(fact.node))}`: exp({shorten(ctx.text(exponent))}) "
                        "overflows to inf beyond 88.7 in float32 (11.1 in float16); the value rounds to 0 or 1 "
                        "but the gradient is inf / inf = NaN",
                evidence=(f"line {ctx.line(exponent)}: exp of `{shorten(ctx.text(exponent))}`",
                          f"line {ctx.line(fact.node)}: sigmoid formula"),
                hint="use torch.sigmoid(x)",
                fix=self._fix(ctx, fact.node),
            )

    def _fix(self, ctx, node):
        x = numerics.sigmoid_input(ctx, node)
        if x is None:
            return None
        spelled, edits = ctx.reference("torch.sigmoid")
        return FixPlan("Use torch.sigmoid", Applicability.SAFE, ((node, f"{spelled}({x})"),), edits)

    flagged = (
        Flagged(
            """
            import torch
            from torch import nn

            class GatedUnit(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.gate_proj = nn.Linear(256, 256)

                def forward(self, h):
                    gate = 1 / (1 + torch.exp(-self.gate_proj(h)))
                    return gate * h
            """,
            anchor="1 / (1 + torch.exp(-self.gate_proj(h)))",
            fixed="""
            import torch
            from torch import nn

            class GatedUnit(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.gate_proj = nn.Linear(256, 256)

                def forward(self, h):
                    gate = torch.sigmoid(self.gate_proj(h))
                    return gate * h
            """,
        ),
        Flagged(
            """
            from torch import exp

            def survival(hazard_logits):
                return 1.0 / (exp(hazard_logits) + 1.0)
            """,
            anchor="1.0 / (exp(hazard_logits) + 1.0)",
            fixed="""
            from torch import exp
            import torch

            def survival(hazard_logits):
                return torch.sigmoid(-hazard_logits)
            """,
        ),
        Flagged(
            """
            import torch

            def odds_to_prob(log_odds):
                odds = torch.exp(log_odds)
                return odds / (1 + odds)
            """,
            anchor="odds / (1 + odds)",
        ),
        Flagged(
            """
            import torch

            def prob(z):
                return z.exp() / (1 + z.exp())
            """,
            anchor="z.exp() / (1 + z.exp())",
            fixed="""
            import torch

            def prob(z):
                return torch.sigmoid(z)
            """,
        ),
    )
    silent = (
        Silent(
            """
            import math

            def kl_weight(step, k=0.0025, x0=2500):
                return 1 / (1 + math.exp(-k * (step - x0)))
            """,
            why="A KL-annealing schedule on python floats, not a tensor in the graph.",
        ),
        Silent(
            """
            import torch

            def gate(x):
                return torch.sigmoid(x)
            """,
            why="torch.sigmoid is the stable form.",
        ),
        Silent(
            """
            import torch

            def damped(x):
                return 1 / (1 + torch.exp(-x.abs()))
            """,
            why="exp(-|x|) is at most 1: no overflow (and not a sigmoid of x).",
        ),
    )
