"""LL502: a loss class stored without instantiation (`self.loss = nn.CrossEntropyLoss`), then called with tensors."""

import libcst as cst

from losslint import constructors
from losslint.findings import Applicability
from losslint.objects import LossClass
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class LossClassNotInstantiated(Rule):
    """
    ## What it does
    Finds a torch loss *class* stored in a variable, an attribute or a default argument
    (`self.criterion = nn.CrossEntropyLoss`, `def __init__(self, loss=nn.MSELoss)`) and later called
    with the prediction and the target (`self.criterion(scores, labels)`).

    ## Why is this bad?
    The call does not compute a loss: it constructs a new loss module, with the tensors as
    constructor arguments (`scores` becomes the class `weight`, `labels` becomes `size_average`).
    Torch stops with "Boolean value of Tensor with more than one value is ambiguous", or — for
    one-element tensors — hands back a module where the training loop expects a loss.

    ## Example
    ```python
    self.criterion = nn.CrossEntropyLoss
    ...
    loss = self.criterion(scores, labels)
    ```

    ## Use instead
    ```python
    self.criterion = nn.CrossEntropyLoss()
    ...
    loss = self.criterion(scores, labels)
    ```

    ## Fix safety
    The fix instantiates the class where it is stored (`nn.CrossEntropyLoss()`). It is **unsafe**:
    any other use of the stored name that relied on it being a class (to build it with options
    later) breaks.

    ## References
    - [torch.nn.CrossEntropyLoss](https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html):
      the module is constructed (`CrossEntropyLoss(weight=None, …)`), then called with input and target.
    """

    code = "LL502"
    name = "loss-class-not-instantiated"
    summary = "Loss class stored without () and then called with tensors: it builds a module, not a loss"
    fix_availability = Applicability.UNSAFE
    tokens = ("Loss",)
    probe = "runs-as-written"
    supersedes = ("LL501", "LL503")

    def check(self, ctx):
        for call in ctx.calls:
            callee = ctx.value(call.node.func)
            stored = [value for value in callee if isinstance(value.obj, LossClass) and value.trail]
            # A parameter whose default is the class: the default itself is broken, whatever callers pass.
            passed = [value for value in callee if value.param is not None and value.obj is None]
            if not stored or len(stored) + len(passed) != len(callee):
                continue
            loss_class = stored[0].obj
            misplaced = constructors.forward_inputs(ctx, call.node, loss_class.contract)
            if misplaced is None:
                continue
            where = stored[0].trail[0]
            name = loss_class.contract.module_name
            reference = _stored_reference(ctx, stored[0])
            fix = None
            if reference is not None:
                fix = FixPlan(f"Store an instance: `{ctx.text(reference)}()`", Applicability.UNSAFE,
                              ((reference, f"{ctx.text(reference)}()"),))
            yield Report(
                node=call.node,
                message=(f"`{ctx.text(call.node.func)}` holds the class `{name}` itself, not an instance (stored in "
                         f"`{where.text}`, line {ctx.line(where.node)}): this call builds a new `{name}` with "
                         f"{constructors.landing(ctx, misplaced)} instead of computing the loss"),
                evidence=tuple(f"line {ctx.line(step.node)}: the class is stored in `{step.text}`"
                               for step in stored[0].trail if step.node is not None),
                hint=f"instantiate the loss where it is stored: `{name}()`",
                fix=fix,
            )

    flagged = (
        Flagged(
            """
            import torch.nn as nn

            class Model(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(16, 3)
                    self.criterion = nn.CrossEntropyLoss

                def training_step(self, x, labels):
                    scores = self.fc(x)
                    return self.criterion(scores, labels)
            """,
            anchor="self.criterion(scores, labels)",
            fixed="""
            import torch.nn as nn

            class Model(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(16, 3)
                    self.criterion = nn.CrossEntropyLoss()

                def training_step(self, x, labels):
                    scores = self.fc(x)
                    return self.criterion(scores, labels)
            """,
        ),
        Flagged(
            """
            from torch.nn import MSELoss

            loss_fn = MSELoss

            def evaluate(model, x, y):
                return loss_fn(model(x), y).item()
            """,
            anchor="loss_fn(model(x), y)",
            fixed="""
            from torch.nn import MSELoss

            loss_fn = MSELoss()

            def evaluate(model, x, y):
                return loss_fn(model(x), y).item()
            """,
        ),
        Flagged(
            """
            import torch

            class Regressor:
                def __init__(self, model, loss=torch.nn.SmoothL1Loss):
                    self.model = model
                    self.loss = loss

                def step(self, x, y):
                    return self.loss(self.model(x), y)
            """,
            anchor="self.loss(self.model(x), y)",
        ),
    )
    silent = (
        Silent(
            """
            import torch.nn as nn

            class Model(nn.Module):
                def __init__(self, weights):
                    super().__init__()
                    self.loss_cls = nn.CrossEntropyLoss
                    self.criterion = self.loss_cls(weight=weights)

                def training_step(self, scores, labels):
                    return self.criterion(scores, labels)
            """,
            why="The stored class is instantiated with options, and the instance is called.",
        ),
        Silent(
            """
            import torch.nn as nn

            LOSSES = {"mse": nn.MSELoss, "l1": nn.L1Loss}

            def build(name, reduction):
                return LOSSES[name](reduction=reduction)
            """,
            why="A registry of loss classes, instantiated by name.",
        ),
    )


def _stored_reference(ctx, value) -> cst.BaseExpression | None:
    """The expression that named the class without calling it, when it is the stored value itself."""
    node = value.obj.node
    if isinstance(node, cst.Name | cst.Attribute) and ctx.parent(node) is not None and \
            not isinstance(ctx.parent(node), cst.Call):
        return node
    first = value.trail[0].node
    for fact in ctx.statements:
        if isinstance(fact.node, cst.Assign) and any(target is first for target in fact.targets):
            rhs = fact.node.value
            if isinstance(rhs, cst.Name | cst.Attribute) and all(
                    isinstance(v.obj, LossClass) for v in ctx.value(rhs)):
                return rhs
    return None
