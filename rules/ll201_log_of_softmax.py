"""LL201: the log of softmax probabilities, which underflows to -inf."""

from losslint import numerics
from losslint.findings import Applicability
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class LogOfSoftmax(Rule):
    """
    ## What it does
    Finds `torch.log` applied to softmax probabilities: `torch.log(F.softmax(x, dim=1))`,
    `F.softmax(x, 1).log()`, `x.softmax(-1).log()`, the log of an `nn.Softmax` output, of a model
    whose `forward` ends in a softmax, or of a hand-written `exp(x) / exp(x).sum(d)`, with or without
    an added epsilon or a clamp. This includes the entropy `-(p * torch.log(p)).sum(-1)` of a softmax
    output. When the log picks the targets' entries (a hand-written cross-entropy), LL202 reports it
    instead.

    ## Why is this bad?
    softmax rounds a probability to exactly 0 once its logit is more than about 104 below the row's
    largest (float32; 17.3 in float16, 93 in bfloat16), and well before that it loses precision in
    subnormals (error above 1e-2 from a gap of 99 in float32, 13 in float16). The log is then `-inf`,
    the gradient is NaN, and one bad row poisons the whole batch; an entropy term becomes
    0 · (-inf) = NaN. An epsilon or a clamp keeps the value finite but replaces log p by log(eps)
    wherever p < eps, and the gradient there vanishes (a clamp's is exactly 0). `log_softmax`
    computes `x - max - log(sum(exp(x - max)))` and stays exact and finite for any logits.

    ## Example
    ```python
    log_probs = torch.log(F.softmax(logits, dim=-1) + 1e-8)
    entropy = -(probs * torch.log(probs)).sum(-1)
    ```

    ## Use instead
    ```python
    log_probs = F.log_softmax(logits, dim=-1)
    entropy = -(probs * F.log_softmax(logits, dim=-1)).sum(-1)
    ```

    ## Fix safety
    Replacing `log(softmax(x))` by `log_softmax(x)` (same arguments, same namespace: `F.`, `torch.`
    or the tensor method) is **safe**: the same mathematical value, computed stably. When the original
    adds an epsilon or clamps, dropping it changes the value where p < eps, so that fix is **unsafe**.
    No fix is offered when the softmax sits in another statement (the probabilities may be used
    elsewhere) or is an `nn.Softmax` module or a helper.

    ## References
    - [torch.nn.functional.log_softmax](https://pytorch.org/docs/stable/generated/torch.nn.functional.log_softmax.html):
      "While mathematically equivalent to log(softmax(x)), doing these two operations separately is
      slower and numerically unstable."
    """

    code = "LL201"
    name = "log-of-softmax"
    summary = "log(softmax(x)) underflows to -inf (NaN gradients); use log_softmax"
    fix_availability = Applicability.SAFE
    tokens = ("log",)
    probe = "overflow"
    # The hand-written softmax inside the log is part of the same hand-written log_softmax.
    supersedes = ("LL207",)

    def check(self, ctx):
        for site in numerics.log_sites(ctx, numerics.SOFTMAX):
            if site.complement:
                continue  # log(1 - softmax) is not a log_softmax
            guard = " with an epsilon or a clamp" if site.guarded else ""
            consequence = (
                "the guard keeps it finite, but log p is replaced by log(eps) and the gradient vanishes "
                "wherever p underflows" if site.guarded else
                "a probability underflows to 0 from a logit gap of ~104 in float32 (17 in float16), "
                "making the log -inf and the gradient NaN")
            yield Report(
                node=site.node,
                message=f"log of softmax probabilities {ctx.describe(site.argument, site.probabilities)}"
                        f"{guard}: {consequence}",
                evidence=(*ctx.chain(site.probabilities), f"line {ctx.line(site.node)}: log taken here"),
                hint=f"use F.log_softmax({numerics.logits_text(ctx, site.probabilities, site.node) or 'logits'}, dim) "
                     "instead of the log of the softmax",
                fix=self._fix(ctx, site),
            )

    def _fix(self, ctx, site):
        rewrite = numerics.log_softmax_rewrite(ctx, site)
        if rewrite is None:
            return None
        text, edits, guarded = rewrite
        if guarded:
            return FixPlan("Use log_softmax (drops the epsilon / clamp)", Applicability.UNSAFE,
                           ((site.node, text),), edits)
        return FixPlan("Use log_softmax", Applicability.SAFE, ((site.node, text),), edits)

    flagged = (
        Flagged(
            """
            import torch
            import torch.nn.functional as F

            def log_probs(logits):
                return torch.log(F.softmax(logits, dim=1))
            """,
            anchor="torch.log(F.softmax(logits, dim=1))",
            fixed="""
            import torch
            import torch.nn.functional as F

            def log_probs(logits):
                return F.log_softmax(logits, dim=1)
            """,
        ),
        Flagged(
            """
            def entropy_bonus(logits):
                return -(logits.softmax(-1) * logits.softmax(-1).log()).sum(-1).mean()
            """,
            anchor="logits.softmax(-1).log()",
            fixed="""
            def entropy_bonus(logits):
                return -(logits.softmax(-1) * logits.log_softmax(-1)).sum(-1).mean()
            """,
        ),
        Flagged(
            """
            import torch

            def log_probs(logits, eps=1e-8):
                return torch.log(torch.clamp(torch.softmax(logits, -1), min=1e-7))
            """,
            anchor="torch.log(torch.clamp(torch.softmax(logits, -1), min=1e-7))",
            fixed="""
            import torch

            def log_probs(logits, eps=1e-8):
                return torch.log_softmax(logits, -1)
            """,
        ),
        Flagged(
            """
            from torch.nn.functional import softmax as sm

            def kl_to_prior(scores, prior):
                log_q = (sm(scores, dim=-1) + 1e-10).log()
                return (log_q.exp() * (log_q - prior)).sum(-1)
            """,
            anchor="(sm(scores, dim=-1) + 1e-10).log()",
            fixed="""
            from torch.nn.functional import softmax as sm
            import torch.nn.functional as F

            def kl_to_prior(scores, prior):
                log_q = F.log_softmax(scores, dim=-1)
                return (log_q.exp() * (log_q - prior)).sum(-1)
            """,
        ),
        Flagged(
            """
            import torch
            from torch import nn

            class Policy(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.head = nn.Linear(64, 6)
                    self.softmax = nn.Softmax(dim=-1)

                def forward(self, obs):
                    probs = self.softmax(self.head(obs))
                    return probs, torch.log(probs)
            """,
            anchor="torch.log(probs)",
        ),
        Flagged(
            """
            import torch

            def log_attention(scores):
                e = torch.exp(scores)
                return torch.log(e / e.sum(dim=-1, keepdim=True))
            """,
            anchor="torch.log(e / e.sum(dim=-1, keepdim=True))",
        ),
        Flagged(
            """
            import torch

            def log_attention(q, k):
                s = q @ k.transpose(-2, -1)
                return torch.log(torch.exp(s) / torch.exp(s).sum(-1, keepdim=True))
            """,
            anchor="torch.log(torch.exp(s) / torch.exp(s).sum(-1, keepdim=True))",
            fixed="""
            import torch

            def log_attention(q, k):
                s = q @ k.transpose(-2, -1)
                return torch.log_softmax(s, -1)
            """,
        ),
    )
    silent = (
        Silent(
            """
            import torch.nn.functional as F

            def step(logits, y):
                return F.nll_loss(F.log_softmax(logits, dim=1), y)
            """,
            why="log_softmax followed by nll_loss is the stable spelling of cross-entropy.",
        ),
        Silent(
            """
            import torch

            def gaussian_nll(mu, var, y):
                return 0.5 * (torch.log(var) + (y - mu) ** 2 / var).mean()
            """,
            why="The log of a variance is not the log of probabilities.",
        ),
        Silent(
            """
            import torch
            import torch.nn.functional as F

            def sample(logits):
                probs = F.softmax(logits, dim=-1)
                return torch.multinomial(probs, 1), probs.max(-1).values
            """,
            why="Softmax used for sampling and confidence, never logged.",
        ),
        Silent(
            """
            import torch

            def smooth(x):
                return torch.log(1 + x ** 2) + torch.log1p(x.abs())
            """,
            why="Logs of quantities that are not probabilities.",
        ),
        Silent(
            """
            import torch
            import torch.nn.functional as F

            def distill(student, teacher, T=2.0):
                return F.kl_div(F.log_softmax(student / T, -1), F.softmax(teacher / T, -1), reduction="batchmean")
            """,
            why="kl_div on log_softmax and softmax targets: no log is taken of a softmax.",
        ),
        Silent(
            """
            import torch
            import torch.nn.functional as F

            def attention(q, k, v, mask):
                scores = (q @ k.transpose(-2, -1)).masked_fill(~mask, float("-inf"))
                return torch.softmax(scores, dim=-1) @ v

            def loss(logits, y):
                return F.cross_entropy(logits, y, label_smoothing=0.1)
            """,
            why="Softmax inside attention, and a label-smoothed cross_entropy on the logits.",
        ),
    )
