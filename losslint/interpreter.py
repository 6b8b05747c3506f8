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
from dataclasses import dataclass, field

import libcst as cst

from losslint import torch_api as api
from losslint import transfer
from losslint.domains import UNKNOWN, AbsVal, Domain, Form, Step, Value, join, single
from losslint.facts import BinOpFact, CallFact, Frame, LossCall, StatementFact, bind_arguments
from losslint.objects import (
    MISSING,
    BoundMethod,
    ClassInfo,
    Function,
    Instance,
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


@dataclass
class FileAnalysis:
    module: cst.Module
    package: str | None = None
    calls: dict[cst.Call, CallFact] = field(default_factory=dict)
    loss_calls: dict[tuple[cst.Call, str], LossCall] = field(default_factory=dict)
    binops: dict[cst.CSTNode, BinOpFact] = field(default_factory=dict)
    statements: dict[cst.CSTNode, StatementFact] = field(default_factory=dict)
    values: dict[cst.CSTNode, AbsVal] = field(default_factory=dict)
    # Loss and layer constructions: the constructor call and what it built.
    constructions: dict[cst.Call, Value] = field(default_factory=dict)
    functions: list[Function] = field(default_factory=list)
    summaries: dict[int, Summary | None] = field(default_factory=dict)
    module_env: dict[str, AbsVal] = field(default_factory=dict)
    # Import bindings at module level: qualified name → local name.
    imports: dict[str, str] = field(default_factory=dict)

    def value(self, node: cst.CSTNode) -> AbsVal:
        return self.values.get(node, UNKNOWN)

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
    body.run()
    analysis.module_env = body.env
    for function in list(analysis.functions):
        analysis.summary(function)
    return analysis


class _Body:
    """Interprets one body: the module's, or one function's."""

    def __init__(self, analysis: FileAnalysis, function: Function | None) -> None:
        self.analysis = analysis
        self.module = analysis.module
        self.function = function
        self.env: dict[str, AbsVal] = {}
        self.blocks: list[cst.CSTNode] = []
        self.contexts: list[str] = []
        self.statement: cst.CSTNode | None = None
        self.returns: list[AbsVal] = []
        self.param_sinks: list[tuple[int, LossCall, str]] = []
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
        body = function.node.body
        if isinstance(body, cst.IndentedBlock):
            self._statements(body.body)
        else:
            self._statements(body.body)
        returns = join(*self.returns) if self.returns else single(Value(Domain.NUMBER))
        return Summary(returns, self.param_sinks)

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
            marker = Value(param=position, trail=(Step(name, param.name),), obj=self._annotated_instance(param))
            self.env[name] = join(single(marker), default) if default else single(marker)
        for param in params.kwonly_params:
            default = function.defaults.get(param.name.value)
            self.env[param.name.value] = default or UNKNOWN
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
        self.analysis.binops[node] = BinOpFact(node, operator, current, right, result, self._frame(), node.target,
                                               node.value)
        if isinstance(node.target, cst.Name):
            self.env[node.target.value] = tuple(v.through(node.target.value, node.target) for v in result)
        elif self._is_self_attribute(node.target):
            self._set_attribute(node.target.attr.value, result, node.target)
        self._record_statement(node, (node.target,), result)

    def _stmt_If(self, node: cst.If) -> None:
        self.ev(node.test)
        before = dict(self.env)
        self.blocks.append(node)
        self._block(node.body)
        after_body = self.env
        self.env = dict(before)
        if node.orelse is not None:
            if isinstance(node.orelse, cst.If):
                self._stmt_If(node.orelse)
            else:
                self._block(node.orelse.body)
        self.blocks.pop()
        self.env = _merge(after_body, self.env)

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
        self.env[local] = single(Value(qualname=qualname))
        if self.function is None:
            self.analysis.imports.setdefault(api.canonical(qualname), local)

    # -- binding ----------------------------------------------------------

    def _bind(self, target: cst.BaseExpression, value: AbsVal, source: cst.BaseExpression | None) -> None:
        if isinstance(target, cst.Name):
            self.env[target.value] = tuple(v.through(target.value, target) for v in value)
        elif isinstance(target, cst.Tuple | cst.List):
            elements = [e.value for e in target.elements]
            items = _sequence_items(value, len(elements))
            for index, element in enumerate(elements):
                if isinstance(element, cst.StarredElement):
                    self._bind(element.value, UNKNOWN, None)
                else:
                    self._bind(element, items[index] if items else UNKNOWN, None)
        elif self._is_self_attribute(target):
            self._set_attribute(target.attr.value, value, target)
        elif isinstance(target, cst.Attribute):
            self.ev(target.value)
        elif isinstance(target, cst.Subscript):
            self.ev(target.value)
        elif isinstance(target, cst.StarredElement):
            self._bind(target.value, UNKNOWN, None)

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
        if name in self.analysis.module_env and self.function is not None:
            return self.analysis.module_env[name]
        if name in ("True", "False", "None"):
            return single(Value(Domain.NUMBER, carries_graph=False))
        if name in _BUILTIN_NAMES:
            return single(Value(qualname="builtins." + name))
        return UNKNOWN

    def _attribute(self, node: cst.Attribute) -> AbsVal:
        base = self.ev(node.value)
        attr = node.attr.value
        results: list[Value] = []
        for value in base:
            results.extend(self._attribute_of(value, attr, node))
        return tuple(results) or UNKNOWN

    def _attribute_of(self, value: Value, attr: str, node: cst.Attribute) -> AbsVal:
        if value.qualname is not None:
            return single(Value(qualname=f"{value.qualname}.{attr}"))
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
        return UNKNOWN

    def _self_attribute(self, cls: ClassInfo, attr: str, node: cst.Attribute) -> AbsVal:
        method = cls.find_method(attr)
        if method is not None:
            return single(Value(obj=BoundMethod(method, None)))
        stored = cls.find_attribute(attr)
        if stored is not None:
            return stored
        return UNKNOWN

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
            elif value.obj is None and value.qualname is None and (value.domain is not Domain.UNKNOWN or value.form):
                results.append(value.but(trail=value.trail))
            else:
                results.append(Value(carries_graph=value.carries_graph))
        return tuple(results) or UNKNOWN

    def _binary(self, node: cst.BinaryOperation) -> AbsVal:
        left = self.ev(node.left)
        right = self.ev(node.right)
        operator = _BINARY_OPERATORS.get(type(node.operator), "?")
        result = transfer.binary(self.module, operator, left, right, node.left, node.right, node)
        self.analysis.binops[node] = BinOpFact(node, operator, left, right, result, self._frame(), node.left,
                                               node.right)
        return result

    def _unary(self, node: cst.UnaryOperation) -> AbsVal:
        inner = self.ev(node.expression)
        if isinstance(node.operator, cst.Not):
            return single(Value(Domain.MASK))
        if isinstance(node.operator, cst.Minus | cst.Plus):
            return tuple(
                v.but(trail=()) if v.domain in (Domain.LOGITS, Domain.NUMBER) else Value(carries_graph=v.carries_graph)
                for v in inner
            )
        if isinstance(node.operator, cst.BitInvert):
            return tuple(v if v.domain is Domain.MASK else Value() for v in inner)
        return UNKNOWN

    def _comparison(self, node: cst.Comparison) -> AbsVal:
        self.ev(node.left)
        for target in node.comparisons:
            self.ev(target.comparator)
        return single(Value(Domain.MASK, "comparison", node, dtype="bool", carries_graph=False))

    def _if_exp(self, node: cst.IfExp) -> AbsVal:
        self.ev(node.test)
        return join(self.ev(node.body), self.ev(node.orelse))

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
        args = [self.ev(arg.value) for arg in node.args]
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
        result = tuple(results) or UNKNOWN
        self.analysis.calls[node] = CallFact(node, qualname, method, receiver, result, self._frame(), self.statement)
        return result

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
            return transfer.reduce_sum(first, node) if len(node.args) <= 2 else transfer.reduce_mean(first)
        if qualname in api.MEAN_FUNCTIONS:
            return transfer.reduce_mean(first)
        if qualname in api.DOMAIN_PRESERVING_FUNCTIONS:
            return transfer.preserve(first)
        if qualname in api.CLAMP_FUNCTIONS:
            return transfer.guard(first)
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

    def _call_builtin(self, name: str, node: cst.Call, args: list[AbsVal]) -> AbsVal:
        if name in api.TO_NUMBER_BUILTINS:
            return transfer.to_number(args[0] if args else UNKNOWN)
        if name in ("max", "min") and len(args) == 2:
            results = []
            for value in join(*args):
                if value.form is Form.COUNT:
                    results.append(value.but(form=Form.GUARDED_COUNT))
            return tuple(results) or UNKNOWN
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

        results: list[Value] = []
        for value in summary.returns:
            if value.param is not None:
                passed = argument(value.param)
                results.extend(passed if passed is not None else UNKNOWN)
            else:
                results.append(value)
        return tuple(results) or UNKNOWN

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
        per_element = reduction == "none"
        return single(Value(producer=contract.key, producer_node=node, carries_graph=True, per_element=per_element))

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
        if method == "sum":
            return transfer.reduce_sum(receiver, node) if len(node.args) <= 2 else transfer.reduce_mean(receiver)
        if method in ("mean", "nanmean"):
            return transfer.reduce_mean(receiver)
        if method in api.CLAMP_METHODS:
            return transfer.guard(receiver)
        if method in ("add", "add_") and node.args:
            return transfer.binary(self.module, "+", receiver, args[0], node.func.value, node.args[0].value, node)
        if method in api.TO_NUMBER_METHODS:
            return transfer.to_number(receiver)
        if method in ("bool",):
            return single(Value(Domain.MASK, "bool()", node, dtype="bool", carries_graph=False))
        if method in ("argmax", "argmin"):
            return single(Value(Domain.CLASS_INDICES, method, node, dtype="long", carries_graph=False))
        if method in api.DOMAIN_PRESERVING_METHODS:
            return transfer.preserve(receiver)
        if method == "get" and node.args:
            key = literal(node.args[0].value)
            if isinstance(key, str) and key in api.LOGITS_NAMES:
                return single(Value(Domain.LOGITS, f'`.get("{key}")` of a model output', node))
        return tuple(Value(carries_graph=v.carries_graph) for v in receiver) or UNKNOWN


@dataclass(eq=False)
class _SelfMarker:
    """The `self` parameter of a method of `cls`."""

    cls: ClassInfo


_EXPRESSIONS = {
    cst.Name: _Body._name,
    cst.Attribute: _Body._attribute,
    cst.Call: _Body._call,
    cst.Subscript: _Body._subscript,
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


def _merge(a: dict[str, AbsVal], b: dict[str, AbsVal]) -> dict[str, AbsVal]:
    merged = dict(a)
    for name, value in b.items():
        existing = merged.get(name)
        merged[name] = value if existing is None or existing is value else join(existing, value)
    return merged


def _element_of(iterable: AbsVal) -> AbsVal:
    items = [item for v in iterable if isinstance(v.obj, Sequence) for item in v.obj.items]
    if items and len(items) < 8:
        return join(*items)
    return UNKNOWN


def _sequence_items(value: AbsVal, count: int) -> list[AbsVal] | None:
    if len(value) == 1 and isinstance(value[0].obj, Sequence) and len(value[0].obj.items) == count:
        return list(value[0].obj.items)
    return None


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

