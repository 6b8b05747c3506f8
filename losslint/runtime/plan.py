"""What to run for one finding: the slice, its inputs, the reference and the probe's context.

Built in the parent process from the file text and the finding (no torch here). The
plan crosses to the worker as plain JSON. The reference is, in order of preference:
the fix the finding carries; for a value in the wrong domain, the same slice with
the value converted to the domain the loss expects (the activation removed, or
`log_softmax` / `sigmoid` / `exp` applied); otherwise the original slice in float64.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import libcst as cst

from losslint import contracts
from losslint.context import Context, shorten
from losslint.domains import Domain, Value, every
from losslint.facts import LossCall
from losslint.findings import Edit, Finding, Position, Span
from losslint.fixes import OverlappingEditsError, apply_edits
from losslint.interpreter import analyse
from losslint.objects import BoundMethod, Function, Layer
from losslint.runtime.inputs import InputSpec, Layout, Role, infer
from losslint.runtime.slicer import Slice, Slicer
from losslint.runtime.verdict import NotExecutable

# Probes that measure a loss call (the others measure the flagged expression itself).
LOSS_PROBES = frozenset({"wrong-input-domain", "vanishing-gradient", "broadcast"})
STATEMENT_PROBES = frozenset({"empty-mask"})
# Probes that do not drive the inputs they cannot place: an unknown input is just a float tensor for them.
LENIENT_PROBES = frozenset({"runs-as-written", "broadcast", "empty-mask", "ignore-dilution"})

_EXPECTED_ROLE = {Domain.LOGITS: Role.LOGITS, Domain.LOG_PROBABILITIES: Role.LOG_PROBABILITIES,
                  Domain.PROBABILITIES: Role.PROBABILITIES}


@dataclass(frozen=True)
class Program:
    source: str
    taps: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "taps": list(self.taps)}


@dataclass(frozen=True)
class Plan:
    code: str
    probe: str
    program: Program
    inputs: tuple[InputSpec, ...]
    layouts: tuple[Layout, ...]
    reference: Program | None = None
    # "fix" (the finding's own fix), "correct domain" (the value converted), "float64" or "".
    reference_kind: str = ""
    context: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "probe": self.probe,
            "program": self.program.to_dict(),
            "inputs": [spec.to_dict() for spec in self.inputs],
            "layouts": [layout.to_dict() for layout in self.layouts],
            "reference": self.reference.to_dict() if self.reference else None,
            "reference_kind": self.reference_kind,
            "context": self.context,
        }


_CACHE: dict[tuple[str, int], Context] = {}


def analysed(path: str, source: str) -> Context:
    """The parsed and analysed file (cached: several findings of one file share it)."""
    key = (path, hash(source))
    ctx = _CACHE.get(key)
    if ctx is None:
        try:
            module = cst.parse_module(source)
        except cst.ParserSyntaxError as error:
            raise NotExecutable(f"the file does not parse: {error.message}") from error
        ctx = Context(path, module, analyse(module))
        if len(_CACHE) > 32:
            _CACHE.clear()
        _CACHE[key] = ctx
    return ctx


def build(finding: Finding, source: str, probe: str) -> Plan:
    ctx = analysed(finding.path, source)
    anchor = locate(ctx, finding.span)
    if anchor is None:
        raise NotExecutable("the flagged expression was not found in the file")
    if finding.fix is not None and probe not in LOSS_PROBES | STATEMENT_PROBES:
        # Compare like with like: when the fix rewrites more than the flagged expression, tap what it rewrites.
        anchor = _fixed_region(ctx, anchor, finding) or anchor
    taps, overrides, include_statement, context, loss_call = _taps(ctx, anchor, ctx.span(anchor), probe)
    if not overrides:
        overrides = _caller_facts(ctx, Slicer(ctx).enclosing_function(anchor))
    if context.get("ignore_index") is None:
        context["ignore_index"] = _file_ignore_index(ctx)
    piece = Slicer(ctx).run(taps, include_statement=include_statement, overrides=overrides)
    if loss_call is not None:
        _known_arguments(piece, loss_call)
    # Running "as written" needs no stress variable: an input of unknown role is just a float tensor.
    inputs = infer(piece, lenient=probe in LENIENT_PROBES)
    specs = list(inputs.specs)
    _refuse_guessed_receivers(piece, specs)
    tap_spans = {name: ctx.span(node) for name, node in taps.items()}

    reference: Program | None = None
    kind = ""
    if finding.fix is not None:
        reference = _reference(finding.path, source, finding.fix.edits, tap_spans, overrides, include_statement,
                               piece)
        kind = "fix" if reference is not None else ""
    if reference is None and probe == "wrong-input-domain":
        reference, specs = _correct_domain(ctx, finding, source, taps, tap_spans, overrides, include_statement,
                                           piece, specs, context)
        kind = "correct domain" if reference is not None else ""
    if reference is None:
        kind = "float64"
    context["reference_kind"] = kind
    context["inputs"] = [spec.describe() for spec in specs]
    return Plan(finding.code, probe, Program(piece.source, tuple(piece.taps)), tuple(specs), inputs.layouts,
                reference, kind, context)


# ---------------------------------------------------------------------------
# What to tap
# ---------------------------------------------------------------------------


def _taps(ctx: Context, anchor: cst.BaseExpression, span: Span, probe: str):
    context: dict[str, Any] = {"anchor": shorten(ctx.text(anchor))}
    overrides: dict[str, Any] = {}
    if probe in LOSS_PROBES:
        match = loss_call_for(ctx, anchor, span)
        if match is None:
            raise NotExecutable("no loss call was found at the flagged expression")
        loss_call, param = match
        contract = loss_call.contract
        taps: dict[str, cst.BaseExpression] = {"loss": loss_call.node}
        for name, role in (("input", contract.input_param), ("target", contract.target_param)):
            if role in loss_call.args:
                taps[name] = loss_call.args[role]
        call_site = loss_call.helper_call or getattr(loss_call, "context_call", None)
        if call_site is not None:
            overrides = _arguments_at(ctx, call_site)
        context.update(_loss_context(ctx, loss_call, param))
        return taps, overrides, False, context, loss_call
    if probe in STATEMENT_PROBES:
        tap, include = _statement_result(ctx, anchor)
        return {"value": tap}, overrides, include, context, None
    taps = {"value": anchor}
    if probe == "runs-as-written":
        match = loss_call_for(ctx, anchor, span)
        if match is not None and match[1] is not None:
            taps["value"] = match[0].node  # a flagged loss argument: run the loss call it goes into
            context.update(_loss_context(ctx, match[0], match[1]))
    if probe == "ignore-dilution":
        receiver = _reduced(ctx, anchor)
        if receiver is not None:
            taps["elements"] = receiver
        match = loss_call_for(ctx, receiver or anchor, span, containing=True)
        if match is not None:
            context.update(_loss_context(ctx, match[0], match[1]))
    return taps, overrides, False, context, None


def _fixed_region(ctx: Context, anchor: cst.BaseExpression, finding: Finding) -> cst.BaseExpression | None:
    """The smallest expression covering the flagged one and the fix edits that overlap it."""
    span = ctx.span(anchor)
    start, end = span.start, span.end
    for edit in finding.fix.edits:
        if edit.span.start < span.end and span.start < edit.span.end:
            start, end = min(start, edit.span.start), max(end, edit.span.end)
    if (start, end) == (span.start, span.end):
        return None
    return locate(ctx, Span(start, end))


def _refuse_guessed_receivers(piece: Slice, specs: list[InputSpec]) -> None:
    """`accelerator.backward(loss)`, `scaler.scale(loss).backward()`: a method of an object --confirm knows
    nothing about is not a tensor method, whatever its name."""
    guessed = {spec.name: spec for spec in specs if spec.guessed}
    for tap in ("value", "loss"):
        text = piece.taps.get(tap)
        if text is None:
            continue
        call = ast.parse(text, mode="eval").body
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
            receiver = call.func.value
            while isinstance(receiver, ast.Attribute | ast.Subscript | ast.Call):
                receiver = receiver.func if isinstance(receiver, ast.Call) else receiver.value
            if isinstance(receiver, ast.Name) and receiver.id in guessed:
                raise NotExecutable(f"the flagged call is a method of `{guessed[receiver.id].source}`, which "
                                    "--confirm does not run (it could not tell what that object is)")


def _known_arguments(piece: Slice, loss_call: LossCall) -> None:
    """A loss argument that became an input (`outputs = model(x)`) takes what the analysis knows it holds
    at this loss call (e.g. probabilities from the model's softmax, followed through the caller)."""
    contract = loss_call.contract
    for tap, param in (("input", contract.input_param), ("target", contract.target_param)):
        text = piece.taps.get(tap)
        name = piece.aliases.get(text, text)
        known = loss_call.value(param)
        if name in piece.cuts and _has_domain(known) and not _has_domain(piece.cuts[name].values):
            piece.cuts[name].values = known


def _has_domain(values) -> bool:
    return bool(values) and all(v.domain is not Domain.UNKNOWN and v.obj is None for v in values)


def _loss_context(ctx: Context, loss_call: LossCall, param: str | None) -> dict[str, Any]:
    contract = loss_call.contract
    context: dict[str, Any] = {
        "loss": contract.key,
        "loss_label": shorten(loss_call.callee_text),
        "binary": contract.float_target,
        "index_target": contract.index_target,
        "ignore_index": loss_call.option("ignore_index"),
        "reduction": loss_call.option("reduction"),
    }
    if param is not None:
        values = loss_call.value(param)
        expected = loss_call.expected_input() if param == contract.input_param else loss_call.expected_target()
        context["param"] = param
        context["expected"] = expected.value if expected else None
        if values and every(values, lambda v: v.domain == values[0].domain):
            context["found"] = values[0].domain.value
            context["producer"] = values[0].producer
    return context


def loss_call_for(ctx: Context, node: cst.CSTNode, span: Span, containing: bool = False):
    """The loss call a finding is about, and which of its parameters the flagged expression is."""
    whole = None
    inside = None
    for loss_call in ctx.loss_calls:
        contract = loss_call.contract
        for param in (contract.input_param, contract.target_param):
            arg = loss_call.arg(param)
            if arg is not None and ctx.span(arg) == span:
                return loss_call, param
        call_span = ctx.span(loss_call.node) if loss_call.helper_call is None else ctx.span(loss_call.helper_call)
        if call_span == span and whole is None:
            whole = (loss_call, None)
        elif containing and call_span.contains(span) and inside is None:
            inside = (loss_call, None)
        elif containing and span.contains(call_span) and inside is None:
            inside = (loss_call, None)
    return whole or inside


def _caller_facts(ctx: Context, function: cst.FunctionDef | None) -> dict[str, Any]:
    """A parameter's facts from the calls of its function in this file, where they all agree on a domain
    (`masked_mean(losses, labels != -100)`: `m` is a mask)."""
    if function is None:
        return {}
    per_call = []
    for fact in ctx.calls:
        callee = ctx.analysis.values.get(fact.node.func) or ()
        targets = {id((v.obj.function if isinstance(v.obj, BoundMethod) else v.obj).node) for v in callee
                   if isinstance(v.obj, Function | BoundMethod)}
        if targets == {id(function)}:
            per_call.append(_arguments_at(ctx, fact.node))
    if not per_call:
        return {}
    agreed = {}
    for name, values in per_call[0].items():
        domains = {v.domain for call in per_call for v in call.get(name, ())}
        if all(name in call for call in per_call) and len(domains) == 1 and Domain.UNKNOWN not in domains \
                and all(v.obj is None for v in values):
            agreed[name] = values
    return agreed


def _file_ignore_index(ctx: Context) -> int | None:
    """The ignore_index of the file's loss calls, when they all use the same literal one."""
    found = {loss_call.option("ignore_index") for loss_call in ctx.loss_calls if loss_call.contract.index_target}
    found.discard(None)
    return found.pop() if len(found) == 1 and all(isinstance(v, int) for v in found) else None


def _arguments_at(ctx: Context, call: cst.Call) -> dict[str, Any]:
    """What the analysis knows about each argument the function holding the loss receives at `call`
    (the call through which the finding was made: a helper's caller, or the caller that passes the loss)."""
    values = ctx.analysis.values.get(call.func) or ()
    functions = [v.obj.function if isinstance(v.obj, BoundMethod) else v.obj for v in values
                 if isinstance(v.obj, Function | BoundMethod)]
    if not functions:
        return {}
    function = functions[0]
    params = function.node.params
    names = [p.name.value for p in (*params.posonly_params, *params.params)]
    static = any(isinstance(d.decorator, cst.Name) and d.decorator.value == "staticmethod"
                 for d in function.node.decorators)
    if function.owner is not None and names and not static:
        names = names[1:]
    overrides: dict[str, Any] = {}
    position = 0
    for arg in call.args:
        if arg.star:
            break
        if arg.keyword is not None:
            overrides[arg.keyword.value] = ctx.value(arg.value)
        elif position < len(names):
            overrides[names[position]] = ctx.value(arg.value)
            position += 1
    return overrides


def _statement_result(ctx: Context, anchor: cst.BaseExpression) -> tuple[cst.BaseExpression, bool]:
    """The value the flagged statement computes: the assigned expression, the returned one, or the updated name."""
    slicer = Slicer(ctx)
    statement = slicer.statement_of(anchor)
    if isinstance(statement, cst.AugAssign):
        return statement.target, True
    if isinstance(statement, cst.Assign | cst.AnnAssign) and statement.value is not None:
        return statement.value, False
    if isinstance(statement, cst.Return | cst.Expr) and statement.value is not None:
        return statement.value, False
    return anchor, False


def _reduced(ctx: Context, anchor: cst.BaseExpression) -> cst.BaseExpression | None:
    """`x` in `x.mean()` or `torch.mean(x)`."""
    fact = ctx.call(anchor)
    if fact is None:
        return None
    if fact.method is not None and isinstance(anchor.func, cst.Attribute):
        return anchor.func.value
    positional = [arg for arg in anchor.args if arg.keyword is None and not arg.star]
    return positional[0].value if positional else None


# ---------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------


def _reference(path, source, edits, tap_spans, overrides, include_statement, piece: Slice) -> Program | None:
    """The same taps sliced from the source with `edits` applied (None if that does not line up)."""
    try:
        modified = apply_edits(source, edits)
    except OverlappingEditsError:
        return None
    try:
        ctx = analysed(path + "#reference", modified)
    except NotExecutable:
        return None
    taps = {}
    for name, span in tap_spans.items():
        node = locate(ctx, _map_span(source, modified, edits, span))
        if node is None:
            return None
        taps[name] = node
    try:
        reference = Slicer(ctx).run(taps, include_statement=include_statement, overrides=overrides)
    except NotExecutable:
        return None
    if not set(reference.cuts) <= set(piece.cuts):
        return None  # the reference would need inputs the original does not have
    return Program(reference.source, tuple(reference.taps))


def _correct_domain(ctx, finding, source, taps, tap_spans, overrides, include_statement, piece, specs, context):
    """The slice with the offending value converted to the domain the loss expects."""
    found, expected = context.get("found"), context.get("expected")
    param = context.get("param")
    if not found or not expected or found == expected or param is None:
        return None, specs
    match = loss_call_for(ctx, taps["loss"], ctx.span(taps["loss"])) or loss_call_for(
        ctx, locate(ctx, finding.span), finding.span)
    argument = taps.get("input" if param == match[0].contract.input_param else "target") if match else None
    if argument is None:
        return None, specs
    # A value that reaches the loss as an input of the slice: generate it in the expected domain instead.
    cut = piece.aliases.get(argument.value, argument.value) if isinstance(argument, cst.Name) else None
    if cut in piece.cuts and Domain(expected) in _EXPECTED_ROLE:
        role = _EXPECTED_ROLE[Domain(expected)]
        converted = [spec if spec.name != cut else _with_reference_role(spec, role) for spec in specs]
        return Program(piece.source, tuple(piece.taps)), converted
    edits = _conversion_edits(ctx, match[0], param, argument, Domain(found), Domain(expected))
    if not edits:
        return None, specs
    return _reference(finding.path, source, edits, tap_spans, overrides, include_statement, piece), specs


def _with_reference_role(spec: InputSpec, role: Role) -> InputSpec:
    return replace(spec, reference_role=role)


def _conversion_edits(ctx: Context, loss_call: LossCall, param: str, argument: cst.BaseExpression,
                      found: Domain, expected: Domain) -> tuple[Edit, ...]:
    values = loss_call.value(param)
    value: Value = values[0]
    binary = loss_call.contract.float_target
    producer = value.producer_node
    same_function = producer is not None and _function_of(ctx, producer) is _function_of(ctx, argument)
    inner = _activation_input(ctx, producer, value) if same_function and found is Domain.PROBABILITIES else None
    sigmoid = "sigmoid" in (value.producer or "")
    if inner is not None:
        inner_text = ctx.text(inner)
        if expected is Domain.LOGITS:
            return (Edit(ctx.span(producer), inner_text),)
        if expected is Domain.LOG_PROBABILITIES:
            if sigmoid:
                name, imports = ctx.reference("torch.nn.functional.logsigmoid", ("torch.nn.functional", "F"))
                return (Edit(ctx.span(producer), f"{name}({inner_text})"), *imports)
            name, imports = ctx.reference("torch.log_softmax")
            return (Edit(ctx.span(producer), f"{name}({inner_text}, {_dim_text(ctx, producer)})"), *imports)
    text = ctx.text(argument)
    if found is Domain.PROBABILITIES and expected is Domain.LOGITS:
        function = "torch.logit" if sigmoid or binary else "torch.log"
    elif found is Domain.PROBABILITIES and expected is Domain.LOG_PROBABILITIES:
        function = "torch.log"
    elif found is Domain.LOGITS and expected is Domain.LOG_PROBABILITIES:
        name, imports = ctx.reference("torch.log_softmax")
        return (Edit(ctx.span(argument), f"{name}({text}, 1)"), *imports)
    elif found is Domain.LOGITS and expected is Domain.PROBABILITIES:
        if binary:
            function = "torch.sigmoid"
        else:
            name, imports = ctx.reference("torch.softmax")
            return (Edit(ctx.span(argument), f"{name}({text}, 1)"), *imports)
    elif found is Domain.LOG_PROBABILITIES and expected is Domain.PROBABILITIES:
        function = "torch.exp"
    else:
        return ()
    name, imports = ctx.reference(function)
    return (Edit(ctx.span(argument), f"{name}({text})"), *imports)


def _activation_input(ctx: Context, producer: cst.CSTNode, value: Value) -> cst.BaseExpression | None:
    inner = contracts.activation_input(ctx, producer)
    if inner is not None:
        return inner
    if value.form_arg is not None and "hand-written" in (value.producer or ""):
        return value.form_arg
    fact = ctx.call(producer)
    if fact is not None and isinstance(producer, cst.Call):
        callee = ctx.analysis.values.get(producer.func) or ()
        if callee and all(isinstance(v.obj, Layer) for v in callee):
            positional = [a for a in producer.args if a.keyword is None and not a.star]
            return positional[0].value if positional else None
    return None


def _dim_text(ctx: Context, producer: cst.CSTNode) -> str:
    """The `dim` of a softmax call: `softmax(x, d)`, `x.softmax(d)`, `softmax(x, dim=d)`."""
    if isinstance(producer, cst.Call):
        for arg in producer.args:
            if arg.keyword is not None and arg.keyword.value == "dim":
                return f"dim={ctx.text(arg.value)}"
        positional = [a for a in producer.args if a.keyword is None]
        fact = ctx.call(producer)
        index = 0 if fact is not None and fact.method is not None else 1
        if len(positional) > index:
            return f"dim={ctx.text(positional[index].value)}"
    return "dim=1"


def _function_of(ctx: Context, node: cst.CSTNode) -> cst.FunctionDef | None:
    return Slicer(ctx).enclosing_function(node) if node is not None else None


# ---------------------------------------------------------------------------
# Locations
# ---------------------------------------------------------------------------


def _preorder(root: cst.CSTNode) -> Iterator[cst.CSTNode]:
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def locate(ctx: Context, span: Span) -> cst.BaseExpression | None:
    """The outermost expression with exactly `span`, else the innermost one containing it."""
    containing = None
    for node in _preorder(ctx.module):
        if not isinstance(node, cst.BaseExpression):
            continue
        try:
            node_span = ctx.span(node)
        except KeyError:
            continue
        if node_span == span:
            return node
        if node_span.contains(span):
            containing = node
    return containing


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for index, char in enumerate(text):
        if char == "\n":
            starts.append(index + 1)
    return starts


def _offset(starts: list[int], text: str, position: Position) -> int:
    if position.line - 1 >= len(starts):
        return len(text)
    return min(starts[position.line - 1] + position.column - 1, len(text))


def _position(starts: list[int], offset: int) -> Position:
    line = max(i for i, start in enumerate(starts) if start <= offset)
    return Position(line + 1, offset - starts[line] + 1)


def _map_span(before: str, after: str, edits, span: Span) -> Span:
    """Where `span` of `before` sits in `after` (the edits applied)."""
    starts = _line_starts(before)
    ranges = sorted((_offset(starts, before, e.span.start), _offset(starts, before, e.span.end), e.content)
                    for e in edits)

    def moved(offset: int, end: bool) -> int:
        shift = 0
        for start, stop, content in ranges:
            if stop <= offset:
                shift += len(content) - (stop - start)
            elif start < offset < stop:
                return start + shift + (len(content) if end else 0)
        return offset + shift

    new_starts = _line_starts(after)
    return Span(_position(new_starts, moved(_offset(starts, before, span.start), False)),
                _position(new_starts, moved(_offset(starts, before, span.end), True)))
