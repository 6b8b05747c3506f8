"""The dataflow follows the forms real code uses: every import style, methods, modules,
attributes, frameworks' idioms, branches, loops and in-file summaries."""

from __future__ import annotations

import textwrap

import pytest

from losslint import lint_source

FLAGGED_LL101 = {
    "fully qualified": """
        import torch
        def f(x, y):
            return torch.nn.functional.cross_entropy(torch.nn.functional.softmax(x, dim=1), y)
        """,
    "F alias": """
        import torch.nn.functional as F
        def f(x, y):
            return F.cross_entropy(F.softmax(x, dim=1), y)
        """,
    "from torch.nn import functional as F": """
        from torch.nn import functional as F
        def f(x, y):
            return F.cross_entropy(F.softmax(x, dim=1), y)
        """,
    "renamed function imports": """
        from torch.nn.functional import softmax as sm, cross_entropy as ce
        def f(x, y):
            return ce(sm(x, dim=1), y)
        """,
    "from torch import nn": """
        from torch import nn
        def f(x, y):
            return nn.CrossEntropyLoss()(nn.functional.softmax(x, dim=1), y)
        """,
    "import torch.nn as nn, module instance": """
        import torch.nn as nn
        crit = nn.CrossEntropyLoss()
        def f(x, y):
            return crit(x.softmax(-1), y)
        """,
    "torch.softmax and the module path": """
        import torch
        def f(x, y):
            return torch.nn.modules.loss.CrossEntropyLoss()(torch.softmax(x, 1), y)
        """,
    "nn.Softmax called inline": """
        import torch.nn as nn
        def f(x, y):
            return nn.CrossEntropyLoss()(nn.Softmax(dim=1)(x), y)
        """,
    "exp of log_softmax": """
        import torch
        import torch.nn.functional as F
        def f(x, y):
            p = torch.exp(F.log_softmax(x, dim=1))
            return F.cross_entropy(p, y)
        """,
    "through a loop": """
        import torch.nn.functional as F
        def train(model, loader, opt):
            for x, y in loader:
                probs = F.softmax(model(x), dim=1)
                loss = F.cross_entropy(probs, y)
                loss.backward()
        """,
    "both branches": """
        import torch.nn.functional as F
        def f(x, y, hard):
            if hard:
                p = F.softmax(x / 0.5, dim=1)
            else:
                p = F.softmax(x, dim=1)
            return F.cross_entropy(p, y)
        """,
    "tuple returned by forward": """
        import torch.nn as nn
        import torch.nn.functional as F
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 3)
            def forward(self, x):
                logits = self.fc(x)
                return logits, F.softmax(logits, -1)
        def step(net: Net, x, y):
            logits, probs = net(x)
            return F.cross_entropy(probs, y)
        """,
    "dict returned by a helper": """
        import torch.nn.functional as F
        def heads(x):
            return {"logits": x, "probs": F.softmax(x, dim=-1)}
        def step(x, y):
            out = heads(x)
            return F.cross_entropy(out["probs"], y)
        """,
    "loss instance as a default argument": """
        import torch.nn as nn
        def evaluate(model, x, y, loss_fn=nn.CrossEntropyLoss()):
            return loss_fn(model(x).softmax(1), y)
        """,
    "lightning training_step with self(x)": """
        import torch
        import torch.nn as nn
        import pytorch_lightning as pl
        class Lit(pl.LightningModule):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(8, 4), nn.Softmax(dim=-1))
                self.loss = nn.CrossEntropyLoss()
            def forward(self, x):
                return self.net(x)
            def training_step(self, batch, batch_idx):
                x, y = batch
                return self.loss(self(x), y)
        """,
    "hugging face compute_loss override": """
        import torch
        from transformers import Trainer
        class MyTrainer(Trainer):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.loss_fct = torch.nn.CrossEntropyLoss()
            def compute_loss(self, model, inputs, return_outputs=False):
                labels = inputs.pop("labels")
                outputs = model(**inputs)
                probs = outputs.logits.softmax(dim=-1)
                loss = self.loss_fct(probs.view(-1, probs.size(-1)), labels.view(-1))
                return (loss, outputs) if return_outputs else loss
        """,
    "subclass of a torch loss": """
        import torch.nn as nn
        import torch.nn.functional as F
        class WeightedCE(nn.CrossEntropyLoss):
            pass
        def step(x, y):
            return WeightedCE()(F.softmax(x, 1), y)
        """,
    "criterion built in __init__, used in another method": """
        import torch.nn as nn
        import torch.nn.functional as F
        class Trainer:
            def __init__(self, model):
                self.model = model
                self.criterion = nn.CrossEntropyLoss(label_smoothing=0.0)
            def step(self, x, y):
                out = F.softmax(self.model(x), dim=1)
                return self.criterion(out, y)
        """,
    "training loop helper receiving the model and the criterion": """
        import torch.nn as nn
        import torch.nn.functional as F
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(784, 10)
            def forward(self, x):
                return F.softmax(self.fc(x), dim=1)
        def train(model, loader, criterion):
            for x, y in loader:
                loss = criterion(model(x), y)
                loss.backward()
        def main(loader):
            train(Net(), loader, nn.CrossEntropyLoss())
        """,
    "models and losses moved to a device or wrapped": """
        import torch
        import torch.nn as nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(nn.Linear(20, 5), nn.Softmax(dim=1))
            def forward(self, x):
                return self.body(x)
        device = torch.device("cpu")
        model = nn.DataParallel(Net().to(device))
        model.train()
        criterion = nn.CrossEntropyLoss().to(device)
        for x, y in []:
            outputs = model(x.to(device))
            loss = criterion(outputs, y.to(device))
        """,
    "a dict of outputs passed into a loss helper": """
        import torch.nn.functional as F
        def my_loss(out, y):
            return F.cross_entropy(out["probs"], y)
        def step(logits, y):
            out = {"probs": F.softmax(logits, dim=1)}
            return my_loss(out, y)
        """,
    "a pretrained model whose head was replaced": """
        import torch.nn as nn
        import torchvision
        model = torchvision.models.resnet18(weights="DEFAULT")
        model.fc = nn.Sequential(nn.Linear(512, 10), nn.Softmax(dim=1))
        criterion = nn.CrossEntropyLoss()
        def step(x, y):
            return criterion(model(x), y)
        """,
}

SILENT = {
    "one branch only": """
        import torch.nn.functional as F
        def f(x, y, raw):
            p = x if raw else F.softmax(x, dim=1)
            return F.cross_entropy(p, y)
        """,
    "reassigned before use": """
        import torch.nn.functional as F
        def f(model, x, y):
            out = F.softmax(model(x), dim=1)
            out = model(x)
            return F.cross_entropy(out, y)
        """,
    "tuple: logits go to the loss": """
        import torch.nn as nn
        import torch.nn.functional as F
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 3)
            def forward(self, x):
                logits = self.fc(x)
                return logits, F.softmax(logits, -1)
        def step(net, x, y):
            logits, probs = net(x)
            return F.cross_entropy(logits, y)
        """,
    "training loop helper called with a model that returns logits": """
        import torch.nn as nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(784, 10)
            def forward(self, x):
                return self.fc(x)
        def train(model, loader, criterion):
            for x, y in loader:
                criterion(model(x), y).backward()
        train(Net(), [], nn.CrossEntropyLoss())
        """,
    "a pretrained model whose head was replaced by a linear layer": """
        import torch.nn as nn
        import torchvision
        model = torchvision.models.resnet18(weights="DEFAULT")
        model.fc = nn.Linear(512, 10)
        def step(x, y):
            return nn.CrossEntropyLoss()(model(x), y)
        """,
    "a local function named like torch's": """
        import torch
        def cross_entropy(p, y):
            return -(torch.log(p)[range(len(y)), y]).mean()
        def step(x, y):
            return cross_entropy(torch.softmax(x, 1), y)
        """,
    "shadowed F": """
        import torch
        class F:
            @staticmethod
            def softmax(x, dim):
                return x
        def step(x, y):
            return torch.nn.functional.cross_entropy(F.softmax(x, dim=1), y)
        """,
}


def _codes(source: str, select=("LL1",)) -> list[str]:
    return [f.code for f in lint_source(textwrap.dedent(source), select=list(select))]


@pytest.mark.parametrize("source", FLAGGED_LL101.values(), ids=FLAGGED_LL101.keys())
def test_softmax_into_cross_entropy_is_found_in_every_form(source):
    assert _codes(source) == ["LL101"]


@pytest.mark.parametrize("source", SILENT.values(), ids=SILENT.keys())
def test_precision_cases_stay_silent(source):
    assert _codes(source, ("ALL",)) == []


def test_message_names_the_evidence_chain():
    source = textwrap.dedent("""
        import torch.nn as nn
        import torch.nn.functional as F

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.criterion = nn.CrossEntropyLoss()

            def training_step(self, logits, y):
                probs = F.softmax(logits, dim=1)
                return self.criterion(probs, y)
        """).lstrip()
    [finding] = lint_source(source)
    assert finding.message.startswith(
        "`probs` (softmax, line 10) reaches `self.criterion` (CrossEntropyLoss, built line 7), which expects logits"
    )
    assert (finding.span.start.line, finding.span.start.column) == (11, 31)
    assert any("line 10" in step and "softmax" in step for step in finding.evidence)


def test_helper_parameters_carry_the_finding_to_the_call_site():
    source = textwrap.dedent("""
        import torch
        import torch.nn.functional as F

        def compute_loss(logits, targets):
            return F.cross_entropy(logits, targets)

        def step(x, y):
            return compute_loss(torch.softmax(x, dim=-1), y)
        """).lstrip()
    [finding] = lint_source(source)
    assert finding.code == "LL101" and finding.line == 8
    assert "inside `compute_loss`" in finding.message


@pytest.mark.parametrize("name", ["yb", "y_batch", "labels"])
def test_minibatch_label_names_are_labels(name):
    source = f"""
        import torch
        import torch.nn as nn
        criterion = nn.CrossEntropyLoss()
        def train(model, loader):
            for xb, {name} in loader:
                criterion(model(xb), {name}.to(dtype=torch.float32)).backward()
        """
    assert _codes(source, ("LL301",)) == ["LL301"]
