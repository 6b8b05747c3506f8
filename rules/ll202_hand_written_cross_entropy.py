"""LL202: cross-entropy written by hand on the log of softmax probabilities."""

import libcst as cst

from losslint import numerics
from losslint.context import shorten
from losslint.domains import Domain, Form, every
from losslint.findings import Applicability
from losslint.objects import literal
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent

# Weights that make `w * log(p)` something other than a cross-entropy term.
_NOT_TARGETS = (Domain.NUMBER, Domain.MASK, Domain.LOGITS, Domain.LOG_PROBABILITIES)


class HandWrittenCrossEntropy(Rule):
    """
    ## What it does
    Finds cross-entropy written by hand on softmax probabilities: the log of softmax picked at the
    targets (`-torch.log(probs[torch.arange(B), y])`, `torch.log(probs)[range(B), y]`,
    `log_p.gather(1, y[:, None])`) or weighted by (one-hot or soft) targets
    (`-(F.one_hot(y, K) * torch.log(probs)).sum(-1)`, `-torch.sum(targets * torch.log(probs), dim=1)`),
    also when the log was taken on an earlier line. The log of softmax inside it is part of this one
    finding (LL201 does not report it again). The entropy of a distribution, `p * log(p)`, is LL201's.

    ## Why is this bad?
    Once the target's logit is about 104 below the largest (float32; 17.3 in float16) its softmax
    probability is exactly 0: the loss is `inf` and the gradient NaN, where `F.cross_entropy` returns
    the finite loss (104) with the gradient it should have (softmax − one-hot). An epsilon
    (`log(p + 1e-8)`) caps the loss at −log(eps) = 18.4 and makes its gradient vanish exactly for the
    confidently wrong examples the model most needs to learn from. `F.cross_entropy` fuses
    `log_softmax` and `nll_loss`, is exact for any logits, and is faster.

    ## Example
    ```python
    probs = torch.softmax(logits, dim=-1)
    loss = -torch.log(probs[torch.arange(B), targets]).mean()
    ```

    ## Use instead
    ```python
    loss = F.cross_entropy(logits, targets)
    ```

    ## Fix safety
    Rewriting `-log(softmax(x, 1)[range(B), y]).mean()` (or `.sum()`) with the softmax written inline
    into `F.cross_entropy(x, y)` (`reduction="sum"`) is **safe**: the same value for 2-D logits and
    in-range class indices. Other hand-written forms get no whole-loss rewrite (their reduction,
    weighting or target format may differ); when the softmax is written inside the log, the fix
    replaces `log(softmax(x))` by `log_softmax(x)` — safe, or unsafe when an epsilon or clamp is dropped.

    ## References
    - [F.cross_entropy](https://pytorch.org/docs/stable/generated/torch.nn.functional.cross_entropy.html):
      class-index or class-probability targets, `weight`, `ignore_index`, `label_smoothing`.
    - [torch.nn.functional.log_softmax](https://pytorch.org/docs/stable/generated/torch.nn.functional.log_softmax.html):
      "doing these two operations separately is slower and numerically unstable".
    """

    code = "LL202"
    name = "hand-written-cross-entropy"
    summary = "Cross-entropy written by hand on log(softmax): inf loss and NaN gradients; use F.cross_entropy"
    fix_availability = Applicability.SAFE
    tokens = ("log",)
    probe = "overflow"
    supersedes = ("LL201", "LL207")

    def check(self, ctx):
        yield from self._picked(ctx)
        yield from self._weighted(ctx)

    def _picked(self, ctx):
        """The log-probability of each row's target: a picked log of softmax, where it was picked or logged."""
        for node, values in list(ctx.analysis.values.items()):
            if not every(values, lambda v: v.domain is Domain.LOG_PROBABILITIES and v.form is Form.PICKED):
                continue
            first = values[0]
            if not (first.form_arg is node or first.producer_node is node):
                continue
            sites = [numerics.log_site(ctx, v.producer_node) for v in values]
            if any(site is None or site.kind != numerics.SOFTMAX or site.complement for site in sites):
                continue
            site = sites[0]
            yield Report(
                node=node,
                message=f"hand-written cross-entropy: `{shorten(ctx.text(node))}` is the log of softmax "
                        f"probabilities ({ctx.origin(site.probabilities)}) at the targets{_guard_note(site)}",
                evidence=(*ctx.chain(site.probabilities), f"line {ctx.line(site.node)}: log taken here",
                          f"line {ctx.line(node)}: target entries picked here"),
                hint=self._hint(ctx, site, _targets(first.form_arg)),
                fix=self._fix(ctx, node, site, first.form_arg),
                covers=tuple(s.node for s in sites),
            )

    def _weighted(self, ctx):
        """`targets * log(softmax)`: a cross-entropy term with one-hot or soft targets."""
        for fact in ctx.binops:
            if fact.operator != "*" or not isinstance(fact.node, cst.BinaryOperation):
                continue
            for logs, weight_node in ((fact.left, fact.right_node), (fact.right, fact.left_node)):
                if not every(logs, lambda v: v.domain is Domain.LOG_PROBABILITIES and v.form is None
                             and v.producer_node is not None):
                    continue
                sites = [numerics.log_site(ctx, v.producer_node) for v in logs]
                if any(site is None or site.kind != numerics.SOFTMAX for site in sites):
                    continue
                site = sites[0]
                if not _are_targets(ctx, weight_node, site):
                    continue
                yield Report(
                    node=fact.node,
                    message=f"hand-written cross-entropy: `{shorten(ctx.text(weight_node))}` weights the log of "
                            f"softmax probabilities {ctx.describe(site.argument, site.probabilities)}"
                            f"{_guard_note(site)}",
                    evidence=(*ctx.chain(site.probabilities), f"line {ctx.line(site.node)}: log taken here",
                              f"line {ctx.line(fact.node)}: weighted by `{shorten(ctx.text(weight_node))}`"),
                    hint=self._hint(ctx, site, None, soft=True),
                    fix=self._log_softmax_fix(ctx, site),
                    covers=tuple(s.node for s in sites),
                )
                break

    def _hint(self, ctx, site, targets, soft=False):
        logits = numerics.logits_text(ctx, site.probabilities, site.node) or "logits"
        if soft:
            return (f"use F.cross_entropy({logits}, target_probs) (it accepts class-probability targets), or "
                    f"multiply the targets by F.log_softmax({logits}, dim) instead of log(softmax)")
        target = ctx.text(targets) if targets is not None else "targets"
        return (f"use F.cross_entropy({logits}, {target}) on the logits (it fuses log_softmax and nll_loss; "
                f"reduction=\"none\" keeps per-sample terms), or pick from F.log_softmax({logits}, dim)")

    def _fix(self, ctx, node, site, pick):
        whole = self._cross_entropy_fix(ctx, node, site, pick)
        return whole if whole is not None else self._log_softmax_fix(ctx, site)

    def _cross_entropy_fix(self, ctx, node, site, pick):
        """`-log(softmax(x, 1)[range(B), y]).mean()` → `F.cross_entropy(x, y)`."""
        if site.guarded or not isinstance(pick, cst.Subscript) or len(pick.slice) != 2:
            return None
        if site.node is node and site.argument is pick:
            probabilities = pick.value  # log(softmax(x)[range(B), y])
        elif pick is node and pick.value is site.node:
            probabilities = site.argument  # log(softmax(x))[range(B), y]
        else:
            return None
        softmax = numerics.inline_activation(ctx, probabilities, numerics.SOFTMAX)
        loss = numerics.reduced_loss(ctx, node, negated=False)
        if softmax is None or not _over_classes(ctx, softmax) or loss is None:
            return None
        outer, reduction = loss
        logits = numerics.logits_text(ctx, site.probabilities, site.node)
        if logits is None:
            return None
        spelled, edits = numerics.functional(ctx, "cross_entropy")
        targets = ctx.text(pick.slice[1].slice.value)
        return FixPlan("Use F.cross_entropy on the logits", Applicability.SAFE,
                       ((outer, f"{spelled}({logits}, {targets}{numerics.reduction_option(reduction)})"),), edits)

    def _log_softmax_fix(self, ctx, site):
        rewrite = numerics.log_softmax_rewrite(ctx, site)
        if rewrite is None:
            return None
        text, edits, guarded = rewrite
        applicability = Applicability.UNSAFE if guarded else Applicability.SAFE
        title = "Use log_softmax" + (" (drops the epsilon / clamp)" if guarded else "")
        return FixPlan(title, applicability, ((site.node, text),), edits)

    flagged = (
        Flagged(
            """
            import torch

            def loss_fn(logits, targets):
                probs = torch.softmax(logits, dim=-1)
                return -torch.log(probs[torch.arange(len(targets)), targets]).mean()
            """,
            anchor="torch.log(probs[torch.arange(len(targets)), targets])",
        ),
        Flagged(
            """
            import torch
            import torch.nn.functional as F

            def loss_fn(logits, y):
                return -torch.log(F.softmax(logits, dim=1)[range(len(y)), y]).mean()
            """,
            anchor="torch.log(F.softmax(logits, dim=1)[range(len(y)), y])",
            fixed="""
            import torch
            import torch.nn.functional as F

            def loss_fn(logits, y):
                return F.cross_entropy(logits, y)
            """,
        ),
        Flagged(
            """
            import torch

            class LMHead(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.proj = torch.nn.Linear(512, 32000)

                def loss(self, hidden, labels):
                    log_p = self.proj(hidden).softmax(-1).log()
                    nll = -log_p.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
                    return nll.mean()
            """,
            anchor="log_p.gather(-1, labels.unsqueeze(-1))",
            fixed="""
            import torch

            class LMHead(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.proj = torch.nn.Linear(512, 32000)

                def loss(self, hidden, labels):
                    log_p = self.proj(hidden).log_softmax(-1)
                    nll = -log_p.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
                    return nll.mean()
            """,
        ),
        Flagged(
            """
            import torch
            import torch.nn.functional as F

            def soft_ce(logits, y, num_classes):
                y_onehot = F.one_hot(y, num_classes).float()
                probs = F.softmax(logits, dim=1)
                return -torch.sum(y_onehot * torch.log(probs + 1e-9), dim=1).mean()
            """,
            anchor="y_onehot * torch.log(probs + 1e-9)",
        ),
        Flagged(
            """
            import torch

            def soft_target_loss(logits, soft_targets):
                log_probs = torch.log(torch.softmax(logits, dim=-1))
                return -(soft_targets * log_probs).sum(-1).mean()
            """,
            anchor="soft_targets * log_probs",
            fixed="""
            import torch

            def soft_target_loss(logits, soft_targets):
                log_probs = torch.log_softmax(logits, dim=-1)
                return -(soft_targets * log_probs).sum(-1).mean()
            """,
        ),
        Flagged(
            """
            import torch

            def distill(student_logits, teacher_probs):
                return -(teacher_probs * torch.log(torch.softmax(student_logits, 1))).sum(1).mean()
            """,
            anchor="teacher_probs * torch.log(torch.softmax(student_logits, 1))",
            fixed="""
            import torch

            def distill(student_logits, teacher_probs):
                return -(teacher_probs * torch.log_softmax(student_logits, 1)).sum(1).mean()
            """,
        ),
        Flagged(
            """
            import torch.nn.functional as F

            def nll(logits, y):
                log_probs = (F.softmax(logits, -1) + 1e-8).log()
                return -log_probs[range(logits.shape[0]), y].sum()
            """,
            anchor="log_probs[range(logits.shape[0]), y]",
            fixed="""
            import torch.nn.functional as F

            def nll(logits, y):
                log_probs = F.log_softmax(logits, -1)
                return -log_probs[range(logits.shape[0]), y].sum()
            """,
        ),
    )
    silent = (
        Silent(
            """
            import torch.nn.functional as F

            def loss_fn(logits, y):
                log_p = F.log_softmax(logits, dim=-1)
                return -log_p.gather(1, y[:, None]).mean()
            """,
            why="Picking the targets out of log_softmax is the stable hand-written form.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def distill(student, teacher, T=4.0):
                soft_targets = F.softmax(teacher / T, dim=-1)
                return -(soft_targets * F.log_softmax(student / T, dim=-1)).sum(-1).mean() * T * T
            """,
            why="Distillation with the teacher's softmax as the *target* and log_softmax for the student.",
        ),
        Silent(
            """
            import torch

            def entropy(logits):
                p = torch.softmax(logits, -1)
                return -(p * torch.log(p)).sum(-1)
            """,
            why="The entropy of one distribution is not a cross-entropy (LL201 reports its log).",
        ),
        Silent(
            """
            import torch
            import torch.nn.functional as F

            def step(logits, y):
                probs = F.softmax(logits, dim=1)
                confidence = probs[torch.arange(len(y)), y]
                return F.cross_entropy(logits, y), confidence.mean()
            """,
            why="The target's probability is picked for a metric; the loss is computed on the logits.",
        ),
        Silent(
            """
            import torch
            import torch.nn.functional as F
            from torch import nn

            class CrossEntropyLoss(nn.Module):
                def forward(self, log_probs, y):
                    return -log_probs[torch.arange(len(y)), y].mean()

            def step(logits, y):
                return CrossEntropyLoss()(F.log_softmax(logits, -1), y)
            """,
            why="A user-defined loss named like torch's, picking from log_softmax output: stable.",
        ),
    )


def _are_targets(ctx, weight, site) -> bool:
    """One-hot or soft targets, not a constant, a mask or the same distribution (an entropy)."""
    values = ctx.value(weight)
    if any(v.domain in _NOT_TARGETS or v.form is not None for v in values):
        return False
    return not any(v.domain is Domain.PROBABILITIES and numerics.same_probabilities(ctx, v, site.probabilities)
                   for v in values)


def _targets(pick):
    """`y` in `p[range(B), y]`."""
    if isinstance(pick, cst.Subscript) and len(pick.slice) >= 2 and isinstance(pick.slice[-1].slice, cst.Index):
        return pick.slice[-1].slice.value
    return None


def _over_classes(ctx, softmax) -> bool:
    """A softmax over dim 1 / -1 with no other option: the class dim of 2-D logits, as in cross_entropy."""
    is_method = ctx.call(softmax).method is not None
    positional = [arg for arg in softmax.args if arg.keyword is None]
    dim = numerics.argument(softmax, 0 if is_method else 1, "dim")
    return literal(dim) in (1, -1) and len(softmax.args) == (1 if is_method else 2) and len(positional) >= (
        0 if is_method else 1)


def _guard_note(site) -> str:
    if site.guarded:
        return (": the epsilon / clamp caps the loss at -log(eps) and zeroes the gradient of the confidently "
                "wrong rows")
    return (": the target's probability underflows to 0 from a logit gap of ~104 in float32 (17 in float16), "
            "making the loss inf and the gradient NaN")
