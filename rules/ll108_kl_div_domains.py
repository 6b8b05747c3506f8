"""LL108: kl_div given probabilities as input, or a target in the wrong space for `log_target`."""

from losslint import contracts
from losslint.domains import Domain
from losslint.findings import Applicability
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class KlDivDomains(Rule):
    """
    ## What it does
    Checks both arguments of `F.kl_div` / `nn.KLDivLoss`:
    the input must be log-probabilities (e.g. `log_softmax`), and the target must be
    probabilities — or log-probabilities when `log_target=True`. Reports probabilities passed
    as the input, log-probabilities passed as the target without `log_target=True`, and
    probabilities passed as the target with `log_target=True`.

    ## Why is this bad?
    `kl_div(input, target)` computes Σ target · (log target − input): unlike most torch losses
    its *input* is expected in log space. With probabilities as input the result is not a
    divergence at all (it can be negative and is minimised by the wrong distribution). With
    log-probabilities as target and the default `log_target=False`, torch evaluates
    target · log(target) on negative numbers: NaN.

    ## Example
    ```python
    loss = F.kl_div(F.softmax(student, -1), F.log_softmax(teacher, -1))
    ```

    ## Use instead
    ```python
    loss = F.kl_div(F.log_softmax(student, -1), F.softmax(teacher, -1), reduction="batchmean")
    # or keep the teacher in log space:
    loss = F.kl_div(F.log_softmax(student, -1), F.log_softmax(teacher, -1),
                    reduction="batchmean", log_target=True)
    ```

    ## Fix safety
    Both fixes are **unsafe** because they change the computed value (to the intended one):
    a softmax written directly as the input becomes `log_softmax`; a log-space target gets
    `log_target=True` added to the functional call.

    ## References
    - [torch.nn.KLDivLoss](https://pytorch.org/docs/stable/generated/torch.nn.KLDivLoss.html):
      "the argument input should be a log-probability ... To avoid underflow issues ... log_target=True".
    """

    code = "LL108"
    name = "kl-div-domains"
    summary = "kl_div given probabilities as input, or a log-space target without log_target=True"
    fix_availability = Applicability.UNSAFE
    tokens = ("kl_div", "KLDivLoss")
    probe = "wrong-input-domain"

    def check(self, ctx):
        for mismatch in contracts.mismatches(ctx, role="input", expected=Domain.LOG_PROBABILITIES,
                                             found=Domain.PROBABILITIES, contracts=("kl_div",)):
            fix = None
            rewritten = contracts.log_space_call(ctx, mismatch.node)
            if rewritten is not None and mismatch.loss_call.helper_call is None:
                text, edits = rewritten
                fix = FixPlan("Take the log-probabilities of the input", Applicability.UNSAFE,
                              ((mismatch.node, text),), edits)
            yield Report(
                node=mismatch.node,
                message=contracts.message(ctx, mismatch, "kl_div's input is expected in log space, so this is not "
                                                         "a divergence"),
                evidence=contracts.evidence(ctx, mismatch),
                hint="pass log_softmax(...) as the input of kl_div",
                fix=fix,
            )
        for mismatch in contracts.mismatches(ctx, role="target", expected=Domain.PROBABILITIES,
                                             found=Domain.LOG_PROBABILITIES, contracts=("kl_div",)):
            yield Report(
                node=mismatch.node,
                message=contracts.message(ctx, mismatch, "without log_target=True a log-space target gives "
                                                         "target * log(target) of negative numbers: NaN"),
                evidence=contracts.evidence(ctx, mismatch),
                hint="pass log_target=True, or exponentiate the target",
                fix=self._add_log_target(ctx, mismatch),
            )
        for mismatch in contracts.mismatches(ctx, role="target", expected=Domain.LOG_PROBABILITIES,
                                             found=Domain.PROBABILITIES, contracts=("kl_div",)):
            yield Report(
                node=mismatch.node,
                message=contracts.message(ctx, mismatch, "log_target=True declares the target in log space, "
                                                         "but it holds probabilities"),
                evidence=contracts.evidence(ctx, mismatch),
                hint="drop log_target=True, or pass the target's log-probabilities",
            )

    def _add_log_target(self, ctx, mismatch):
        loss_call = mismatch.loss_call
        if loss_call.instance is not None or loss_call.helper_call is not None or "log_target" in loss_call.args:
            return None
        last = loss_call.node.args[-1]
        if last.star:
            return None
        return FixPlan("Pass log_target=True", Applicability.UNSAFE,
                       ((last.value, f"{ctx.text(last.value)}, log_target=True"),))

    flagged = (
        Flagged(
            """
            import torch.nn.functional as F

            def distill(student, teacher):
                return F.kl_div(F.softmax(student, dim=-1), F.softmax(teacher, dim=-1), reduction="batchmean")
            """,
            anchor="F.softmax(student, dim=-1)",
            fixed="""
            import torch.nn.functional as F

            def distill(student, teacher):
                return F.kl_div(F.log_softmax(student, dim=-1), F.softmax(teacher, dim=-1), reduction="batchmean")
            """,
        ),
        Flagged(
            """
            import torch.nn.functional as F

            def distill(student, teacher, T=4.0):
                log_p = F.log_softmax(student / T, dim=-1)
                log_q = F.log_softmax(teacher / T, dim=-1)
                return F.kl_div(log_p, log_q, reduction="batchmean") * T * T
            """,
            anchor="log_q",
            fixed="""
            import torch.nn.functional as F

            def distill(student, teacher, T=4.0):
                log_p = F.log_softmax(student / T, dim=-1)
                log_q = F.log_softmax(teacher / T, dim=-1)
                return F.kl_div(log_p, log_q, reduction="batchmean", log_target=True) * T * T
            """,
        ),
        Flagged(
            """
            import torch
            from torch import nn

            kl = nn.KLDivLoss(reduction="batchmean", log_target=True)

            def loss(student_logits, teacher_logits):
                return kl(torch.log_softmax(student_logits, 1), torch.softmax(teacher_logits, 1))
            """,
            anchor="torch.softmax(teacher_logits, 1)",
        ),
    )
    silent = (
        Silent(
            """
            import torch.nn.functional as F

            def distill(student, teacher):
                return F.kl_div(F.log_softmax(student, dim=-1), F.softmax(teacher, dim=-1), reduction="batchmean")
            """,
            why="The textbook form: log-probabilities as input, probabilities as target.",
        ),
        Silent(
            """
            import torch
            from torch import nn

            kl = nn.KLDivLoss(reduction="batchmean", log_target=True)

            def loss(student_logits, teacher_logits):
                return kl(torch.log_softmax(student_logits, 1), torch.log_softmax(teacher_logits, 1))
            """,
            why="Both in log space with log_target=True.",
        ),
    )
