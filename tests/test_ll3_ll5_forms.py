"""LL3 / LL5 on the forms real training code takes: what must be reported, and the near misses that must not."""

from __future__ import annotations

import textwrap

import pytest

from losslint import lint_source

SELECT = ["LL3", "LL5"]

REPORTED = {
    "labels from a DataLoader made float for CrossEntropyLoss": ("LL301", """
        import torch
        import torch.nn as nn
        criterion = nn.CrossEntropyLoss()
        def train(net, trainloader, device):
            for i, (inputs, labels) in enumerate(trainloader):
                inputs, labels = inputs.to(device), labels.to(device)
                loss = criterion(net(inputs), labels.type(torch.FloatTensor))
        """),
    "a float cast done in a helper": ("LL301", """
        import torch.nn.functional as F
        def as_target(y):
            return y.float()
        def step(logits, labels):
            return F.cross_entropy(logits, as_target(labels))
        """),
    "bool targets for BCE": ("LL302", """
        import torch.nn.functional as F
        def step(logits, labels):
            return F.binary_cross_entropy_with_logits(logits, labels == 1)
        """),
    "a Linear head on a known [B, T, H] input": ("LL303", """
        import torch.nn as nn
        class Tagger(nn.Module):
            def __init__(self):
                super().__init__()
                self.out = nn.Linear(256, 17)
                self.crit = nn.CrossEntropyLoss()
            def forward(self, states, tags):
                B, T, H = states.shape
                return self.crit(self.out(states), tags)
        """),
    "a shape stated by the model's forward, seen through its summary": ("LL303", """
        import torch.nn as nn
        import torch.nn.functional as F
        class LM(nn.Module):
            def forward(self, idx):
                logits = self.head(self.body(idx))  # (B, T, vocab_size)
                return logits
        model = LM()
        def step(idx, targets):
            return F.cross_entropy(model(idx), targets)
        """),
    "a [N, 1] view against a flat target": ("LL304", """
        import torch.nn as nn
        def step(model, X, y):
            return nn.MSELoss()(model(X).view(-1, 1), y.view(-1))
        """),
    "softmax of a known 2-D tensor without dim": ("LL305", """
        import torch
        import torch.nn.functional as F
        probs = F.softmax(torch.randn(8, 5))
        """),
    "a loss class passed as a default and called with tensors": ("LL502", """
        import torch.nn as nn
        def evaluate(model, x, y, criterion=nn.CrossEntropyLoss):
            return criterion(model(x), y)
        """),
    "legacy reduce in a lambda": ("LL503", """
        import torch.nn.functional as F
        loss_fn = lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduce=False)
        """),
    "a running loss reset every 2000 steps": ("LL504", """
        def train(net, trainloader, criterion, optimizer):
            running_loss = 0.0
            for i, (inputs, labels) in enumerate(trainloader):
                loss = criterion(net(inputs), labels)
                loss.backward()
                optimizer.step()
                running_loss += loss
                if i % 2000 == 1999:
                    print(running_loss / 2000)
                    running_loss = 0.0
        """),
    "losses kept for logging after a mixed-precision step": ("LL504", """
        def train(model, loader, criterion, optimizer, scaler):
            history = []
            for x, y in loader:
                loss = criterion(model(x), y)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                history.append(loss)
            return history
        """),
}

SILENT = {
    "label-smoothed one-hot targets": """
        import torch.nn.functional as F
        def step(logits, labels, eps=0.1):
            n = logits.size(-1)
            smoothed = F.one_hot(labels, n).float() * (1 - eps) + eps / n
            return F.cross_entropy(logits, smoothed.float())
        """,
    "teacher probabilities as targets": """
        import torch.nn.functional as F
        def distill(student, teacher, T=2.0):
            targets = (teacher / T).softmax(dim=-1)
            return F.cross_entropy(student / T, targets.float()) * T * T
        """,
    "multi-label targets from a batch, BCE": """
        import torch.nn as nn
        criterion = nn.BCEWithLogitsLoss()
        def step(model, batch):
            return criterion(model(batch["x"]), batch["labels"].float())
        """,
    "sequence logits flattened with view(-1, size(-1))": """
        import torch.nn.functional as F
        def step(logits, targets):
            B, T, V = logits.shape
            return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        """,
    "[B, C, T] logits (classes already on dim 1)": """
        import torch.nn.functional as F
        def step(model, x, y):
            out = model(x)  # [B, C, T]
            return F.cross_entropy(out, y)
        """,
    "regression with squeezed prediction": """
        import torch.nn.functional as F
        def step(model, x, y):
            pred = model(x)  # [B, 1]
            return F.mse_loss(pred.squeeze(-1), y.view(-1))
        """,
    "softmax with a dim in every form": """
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
        def f(x):
            return F.softmax(x, -1), F.log_softmax(x, dim=1), torch.softmax(x, 1), nn.Softmax(dim=-1)(x)
        """,
    "class weights and a legacy literal in the loss constructor": """
        import torch
        import torch.nn as nn
        weights = torch.tensor([1.0, 3.0])
        a = nn.CrossEntropyLoss(weights)
        b = nn.BCEWithLogitsLoss(pos_weight=weights)
        """,
    "a registry of loss classes instantiated later": """
        import torch.nn as nn
        LOSSES = {"ce": nn.CrossEntropyLoss, "mse": nn.MSELoss}
        def build(name, **kwargs):
            return LOSSES[name](**kwargs)
        """,
    "accumulating python numbers": """
        def train(model, loader, criterion, optimizer):
            total = 0.0
            for x, y in loader:
                loss = criterion(model(x), y)
                loss.backward()
                optimizer.step()
                total += float(loss) * x.size(0)
                total += loss.detach()
            return total
        """,
    "truncated back-propagation through time": """
        def train(rnn, xs, ys, criterion, optimizer, k):
            loss = 0
            for t, (x, y) in enumerate(zip(xs, ys)):
                loss += criterion(rnn(x), y)
                if t % k == 0:
                    loss.backward()
                    optimizer.step()
                    loss = 0
        """,
    "gradient accumulation of the objective across micro-batches": """
        def step(model, micro_batches, criterion, optimizer):
            total = 0
            for x, y in micro_batches:
                total = total + criterion(model(x), y)
            (total / len(micro_batches)).backward()
            optimizer.step()
        """,
    "evaluation switched off by set_grad_enabled": """
        import torch
        def run(model, loader, criterion, train):
            total = 0
            for x, y in loader:
                with torch.set_grad_enabled(train):
                    loss = criterion(model(x), y)
                    if train:
                        loss.backward()
                    total += loss
            return total.item()
        """,
}


@pytest.mark.parametrize(("code", "source"), list(REPORTED.values()), ids=list(REPORTED))
def test_reported(code, source):
    findings = lint_source(textwrap.dedent(source), select=SELECT)
    assert [finding.code for finding in findings] == [code], findings


@pytest.mark.parametrize("source", list(SILENT.values()), ids=list(SILENT))
def test_silent(source):
    assert lint_source(textwrap.dedent(source), select=SELECT) == []
