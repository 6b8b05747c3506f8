"""LL206: log-sum-exp written as log(sum(exp(x))), which overflows."""

from losslint import numerics
from losslint.context import shorten
from losslint.domains import Form, every
from losslint.findings import Applicability
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class HandWrittenLogSumExp(Rule):
    """
    ## What it does
    Finds log-sum-exp written by hand: `torch.log(torch.sum(torch.exp(x), dim=1))`,
    `x.exp().sum(-1).log()`, with or without `keepdim` or an added epsilon, also when the
    exponentials or the sum were computed on earlier lines. The max-shifted form
    `m + log(sum(exp(x - m)))` (with `m` the row maximum, inline or in a variable) is stable and not
    reported.

    ## Why is this bad?
    `exp(x)` overflows to `inf` as soon as one entry exceeds 88.7 in float32 (11.1 in float16), and
    underflows to 0 when every entry is below −104 (−17.3 in float16): the result is `inf` or `-inf`
    and the gradient NaN. Scores divided by a small temperature, energies and unnormalised
    log-likelihoods reach those values easily. `torch.logsumexp` subtracts the maximum first and is
    finite and exact for any input.

    ## Example
    ```python
    log_partition = torch.log(torch.exp(scores / tau).sum(dim=1))
    ```

    ## Use instead
    ```python
    log_partition = torch.logsumexp(scores / tau, dim=1)
    ```

    ## Fix safety
    `log(sum(exp(x), dim))` → `torch.logsumexp(x, dim)` (keepdim preserved; the tensor method form
    becomes `x.logsumexp(dim)`) is **safe**: the same value, computed stably. It is offered only when
    the sum has an explicit `dim` and everything is written in one expression. With an added epsilon
    the rewrite drops it: **unsafe**.

    ## References
    - [torch.logsumexp](https://pytorch.org/docs/stable/generated/torch.logsumexp.html):
      "The computation is numerically stabilized."
    """

    code = "LL206"
    name = "hand-written-logsumexp"
    summary = "log(sum(exp(x))) overflows to inf (NaN gradients); use torch.logsumexp(x, dim)"
    fix_availability = Applicability.SAFE
    tokens = ("exp",)
    probe = "overflow"

    def check(self, ctx):
        for fact in ctx.calls:
            values = fact.result
            if not every(values, lambda v: v.form is Form.LOG_SUM_EXP and v.producer_node is fact.node):
                continue
            exponent = values[0].form_arg
            what = shorten(ctx.text(exponent)) if exponent is not None else "x"
            yield Report(
                node=fact.node,
                message=f"hand-written log-sum-exp `{shorten(ctx.text(fact.node))}`: exp({what}) overflows to inf "
                        "when any entry exceeds 88.7 in float32 (11.1 in float16) and underflows to 0 when all "
                        "are below -104, making the result inf or -inf and its gradient NaN",
                evidence=((f"line {ctx.line(exponent)}: exp of `{what}`",) if exponent is not None else ()) + (
                    f"line {ctx.line(fact.node)}: log of the sum taken here",),
                hint=f"use torch.logsumexp({what}, dim)",
                fix=self._fix(ctx, fact.node),
            )

    def _fix(self, ctx, node):
        argument = numerics.log_argument(ctx, node)
        if argument is None:
            return None
        inner, guarded = numerics.unguarded(ctx, argument)
        reduction = numerics.sum_call(ctx, inner)
        if reduction is None or reduction.dim is None:
            return None
        x = numerics.exp_input(ctx, reduction.summand)
        if x is None:
            return None
        dims = numerics.dim_text(ctx, reduction)
        if ctx.call(reduction.summand).method == "exp":
            text, edits = f"{ctx.text(x)}.logsumexp({dims})", ()
        else:
            spelled, edits = ctx.reference("torch.logsumexp")
            text = f"{spelled}({ctx.text(x)}, {dims})"
        if guarded:
            return FixPlan("Use torch.logsumexp (drops the epsilon / clamp)", Applicability.UNSAFE,
                           ((node, text),), edits)
        return FixPlan("Use torch.logsumexp", Applicability.SAFE, ((node, text),), edits)

    flagged = (
        Flagged(
            """
            import torch

            def log_partition(scores, tau=0.07):
                return torch.log(torch.sum(torch.exp(scores / tau), dim=1))
            """,
            anchor="torch.log(torch.sum(torch.exp(scores / tau), dim=1))",
            fixed="""
            import torch

            def log_partition(scores, tau=0.07):
                return torch.logsumexp(scores / tau, dim=1)
            """,
        ),
        Flagged(
            """
            def free_energy(energies):
                return -(-energies).exp().sum(-1, keepdim=True).log()
            """,
            anchor="(-energies).exp().sum(-1, keepdim=True).log()",
            fixed="""
            def free_energy(energies):
                return -(-energies).logsumexp(-1, keepdim=True)
            """,
        ),
        Flagged(
            """
            import torch

            def log_mixture(log_weights, log_likelihoods):
                joint = torch.exp(log_weights + log_likelihoods)
                total = joint.sum(dim=-1)
                return torch.log(total + 1e-12)
            """,
            anchor="torch.log(total + 1e-12)",
        ),
        Flagged(
            """
            import torch
            from torch import nn

            class EnergyModel(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.energy = nn.Linear(16, 10)

                def log_z(self, x):
                    return torch.log(torch.exp(-self.energy(x)).sum(1) + 1e-8)
            """,
            anchor="torch.log(torch.exp(-self.energy(x)).sum(1) + 1e-8)",
            fixed="""
            import torch
            from torch import nn

            class EnergyModel(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.energy = nn.Linear(16, 10)

                def log_z(self, x):
                    return torch.logsumexp(-self.energy(x), 1)
            """,
        ),
    )
    silent = (
        Silent(
            """
            import torch

            def stable_lse(x):
                m, _ = torch.max(x, dim=1, keepdim=True)
                return m + torch.log(torch.sum(torch.exp(x - m), dim=1, keepdim=True))
            """,
            why="The max-shifted log-sum-exp: exp(x - max) is at most 1.",
        ),
        Silent(
            """
            import torch

            def log_partition(scores):
                return torch.logsumexp(scores, dim=-1)
            """,
            why="torch.logsumexp is the stable form.",
        ),
        Silent(
            """
            import torch

            def vae_kl(mu, log_var):
                return -0.5 * torch.sum(1 + log_var - mu ** 2 - torch.exp(log_var), dim=1).mean()
            """,
            why="The VAE KL term sums exp(log_var) but takes no log of it.",
        ),
    )
