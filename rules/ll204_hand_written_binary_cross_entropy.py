"""LL204: binary cross-entropy written by hand on sigmoid probabilities."""

import libcst as cst

from losslint import numerics
from losslint.findings import Applicability
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class HandWrittenBinaryCrossEntropy(Rule):
    """
    ## What it does
    Finds binary cross-entropy written by hand on sigmoid output:
    `-(y * torch.log(p) + (1 - y) * torch.log(1 - p))` where `p` is `torch.sigmoid(x)`, `x.sigmoid()`,
    `nn.Sigmoid`, a hand-written `1 / (1 + exp(-x))` or a model ending in a sigmoid; with epsilons or
    clamps, with extra weights (`pos_weight * y * log(p)`, focal-loss factors), and when the log terms
    were computed on earlier lines. The logs of sigmoid inside it are part of this one finding
    (LL203 does not report them again).

    ## Why is this bad?
    `1 - sigmoid(x)` rounds to exactly 0 from a logit of 16.6 in float32 (8.3 in float16, 6.25 in
    bfloat16), and `sigmoid(x)` to 0 below −88.7: the loss of a confidently wrong prediction becomes
    `inf` and the gradient NaN. With `+ eps` or a clamp the loss saturates at −log(eps) (18.4 for
    1e-8) and its gradient vanishes exactly on those examples. `F.binary_cross_entropy_with_logits`
    computes (1 − y)·x − logsigmoid(x): finite, with the gradient sigmoid(x) − y, for any logit
    (at x = 100, y = 0: loss 100, gradient 1).

    ## Example
    ```python
    p = torch.sigmoid(logits)
    loss = -(y * torch.log(p + 1e-7) + (1 - y) * torch.log(1 - p + 1e-7)).mean()
    ```

    ## Use instead
    ```python
    loss = F.binary_cross_entropy_with_logits(logits, y)  # weight= / pos_weight= for weighting
    ```

    ## Fix safety
    `-(y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x))).mean()` (or `.sum()`, or written as
    `-y * … - (1 - y) * …`) with both sigmoids written inline becomes
    `F.binary_cross_entropy_with_logits(x, y)`: **safe**, the same value for float targets of the
    logits' shape. Every other form (an epsilon, extra weights, the sigmoid on another line) gets no
    fix: the rewrite would change the value or needs `weight` / `pos_weight` chosen by a person.

    ## References
    - [torch.nn.BCEWithLogitsLoss](https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html):
      "more numerically stable than using a plain Sigmoid followed by a BCELoss … log-sum-exp trick".
    - [torch.nn.functional.logsigmoid](https://pytorch.org/docs/stable/generated/torch.nn.functional.logsigmoid.html)
    """

    code = "LL204"
    name = "hand-written-binary-cross-entropy"
    summary = "Binary cross-entropy written by hand on sigmoid output: inf loss and NaN gradients; " \
              "use F.binary_cross_entropy_with_logits"
    fix_availability = Applicability.SAFE
    tokens = ("log",)
    probe = "overflow"
    supersedes = ("LL203", "LL208")

    def check(self, ctx):
        for fact in ctx.binops:
            if fact.operator not in ("+", "-") or not isinstance(fact.node, cst.BinaryOperation):
                continue
            left = numerics.weighted_log_sites(ctx, fact.left_node)
            right = numerics.weighted_log_sites(ctx, fact.right_node)
            if not left or not right or not _binary_likelihood(ctx, left, right):
                continue
            sites = left + right
            plain = next(site for site in sites if not site.complement)
            guarded = any(site.guarded for site in sites)
            consequence = (
                "the epsilon / clamp caps the loss at -log(eps) and zeroes the gradient of confidently wrong "
                "predictions" if guarded else
                "log(1 - p) is -inf from a logit of 16.6 in float32 (8.3 in float16, 6.25 in bfloat16) and "
                "log(p) below -88.7, so the loss becomes inf and the gradient NaN")
            logits = numerics.logits_text(ctx, plain.probabilities, plain.node)
            probabilities, _ = numerics.unguarded(ctx, plain.argument)
            yield Report(
                node=fact.node,
                message=f"hand-written binary cross-entropy on sigmoid output "
                        f"{ctx.describe(probabilities, plain.probabilities)}: {consequence}",
                evidence=(*ctx.chain(plain.probabilities),
                          *(f"line {ctx.line(site.node)}: `{ctx.text(site.node)}`" for site in sites)),
                hint=f"use F.binary_cross_entropy_with_logits({logits or 'logits'}, targets) on the logits "
                     "(weight= / pos_weight= for the weighting)",
                fix=_fix(ctx, fact),
                covers=tuple(site.node for site in sites),
            )

    flagged = (
        Flagged(
            """
            import torch

            def bce(logits, y):
                p = torch.sigmoid(logits)
                return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
            """,
            anchor="y * torch.log(p) + (1 - y) * torch.log(1 - p)",
        ),
        Flagged(
            """
            import torch
            import torch.nn.functional as F

            def bce(x, t):
                return (-t * torch.log(F.sigmoid(x)) - (1 - t) * torch.log(1 - F.sigmoid(x))).sum()
            """,
            anchor="-t * torch.log(F.sigmoid(x)) - (1 - t) * torch.log(1 - F.sigmoid(x))",
            fixed="""
            import torch
            import torch.nn.functional as F

            def bce(x, t):
                return F.binary_cross_entropy_with_logits(x, t, reduction="sum")
            """,
        ),
        Flagged(
            """
            import torch
            from torch import nn

            class LinkPredictor(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.score = nn.Bilinear(64, 64, 1)
                    self.eps = 1e-7

                def loss(self, h_src, h_dst, labels):
                    probs = self.score(h_src, h_dst).squeeze(-1).sigmoid()
                    log_pos = torch.log(probs + self.eps)
                    log_neg = torch.log((1 - probs).clamp(min=self.eps))
                    return -(labels * log_pos + (1 - labels) * log_neg).mean()
            """,
            anchor="labels * log_pos + (1 - labels) * log_neg",
        ),
        Flagged(
            """
            import torch

            def focal_loss(logits, targets, alpha=0.25, gamma=2.0):
                p = torch.sigmoid(logits)
                pos = alpha * (1 - p) ** gamma * targets * torch.log(p)
                neg = (1 - alpha) * p ** gamma * (1 - targets) * torch.log(1 - p)
                return -(pos + neg).sum() / targets.sum().clamp(min=1)
            """,
            anchor="pos + neg",
        ),
        Flagged(
            """
            import torch

            def bce(logits, y):
                p = 1 / (1 + torch.exp(-logits))
                pos_term = (y * torch.log(p)).mean()
                neg_term = ((1 - y) * torch.log(1 - p)).mean()
                return -(pos_term + neg_term)
            """,
            anchor="pos_term + neg_term",
        ),
    )
    silent = (
        Silent(
            """
            import torch.nn.functional as F

            def bce(logits, y):
                return -(y * F.logsigmoid(logits) + (1 - y) * F.logsigmoid(-logits)).mean()
            """,
            why="The stable hand-written form on logsigmoid.",
        ),
        Silent(
            """
            import torch

            def bce(p, y):
                return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
            """,
            why="`p` is a parameter: nothing shows it comes from a sigmoid (it may be a calibrated probability).",
        ),
        Silent(
            """
            import torch

            def two_heads(a, b, y):
                p = torch.sigmoid(a)
                q = torch.sigmoid(b)
                return -(y * torch.log(p) + (1 - y) * torch.log(1 - q)).mean()
            """,
            why="The two log terms use different sigmoids: not one binary cross-entropy (LL203 reports each log).",
        ),
        Silent(
            """
            import torch
            import torch.nn.functional as F

            def step(logits, y):
                loss = F.binary_cross_entropy_with_logits(logits, y)
                probs = torch.sigmoid(logits)
                return loss, ((probs > 0.5) == y.bool()).float().mean()
            """,
            why="The sigmoid is only used for accuracy; the loss is computed on the logits.",
        ),
    )


def _binary_likelihood(ctx, left, right) -> bool:
    """One side logs the sigmoid, the other one minus the same sigmoid."""
    if any(site.kind != numerics.SIGMOID for site in left + right):
        return False
    left_complement = {site.complement for site in left}
    right_complement = {site.complement for site in right}
    if len(left_complement) != 1 or left_complement == right_complement or len(right_complement) != 1:
        return False
    return all(numerics.same_probabilities(ctx, a.probabilities, b.probabilities) for a in left for b in right)


def _term(ctx, node, sign):
    """(sign, weight, log site) of `w * log(...)`, `-w * log(...)` or `-(w * log(...))`."""
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        node, sign = node.expression, -sign
    if not isinstance(node, cst.BinaryOperation) or not isinstance(node.operator, cst.Multiply):
        return None
    for log_node, weight in ((node.right, node.left), (node.left, node.right)):
        site = numerics.log_site(ctx, log_node) if isinstance(log_node, cst.Call) else None
        if site is None:
            continue
        if isinstance(weight, cst.UnaryOperation) and isinstance(weight.operator, cst.Minus):
            weight, sign = weight.expression, -sign
        return sign, weight, site
    return None


def _fix(ctx, fact):
    """`-(y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x))).mean()` → `F.binary_cross_entropy_with_logits(x, y)`."""
    first = _term(ctx, fact.left_node, 1)
    second = _term(ctx, fact.right_node, 1 if fact.operator == "+" else -1)
    if first is None or second is None or first[0] != second[0]:
        return None
    plain, complement = (first, second) if not first[2].complement else (second, first)
    if plain[2].complement or not complement[2].complement or plain[2].guarded or complement[2].guarded:
        return None
    targets, not_targets = plain[1], complement[1]
    if not (isinstance(not_targets, cst.BinaryOperation) and isinstance(not_targets.operator, cst.Subtract)
            and isinstance(not_targets.left, cst.Integer) and not_targets.left.value == "1"
            and ctx.text(not_targets.right) == ctx.text(targets)):
        return None
    one_minus = complement[2].argument
    if not (isinstance(one_minus, cst.BinaryOperation) and isinstance(one_minus.operator, cst.Subtract)):
        return None
    logits = numerics.sigmoid_input(ctx, plain[2].argument)
    if logits is None or logits != numerics.sigmoid_input(ctx, one_minus.right):
        return None
    loss = numerics.reduced_loss(ctx, fact.node, negated=first[0] < 0)
    if loss is None:
        return None
    outer, reduction = loss
    spelled, edits = numerics.functional(ctx, "binary_cross_entropy_with_logits")
    return FixPlan("Use F.binary_cross_entropy_with_logits on the logits", Applicability.SAFE,
                   ((outer, f"{spelled}({logits}, {ctx.text(targets)}{numerics.reduction_option(reduction)})"),),
                   edits)
