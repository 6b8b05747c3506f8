"""LL101: probabilities (softmax or sigmoid output) passed to cross_entropy."""

from losslint import contracts
from losslint.domains import Domain
from losslint.findings import Applicability
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class SoftmaxIntoCrossEntropy(Rule):
    """
    ## What it does
    Finds probabilities (the output of `softmax`, `sigmoid`, `nn.Softmax`, a hand-written
    `exp(x) / exp(x).sum()`, or a model whose `forward` ends in one of these) passed as the
    *input* of `F.cross_entropy` / `nn.CrossEntropyLoss`.

    ## Why is this bad?
    `cross_entropy` applies `log_softmax` to its input itself: it expects raw logits. Given
    probabilities, it computes a softmax of a softmax. Training still runs, but badly: the
    loss can never drop below log(1 + (K − 1)/e) even for perfect predictions (1.461 for
    K = 10, 3.622 for K = 100), gradients shrink (9× smaller at logit scale 1, 58× at scale
    100, where 20% of rows get exactly zero gradient), and the model learns slowly or not at all.

    ## Example
    ```python
    probs = F.softmax(logits, dim=1)
    loss = F.cross_entropy(probs, targets)
    ```

    ## Use instead
    ```python
    loss = F.cross_entropy(logits, targets)
    probs = F.softmax(logits, dim=1)  # for metrics only
    ```

    ## Fix safety
    Removing the softmax is **unsafe**: it changes the loss value and its gradients, so the
    learning rate and other hyperparameters tuned on the old loss may need retuning. The fix
    is offered only when the softmax call is written directly inside the loss call.

    ## References
    - [torch.nn.CrossEntropyLoss](https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html):
      "The input is expected to contain the unnormalized logits for each class".
    """

    code = "LL101"
    name = "softmax-into-cross-entropy"
    summary = "Probabilities (softmax/sigmoid output) passed to cross_entropy, which expects logits"
    fix_availability = Applicability.UNSAFE
    tokens = ("cross_entropy", "CrossEntropyLoss")
    probe = "wrong-input-domain"

    def check(self, ctx):
        for mismatch in contracts.mismatches(ctx, role="input", expected=Domain.LOGITS, found=Domain.PROBABILITIES,
                                             contracts=("cross_entropy",)):
            fix = None
            inner = contracts.activation_input(ctx, mismatch.node)
            if inner is not None and mismatch.loss_call.helper_call is None:
                fix = FixPlan(f"Remove the {mismatch.value.producer} and pass the logits",
                              Applicability.UNSAFE, ((mismatch.node, ctx.text(inner)),))
            yield Report(
                node=mismatch.node,
                message=contracts.message(
                    ctx, mismatch,
                    f"the {mismatch.value.producer} is applied twice, squashing gradients and flooring the loss "
                    "at log(1 + (K-1)/e)"),
                evidence=contracts.evidence(ctx, mismatch),
                hint="pass the raw logits to cross_entropy; keep the softmax for metrics or inference",
                fix=fix,
            )

    flagged = (
        Flagged(
            """
            import torch.nn.functional as F

            def step(model, x, y):
                logits = model(x)
                return F.cross_entropy(F.softmax(logits, dim=1), y)
            """,
            anchor="F.softmax(logits, dim=1)",
            fixed="""
            import torch.nn.functional as F

            def step(model, x, y):
                logits = model(x)
                return F.cross_entropy(logits, y)
            """,
        ),
        Flagged(
            """
            import torch
            from torch import nn

            class Classifier(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(128, 10)
                    self.softmax = nn.Softmax(dim=1)
                    self.criterion = nn.CrossEntropyLoss()

                def training_step(self, batch):
                    x, y = batch
                    probs = self.softmax(self.fc(x))
                    return self.criterion(probs, y)
            """,
            anchor="probs",
        ),
        Flagged(
            """
            import torch
            criterion = torch.nn.CrossEntropyLoss()

            def loss_fn(logits, y):
                p = logits.softmax(-1)
                return criterion(p.view(-1, 10), y.view(-1))
            """,
            anchor="p.view(-1, 10)",
        ),
        Flagged(
            """
            from torch import nn
            import torch.nn.functional as F

            model = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1))

            def train(x, y):
                out = model(x)
                loss = F.cross_entropy(out, y)
                loss.backward()
            """,
            anchor="out",
        ),
        Flagged(
            """
            import torch
            from torch import nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(8, 4)

                def forward(self, x):
                    return torch.softmax(self.fc(x), dim=-1)

            net = Net()
            loss = nn.CrossEntropyLoss()(net(torch.randn(2, 8)), torch.tensor([0, 1]))
            """,
            anchor="net(torch.randn(2, 8))",
        ),
        Flagged(
            """
            import torch
            from torch.nn.functional import cross_entropy

            def manual_softmax_loss(z, y):
                e = torch.exp(z)
                p = e / e.sum(dim=1, keepdim=True)
                return cross_entropy(p, y)
            """,
            anchor="p",
        ),
    )
    silent = (
        Silent(
            """
            import torch.nn.functional as F

            def step(logits, y):
                probs = F.softmax(logits, dim=1)
                acc = (probs.argmax(1) == y).float().mean()
                return F.cross_entropy(logits, y), acc
            """,
            why="A softmax used for a metric next to a cross_entropy on the raw logits.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def distill(student_logits, teacher_logits, T=2.0):
                soft = F.softmax(teacher_logits / T, dim=-1)
                return F.cross_entropy(student_logits / T, soft)
            """,
            why="Distillation: the softmax of the teacher is the *target*, which may be probabilities.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def step(logits, y, train):
                out = logits if train else F.softmax(logits, dim=1)
                return F.cross_entropy(out, y)
            """,
            why="Only one reaching definition is a softmax: precision first, no report.",
        ),
        Silent(
            """
            import torch
            import torch.nn.functional as F

            def attention(q, k, v):
                weights = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
                return weights @ v

            def loss(logits, y):
                return F.cross_entropy(logits, y, label_smoothing=0.1)
            """,
            why="Softmax inside attention, and a label-smoothed cross_entropy on logits.",
        ),
        Silent(
            """
            import torch
            from torch import nn

            class CrossEntropyLoss(nn.Module):
                def forward(self, probs, y):
                    return -(probs[range(len(y)), y]).log().mean()

            def step(logits, y):
                return CrossEntropyLoss()(torch.softmax(logits, 1), y)
            """,
            why="A user-defined loss whose name looks like torch's is not torch's CrossEntropyLoss.",
        ),
        Silent(
            """
            import torch
            from torch import nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(8, 4)

                def forward(self, x):
                    return self.fc(x)

                def predict(self, x):
                    return torch.softmax(self.forward(x), dim=-1)

            net = Net()
            loss = nn.CrossEntropyLoss()(net(torch.randn(2, 8)), torch.tensor([0, 1]))
            """,
            why="The model's softmax is only on its `predict` path; training uses `forward`.",
        ),
    )
