"""LL501: the tensors of a loss passed to its constructor (`nn.MSELoss(pred, y)`)."""

from losslint import constructors
from losslint import torch_api as api
from losslint.findings import Applicability
from losslint.objects import LossObject
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class TensorsToLossConstructor(Rule):
    """
    ## What it does
    Finds a torch loss class called with the prediction and the target, as if it were the loss
    function: `nn.CrossEntropyLoss(logits, targets)`, `return nn.MSELoss(pred, y)`,
    `torch.nn.L1Loss(out, target).backward()`.

    ## Why is this bad?
    Calling the class *constructs* a loss module; the tensors land in the constructor's positional
    parameters — `weight, size_average, …` for `CrossEntropyLoss` / `NLLLoss` / `BCELoss`,
    `size_average, reduce, …` for `MSELoss` / `L1Loss` / `KLDivLoss`. With multi-element tensors torch
    stops with "Boolean value of Tensor with more than one value is ambiguous"; with one-element
    tensors it silently returns a module, and the error comes later (`'MSELoss' object has no
    attribute 'backward'`), far from the cause.

    ## Example
    ```python
    def loss_fn(pred, y):
        return nn.MSELoss(pred, y)
    ```

    ## Use instead
    ```python
    def loss_fn(pred, y):
        return nn.MSELoss()(pred, y)  # or F.mse_loss(pred, y)
    ```

    ## Fix safety
    The fix instantiates the loss (keeping keyword options in the constructor) and calls it with the
    tensors. It is **unsafe**: the expression's value changes from a module to a loss tensor.

    ## References
    - [torch.nn.MSELoss](https://pytorch.org/docs/stable/generated/torch.nn.MSELoss.html):
      `MSELoss(size_average=None, reduce=None, reduction='mean')`.
    """

    code = "LL501"
    name = "tensors-to-loss-constructor"
    summary = "Prediction and target passed to a loss class's constructor instead of to the loss"
    fix_availability = Applicability.UNSAFE
    tokens = ("Loss",)
    probe = "runs-as-written"
    # Tensors in the legacy slots are this defect, not a deprecated option.
    supersedes = ("LL503",)

    def check(self, ctx):
        for node, built in ctx.constructions.items():
            if not isinstance(built.obj, LossObject) or built.obj.node is not node:
                continue
            fact = ctx.call(node)
            if fact is None or fact.qualname not in api.LOSS_BY_MODULE:
                continue
            misplaced = constructors.forward_inputs(ctx, node, built.obj.contract)
            if misplaced is None:
                continue
            name = built.obj.contract.module_name
            yield Report(
                node=node,
                message=(f"`{ctx.text(node.func)}(...)` builds a new `{name}` module with the loss's tensors as "
                         f"constructor arguments ({constructors.landing(ctx, misplaced)}) instead of computing the "
                         "loss: torch fails with \"Boolean value of Tensor with more than one value is ambiguous\", "
                         "or returns a module where a loss was expected"),
                evidence=(f"line {ctx.line(node)}: {name}'s constructor takes "
                          f"({', '.join(built.obj.contract.ctor_params)})",),
                hint=f"instantiate the loss, then call it: `{ctx.text(node.func)}()(...)`",
                fix=FixPlan("Instantiate the loss and call it with the tensors", Applicability.UNSAFE,
                            ((node, constructors.called_with_inputs(ctx, node)),)),
            )

    flagged = (
        Flagged(
            """
            import torch.nn as nn

            def loss_fn(pred, y):
                return nn.MSELoss(pred, y)
            """,
            anchor="nn.MSELoss(pred, y)",
            fixed="""
            import torch.nn as nn

            def loss_fn(pred, y):
                return nn.MSELoss()(pred, y)
            """,
        ),
        Flagged(
            """
            import torch
            from torch.nn import CrossEntropyLoss

            def train_step(model, images, labels, optimizer):
                logits = model(images)
                loss = CrossEntropyLoss(logits, labels, ignore_index=-1)
                loss.backward()
                optimizer.step()
            """,
            anchor="CrossEntropyLoss(logits, labels, ignore_index=-1)",
            fixed="""
            import torch
            from torch.nn import CrossEntropyLoss

            def train_step(model, images, labels, optimizer):
                logits = model(images)
                loss = CrossEntropyLoss(ignore_index=-1)(logits, labels)
                loss.backward()
                optimizer.step()
            """,
        ),
        Flagged(
            """
            import torch

            class Trainer:
                def step(self, batch):
                    out = self.model(batch["x"])
                    return torch.nn.L1Loss(out, batch["y"])
            """,
            anchor='torch.nn.L1Loss(out, batch["y"])',
        ),
    )
    silent = (
        Silent(
            """
            import torch
            import torch.nn as nn

            class_weights = torch.tensor([1.0, 2.0, 0.5])
            criterion = nn.CrossEntropyLoss(class_weights, ignore_index=0)
            legacy = nn.NLLLoss(class_weights, False)
            """,
            why="A class-weight tensor in the `weight` slot, and a literal legacy option.",
        ),
        Silent(
            """
            import torch.nn as nn

            def make(margin, p):
                return nn.TripletMarginLoss(margin, p), nn.MarginRankingLoss(margin)
            """,
            why="Configuration passed positionally through variables named like the parameters.",
        ),
        Silent(
            """
            import torch.nn as nn

            def loss_fn(pred, y):
                return nn.MSELoss()(pred, y)
            """,
            why="Instantiated, then called with the tensors.",
        ),
    )
