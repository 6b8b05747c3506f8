"""LL504: a loss that carries its autograd graph accumulated across training iterations."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from losslint import torch_api as api
from losslint.domains import Domain
from losslint.findings import Applicability, Severity
from losslint.labels import short
from losslint.objects import BoundMethod, Function
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent
from losslint.tensors import grad_disabled


@dataclass(frozen=True)
class _Accumulation:
    node: cst.CSTNode  # the accumulating statement (or the `.append(...)` call)
    accumulator: str  # `total_loss`, `self.running_loss`, `losses`
    added: cst.BaseExpression  # what is added or appended
    frame: object


class LossAccumulatedWithGraph(Rule):
    """
    ## What it does
    Finds `total += loss`, `total = total + loss` and `losses.append(loss)` inside a loop where `loss`
    still carries its autograd graph (no `.item()`, `.detach()`, `float(...)`), the accumulator lives
    across the loop's iterations, and the loop back-propagates something else every iteration (or the
    accumulator is only read as a number, `total.item()`): a running total for logging, not a loss to
    optimise.

    ## Why is this bad?
    Each `total + loss` is a new node of the autograd graph that keeps every previous iteration's
    graph reachable: memory grows with every step (activations until their `backward`, graph nodes
    after it) until the epoch ends or the run is killed by an out-of-memory error. The PyTorch FAQ
    names it first: "total_loss is accumulating history across your training loop".

    ## Example
    ```python
    total_loss = 0
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        total_loss += loss
    ```

    ## Use instead
    ```python
    total_loss = 0
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        total_loss += loss.detach()  # or loss.item()
    ```

    ## Fix safety
    The fix accumulates `loss.detach()`: the same numbers, without the graph. It is **unsafe**: code
    that later back-propagates through the accumulator (outside this file, or in ways not seen here)
    would lose its gradient. Not reported: python numbers (including helpers that return
    `loss.item()`), code under `torch.no_grad()` / `torch.inference_mode()` (or a
    `torch.set_grad_enabled(...)` whose argument is not known), and a multi-term loss
    summed in an inner loop and back-propagated once (`loss = 0; for head in heads: loss += …;
    loss.backward()`, `torch.stack(losses).mean().backward()`).

    ## References
    - [PyTorch FAQ: my model reports "cuda runtime error(2): out of memory"](https://pytorch.org/docs/stable/notes/faq.html#my-model-reports-cuda-runtime-error-2-out-of-memory):
      "Don't accumulate history across your training loop."
    """

    code = "LL504"
    name = "loss-accumulated-with-graph"
    summary = "Loss with its autograd graph accumulated across iterations: memory grows every step"
    severity = Severity.WARNING
    fix_availability = Applicability.UNSAFE
    tokens = ("backward", "item", "float")

    def check(self, ctx):
        backwards = _backward_calls(ctx)
        for accumulation in _accumulations(ctx):
            frame = accumulation.frame
            if not frame.loops or grad_disabled(frame.contexts) or \
                    api.SWITCHED_GRAD_CONTEXTS.intersection(frame.contexts):
                continue
            loop = frame.loops[-1]
            if _resets(ctx, accumulation, loop):
                continue
            function = frame.function
            differentiated = _differentiated_names(ctx, backwards, function)
            if _root(accumulation.accumulator) in differentiated:
                continue  # the accumulator is the loss being optimised
            in_loop = [(call, names) for call, names in backwards if loop in call.frame.blocks]
            steps = [call for call, names in in_loop if _root(accumulation.accumulator) not in names]
            graph = _graph_evidence(ctx, accumulation.added, in_loop)
            if graph is None:
                continue
            if not steps and not _helper_steps(ctx, loop, backwards) and not _read_as_number(ctx, accumulation):
                continue
            yield self._report(ctx, accumulation, loop, graph, steps)

    def _report(self, ctx, accumulation, loop, graph, steps) -> Report:
        added = accumulation.added
        text = ctx.text(added)
        detached = f"{text}.detach()" if isinstance(added, cst.Name | cst.Attribute | cst.Call | cst.Subscript) \
            else f"({text}).detach()"
        where = f"the loop at line {ctx.line(loop)}"
        step = f", which calls `{short(ctx.text(steps[0].node))}` every iteration" if steps else ""
        evidence = [graph, f"line {ctx.line(loop)}: `{accumulation.accumulator}` lives across the iterations of "
                           "this loop"]
        evidence.extend(f"line {ctx.line(call.node)}: `{short(ctx.text(call.node))}` back-propagates each "
                        "iteration" for call in steps[:1] if not graph.startswith(f"line {ctx.line(call.node)}:"))
        return Report(
            node=accumulation.node,
            message=(f"`{short(ctx.text(accumulation.node))}` keeps `{short(text)}`'s autograd graph alive: "
                     f"`{accumulation.accumulator}` is carried across {where}{step}, so the graphs of all those "
                     f"steps stay in memory as long as `{accumulation.accumulator}` does"),
            evidence=tuple(evidence),
            hint=f"accumulate `{short(text)}.item()` or `{short(text)}.detach()`",
            fix=FixPlan("Accumulate the value without its graph (`.detach()`)", Applicability.UNSAFE,
                        ((added, detached),)),
        )

    flagged = (
        Flagged(
            """
            def train_epoch(model, loader, criterion, optimizer):
                total_loss = 0.0
                for x, y in loader:
                    optimizer.zero_grad()
                    loss = criterion(model(x), y)
                    loss.backward()
                    optimizer.step()
                    total_loss += loss
                return total_loss / len(loader)
            """,
            anchor="total_loss += loss",
            fixed="""
            def train_epoch(model, loader, criterion, optimizer):
                total_loss = 0.0
                for x, y in loader:
                    optimizer.zero_grad()
                    loss = criterion(model(x), y)
                    loss.backward()
                    optimizer.step()
                    total_loss += loss.detach()
                return total_loss / len(loader)
            """,
        ),
        Flagged(
            """
            import torch.nn as nn

            class Trainer:
                def __init__(self, model):
                    self.model = model
                    self.criterion = nn.CrossEntropyLoss()

                def fit(self, loader, optimizer):
                    losses = []
                    for images, labels in loader:
                        loss = self.criterion(self.model(images), labels)
                        optimizer.zero_grad()
                        loss.backward()
                        optimizer.step()
                        losses.append(loss)
                    return losses
            """,
            anchor="losses.append(loss)",
            fixed="""
            import torch.nn as nn

            class Trainer:
                def __init__(self, model):
                    self.model = model
                    self.criterion = nn.CrossEntropyLoss()

                def fit(self, loader, optimizer):
                    losses = []
                    for images, labels in loader:
                        loss = self.criterion(self.model(images), labels)
                        optimizer.zero_grad()
                        loss.backward()
                        optimizer.step()
                        losses.append(loss.detach())
                    return losses
            """,
        ),
        Flagged(
            """
            import torch.nn.functional as F

            def validate(model, loader):
                model.eval()
                val_loss = 0
                for x, y in loader:
                    val_loss = val_loss + F.cross_entropy(model(x), y) * x.size(0)
                print(f"val loss {val_loss.item() / len(loader.dataset):.4f}")
            """,
            anchor="val_loss = val_loss + F.cross_entropy(model(x), y) * x.size(0)",
        ),
        Flagged(
            """
            def train(model, batches, optimizer, accelerator):
                running = 0
                for step, batch in enumerate(batches):
                    outputs = model(**batch)
                    loss = outputs.loss
                    accelerator.backward(loss)
                    optimizer.step()
                    running += loss
                    if step % 100 == 0:
                        print(running / (step + 1))
            """,
            anchor="running += loss",
        ),
    )
    silent = (
        Silent(
            """
            def train_epoch(model, loader, criterion, optimizer):
                total_loss = 0.0
                for x, y in loader:
                    loss = criterion(model(x), y)
                    loss.backward()
                    optimizer.step()
                    total_loss += loss.item()
                return total_loss / len(loader)
            """,
            why="`.item()` accumulates a python number.",
        ),
        Silent(
            """
            def train_step(model, batch, criterion, optimizer):
                loss = criterion(model(batch[0]), batch[1])
                loss.backward()
                optimizer.step()
                return loss.item()

            def train_epoch(model, loader, criterion, optimizer):
                total = 0
                for batch in loader:
                    total += train_step(model, batch, criterion, optimizer)
                return total
            """,
            why="The helper returns `loss.item()`: a python number (seen through the in-file summary).",
        ),
        Silent(
            """
            def train(model, loader, heads, criterion, optimizer):
                for x, ys in loader:
                    features = model(x)
                    loss = 0
                    for head, y in zip(heads, ys):
                        loss += criterion(head(features), y)
                    loss.backward()
                    optimizer.step()
            """,
            why="A multi-term loss summed in an inner loop and back-propagated once per iteration.",
        ),
        Silent(
            """
            import torch

            def train(model, loader, criterion, optimizer):
                for chunks in loader:
                    losses = []
                    for x, y in chunks:
                        losses.append(criterion(model(x), y))
                    torch.stack(losses).mean().backward()
                    optimizer.step()
            """,
            why="The collected losses are the loss that is back-propagated.",
        ),
        Silent(
            """
            import torch

            @torch.no_grad()
            def evaluate(model, loader, criterion):
                total = 0
                for x, y in loader:
                    total += criterion(model(x), y)
                print(total.item())

            def evaluate_again(model, loader, criterion):
                total = 0
                with torch.no_grad():
                    for x, y in loader:
                        total += criterion(model(x), y)
                return total.item()
            """,
            why="Under torch.no_grad() nothing records a graph.",
        ),
    )


def _accumulations(ctx):
    """`acc += x`, `acc = acc + x`, `acc.append(x)` statements."""
    for fact in ctx.statements:
        node = fact.node
        if isinstance(node, cst.AugAssign) and isinstance(node.operator, cst.AddAssign):
            target = _accumulator_text(ctx, node.target)
            if target is not None:
                yield _Accumulation(node, target, node.value, fact.frame)
        elif isinstance(node, cst.Assign) and len(node.targets) == 1 and isinstance(node.value, cst.BinaryOperation) \
                and isinstance(node.value.operator, cst.Add):
            target = _accumulator_text(ctx, node.targets[0].target)
            if target is None:
                continue
            left, right = node.value.left, node.value.right
            if ctx.text(left) == target:
                yield _Accumulation(node, target, right, fact.frame)
            elif ctx.text(right) == target:
                yield _Accumulation(node, target, left, fact.frame)
    for call in ctx.calls:
        func = call.node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "append" and len(call.node.args) == 1 and \
                call.node.args[0].keyword is None and not call.node.args[0].star:
            target = _accumulator_text(ctx, func.value)
            if target is not None:
                yield _Accumulation(call.node, target, call.node.args[0].value, call.frame)


def _accumulator_text(ctx, node) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name):
        return ctx.text(node)
    return None


def _root(text: str) -> str:
    return text.split(".", 1)[0] if not text.startswith("self.") else text


def _resets(ctx, accumulation, loop) -> bool:
    """Whether every iteration of the loop assigns the accumulator afresh (it then lives for one iteration).

    A reset under an `if` (`if step % 100 == 0: running = 0`) still lets it grow over many iterations.
    """
    for fact in ctx.statements:
        if fact.node is accumulation.node or loop not in fact.frame.blocks or \
                fact.frame.function is not accumulation.frame.function:
            continue
        inner = fact.frame.blocks[fact.frame.blocks.index(loop) + 1:]
        if any(isinstance(block, cst.If | cst.For | cst.While | cst.Match) for block in inner):
            continue
        if isinstance(fact.node, cst.Assign | cst.AnnAssign) and any(
                _accumulator_text(ctx, target) == accumulation.accumulator for target in fact.targets):
            return True
    return False


def _backward_calls(ctx):
    """Every back-propagating call with the names of what it differentiates."""
    found = []
    for call in ctx.calls:
        func = call.node.func
        if isinstance(func, cst.Attribute) and func.attr.value in api.BACKWARD_DELEGATES:
            parts = [func.value, *(arg.value for arg in call.node.args if arg.keyword is None)]
        elif call.qualname in api.BACKWARD_FUNCTIONS and call.node.args:
            parts = [call.node.args[0].value]
        else:
            continue
        found.append((call, frozenset(name for part in parts for name in _names(ctx, part))))
    return found


def _names(ctx, node) -> set[str]:
    """Names and `self.x` attributes an expression reads."""
    names: set[str] = set()

    class Collect(cst.CSTVisitor):
        def visit_Attribute(self, attribute: cst.Attribute) -> bool:
            if isinstance(attribute.value, cst.Name) and attribute.value.value == "self":
                names.add(ctx.text(attribute))
                return False
            return True

        def visit_Name(self, name: cst.Name) -> None:
            names.add(name.value)

    node.visit(Collect())
    return names


def _differentiated_names(ctx, backwards, function) -> set[str]:
    """Names whose values reach a backward call in `function`, through its assignments."""
    names = {name for call, called in backwards if call.frame.function is function for name in called}
    changed = True
    while changed:
        changed = False
        for fact in ctx.statements:
            if fact.frame.function is not function:
                continue
            targets = {_accumulator_text(ctx, target) for target in fact.targets}
            value = getattr(fact.node, "value", None)
            if value is not None and targets & names:
                added = _names(ctx, value) - names
                if added:
                    names |= added
                    changed = True
        for call in ctx.calls:
            func = call.node.func
            if call.frame.function is function and isinstance(func, cst.Attribute) and func.attr.value in (
                    "append", "extend") and _accumulator_text(ctx, func.value) in names:
                added = {n for arg in call.node.args for n in _names(ctx, arg.value)} - names
                if added:
                    names |= added
                    changed = True
    return names


def _graph_evidence(ctx, added, in_loop) -> str | None:
    """Why the added value carries an autograd graph, or None."""
    values = ctx.value(added)
    if not values or any(v.carries_graph is False or v.domain is Domain.NUMBER for v in values):
        return None
    if all(v.carries_graph for v in values):
        origin = values[0].producer_node
        if origin is not None:
            return f"line {ctx.line(origin)}: `{short(ctx.text(origin))}` carries an autograd graph"
        return f"line {ctx.line(added)}: `{short(ctx.text(added))}` carries an autograd graph"
    if isinstance(added, cst.BinaryOperation):
        return _graph_evidence(ctx, added.left, in_loop) or _graph_evidence(ctx, added.right, in_loop)
    if isinstance(added, cst.Name | cst.Attribute):
        for call, _ in in_loop:
            leaf = _differentiated_leaf(_differentiated(call.node))
            if leaf is not None and ctx.text(leaf) == ctx.text(added):
                return f"line {ctx.line(call.node)}: `{short(ctx.text(call.node))}` back-propagates it, so it " \
                       "carries a graph"
    return None


def _differentiated(node: cst.Call) -> cst.BaseExpression:
    """`loss` in `loss.backward()`, `accelerator.backward(loss)`, `torch.autograd.backward(loss)`."""
    positional = [arg.value for arg in node.args if arg.keyword is None]
    if isinstance(node.func, cst.Attribute) and node.func.attr.value == "backward" and not positional:
        return node.func.value
    return positional[0] if positional else node.func


def _differentiated_leaf(node: cst.BaseExpression) -> cst.BaseExpression | None:
    """The loss inside `scaler.scale(loss)`, `(loss / accum_steps)`, `loss.mean()`."""
    while True:
        if isinstance(node, cst.Name | cst.Attribute):
            return node
        if isinstance(node, cst.BinaryOperation):
            node = node.left
        elif isinstance(node, cst.Subscript):
            node = node.value
        elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and not node.args:
            node = node.func.value  # loss.mean(), loss.float()
        elif isinstance(node, cst.Call) and node.args and node.args[0].keyword is None:
            node = node.args[0].value  # scaler.scale(loss), torch.mean(loss)
        else:
            return None


def _helper_steps(ctx, loop, backwards) -> bool:
    """A call inside the loop of an in-file function that back-propagates (a `train_step` helper)."""
    stepping = {id(call.frame.function.node) for call, _ in backwards if call.frame.function is not None}
    for call in ctx.calls:
        if loop not in call.frame.blocks:
            continue
        for value in ctx.value(call.node.func):
            function = value.obj.function if isinstance(value.obj, BoundMethod) else value.obj
            if isinstance(function, Function) and id(function.node) in stepping:
                return True
    return False


def _read_as_number(ctx, accumulation) -> bool:
    """`acc.item()` or `float(acc)` in the same function: the accumulator is a number to report."""
    for call in ctx.calls:
        if call.frame.function is not accumulation.frame.function:
            continue
        func = call.node.func
        if isinstance(func, cst.Attribute) and func.attr.value in ("item", "tolist") and \
                ctx.text(func.value) == accumulation.accumulator:
            return True
        if call.qualname in ("builtins.float", "builtins.int") and len(call.node.args) == 1 and \
                ctx.text(call.node.args[0].value) == accumulation.accumulator:
            return True
    return False
