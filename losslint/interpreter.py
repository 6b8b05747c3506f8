"""The value-domain dataflow: an abstract interpreter over one file's syntax tree.

It walks the module, then every function and method, keeping for each local
name the values of all its reaching definitions (branches join, loop bodies run
twice so loop-carried values reach their uses). Calls resolve through the
file's imports and assignments to torch functions, loss instances, layers,
models and local helpers; what torch operations do to a value comes from
`torch_api` (the tables) and `transfer` (the maths). The result is a
`FileAnalysis`: facts that rules query.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field, replace
from typing import Any

import libcst as cst

from losslint import masks, tensors, transfer
from losslint import torch_api as api
from losslint.domains import UNKNOWN, AbsVal, Domain, Form, Padding, Step, Value, join, single
from losslint.facts import BinOpFact, CallFact, Frame, LossCall, StatementFact, bind_arguments
from losslint.objects import (
    MISSING,
    BoundMethod,
    PatchedModel,
    ClassInfo,
    Function,
    Instance,
    Iterable,
    Layer,
    LossClass,
    LossObject,
    Mapping,
    Sequence,
    Sequential,
    literal,
)

_BUILTIN_NAMES = frozenset(dir(builtins))
_BINARY_OPERATORS = {
    cst.Add: "+", cst.Subtract: "-", cst.Multiply: "*", cst.Divide: "/", cst.FloorDivide: "//",
    cst.Modulo: "%", cst.Power: "**", cst.MatrixMultiply: "@", cst.BitAnd: "&", cst.BitOr: "|",
    cst.BitXor: "^", cst.LeftShift: "<<", cst.RightShift: ">>",
}
_AUGMENTED_OPERATORS = {
    cst.AddAssign: "+", cst.SubtractAssign: "-", cst.MultiplyAssign: "*", cst.DivideAssign: "/",
    cst.FloorDivideAssign: "//", cst.ModuloAssign: "%", cst.PowerAssign: "**", cst.MatrixMultiplyAssign: "@",
    cst.BitAndAssign: "&", cst.BitOrAssign: "|", cst.BitXorAssign: "^",
}
# Loop bodies nested deeper than this run once (their values still join), to bound the work.
_MAX_REPEATED_LOOP_DEPTH = 2


@dataclass
class Summary:
    """What calling a local function gives: its return values and which parameters reach a loss."""

    returns: AbsVal
    # (parameter index, the loss call inside, the loss parameter it feeds)
    param_sinks: list[tuple[int, LossCall, str]] = field(default_factory=list)
    # (parameter index, a division inside whose denominator is that parameter's sum)
    param_divisions: list[tuple[int, BinOpFact]] = field(default_factory=list)


@dataclass
class FileAnalysis:
    module: cst.Module
    package: str | None = None
    calls: dict[cst.Call, CallFact] = field(default_factory=dict)
    loss_calls: dict[tuple[cst.Call, str], LossCall] = field(default_factory=dict)
    binops: dict[cst.CSTNode, BinOpFact] = field(default_factory=dict)
    # Binary operations inside helpers as seen from one call: (operation, call) → fact with the caller's operand.
    derived_binops: dict[tuple[cst.CSTNode, cst.Call], BinOpFact] = field(default_factory=dict)
    statements: dict[cst.CSTNode, StatementFact] = field(default_factory=dict)
    values: dict[cst.CSTNode, AbsVal] = field(default_factory=dict)
    # Loss and layer constructions: the constructor call and what it built.
    constructions: dict[cst.Call, Value] = field(default_factory=dict)
    functions: list[Function] = field(default_factory=list)
    summaries: dict[int, Summary | None] = field(default_factory=dict)
    module_env: dict[str, AbsVal] = field(default_factory=dict)
    # Import bindings at module level: qualified name → local name.
    imports: dict[str, str] = field(default_factory=dict)
    # The module body while it runs (its bindings are the globals functions see meanwhile).
    module_body: Any = None
    # How many call-site re-interpretations enclose this analysis (see loss_calls_in_context).
    context_depth: int = 0

    def value(self, node: cst.CSTNode) -> AbsVal:
        return self.values.get(node, UNKNOWN)

    def loss_calls_in_context(self, function: Function, bindings: dict[int, AbsVal]) -> list[LossCall]:
        """The loss calls of `function` re-interpreted with one caller's argument values.

        Generic summaries see parameters as unknown; a training loop written as
        `train(model, loader, criterion)` only shows its bug with the caller's model and
        criterion. One level deep, on a private copy of the facts so the generic ones stay.
        """
        if self.context_depth >= 1:
            return []
        shadow = replace(self, calls={}, loss_calls={}, binops={}, derived_binops={}, statements={}, values={},
                         constructions={}, functions=list(self.functions), summaries=dict(self.summaries),
                         context_depth=self.context_depth + 1)
        _Body(shadow, function, bindings).run()
        return list(shadow.loss_calls.values())

    def summary(self, function: Function) -> Summary:
        key = id(function.node)
        if key in self.summaries:
            return self.summaries[key] or Summary(UNKNOWN)
        self.summaries[key] = None  # recursion guard
        summary = _Body(self, function).run()
        self.summaries[key] = summary
        return summary


def analyse(module: cst.Module, package: str | None = None) -> FileAnalysis:
    analysis = FileAnalysis(module, package)
    body = _Body(analysis, None)
    # Functions called while the module body runs (`model = Net(); out = model(x)` at top
    # level) must see the globals bound so far.
    analysis.module_body = body
    body.run()
    analysis.module_body = None
    analysis.module_env = body.env
    for function in list(analysis.functions):
        analysis.summary(function)
    return analysis


class _Body:
    """Interprets one body: the module's, or one function's."""

    def __init__(
        self, analysis: FileAnalysis, function: Function | None, bindings: dict[int, AbsVal] | None = None
    ) -> None:
        self.analysis = analysis
        self.module = analysis.module
        self.function = function
        # Argument values of one caller, by parameter position (empty: parameters are unknown).
        self.bindings = bindings or {}
        self.env: dict[str, AbsVal] = {}
        self.blocks: list[cst.CSTNode] = []
        self.contexts: list[str] = []
        self.statement: cst.CSTNode | None = None
        self.returns: list[AbsVal] = []
        self.param_sinks: list[tuple[int, LossCall, str]] = []
        self.param_divisions: list[tuple[int, BinOpFact]] = []
        self.self_name: str | None = None
        self.loop_depth = 0

    # -- entry ------------------------------------------------------------

    def run(self) -> Summary:
        if self.function is None:
            self._statements(self.module.body)
            return Summary(UNKNOWN)
        function = self.function
        if function.closure:
            self.env.update(function.closure)
        owner = function.owner
        if owner is not None and not owner.analysed:
            self._prepare_class(owner)
        self._bind_parameters(function)
        self.contexts.extend(self._grad_decorators(function.node))
        body = function.node.body
        if isinstance(body, cst.IndentedBlock):
            self._statements(body.body)
        else:
            self._statements(body.body)
        returns = join(*self.returns) if self.returns else single(Value(Domain.NUMBER))
        return Summary(returns, self.param_sinks, self.param_divisions)

    def _grad_decorators(self, node: cst.FunctionDef) -> list[str]:
        """`@torch.no_grad()` / `@torch.inference_mode()` on the function: its body runs without autograd."""
        names = []
        for decorator in node.decorators:
            qualname = _callee_qualname(self.analysis.value(decorator.decorator), decorator.decorator, self.analysis)
            if qualname in api.NO_GRAD_CONTEXTS or qualname in api.ENABLE_GRAD_CONTEXTS:
                names.append(qualname)
        return names

    def _prepare_class(self, owner: ClassInfo) -> None:
        """Analyse constructors first so that other methods see what `self.<attr>` holds."""
        owner.analysed = True
        for name in ("__init__", "setup", "build", "reset_parameters"):
            method = owner.methods.get(name)
            if method is not None and method is not self.function:
                self.analysis.summary(method)

    def _bind_parameters(self, function: Function) -> None:
        params = function.node.params
        ordered = [*params.posonly_params, *params.params]
        is_method = function.owner is not None and not _is_static(function.node)
        for index, param in enumerate(ordered):
            name = param.name.value
            if index == 0 and is_method:
                self.self_name = name
                self.env[name] = single(Value(obj=_SelfMarker(function.owner)))
                continue
            position = index - (1 if is_method else 0)
            default = function.defaults.get(name)
            if position in self.bindings:
                self.env[name] = tuple(v.through(name, param.name) for v in self.bindings[position])
                continue
            marker = Value(param=position, trail=(Step(name, param.name),), obj=self._annotated_instance(param),
                           source_name=name if tensors.is_label_name(name) else None)
            marker = masks.mark_by_name(name, single(marker), param.name)
            if default:
                # The default reaches the body through the parameter: it is part of the evidence chain.
                default = tuple(v.through(name, param.name) for v in default)
            self.env[name] = join(marker, default) if default else marker
        for param in params.kwonly_params:
            default = function.defaults.get(param.name.value)
            named = masks.mark_by_name(param.name.value, UNKNOWN, param.name)
            if default is None:
                self.env[param.name.value] = named
            else:  # `*, mask=None`: a mask when one is passed
                self.env[param.name.value] = join(named, default) if named != UNKNOWN else default
        for star in (params.star_arg, params.star_kwarg):
            if isinstance(star, cst.Param):
                self.env[star.name.value] = UNKNOWN

    def _annotated_instance(self, param: cst.Param) -> Instance | None:
        """`model: Net` with `Net` defined in the file: the parameter is an instance of it."""
        if param.annotation is None or not isinstance(param.annotation.annotation, cst.Name):
            return None
        for value in self._name(param.annotation.annotation):
            if isinstance(value.obj, ClassInfo):
                return Instance(value.obj, None)
        return None

    # -- statements -------------------------------------------------------

    def _statements(self, statements) -> None:
        for statement in statements:
            self._statement(statement)

    def _statement(self, node: cst.CSTNode) -> None:
        if isinstance(node, cst.SimpleStatementLine):
            for small in node.body:
                self.statement = small
                self._small(small)
            self._shape_comment(node)
            return
        self.statement = node
        handler = getattr(self, "_stmt_" + type(node).__name__, None)
        if handler is not None:
            handler(node)

    def _small(self, node: cst.BaseSmallStatement) -> None:
        if isinstance(node, cst.Assign):
            value = self.ev(node.value)
            for target in node.targets:
                self._bind(target.target, value, node.value)
            self._record_statement(node, tuple(t.target for t in node.targets), value)
        elif isinstance(node, cst.AnnAssign):
            if node.value is not None:
                value = self.ev(node.value)
                self._bind(node.target, value, node.value)
                self._record_statement(node, (node.target,), value)
        elif isinstance(node, cst.AugAssign):
            self._augmented(node)
        elif isinstance(node, cst.Expr):
            self.ev(node.value)
        elif isinstance(node, cst.Return):
            self.returns.append(self.ev(node.value) if node.value is not None else single(Value(Domain.NUMBER)))
        elif isinstance(node, cst.Import):
            self._import(node)
        elif isinstance(node, cst.ImportFrom):
            self._import_from(node)
        elif isinstance(node, cst.Assert):
            self.ev(node.test)
            self._refine(node.test, True)
        elif isinstance(node, cst.Raise) and node.exc is not None:
            self.ev(node.exc)
        elif isinstance(node, cst.Del):
            pass

    def _record_statement(self, node, targets, value) -> None:
        self.analysis.statements[node] = StatementFact(node, targets, value, self._frame())

    def _augmented(self, node: cst.AugAssign) -> None:
        current = self.ev(node.target)
        right = self.ev(node.value)
        operator = _AUGMENTED_OPERATORS.get(type(node.operator), "?")
        result = transfer.binary(self.module, operator, current, right, node.target, node.value, node)
        self._record_binop(BinOpFact(node, operator, current, right, result, self._frame(), node.target, node.value))
        if isinstance(node.target, cst.Name):
            self.env[node.target.value] = tuple(v.through(node.target.value, node.target) for v in result)
        elif self._is_self_attribute(node.target):
            self._set_attribute(node.target.attr.value, result, node.target)
        self._record_statement(node, (node.target,), result)

    def _stmt_If(self, node: cst.If) -> None:
        self.ev(node.test)
        before = dict(self.env)
        self.blocks.append(node)
        self._refine(node.test, True)
        self._block(node.body)
        after_body = self.env
        self.env = dict(before)
        self._refine(node.test, False)
        if node.orelse is not None:
            if isinstance(node.orelse, cst.If):
                self._stmt_If(node.orelse)
            else:
                self._block(node.orelse.body)
        self.blocks.pop()
        # A branch that always leaves (return, raise, continue) does not reach the code after the `if`.
        body_exits, orelse_exits = _exits(node.body), node.orelse is not None and _exits(node.orelse)
        if body_exits and not orelse_exits:
            return
        if orelse_exits and not body_exits:
            self.env = after_body
            return
        self.env = _merge(after_body, self.env)

    def _refine(self, test: cst.BaseExpression, truth: bool) -> None:
        """Narrow the names a test proves something about, in the branch where it is `truth`."""
        for name in _proven_not_none(test, truth):
            value = self.env.get(name)
            if value is not None:
                self.env[name] = tuple(v for v in value if v.producer != _NONE) or value
        for name in masks.checked_names(test, truth, self._condition):
            if name.startswith(masks.FACT):
                self.env[name] = single(Value(nonempty=True))
                continue
            value = self.env.get(name)
            if value is None:
                continue
            self.env[name] = masks.proven_nonempty(value)
            counted = {masks.root_name(v.form_arg) for v in value if v.form is Form.COUNT and v.form_arg is not None}
            for other, other_value in list(self.env.items()):
                if other in counted or masks.counts_of(other_value, name):
                    self.env[other] = masks.proven_nonempty(other_value)

    def _condition(self, name: str) -> cst.BaseExpression | None:
        """The test a boolean variable holds (`exists = n > 0`), for branches on that variable."""
        stored = self.env.get(masks.CONDITION + name)
        return stored[0].producer_node if stored else None

    def _proven_nonempty(self, node: cst.BaseExpression) -> bool:
        """An emptiness check on this path proved the expression `node` (not a plain name) non-empty."""
        if isinstance(node, cst.Name) or not any(name.startswith(masks.PROVEN) for name in self.env):
            return False
        return masks.proven_key(node) in self.env

    def _under(self, test: cst.BaseExpression, truth: bool, node: cst.BaseExpression) -> AbsVal:
        """Evaluate `node` where `test` is `truth` (a branch of `a if t else b` or `torch.where(t, a, b)`)."""
        saved = dict(self.env)
        self._refine(test, truth)
        result = self.ev(node)
        self.env = saved
        return result

    def _stmt_For(self, node: cst.For) -> None:
        iterable = self.ev(node.iter)
        self.blocks.append(node)
        self._loop(lambda: self._bind(node.target, _element_of(iterable), None), node.body)
        self.blocks.pop()
        if node.orelse is not None:
            self._block(node.orelse.body)

    def _stmt_While(self, node: cst.While) -> None:
        self.blocks.append(node)
        self._loop(lambda: self.ev(node.test), node.body)
        self.blocks.pop()
        if node.orelse is not None:
            self._block(node.orelse.body)

    def _loop(self, head, body) -> None:
        before = dict(self.env)
        self.loop_depth += 1
        repeats = 2 if self.loop_depth <= _MAX_REPEATED_LOOP_DEPTH else 1
        for _ in range(repeats):
            head()
            self._block(body)
            self.env = _merge(before, self.env)
        self.loop_depth -= 1

    def _stmt_With(self, node: cst.With) -> None:
        pushed = 0
        for item in node.items:
            value = self.ev(item.item)
            qualname = _callee_qualname(value, item.item, self.analysis)
            if qualname:
                self.contexts.append(qualname)
                pushed += 1
            if item.asname is not None:
                self._bind(item.asname.name, UNKNOWN, None)
        self.blocks.append(node)
        self._block(node.body)
        self.blocks.pop()
        del self.contexts[len(self.contexts) - pushed:]

    def _stmt_Try(self, node) -> None:
        before = dict(self.env)
        self.blocks.append(node)
        self._block(node.body)
        outcomes = [self.env]
        for handler in node.handlers:
            self.env = _merge(before, outcomes[0])
            if handler.type is not None:
                self.ev(handler.type)
            if handler.name is not None:
                self._bind(handler.name.name, UNKNOWN, None)
            self._block(handler.body)
            outcomes.append(self.env)
        self.env = outcomes[0]
        if node.orelse is not None:
            self._block(node.orelse.body)
            outcomes[0] = self.env
        merged = outcomes[0]
        for outcome in outcomes[1:]:
            merged = _merge(merged, outcome)
        self.env = merged
        self.blocks.pop()
        if node.finalbody is not None:
            self._block(node.finalbody.body)

    _stmt_TryStar = _stmt_Try

    def _stmt_Match(self, node: cst.Match) -> None:
        self.ev(node.subject)
        before = dict(self.env)
        merged = dict(before)
        for case in node.cases:
            self.env = dict(before)
            self._block(case.body)
            merged = _merge(merged, self.env)
        self.env = merged

    def _stmt_FunctionDef(self, node: cst.FunctionDef) -> None:
        for decorator in node.decorators:
            self.ev(decorator.decorator)
        function = Function(node, owner=None, defaults=self._defaults(node))
        if self.function is not None:
            function.closure = dict(self.env)
        self.analysis.functions.append(function)
        self.env[node.name.value] = single(Value(obj=function))

    def _stmt_ClassDef(self, node: cst.ClassDef) -> None:
        bases = tuple(self.ev(base.value) for base in node.bases)
        info = ClassInfo(node, bases)
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else node.body.body
        class_env: dict[str, AbsVal] = {}
        saved = self.env
        self.env = dict(saved)
        for statement in body:
            if isinstance(statement, cst.FunctionDef):
                for decorator in statement.decorators:
                    self.ev(decorator.decorator)
                method = Function(statement, owner=info, defaults=self._defaults(statement))
                info.methods[statement.name.value] = method
                self.analysis.functions.append(method)
                continue
            before = set(self.env)
            self._statement(statement)
            for name in set(self.env) - before:
                class_env[name] = self.env[name]
        self.env = saved
        info.attributes.update(class_env)
        self.env[node.name.value] = single(Value(obj=info))

    def _block(self, block) -> None:
        self._statements(block.body if isinstance(block, cst.IndentedBlock) else block.body)

    def _defaults(self, node: cst.FunctionDef) -> dict[str, AbsVal]:
        params = node.params
        return {
            param.name.value: self.ev(param.default)
            for param in (*params.posonly_params, *params.params, *params.kwonly_params)
            if param.default is not None
        }

    # -- imports ----------------------------------------------------------

    def _import(self, node: cst.Import) -> None:
        for alias in node.names:
            dotted = _dotted(alias.name)
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local, qualname = alias.asname.name.value, dotted
            else:
                local = qualname = dotted.split(".")[0]
            self._bind_import(local, qualname)

    def _import_from(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        base = _dotted(node.module) if node.module is not None else ""
        if node.relative:
            base = _resolve_relative(self.analysis.package, len(node.relative), base)
            if base is None:
                return
        for alias in node.names:
            name = _dotted(alias.name)
            local = alias.asname.name.value if alias.asname is not None and isinstance(alias.asname.name, cst.Name) \
                else name
            self._bind_import(local, f"{base}.{name}" if base else name)

    def _bind_import(self, local: str, qualname: str) -> None:
        self.env[local] = single(_qualified(qualname, None))
        if self.function is None:
            self.analysis.imports.setdefault(api.canonical(qualname), local)

    # -- binding ----------------------------------------------------------

    def _bind(self, target: cst.BaseExpression, value: AbsVal, source: cst.BaseExpression | None) -> None:
        if isinstance(target, cst.Name):
            if not isinstance(source, cst.BinaryOperation | cst.UnaryOperation):
                value = masks.mark_by_name(target.value, value, target)
            if source is None or isinstance(source, cst.Subscript):
                value = tuple(tensors.named_input(v, target.value) for v in value)
            self.env[target.value] = tuple(v.through(target.value, target) for v in value)
            if isinstance(source, cst.Comparison | cst.BooleanOperation) or (
                    isinstance(source, cst.UnaryOperation) and isinstance(source.operator, cst.Not)):
                self.env[masks.CONDITION + target.value] = single(Value(producer_node=source))
            else:
                self.env.pop(masks.CONDITION + target.value, None)
        elif isinstance(target, cst.Tuple | cst.List):
            elements = [e.value for e in target.elements]
            items = _sequence_items(value, len(elements))
            for index, element in enumerate(elements):
                if isinstance(element, cst.StarredElement):
                    self._bind(element.value, UNKNOWN, None)
                else:
                    self._bind(element, items[index] if items else UNKNOWN, None)
            self._refine_shape(target, source)
        elif self._is_self_attribute(target):
            self._set_attribute(target.attr.value, value, target)
        elif isinstance(target, cst.Attribute):
            self._replace_head(target, value)
        elif isinstance(target, cst.Subscript):
            self.ev(target.value)
            for element in target.slice:
                self._children(element)
            self._overwrite(target, value)
        elif isinstance(target, cst.StarredElement):
            self._bind(target.value, UNKNOWN, None)

    def _refine_shape(self, target: cst.BaseExpression, source: cst.BaseExpression | None) -> None:
        """`B, T, V = logits.shape`: from now on `logits` is known to be [B, T, V]."""
        unpacked = tensors.unpacked_shape(target, source)
        if unpacked is None:
            return
        name, shape = unpacked
        for dim in shape:
            if dim != tensors.UNKNOWN_DIM:
                self.env[dim] = single(Value(Domain.NUMBER, carries_graph=False))
        if name in self.env:
            self.env[name] = tensors.with_shape(self.env[name], shape, target)

    def _shape_comment(self, line: cst.SimpleStatementLine) -> None:
        """`logits = self.head(x)  # [B, T, V]`: the comment states the stored value's shape."""
        comment = line.trailing_whitespace.comment
        if comment is None or len(line.body) != 1 or not isinstance(line.body[0], cst.Assign | cst.AnnAssign):
            return
        statement = line.body[0]
        targets = [t.target for t in statement.targets] if isinstance(statement, cst.Assign) else [statement.target]
        shape = tensors.comment_shape(comment.value)
        if shape is None or len(targets) != 1 or not isinstance(targets[0], cst.Name) or \
                targets[0].value not in self.env:
            return
        self.env[targets[0].value] = tensors.with_shape(self.env[targets[0].value], shape, line)

    def _overwrite(self, target: cst.Subscript, value: AbsVal) -> None:
        """`labels[labels == pad] = -100`, `n[n == 0] = 1`: the name's padding / zero count is replaced."""
        if not isinstance(target.value, cst.Name) or target.value.value not in self.env:
            return
        by_mask = any(isinstance(element.slice, cst.Index) and all(
            v.domain is Domain.MASK for v in self.analysis.value(element.slice.value)) for element in target.slice)
        if by_mask or all(v.domain is Domain.NUMBER for v in value):
            self.env[target.value.value] = transfer.refill(self.env[target.value.value])

    def _replace_head(self, target: cst.Attribute, head: AbsVal) -> None:
        """`model.fc = nn.Sequential(..., nn.Softmax(1))` on a model of unknown class (torchvision,
        timm): calling the model now ends in the new head."""
        owner = self.ev(target.value)
        if target.attr.value not in api.HEAD_ATTRIBUTES or not all(
                v.obj is None or isinstance(v.obj, PatchedModel) for v in owner):
            return
        if not any(isinstance(v.obj, Layer | Sequential) for v in head):
            return
        patched = single(Value(obj=PatchedModel(head, target.attr.value)))
        if isinstance(target.value, cst.Name):
            self.env[target.value.value] = tuple(v.through(target.value.value, target.value) for v in patched)
        elif self._is_self_attribute(target.value):
            self._set_attribute(target.value.attr.value, patched, target.value)

    def _is_self_attribute(self, node: cst.CSTNode) -> bool:
        return (
            isinstance(node, cst.Attribute)
            and isinstance(node.value, cst.Name)
            and self.self_name is not None
            and node.value.value == self.self_name
        )

    def _set_attribute(self, name: str, value: AbsVal, target: cst.Attribute) -> None:
        owner = self.function.owner if self.function else None
        if owner is None:
            return
        text = f"{self.self_name}.{name}"
        stored = tuple(v.through(text, target) for v in value)
        previous = owner.attributes.get(name)
        owner.attributes[name] = join(previous, stored) if previous is not None else stored

    def _frame(self) -> Frame:
        return Frame(self.function, tuple(self.blocks), tuple(self.contexts))

    # -- expressions ------------------------------------------------------

    def ev(self, node: cst.BaseExpression | None) -> AbsVal:
        if node is None:
            return UNKNOWN
        handler = _EXPRESSIONS.get(type(node))
        result = handler(self, node) if handler is not None else self._children(node)
        self.analysis.values[node] = result
        return result

    def _children(self, node: cst.CSTNode) -> AbsVal:
        for child in node.children:
            if isinstance(child, cst.BaseExpression):
                self.ev(child)
            elif isinstance(child, cst.CSTNode):
                self._children(child)
        return UNKNOWN

    def _name(self, node: cst.Name) -> AbsVal:
        name = node.value
        if name in self.env:
            return self.env[name]
        if self.function is not None:
            module_env = self.analysis.module_body.env if self.analysis.module_body else self.analysis.module_env
            if name in module_env:
                return module_env[name]
        if name in ("True", "False", "None"):
            return single(Value(Domain.NUMBER, _NONE if name == "None" else None, carries_graph=False))
        if name in _BUILTIN_NAMES:
            return single(Value(qualname="builtins." + name))
        return UNKNOWN

    def _attribute(self, node: cst.Attribute) -> AbsVal:
        base = self.ev(node.value)
        attr = node.attr.value
        results: list[Value] = []
        for value in base:
            results.extend(self._attribute_of(value, attr, node))
        return tensors.attribute(base, attr, node, tuple(results) or UNKNOWN)

    def _attribute_of(self, value: Value, attr: str, node: cst.Attribute) -> AbsVal:
        if value.qualname is not None:
            return single(_qualified(f"{value.qualname}.{attr}", node))
        if attr == "values" and value.form is Form.MAX_OF:
            return single(value.but(obj=None))
        obj = value.obj
        if isinstance(obj, _SelfMarker):
            return self._self_attribute(obj.cls, attr, node)
        if isinstance(obj, Instance):
            method = obj.cls.find_method(attr)
            if method is not None:
                return single(Value(obj=BoundMethod(method, obj)))
            stored = obj.cls.find_attribute(attr)
            return stored if stored is not None else UNKNOWN
        if isinstance(obj, ClassInfo):
            method = obj.find_method(attr)
            if method is not None:
                return single(Value(obj=BoundMethod(method, None)))
            stored = obj.find_attribute(attr)
            return stored if stored is not None else UNKNOWN
        if attr in api.LOGITS_NAMES:
            return single(Value(Domain.LOGITS, f"`.{attr}` of a model output", node))
        if attr in api.DOMAIN_PRESERVING_ATTRIBUTES:
            return single(value.but(obj=None))
        return masks.mark_by_name(attr, UNKNOWN, node)

    def _self_attribute(self, cls: ClassInfo, attr: str, node: cst.Attribute) -> AbsVal:
        method = cls.find_method(attr)
        if method is not None:
            return single(Value(obj=BoundMethod(method, None)))
        stored = cls.find_attribute(attr)
        if stored is not None:
            return stored
        return masks.mark_by_name(attr, UNKNOWN, node)

    def _subscript(self, node: cst.Subscript) -> AbsVal:
        base = self.ev(node.value)
        for element in node.slice:
            self._children(element)
        key = literal(node.slice[0].slice.value) if len(node.slice) == 1 and isinstance(
            node.slice[0].slice, cst.Index) else MISSING
        results: list[Value] = []
        for value in base:
            if isinstance(value.obj, Sequence) and isinstance(key, int) and -len(value.obj.items) <= key < len(
                    value.obj.items):
                results.extend(value.obj.items[key])
            elif isinstance(value.obj, Mapping) and isinstance(key, str) and key in value.obj.items:
                results.extend(value.obj.items[key])
            elif isinstance(key, str) and key in api.LOGITS_NAMES:
                results.append(Value(Domain.LOGITS, f'`["{key}"]` of a model output', node))
            elif isinstance(key, str) and masks.is_mask_name(key) and value.obj is None:
                results.append(masks.named_mask(key, node))
            elif value.obj is None and value.qualname is None and (
                    value.domain is not Domain.UNKNOWN or value.form or value.per_element or value.padding):
                results.append(value.but(trail=value.trail))
            else:
                results.append(Value(carries_graph=value.carries_graph))
        if _picks_rows(node):
            return self._indexed(node, transfer.pick(tuple(results) or UNKNOWN, node))
        return self._indexed(node, tuple(results) or UNKNOWN)

    def _tensor_subscript(self, node: cst.Subscript) -> AbsVal:
        result = self._subscript(node)
        return tensors.subscript(node, self.analysis.value(node.value), result, self.analysis.values)

    def _indexed(self, node: cst.Subscript, results: AbsVal) -> AbsVal:
        """`x[mask]` selects elements (maybe none); `x[i]` of a per-element loss may be one number."""
        indices = [element.slice.value for element in node.slice if isinstance(element.slice, cst.Index)]
        index_values = [self.analysis.value(index) for index in indices]
        if len(node.slice) == 1 and index_values and all(v.domain is Domain.MASK for v in index_values[0]):
            if all(v.producer in api.FINITENESS_MASKS for v in index_values[0]):
                return results  # x[~isnan(x)] is empty only when every value is NaN: the mean is NaN anyway
            selected_nonempty = all(v.nonempty for v in index_values[0]) or self._proven_nonempty(indices[0]) \
                or self._proven_nonempty(node)
            return tuple(v.but(selection=not selected_nonempty, ignored_zeros=False, nonempty=selected_nonempty)
                         for v in results)
        keeps_rank = all(isinstance(element.slice, cst.Slice) or isinstance(element.slice.value, cst.Ellipsis) or (
            isinstance(element.slice.value, cst.Name) and element.slice.value.value == "None")
            for element in node.slice)
        if keeps_rank:
            return results
        return tuple(v.but(per_element=False, ignored_zeros=False) if v.per_element else v for v in results)

    def _binary(self, node: cst.BinaryOperation) -> AbsVal:
        left = self.ev(node.left)
        right = self.ev(node.right)
        operator = _BINARY_OPERATORS.get(type(node.operator), "?")
        result = tensors.broadcast(left, right,
                                   transfer.binary(self.module, operator, left, right, node.left, node.right, node))
        self._record_binop(BinOpFact(node, operator, left, right, result, self._frame(), node.left, node.right))
        return result

    def _record_binop(self, fact: BinOpFact) -> None:
        self.analysis.binops[fact.node] = fact
        summed = {v.summed_param for v in fact.right}
        if fact.operator == "/" and len(summed) == 1 and None not in summed:
            self.param_divisions.append((summed.pop(), fact))

    def _unary(self, node: cst.UnaryOperation) -> AbsVal:
        inner = self.ev(node.expression)
        if isinstance(node.operator, cst.Not):
            return single(Value(Domain.MASK))
        if isinstance(node.operator, cst.Minus):
            return transfer.negate(inner)
        if isinstance(node.operator, cst.Plus):
            return tuple(
                v.but(trail=()) if v.domain in (Domain.LOGITS, Domain.NUMBER) or v.per_element
                else Value(carries_graph=v.carries_graph)
                for v in inner
            )
        if isinstance(node.operator, cst.BitInvert):
            return tuple(v if v.domain is Domain.MASK else Value() for v in inner)
        return UNKNOWN

    def _comparison(self, node: cst.Comparison) -> AbsVal:
        operands = [self.ev(node.left)] + [self.ev(target.comparator) for target in node.comparisons]
        selection = any(v.selection for operand in operands for v in operand)
        return single(Value(Domain.MASK, "comparison", node, dtype="bool", carries_graph=False, binary=True,
                            selection=selection))

    def _if_exp(self, node: cst.IfExp) -> AbsVal:
        self.ev(node.test)
        return join(self._under(node.test, True, node.body), self._under(node.test, False, node.orelse))

    def _number(self, node: cst.BaseExpression) -> AbsVal:
        return single(Value(Domain.NUMBER, carries_graph=False))

    def _sequence(self, node: cst.Tuple | cst.List) -> AbsVal:
        items = []
        for element in node.elements:
            if isinstance(element, cst.StarredElement):
                self.ev(element.value)
                return UNKNOWN
            items.append(self.ev(element.value))
        return single(Value(obj=Sequence(tuple(items))))

    def _dict(self, node: cst.Dict) -> AbsVal:
        items: dict[str, AbsVal] = {}
        for element in node.elements:
            if isinstance(element, cst.DictElement):
                self.ev(element.key)
                key = literal(element.key)
                value = self.ev(element.value)
                if isinstance(key, str):
                    items[key] = value
            else:
                self.ev(element.value)
        return single(Value(obj=Mapping(items)))

    def _lambda(self, node: cst.Lambda) -> AbsVal:
        """The body is analysed in place (its parameters unknown) so that the calls inside it are facts too."""
        saved = dict(self.env)
        params = node.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            self.env[param.name.value] = UNKNOWN
        for star in (params.star_arg, params.star_kwarg):
            if isinstance(star, cst.Param):
                self.env[star.name.value] = UNKNOWN
        self.ev(node.body)
        self.env = saved
        return UNKNOWN

    def _comprehension(self, node) -> AbsVal:
        saved = dict(self.env)
        clause = node.for_in
        while clause is not None:
            self.ev(clause.iter)
            self._bind(clause.target, UNKNOWN, None)
            for condition in clause.ifs:
                self.ev(condition.test)
            clause = clause.inner_for_in
        if isinstance(node, cst.DictComp):
            self.ev(node.key)
            self.ev(node.value)
        else:
            self.ev(node.elt)
        self.env = saved
        return UNKNOWN

    def _named_expr(self, node: cst.NamedExpr) -> AbsVal:
        value = self.ev(node.value)
        self._bind(node.target, value, node.value)
        return value

    # -- calls ------------------------------------------------------------

    def _call(self, node: cst.Call) -> AbsVal:
        func = node.func
        method: str | None = None
        receiver: AbsVal | None = None
        if isinstance(func, cst.Attribute):
            receiver = self.ev(func.value)
            callee = self._attribute(func) if any(
                v.qualname is not None or v.obj is not None for v in receiver) else UNKNOWN
            self.analysis.values[func] = callee
            receiver_is_tensor = all(v.qualname is None and v.obj is None for v in receiver)
            if receiver_is_tensor and all(v.qualname is None and v.obj is None for v in callee):
                method = func.attr.value
        else:
            callee = self.ev(func)
        args = self._arguments(node, callee)
        qualname = None
        results: list[Value] = []
        for candidate in callee:
            if candidate.qualname is not None:
                qualname = api.canonical(candidate.qualname)
                results.extend(self._call_qualname(qualname, node, args))
            elif candidate.obj is not None:
                results.extend(self._call_object(candidate, node, args))
        if method is not None and receiver is not None:
            results = list(self._call_method(method, receiver, node, args))
        elif receiver is not None and func.attr.value == "append" and args and isinstance(func.value, cst.Name) \
                and all(isinstance(v.obj, Sequence) for v in receiver):
            self._append(func.value.value, receiver, args[0])
        elif receiver is not None and func.attr.value in api.MODULE_SELF_RETURNING_METHODS and all(
                isinstance(v.obj, _MODULE_OBJECTS) for v in receiver):
            results = list(receiver)  # `Net().to(device)`, `model.eval()` are still the model
        result = tensors.call(self.module, node, qualname, method, receiver, callee, tuple(results) or UNKNOWN,
                              self.analysis.values)
        if tensors.grad_disabled(self.contexts):
            result = tensors.without_graph(result)
        self.analysis.calls[node] = CallFact(node, qualname, method, receiver, result, self._frame(), self.statement)
        return result

    def _arguments(self, node: cst.Call, callee: AbsVal) -> list[AbsVal]:
        """The arguments' values; `torch.where(t, a, b)` evaluates `a` where `t` holds and `b` where it fails."""
        conditional = any(v.qualname and api.canonical(v.qualname) in api.CONDITIONAL_FUNCTIONS for v in callee)
        if not conditional or len(node.args) < 3 or any(arg.keyword or arg.star for arg in node.args[:3]):
            return [self.ev(arg.value) for arg in node.args]
        test = node.args[0].value
        return [self.ev(test), self._under(test, True, node.args[1].value),
                self._under(test, False, node.args[2].value), *(self.ev(arg.value) for arg in node.args[3:])]

    def _append(self, name: str, lists: AbsVal, item: AbsVal) -> None:
        """`losses.append(x)`: the list now may hold x (its elements are kept as one joined value)."""
        items = join(*(element for v in lists for element in v.obj.items), item)
        self.env[name] = single(Value(obj=Sequence((items,))))

    def _call_qualname(self, qualname: str, node: cst.Call, args: list[AbsVal]) -> AbsVal:
        first = args[0] if args and not node.args[0].keyword else UNKNOWN
        first_node = node.args[0].value if node.args else None
        producer = api.FUNCTION_PRODUCERS.get(qualname)
        if producer is not None:
            graph = any(v.carries_graph is not False for v in first)
            return single(Value(producer.domain, producer.op, node, carries_graph=graph or None,
                                shape=first[0].shape if len(first) == 1 else None))
        contract = api.LOSS_BY_FUNCTIONAL.get(qualname)
        if contract is not None:
            return self._loss_call(contract, node, bind_arguments(node, contract.params), None,
                                   _short_callee(self.module, node))
        contract = api.LOSS_BY_MODULE.get(qualname)
        if contract is not None:
            bound = bind_arguments(node, contract.ctor_params) or {}
            loss = LossObject(contract, node, bound, _literal_options(bound))
            value = Value(obj=loss, producer_node=node)
            self.analysis.constructions[node] = value
            return single(value)
        layer = api.MODULE_PRODUCERS.get(qualname)
        if layer is not None:
            value = Value(obj=Layer(layer, node, qualname))
            self.analysis.constructions[node] = value
            return single(value)
        if qualname in api.MODULE_WRAPPERS:
            return first  # DataParallel(model), torch.compile(model) behave like the model
        if qualname == api.SEQUENTIAL:
            last = args[-1] if args and not any(a.star for a in node.args) else None
            return single(Value(obj=Sequential(last, node)))
        if qualname in api.LOG_FUNCTIONS:
            return transfer.log(first, node)
        if qualname in api.LOG1P_FUNCTIONS:
            return transfer.log1p(first, node)
        if qualname in api.EXP_FUNCTIONS:
            return transfer.exp(first, first_node, node)
        if qualname in api.SUM_FUNCTIONS:
            partial = _has_dim(node, 1)
            return transfer.reduce_sum(first, node, first_node, partial) if len(node.args) <= 3 \
                else transfer.reduce_mean(first, partial)
        if qualname in api.MEAN_FUNCTIONS:
            return transfer.reduce_mean(first, _has_dim(node, 1))
        numeric = self._numeric_call(qualname, node, first, first_node)
        if numeric is not None:
            return numeric
        if qualname in api.DOMAIN_PRESERVING_FUNCTIONS:
            return transfer.preserve(first)
        if qualname in api.CLAMP_FUNCTIONS:
            result = transfer.guard(first)
            if not _lower_bounded(qualname.rsplit(".", 1)[1], node, 1):
                result = tuple(old if old.form is Form.COUNT else new for old, new in zip(first, result))
            return result
        masking = self._masking_call(qualname, node, args, first, first_node)
        if masking is not None:
            return masking
        loader = self._loader(qualname, node, args)
        if loader is not None:
            return loader
        if qualname in api.CONCATENATING_FUNCTIONS and first:
            parts = [v.obj.items for v in first if isinstance(v.obj, Sequence)]
            if len(parts) == len(first):
                return transfer.preserve(join(*(item for items in parts for item in items)))
            return UNKNOWN
        if qualname in api.ONE_HOT_FUNCTIONS:
            return single(Value(Domain.FLOAT_TARGETS, "one_hot", node, carries_graph=False))
        if qualname.startswith("builtins."):
            return self._call_builtin(qualname[len("builtins."):], node, args)
        if qualname == "torch.max" and len(node.args) == 2 and all(not a.keyword for a in node.args):
            return UNKNOWN
        return UNKNOWN

    def _numeric_call(self, qualname: str, node: cst.Call, first: AbsVal,
                      first_node: cst.BaseExpression | None) -> AbsVal | None:
        """Torch functions the numerics forms need: row maxima, picking the target's entry, signs."""
        if qualname in api.MAX_FUNCTIONS:
            dim = _argument(node, 1, "dim")
            if not (qualname == "torch.max" and _is_elementwise(node)):
                return transfer.max_of(first_node, node, qualname in api.MAX_WITH_INDICES and dim is not None)
        if qualname in api.PICKING_FUNCTIONS:
            return transfer.pick(transfer.preserve(first), node)
        if qualname in api.NON_NEGATIVE_FUNCTIONS:
            return transfer.non_negative(first)
        if qualname in api.ELEMENTWISE_MINIMUM_FUNCTIONS or (qualname == "torch.min" and _is_elementwise(node)):
            return single(Value(form=Form.ELEMENTWISE_MINIMUM, producer_node=node))
        if qualname in api.ELEMENTWISE_MAXIMUM_FUNCTIONS or (qualname == "torch.max" and _is_elementwise(node)):
            return single(Value(form=Form.ELEMENTWISE_MAXIMUM, producer_node=node))
        return None

    def _masking_call(self, qualname: str, node: cst.Call, args: list[AbsVal], first: AbsVal,
                      first_node: cst.BaseExpression | None) -> AbsVal | None:
        """Torch functions that make masks, counts, selections, lower bounds and padding."""
        if qualname in api.MASK_FUNCTIONS:
            return single(Value(Domain.MASK, qualname.rsplit(".", 1)[1], node, dtype="bool", carries_graph=False,
                                binary=True))
        if qualname in api.COUNT_FUNCTIONS:
            return tuple(transfer.count(v, node, first_node, binary=True) for v in first)
        if qualname in api.SELECTING_FUNCTIONS:
            chosen = args[1] if len(args) > 1 else UNKNOWN
            return single(Value(carries_graph=any(v.carries_graph for v in first),
                                selection=not all(v.nonempty for v in chosen)))
        if qualname in api.MAXIMUM_FUNCTIONS or (qualname == "torch.max" and len(node.args) == 2 and all(
                not a.keyword for a in node.args)):
            return _at_least(args)
        if qualname in api.PADDING_FUNCTIONS:
            keyword, position, default = api.PADDING_FUNCTIONS[qualname]
            mode = literal(_argument(node, 2, "mode")) if qualname.endswith(".pad") else "constant"
            if mode not in ("constant", MISSING):
                return None
            fill = _argument(node, position, keyword)
            padding = masks.padding_of(fill, self.module.code_for_node(fill).strip()) if fill is not None else \
                Padding(float(default), str(default), node)
            return single(Value(producer_node=node, padding=padding)) if padding is not None else None
        if qualname in api.FULL_FUNCTIONS:
            fill = _argument(node, api.FULL_FUNCTIONS[qualname], "fill_value")
            padding = masks.padding_of(fill, self.module.code_for_node(fill).strip()) if fill is not None else None
            if padding is not None and padding.number is None:
                return single(Value(producer_node=node, padding=padding))
        return None

    def _loader(self, qualname: str, node: cst.Call, args: list[AbsVal]) -> AbsVal | None:
        """`DataLoader(ds, collate_fn=collate)`, `tqdm(loader)`, `enumerate(loader)`: what each step yields."""
        if qualname in api.DATA_LOADERS:
            collate = _argument(node, api.DATA_LOADERS[qualname], "collate_fn")
            functions = [v.obj for v in self.analysis.value(collate)] if collate is not None else []
            if not functions or not all(isinstance(f, Function) for f in functions):
                return None
            returns = join(*(self.analysis.summary(f).returns for f in functions))
            # The batch a loader passes in is unknown: what a collate function returns of it stays unknown.
            element = tuple(UNKNOWN[0] if v.param is not None or v.summed_param is not None else v for v in returns)
            return single(Value(obj=Iterable(element)))
        wrapped = args[0] if args and not node.args[0].keyword else ()
        if not wrapped or not all(isinstance(v.obj, Iterable) for v in wrapped):
            return None
        if qualname == "builtins.enumerate":
            element = join(*(v.obj.element for v in wrapped))
            return single(Value(obj=Iterable(single(Value(obj=Sequence((single(Value(Domain.NUMBER)), element)))))))
        return wrapped if qualname in api.ITERATION_WRAPPERS else None

    def _call_builtin(self, name: str, node: cst.Call, args: list[AbsVal]) -> AbsVal:
        if name in api.TO_NUMBER_BUILTINS:
            return transfer.to_number(args[0] if args else UNKNOWN)
        if name == "max" and len(args) == 2:
            return _at_least(args)
        if name == "sum" and args:
            return transfer.reduce_mean(args[0])
        if name == "len":
            return single(Value(Domain.NUMBER, carries_graph=False))
        return UNKNOWN

    def _call_object(self, candidate: Value, node: cst.Call, args: list[AbsVal]) -> AbsVal:
        obj = candidate.obj
        if isinstance(obj, LossObject):
            bound = bind_arguments(node, obj.contract.forward_params)
            return self._loss_call(obj.contract, node, bound, obj, self.module.code_for_node(node.func))
        if isinstance(obj, Layer):
            first = args[0] if args else UNKNOWN
            return single(Value(obj.producer.domain, obj.producer.op, node,
                                carries_graph=any(v.carries_graph is not False for v in first) or None))
        if isinstance(obj, Sequential):
            if obj.last is None:
                return UNKNOWN
            return tuple(v for last in obj.last for v in self._call_object(last, node, args)) or UNKNOWN
        if isinstance(obj, PatchedModel):
            return tuple(v for head in obj.head for v in self._call_object(head, node, args)) or UNKNOWN
        if isinstance(obj, Function):
            return self._call_function(obj, node, args, offset=0)
        if isinstance(obj, BoundMethod):
            return self._call_function(obj.function, node, args, offset=0)
        if isinstance(obj, ClassInfo):
            return self._construct(obj, node)
        if isinstance(obj, Instance):
            forward = obj.cls.find_method("forward") or obj.cls.find_method("__call__")
            if forward is not None:
                return self._call_function(forward, node, args, offset=0)
            return UNKNOWN
        if isinstance(obj, _SelfMarker):
            forward = obj.cls.find_method("forward") or obj.cls.find_method("__call__")
            if forward is not None and forward is not self.function:
                return self._call_function(forward, node, args, offset=0)
        if isinstance(obj, LossClass):
            return UNKNOWN
        return UNKNOWN

    def _construct(self, cls: ClassInfo, node: cst.Call) -> AbsVal:
        loss_base = self._loss_base(cls)
        if loss_base is not None and cls.find_method("forward") is None:
            bound = bind_arguments(node, loss_base.ctor_params) or {}
            value = Value(obj=LossObject(loss_base, node, bound, _literal_options(bound)))
            self.analysis.constructions[node] = value
            return single(value)
        return single(Value(obj=Instance(cls, node)))

    def _loss_base(self, cls: ClassInfo) -> api.LossContract | None:
        for qualname in cls.torch_bases():
            contract = api.LOSS_BY_MODULE.get(api.canonical(qualname))
            if contract is not None:
                return contract
        return None

    def _call_function(self, function: Function, node: cst.Call, args: list[AbsVal], offset: int) -> AbsVal:
        summary = self.analysis.summary(function)
        positional = [arg for arg, cst_arg in zip(args, node.args) if not cst_arg.keyword and not cst_arg.star]
        keywords = {cst_arg.keyword.value: arg for arg, cst_arg in zip(args, node.args) if cst_arg.keyword}
        names = _positional_names(function)
        if names is None:
            return UNKNOWN

        def argument(index: int) -> AbsVal | None:
            if index < len(positional):
                return positional[index]
            if index < len(names) and names[index] in keywords:
                return keywords[names[index]]
            return None

        def argument_node(index: int) -> cst.BaseExpression | None:
            plain = [a for a in node.args if not a.keyword and not a.star]
            if index < len(plain):
                return plain[index].value
            for a in node.args:
                if a.keyword is not None and index < len(names) and a.keyword.value == names[index]:
                    return a.value
            return None

        for index, loss_call, param in summary.param_sinks:
            value = argument(index)
            arg_node = argument_node(index)
            if value is None or arg_node is None:
                continue
            self._record_derived(loss_call, param, value, arg_node, node, function)
        bindings = {index: value for index in range(len(names)) if (value := argument(index)) is not None}
        if any(v.obj is not None or v.domain is not Domain.UNKNOWN for value in bindings.values() for v in value):
            # A loss input already reported through a parameter sink (anchored at this call) is not
            # reported again inside the helper.
            through_sinks = {(lc.node, param) for lc in self.analysis.loss_calls.values() if lc.helper_call is node
                             for param in lc.derived}
            for loss_call in self.analysis.loss_calls_in_context(function, bindings):
                if (loss_call.node, loss_call.contract.input_param) in through_sinks:
                    continue
                loss_call.context_call = node
                self.analysis.loss_calls.setdefault((loss_call.node, f"context {id(node)}"), loss_call)
        for index, division in summary.param_divisions:
            value = argument(index)
            if value is not None:
                self._derive_division(division, transfer.reduce_sum(value, node, argument_node(index)), node, function)

        results: list[Value] = []
        for value in summary.returns:
            if value.param is not None:
                passed = argument(value.param)
                results.extend(tensors.returned_parameter(value, passed) if passed is not None else UNKNOWN)
            elif value.summed_param is not None:
                passed = argument(value.summed_param)
                results.extend(transfer.reduce_sum(passed, node, argument_node(value.summed_param))
                               if passed is not None else UNKNOWN)
            else:
                results.append(value)
        return tuple(results) or UNKNOWN

    def _derive_division(self, division: BinOpFact, right: AbsVal, helper_call: cst.Call, function: Function) -> None:
        """A helper divides by the sum of a parameter: with this call's argument, the denominator is `right`."""
        summed = {v.summed_param for v in right}
        if len(summed) == 1 and None not in summed:
            self.param_divisions.append((summed.pop(), division))
            return
        self.analysis.derived_binops[(division.node, helper_call)] = replace(
            division, right=right, helper_call=helper_call, helper_name=function.name)

    def _record_derived(self, loss_call: LossCall, param: str, value: AbsVal, arg_node, helper_call, function):
        derived = LossCall(
            node=loss_call.node, contract=loss_call.contract, callee_text=loss_call.callee_text,
            instance=loss_call.instance, args=loss_call.args, values={**loss_call.values, param: value},
            options=loss_call.options, option_nodes=loss_call.option_nodes, frame=self._frame(),
            helper_call=helper_call, helper_name=function.name, derived={param: arg_node},
        )
        self.analysis.loss_calls[(helper_call, param)] = derived
        if all(v.param is not None for v in value):
            self.param_sinks.append((value[0].param, derived, param))

    def _loss_call(self, contract, node, bound, instance, callee_text) -> AbsVal:
        if bound is None:
            return UNKNOWN
        options: dict[str, object] = dict(instance.options) if instance else {}
        option_nodes: dict[str, cst.BaseExpression] = dict(instance.args) if instance else {}
        for name, arg in bound.items():
            if name not in (contract.input_param, contract.target_param) and name in contract.params:
                option_nodes[name] = arg
                value = literal(arg)
                if value is not MISSING:
                    options[name] = value
                else:
                    options.pop(name, None)
        values = {name: self.analysis.value(arg) for name, arg in bound.items()}
        loss_call = LossCall(node, contract, callee_text, instance, bound, values, options, option_nodes,
                             self._frame())
        self.analysis.loss_calls[(node, "")] = loss_call
        for param in (contract.input_param, contract.target_param):
            value = values.get(param)
            if value and all(v.param is not None for v in value) and len({v.param for v in value}) == 1:
                self.param_sinks.append((value[0].param, loss_call, param))
        reduction = options.get("reduction", contract.defaults.get("reduction"))
        # The deprecated `reduce=False` also returns one loss per element (and overrides `reduction`).
        per_element = reduction == "none" or options.get("reduce") is False
        # An explicit ignore_index with no reduction leaves zeros at the ignored positions.
        ignored_zeros = per_element and "ignore_index" in option_nodes
        return single(Value(producer=contract.key, producer_node=node, carries_graph=True, per_element=per_element,
                            ignored_zeros=ignored_zeros))

    def _call_method(self, method: str, receiver: AbsVal, node: cst.Call, args: list[AbsVal]) -> AbsVal:
        producer = api.METHOD_PRODUCERS.get(method)
        if producer is not None:
            return single(Value(producer.domain, producer.op, node,
                                carries_graph=any(v.carries_graph is not False for v in receiver) or None))
        if method == "log":
            return transfer.log(receiver, node)
        if method == "log1p":
            return transfer.log1p(receiver, node)
        if method == "exp":
            return transfer.exp(receiver, node.func.value, node)
        if method in api.MAX_METHODS:
            dim = _argument(node, 0, "dim")
            # x.max(other) with a tensor is the elementwise maximum, not a reduction.
            if method != "max" or dim is None or _is_keyword(node, "dim") or isinstance(literal(dim), int):
                return transfer.max_of(node.func.value, node, method in api.MAX_WITH_INDICES and dim is not None)
        if method in api.PICKING_METHODS:
            return transfer.pick(transfer.preserve(receiver), node)
        if method in api.NON_NEGATIVE_METHODS:
            return transfer.non_negative(receiver)
        if method == "sum":
            partial = _has_dim(node, 0)
            if self._proven_nonempty(node.func.value):
                receiver = masks.proven_nonempty(receiver)
            return transfer.reduce_sum(receiver, node, node.func.value, partial) if len(node.args) <= 2 \
                else transfer.reduce_mean(receiver, partial)
        if method in ("mean", "nanmean"):
            return transfer.reduce_mean(receiver, _has_dim(node, 0))
        if method in api.CLAMP_METHODS:
            result = transfer.guard(receiver)
            if not _lower_bounded(method, node):  # `n.clamp(max=k)` can still be 0
                result = tuple(old if old.form is Form.COUNT else new for old, new in zip(receiver, result))
            return self._in_place(method, node, result)
        if method in ("add", "add_") and node.args:
            return transfer.binary(self.module, "+", receiver, args[0], node.func.value, node.args[0].value, node)
        if method in api.TO_NUMBER_METHODS:
            return transfer.to_number(receiver)
        if method in api.MASK_METHODS:
            return single(Value(Domain.MASK, f"{method}()", node, dtype="bool", carries_graph=False, binary=True,
                                selection=any(v.selection for v in receiver)))
        if method in api.CAST_METHODS and any(_is_mask_fact(v) for v in receiver):
            return transfer.cast(receiver)
        if method in api.COUNT_METHODS:
            return tuple(transfer.count(v, node, node.func.value, binary=True) for v in receiver)
        if method.rstrip("_") in api.FILLING_METHODS:
            return self._in_place(method, node, transfer.refill(receiver))
        if method in api.SELECTING_METHODS:
            return single(Value(carries_graph=any(v.carries_graph for v in receiver), selection=not any(
                v.nonempty for v in (args[0] if args else ()))))
        if method in api.FULL_METHODS:
            fill = _argument(node, api.FULL_METHODS[method], "fill_value")
            padding = masks.padding_of(fill, self.module.code_for_node(fill).strip()) if fill is not None else None
            if padding is not None and padding.number is None:
                return single(Value(producer_node=node, padding=padding))
        if method in ("argmax", "argmin"):
            return single(Value(Domain.CLASS_INDICES, method, node, dtype="long", carries_graph=False))
        if method in api.DOMAIN_PRESERVING_METHODS:
            return transfer.preserve(receiver)
        if method in api.LOSS_SCALING_METHODS and len(args) == 1 and all(v.per_element for v in args[0]):
            return args[0]
        if method == "get" and node.args:
            key = literal(node.args[0].value)
            if isinstance(key, str) and key in api.LOGITS_NAMES:
                return single(Value(Domain.LOGITS, f'`.get("{key}")` of a model output', node))
        return tuple(Value(carries_graph=v.carries_graph) for v in receiver) or UNKNOWN


    def _in_place(self, method: str, node: cst.Call, result: AbsVal) -> AbsVal:
        """`x.clamp_(min=1)` is `x = x.clamp(min=1)`: the receiver's name now holds the result."""
        receiver = node.func.value if isinstance(node.func, cst.Attribute) else None
        if method.endswith("_") and isinstance(receiver, cst.Name) and receiver.value in self.env:
            self.env[receiver.value] = result
        return result


_MODULE_OBJECTS = (Instance, Layer, Sequential, LossObject, PatchedModel)


@dataclass(eq=False)
class _SelfMarker:
    """The `self` parameter of a method of `cls`."""

    cls: ClassInfo


_EXPRESSIONS = {
    cst.Name: _Body._name,
    cst.Attribute: _Body._attribute,
    cst.Call: _Body._call,
    cst.Subscript: _Body._tensor_subscript,
    cst.BinaryOperation: _Body._binary,
    cst.UnaryOperation: _Body._unary,
    cst.Comparison: _Body._comparison,
    cst.IfExp: _Body._if_exp,
    cst.Integer: _Body._number,
    cst.Float: _Body._number,
    cst.Imaginary: _Body._number,
    cst.Tuple: _Body._sequence,
    cst.List: _Body._sequence,
    cst.Dict: _Body._dict,
    cst.Lambda: _Body._lambda,
    cst.ListComp: _Body._comprehension,
    cst.SetComp: _Body._comprehension,
    cst.GeneratorExp: _Body._comprehension,
    cst.DictComp: _Body._comprehension,
    cst.NamedExpr: _Body._named_expr,
}


_NONE = "None"  # the producer of the value of `None`, which `is not None` tests remove


def _exits(block: cst.BaseSuite | cst.If | cst.Else) -> bool:
    """Whether a branch always leaves: it ends in return / raise / continue (in every sub-branch)."""
    if isinstance(block, cst.If):
        return _exits(block.body) and block.orelse is not None and _exits(block.orelse)
    if isinstance(block, cst.Else):
        return _exits(block.body)
    statements = block.body
    if not statements:
        return False
    last = statements[-1]
    # `break` is not an exit here: what it leaves behind flows on to the code after the loop.
    if isinstance(block, cst.SimpleStatementSuite):
        return isinstance(last, cst.Return | cst.Raise | cst.Continue)
    if isinstance(last, cst.SimpleStatementLine):
        return isinstance(last.body[-1], cst.Return | cst.Raise | cst.Continue)
    if isinstance(last, cst.If):
        return _exits(last)
    return False


def _proven_not_none(test: cst.BaseExpression, truth: bool) -> set[str]:
    """Names that `x is not None` (when true) or `x is None` (when false) proves are not None."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        return _proven_not_none(test.expression, not truth)
    if isinstance(test, cst.BooleanOperation):
        if isinstance(test.operator, cst.And) == truth:
            return _proven_not_none(test.left, truth) | _proven_not_none(test.right, truth)
        return set()
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1 and isinstance(test.left, cst.Name):
        comparison = test.comparisons[0]
        if isinstance(comparison.comparator, cst.Name) and comparison.comparator.value == "None":
            if isinstance(comparison.operator, cst.IsNot) == truth and isinstance(
                    comparison.operator, cst.Is | cst.IsNot):
                return {test.left.value}
    return set()


def _argument(node: cst.Call, position: int, keyword: str) -> cst.BaseExpression | None:
    """The argument at `position` (counting positional arguments) or passed as `keyword`."""
    for arg in node.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    positional = [arg for arg in node.args if arg.keyword is None and not arg.star]
    return positional[position].value if position < len(positional) else None


def _picks_rows(node: cst.Subscript) -> bool:
    """`p[range(B), y]`, `p[torch.arange(n), y]`: one entry per row, at that row's target."""
    elements = node.slice
    if len(elements) < 2 or not all(isinstance(element.slice, cst.Index) for element in elements):
        return False
    rows, targets = elements[0].slice.value, elements[-1].slice.value
    is_range = isinstance(rows, cst.Call) and (
        (isinstance(rows.func, cst.Name) and rows.func.value == "range")
        or (isinstance(rows.func, cst.Attribute) and rows.func.attr.value == "arange"))
    return is_range and literal(targets) is MISSING and not isinstance(targets, cst.Ellipsis)


def _is_keyword(node: cst.Call, keyword: str) -> bool:
    return any(arg.keyword is not None and arg.keyword.value == keyword for arg in node.args)


def _has_dim(node: cst.Call, position: int) -> bool:
    """A reduction over some dimensions only: `x.sum(-1)`, `x.mean(dim=1)`, `torch.sum(x, 1)`.

    A tuple or list of dims may name every dimension (`x.mean(dim=(0, 1))`): not known to be partial.
    """
    dim = _argument(node, position, "dim")
    if dim is None:
        dim = _argument(node, position, "axis")
    return dim is not None and literal(dim) is not None and not isinstance(dim, cst.Tuple | cst.List)


def _lower_bounded(method: str, node: cst.Call, position: int = 0) -> bool:
    """A clamp that raises small values: `clamp_min(1)`, `clamp(min=1)`, `clamp(1e-8)` (not `clamp(max=...)`)."""
    if "max" in method:
        return False
    if "min" in method:
        return True
    bound = _argument(node, position, "min")
    return bound is not None and literal(bound) is not None


def _at_least(args: list[AbsVal]) -> AbsVal:
    """`max(n, 1)`, `torch.maximum(n, one)`: a count with a lower bound."""
    guarded = [v.but(form=Form.GUARDED_COUNT) for v in join(*args) if v.form is Form.COUNT]
    return tuple(guarded) or UNKNOWN


def _is_mask_fact(value: Value) -> bool:
    return value.domain is Domain.MASK or value.form in (Form.COUNT, Form.GUARDED_COUNT) or \
        value.padding is not None or value.selection


def _qualified(qualname: str, node: cst.CSTNode | None) -> Value:
    """An importable object; a torch loss class named without being called is a `LossClass`."""
    contract = api.LOSS_BY_MODULE.get(api.canonical(qualname))
    return Value(qualname=qualname, obj=LossClass(contract, node) if contract is not None else None)


def _merge(a: dict[str, AbsVal], b: dict[str, AbsVal]) -> dict[str, AbsVal]:
    merged = dict(a)
    for name, value in b.items():
        existing = merged.get(name)
        merged[name] = value if existing is None or existing is value else join(existing, value)
    # Facts about expressions (emptiness checks, boolean conditions) hold after a merge only if both sides agree.
    for name in [name for name in merged if name.startswith(masks.FACT)]:
        if name not in a or name not in b or a[name][0].producer_node is not b[name][0].producer_node:
            del merged[name]
    return merged


def _element_of(iterable: AbsVal) -> AbsVal:
    if iterable and all(isinstance(v.obj, Iterable) for v in iterable):
        return join(*(v.obj.element for v in iterable))
    items = [item for v in iterable if isinstance(v.obj, Sequence) for item in v.obj.items]
    if items and len(items) < 8:
        return join(*items)
    return UNKNOWN


def _sequence_items(value: AbsVal, count: int) -> list[AbsVal] | None:
    if len(value) == 1 and isinstance(value[0].obj, Sequence) and len(value[0].obj.items) == count:
        return list(value[0].obj.items)
    return None


def _is_elementwise(node: cst.Call) -> bool:
    """torch.max(a, b) / torch.min(a, b) with a tensor b: elementwise, not a reduction over a dim."""
    second = _argument(node, 1, "dim")
    return second is not None and not _is_keyword(node, "dim") and not isinstance(literal(second), int)


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def _resolve_relative(package: str | None, level: int, module: str) -> str | None:
    if not package:
        return None
    parts = package.split(".")
    if level - 1 > len(parts):
        return None
    base = ".".join(parts[: len(parts) - (level - 1)])
    return f"{base}.{module}" if module else base


def _is_static(node: cst.FunctionDef) -> bool:
    return any(isinstance(d.decorator, cst.Name) and d.decorator.value in ("staticmethod",) for d in node.decorators)


def _positional_names(function: Function) -> list[str] | None:
    params = function.node.params
    names = [p.name.value for p in (*params.posonly_params, *params.params)]
    if function.owner is not None and not _is_static(function.node):
        names = names[1:]
    return names


def _literal_options(bound: dict[str, cst.BaseExpression]) -> dict[str, object]:
    options = {}
    for name, node in bound.items():
        value = literal(node)
        if value is not MISSING:
            options[name] = value
    return options


def _callee_qualname(value: AbsVal, node: cst.BaseExpression, analysis: FileAnalysis) -> str | None:
    if isinstance(node, cst.Call):
        fact = analysis.calls.get(node)
        if fact is not None and fact.qualname:
            return fact.qualname
    for v in value:
        if v.qualname:
            return api.canonical(v.qualname)
    return None


def _short_callee(module: cst.Module, node: cst.Call) -> str:
    return module.code_for_node(node.func)

