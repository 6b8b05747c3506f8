"""LL301: class indices made float before a class-index loss (cross_entropy, nll_loss)."""

from losslint import labels
from losslint import torch_api as api
from losslint.findings import Applicability
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class FloatClassTargets(Rule):
    """
    ## What it does
    Finds the target of `F.cross_entropy` / `nn.CrossEntropyLoss` / `F.nll_loss` / `nn.NLLLoss`
    made floating-point (`.float()`, `.double()`, `.to(torch.float32)`, `dtype=torch.float`) when it
    holds class indices: the result of `argmax`, a target with one dimension fewer than the input, or
    the data-set labels (`labels`, `y`, `batch["target"]`) with nothing saying they are a distribution.

    ## Why is this bad?
    Since torch 1.10 these losses read a floating-point target as class *probabilities* when it has
    the input's shape, and as class indices only when it is an integer tensor. A float `[B]` target
    for a `[B, C]` input is a runtime error ("expected target dtype to be Long or Byte, but got
    Float"); a float `[B, C]` target of one-hot or index-like values silently becomes a soft-label
    loss. The `.float()` is usually copied from BCE code, where it is required.

    ## Example
    ```python
    for images, labels in loader:
        loss = criterion(model(images), labels.float())
    ```

    ## Use instead
    ```python
    for images, labels in loader:
        loss = criterion(model(images), labels.long())
    ```

    ## Fix safety
    Replacing the cast written in the loss call by `.long()` is **unsafe**: it turns a crashing call
    into a working one, but when the float target had the input's shape it changes the loss from a
    soft-label loss to a class-index loss. No fix is offered when the cast happens elsewhere.

    Genuine probability targets — soft labels, one-hot or label-smoothed distributions, mixup and
    distillation targets — are not reported: they are recognised by how they were made (softmax,
    one_hot, arithmetic), by a target with the input's rank, or by their names.

    ## References
    - [torch.nn.CrossEntropyLoss](https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html):
      the target is "Class indices in the range [0, C)" (dtype long) or "Probabilities for each class"
      (same shape as the input, floating point).
    """

    code = "LL301"
    name = "float-class-targets"
    summary = "Class-index target made float for cross_entropy / nll_loss: read as probabilities, or a crash"
    fix_availability = Applicability.UNSAFE
    tokens = ("cross_entropy", "CrossEntropyLoss", "nll_loss", "NLLLoss")
    probe = "runs-as-written"

    def check(self, ctx):
        for loss_call in ctx.loss_calls:
            if not loss_call.contract.index_target:
                continue
            node = loss_call.target_arg
            target = loss_call.target
            if node is None or not all(value.dtype in api.FLOAT_DTYPES for value in target):
                continue
            reasons = [labels.class_index_evidence(ctx, value, target, loss_call.input, node) for value in target]
            if not reasons or None in reasons:
                continue
            value = target[0]
            receiver = labels.cast_receiver(ctx, node)
            fix = None
            if receiver is not None and loss_call.helper_call is None:
                fix = FixPlan("Pass the class indices as int64 (`.long()`)", Applicability.UNSAFE,
                              ((node, f"{ctx.text(receiver)}.long()"),))
            yield Report(
                node=node,
                message=(f"`{ctx.text(node)}`: {reasons[0]}, {labels.dtype_origin(ctx, value, node)}, reaches "
                         f"{ctx.loss_label(loss_call)} as `{loss_call.contract.target_param}`: a float target is "
                         "read as class probabilities when it has the input's shape, and is a runtime error "
                         "(\"expected target dtype to be Long\") otherwise"),
                evidence=ctx.loss_evidence(loss_call, loss_call.contract.target_param, value),
                hint="pass class indices as an int64 tensor (`.long()`); keep float targets for real "
                     "distributions (soft labels, label smoothing, distillation)",
                fix=fix,
            )

    flagged = (
        Flagged(
            """
            import torch.nn as nn

            criterion = nn.CrossEntropyLoss()

            def train(model, loader):
                for images, labels in loader:
                    loss = criterion(model(images), labels.float())
                    loss.backward()
            """,
            anchor="labels.float()",
            fixed="""
            import torch.nn as nn

            criterion = nn.CrossEntropyLoss()

            def train(model, loader):
                for images, labels in loader:
                    loss = criterion(model(images), labels.long())
                    loss.backward()
            """,
        ),
        Flagged(
            """
            import torch
            import torch.nn.functional as F

            def pseudo_label_loss(student_logits, teacher_logits):
                pseudo = teacher_logits.argmax(dim=1)
                return F.cross_entropy(student_logits, pseudo.to(torch.float32))
            """,
            anchor="pseudo.to(torch.float32)",
            fixed="""
            import torch
            import torch.nn.functional as F

            def pseudo_label_loss(student_logits, teacher_logits):
                pseudo = teacher_logits.argmax(dim=1)
                return F.cross_entropy(student_logits, pseudo.long())
            """,
        ),
        Flagged(
            """
            import torch
            from torch import nn

            class Classifier(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(32, 5)
                    self.loss_fn = nn.NLLLoss()

                def training_step(self, batch):
                    x, y = batch["x"], batch["y"]
                    target = torch.tensor(y, dtype=torch.float)
                    log_probs = torch.log_softmax(self.fc(x), dim=-1)
                    return self.loss_fn(log_probs, target)
            """,
            anchor="target",
        ),
        Flagged(
            """
            import torch
            import torch.nn.functional as F

            def step(model, x):
                logits = model(x)  # [B, C]
                y = torch.randint(0, 10, (x.shape[0],)).double()
                return F.cross_entropy(logits, y)
            """,
            anchor="y",
        ),
    )
    silent = (
        Silent(
            """
            import torch.nn.functional as F

            def step(logits, labels, num_classes):
                soft = F.one_hot(labels, num_classes).float() * 0.9 + 0.1 / num_classes
                return F.cross_entropy(logits, F.one_hot(labels, num_classes).float())
            """,
            why="A one-hot distribution made float is a genuine probability target.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def distill(student, teacher, T=4.0):
                return F.cross_entropy(student / T, F.softmax(teacher / T, dim=-1).float())
            """,
            why="Distillation: the teacher's softmax is a distribution.",
        ),
        Silent(
            """
            import torch.nn as nn

            criterion = nn.CrossEntropyLoss()

            def train(model, loader):
                for images, soft_labels in loader:
                    loss = criterion(model(images), soft_labels.float())
            """,
            why="Soft labels from the data set: the name says distribution.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def mixup_loss(logits, y_a, y_b, lam, num_classes):
                target = lam * F.one_hot(y_a, num_classes) + (1 - lam) * F.one_hot(y_b, num_classes)
                return F.cross_entropy(logits, target.float())
            """,
            why="Mixup targets are arithmetic on one-hot vectors, not data-set labels.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def step(logits, labels):
                B, C = logits.shape
                B, C = labels.shape
                return F.cross_entropy(logits, labels.float())
            """,
            why="A target with the input's shape is a (multi-hot) distribution torch reads as probabilities.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def step(logits, labels):
                return F.binary_cross_entropy_with_logits(logits, labels.float())
            """,
            why="BCE needs float targets; only class-index losses are concerned.",
        ),
    )
