"""The backward slice of a flagged expression, rewritten into a program the worker can run.

From the flagged expression (and the other expressions a probe taps), the slicer
walks back through the enclosing function to the statements the values depend on,
and stops at the function's parameters, `self` attributes and other free names.
What it keeps is rewritten so that it names nothing but the allow-list:

- imports become canonical dotted names (`F.softmax` → `torch.nn.functional.softmax`);
- loss and activation instances (`self.criterion`, a module-level `crit`, a default
  argument) are rebuilt from their recorded constructor calls;
- calls of local helper functions and methods bring the helper's definition along;
- everything that would run code we do not know — a model, a layer with weights, a
  parameter that is called, `batch["labels"]`, `outputs.logits` — is *cut*: it is never
  executed, and a synthetic input (`losslint.runtime.inputs`) takes its place.

Anything else the slice touches that is not allowed (an import other than torch and
math, a dunder, `open`, `getattr`, ...) makes the finding not executable, naming it,
even if it sits inside a part that would have been cut.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field

import libcst as cst

from losslint import torch_api as api
from losslint.context import Context, shorten
from losslint.domains import UNKNOWN, AbsVal, Domain
from losslint.objects import (
    MISSING,
    BoundMethod,
    ClassInfo,
    Function,
    Layer,
    LossClass,
    LossObject,
    literal,
)
from losslint.runtime import allowlist
from losslint.runtime.verdict import NotExecutable

TAPS_VARIABLE = "losslint_taps"
# The taps a probe measures (the others, such as a loss call's arguments, may be inputs themselves).
MEASURED_TAPS = frozenset({"value", "loss"})


@dataclass
class Cut:
    """Something the slice reads but never runs; a synthetic input takes its place."""

    name: str  # the program's global that stands in for it
    text: str  # the user's source text it replaces
    line: int
    values: AbsVal  # what the static analysis knows about it
    comment: str = ""  # the trailing comment of its line (shape hints such as `# [B, T, V]`)
    default: object = MISSING  # a literal default (function parameters)


@dataclass
class Slice:
    function: str
    prelude: dict[str, str] = field(default_factory=dict)  # constructor and constant statements, by name
    helpers: dict[str, str] = field(default_factory=dict)  # helper definitions, by program name
    body: list[str] = field(default_factory=list)  # the slice statements, in order
    taps: dict[str, str] = field(default_factory=dict)  # tap name → expression
    cuts: dict[str, Cut] = field(default_factory=dict)
    # Locals that only hold an input (`out = model_x` after cutting `out = model(x)`).
    aliases: dict[str, str] = field(default_factory=dict)

    @property
    def source(self) -> str:
        taps = ", ".join(f"{name!r}: {text}" for name, text in self.taps.items())
        parts = [*self.prelude.values(), *self.helpers.values(), *self.body, f"{TAPS_VARIABLE} = {{{taps}}}"]
        return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------
# Scopes
# ---------------------------------------------------------------------------


@dataclass
class _Scope:
    """Where an expression is rewritten: the sliced function, a helper, or a constructor's home."""

    function: Function | None
    locals: frozenset[str]
    self_name: str | None
    owner: ClassInfo | None
    # "main": the sliced function (free locals become inputs by name); "constructor": a constructor
    # call's home (free locals become prefixed inputs); "helper": a helper body (nothing may be cut).
    kind: str
    prefix: str = ""
    overrides: dict[str, AbsVal] = field(default_factory=dict)


def _function_locals(node: cst.FunctionDef | None, module: cst.Module, kind: str = "main") -> frozenset[str]:
    if node is None:
        # Module-level code sliced as such: its assigned names are its locals (imports, defs and classes are not).
        return _module_locals(module) if kind == "main" else frozenset()
    names = set(_parameter_names(node))
    collector = _StoreCollector()
    body = node.body
    body.visit(collector)
    return frozenset(names | collector.names)


def _module_locals(module: cst.Module) -> frozenset[str]:
    names: set[str] = set()
    for statement in module.body:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if not isinstance(small, cst.Import | cst.ImportFrom):
                    collector = _StoreCollector()
                    small.visit(collector)
                    names |= collector.names
        elif not isinstance(statement, cst.FunctionDef | cst.ClassDef):
            collector = _StoreCollector()
            statement.visit(collector)
            names |= collector.names
    return frozenset(names)


def _parameter_names(node: cst.FunctionDef) -> list[str]:
    params = node.params
    names = [p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params)]
    for star in (params.star_arg, params.star_kwarg):
        if isinstance(star, cst.Param):
            names.append(star.name.value)
    return names


class _StoreCollector(cst.CSTVisitor):
    """Every name a block binds (assignments, loops, with/except targets, imports, nested defs)."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def _targets(self, node: cst.CSTNode | None) -> None:
        if isinstance(node, cst.Name):
            self.names.add(node.value)
        elif isinstance(node, cst.Tuple | cst.List):
            for element in node.elements:
                self._targets(element.value)
        elif isinstance(node, cst.StarredElement):
            self._targets(node.value)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._targets(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._targets(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._targets(node.target)

    def visit_For(self, node: cst.For) -> None:
        self._targets(node.target)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._targets(node.target)

    def visit_AsName(self, node: cst.AsName) -> None:
        self._targets(node.name)

    def visit_ImportAlias(self, node: cst.ImportAlias) -> None:
        if node.asname is None:
            name = node.name
            while isinstance(name, cst.Attribute):
                name = name.value
            self._targets(name)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.names.add(node.name.value)
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.names.add(node.name.value)
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_CompFor(self, node: cst.CompFor) -> None:
        # Comprehension variables are local to the comprehension; handled where they are read.
        return None


def _comprehension_names(node: cst.CSTNode) -> set[str]:
    names: set[str] = set()

    class Visitor(cst.CSTVisitor):
        def visit_CompFor(self, comp: cst.CompFor) -> None:
            collector = _StoreCollector()
            collector._targets(comp.target)
            names.update(collector.names)

    node.visit(Visitor())
    return names


# ---------------------------------------------------------------------------
# The slicer
# ---------------------------------------------------------------------------


@dataclass
class _Candidate:
    """One statement before the flagged one, in execution order."""

    node: cst.CSTNode  # a small statement, or a compound statement the slice cannot enter
    comment: str
    defines: frozenset[str]
    modifies: frozenset[str] = frozenset()
    barrier: bool = False


class Slicer:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.module = ctx.module
        self.analysis = ctx.analysis
        self.parents: dict[int, cst.CSTNode] = {}
        self._index_parents(self.module)
        self.functions = {id(f.node): f for f in self.analysis.functions}
        self.slice = Slice("<module>")
        self._helpers_in_progress: set[str] = set()
        self._used_names: set[str] = set()

    # -- tree helpers -------------------------------------------------------

    def _index_parents(self, root: cst.CSTNode) -> None:
        stack = [root]
        while stack:
            node = stack.pop()
            for child in node.children:
                self.parents[id(child)] = node
                stack.append(child)

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.parents.get(id(node))

    def ancestors(self, node: cst.CSTNode):
        current = self.parent(node)
        while current is not None:
            yield current
            current = self.parent(current)

    def enclosing_function(self, node: cst.CSTNode) -> cst.FunctionDef | None:
        for ancestor in self.ancestors(node):
            if isinstance(ancestor, cst.FunctionDef):
                return ancestor
        return None

    def statement_of(self, node: cst.CSTNode) -> cst.CSTNode:
        """The small statement (or the compound statement whose header) contains `node`."""
        for ancestor in [node, *self.ancestors(node)]:
            if isinstance(ancestor, cst.BaseSmallStatement | cst.BaseCompoundStatement):
                return ancestor
        return node

    def line(self, node: cst.CSTNode) -> int:
        try:
            return self.ctx.line(node)
        except KeyError:
            return 0

    def text(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node).strip()

    # -- scopes -------------------------------------------------------------

    def scope_for(self, function_node: cst.FunctionDef | None, kind: str, prefix: str = "",
                  overrides: dict[str, AbsVal] | None = None) -> _Scope:
        function = self.functions.get(id(function_node)) if function_node is not None else None
        self_name = None
        owner = function.owner if function is not None else None
        if function is not None and owner is not None and not _is_static(function.node):
            ordered = [*function.node.params.posonly_params, *function.node.params.params]
            self_name = ordered[0].name.value if ordered else None
        return _Scope(function, _function_locals(function_node, self.module, kind), self_name, owner, kind, prefix,
                      overrides or {})

    # -- the slice ----------------------------------------------------------

    def run(self, taps: dict[str, cst.BaseExpression], *, include_statement: bool = False,
            overrides: dict[str, AbsVal] | None = None) -> Slice:
        """Slice back from `taps` (expressions of one statement); `include_statement` keeps that statement."""
        first = next(iter(taps.values()))
        function_node = self.enclosing_function(first)
        scope = self.scope_for(function_node, "main", overrides=overrides)
        self.slice.function = function_node.name.value if function_node is not None else "<module>"
        self._used_names = set(scope.locals) | set(self.analysis.module_env)
        anchor_statement = self.statement_of(first)
        candidates = self._candidates(function_node, anchor_statement)
        if include_statement and isinstance(anchor_statement, cst.BaseSmallStatement):
            candidates.append(self._candidate(anchor_statement, ""))

        needed: dict[str, cst.CSTNode] = {}
        for name, node in taps.items():
            self._scan(node, scope)
            text, reads = self.rewrite(node, scope)
            if name in MEASURED_TAPS and isinstance(node, cst.Call) and text in self.slice.cuts:
                raise NotExecutable(f"`{shorten(self.text(node))}` calls `{shorten(self.text(node.func))}`, which "
                                    "--confirm cannot rebuild (a model, a parameter or an unknown object)")
            self.slice.taps[name] = text
            for read, read_node in reads.items():
                needed.setdefault(read, read_node)

        defined_before = self._defined_before(candidates)
        body: list[str] = []
        for index in range(len(candidates) - 1, -1, -1):
            candidate = candidates[index]
            hits = candidate.defines & needed.keys()
            touched = candidate.modifies & needed.keys()
            if not hits and not touched:
                continue
            if candidate.barrier:
                for name in hits:
                    self._cut_name(name, needed.pop(name), scope, candidate.comment)
                continue
            statement = candidate.node
            self._scan(statement, scope)
            if self._cut_targets(statement, hits, needed, defined_before[index], scope, candidate.comment):
                continue
            text, reads = self.rewrite_statement(statement, scope)
            body.insert(0, text)
            alias = _alias(statement, text, self.slice.cuts)
            if alias is not None:
                self.slice.aliases.setdefault(*alias)
            if not isinstance(statement, cst.AugAssign):
                for name in hits:
                    needed.pop(name, None)
            for read, read_node in reads.items():
                needed.setdefault(read, read_node)
        for name, node in needed.items():
            self._free(name, node, scope)
        self.slice.body = body
        return self.slice

    def _candidates(self, function_node: cst.FunctionDef | None, anchor: cst.CSTNode) -> list[_Candidate]:
        path = {id(a) for a in [anchor, *self.ancestors(anchor)]}
        out: list[_Candidate] = []
        block = function_node.body if function_node is not None else self.module
        self._walk_block(_block_statements(block), anchor, path, out)
        return out

    def _walk_block(self, statements, anchor, path, out: list[_Candidate]) -> bool:
        """Append the candidates of `statements` up to the anchor; True once the anchor was reached."""
        for statement in statements:
            on_path = id(statement) in path
            if isinstance(statement, cst.SimpleStatementLine | cst.SimpleStatementSuite):
                comment = _comment(statement)
                for small in statement.body:
                    if id(small) in path:
                        return True
                    out.append(self._candidate(small, comment))
                continue
            if statement is anchor:
                return True
            if on_path:
                if isinstance(statement, cst.For):
                    out.append(self._barrier(statement.target, ""))
                if isinstance(statement, cst.With):
                    for item in statement.items:
                        if item.asname is not None:
                            out.append(self._barrier(item.asname.name, ""))
                for block in _child_blocks(statement):
                    if id(block) in path:
                        return self._walk_block(_block_statements(block), anchor, path, out)
                return True
            if isinstance(statement, cst.With):
                for item in statement.items:
                    if item.asname is not None:
                        out.append(self._barrier(item.asname.name, ""))
                self._walk_block(_block_statements(statement.body), anchor, path, out)
            elif isinstance(statement, cst.Try):
                self._walk_block(_block_statements(statement.body), anchor, path, out)
            else:
                out.append(self._barrier(statement, ""))
        return False

    def _candidate(self, small: cst.CSTNode, comment: str) -> _Candidate:
        defines: set[str] = set()
        modifies: set[str] = set()
        if isinstance(small, cst.Assign):
            for target in small.targets:
                self._target_keys(target.target, defines, modifies)
        elif isinstance(small, cst.AnnAssign) and small.value is not None:
            self._target_keys(small.target, defines, modifies)
        elif isinstance(small, cst.AugAssign):
            self._target_keys(small.target, defines, modifies)
        elif isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
            func = small.value.func
            if isinstance(func, cst.Attribute) and func.attr.value.endswith("_") and isinstance(func.value, cst.Name):
                modifies.add(func.value.value)  # an in-place method: x.clamp_(...)
        return _Candidate(small, comment, frozenset(defines), frozenset(modifies))

    def _barrier(self, node: cst.CSTNode, comment: str) -> _Candidate:
        collector = _StoreCollector()
        if isinstance(node, cst.BaseExpression):
            collector._targets(node)
        else:
            node.visit(collector)
            if isinstance(node, cst.FunctionDef | cst.ClassDef):
                collector.names.add(node.name.value)
        return _Candidate(node, comment, frozenset(collector.names), barrier=True)

    def _target_keys(self, target: cst.BaseExpression, defines: set[str], modifies: set[str]) -> None:
        if isinstance(target, cst.Name):
            defines.add(target.value)
        elif isinstance(target, cst.Tuple | cst.List):
            for element in target.elements:
                self._target_keys(element.value, defines, modifies)
        elif isinstance(target, cst.StarredElement):
            self._target_keys(target.value, defines, modifies)
        elif isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name):
            defines.add(f"{target.value.value}.{target.attr.value}")
        elif isinstance(target, cst.Subscript):
            base = target.value
            while isinstance(base, cst.Subscript | cst.Attribute):
                base = base.value
            if isinstance(base, cst.Name):
                modifies.add(base.value)

    @staticmethod
    def _defined_before(candidates: list[_Candidate]) -> list[frozenset[str]]:
        seen: set[str] = set()
        out = []
        for candidate in candidates:
            out.append(frozenset(seen))
            seen |= candidate.defines
        return out

    # -- cuts ---------------------------------------------------------------

    def _cut_targets(self, statement, hits, needed, defined_before, scope: _Scope, comment: str) -> bool:
        """`x, y = batch`, `a, b = model(x)`: the unpacked names become inputs, the statement goes."""
        if not isinstance(statement, cst.Assign) or len(statement.targets) != 1:
            return False
        target = statement.targets[0].target
        value = statement.value
        if isinstance(target, cst.Tuple | cst.List) and all(isinstance(e.value, cst.Name) for e in target.elements):
            opaque = self._cut_action(value, scope) is not None or (
                isinstance(value, cst.Name) and value.value not in defined_before
                and not _has_tensor_domain(self.analysis.value(value)))
            if not opaque:
                return False
            items = _sequence_items(self.analysis.value(value), len(target.elements))
            for index, element in enumerate(target.elements):
                name = element.value.value
                if name not in hits:
                    continue
                values = items[index] if items else UNKNOWN
                self._add_cut(name, f"{name} (from `{self.text(value)}`)", element.value, values, comment, scope)
                needed.pop(name, None)
            return True
        return False

    def _cut_name(self, name: str, node: cst.CSTNode, scope: _Scope, comment: str) -> None:
        self._add_cut(name, name, node, self._values_of_name(name, node, scope), comment, scope)

    def _values_of_name(self, name: str, node: cst.CSTNode, scope: _Scope) -> AbsVal:
        if name in scope.overrides:
            return scope.overrides[name]
        return self.analysis.value(node)

    def _add_cut(self, name: str, text: str, node: cst.CSTNode, values: AbsVal, comment: str, scope: _Scope,
                 default: object = MISSING) -> str:
        if scope.kind == "helper":
            raise NotExecutable(f"helper `{scope.function.name if scope.function else '?'}` needs `{text}`, "
                                "which --confirm does not run")
        existing = self.slice.cuts.get(name)
        if existing is None:
            self.slice.cuts[name] = Cut(name, text, self.line(node), values, comment, default)
        return name

    def _cut_expression(self, node: cst.BaseExpression, scope: _Scope) -> cst.Name:
        text = self.text(node)
        name = scope.prefix + _identifier(text)
        known = self.slice.cuts.get(name)
        if known is not None and known.text != text:
            name = self._fresh(name)
        elif known is None and name in self._used_names:
            name = self._fresh(name)
        # A shape comment describes the assigned value: it pins the cut only when the cut is that value.
        comment = self._comment_of(node) if self._assigned_whole(node) else ""
        self._add_cut(name, text, node, self.analysis.value(node), comment, scope)
        self._used_names.add(name)
        return cst.Name(name)

    def _assigned_whole(self, node: cst.CSTNode) -> bool:
        parent = self.parent(node)
        return isinstance(parent, cst.Assign | cst.AnnAssign) and parent.value is node

    def _fresh(self, base: str) -> str:
        index = 1
        while f"{base}_{index}" in self._used_names or f"{base}_{index}" in self.slice.cuts:
            index += 1
        return f"{base}_{index}"

    def _comment_of(self, node: cst.CSTNode) -> str:
        for ancestor in [node, *self.ancestors(node)]:
            if isinstance(ancestor, cst.SimpleStatementLine):
                return _comment(ancestor)
        return ""

    def _cut_action(self, node: cst.BaseExpression, scope: _Scope) -> str | None:
        """Why `node` is cut (never executed), or None when it is kept and rewritten."""
        if isinstance(node, cst.Call):
            return "opaque call" if self._call_kind(node, scope) == "cut" else None
        if isinstance(node, cst.Attribute):
            if self._is_self_attribute(node, scope) or self._qualname(node) is not None:
                return None
            if node.attr.value in allowlist.ALLOWED_ATTRIBUTES or allowlist.is_dunder(node.attr.value):
                return None
            return "object attribute"
        if isinstance(node, cst.Subscript):
            if len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
                key = node.slice[0].slice.value
                if isinstance(key, cst.SimpleString | cst.ConcatenatedString):
                    return "mapping lookup"
                if isinstance(key, cst.Integer) and not _has_tensor_domain(self.analysis.value(node.value)) and \
                        isinstance(node.value, cst.Name | cst.Attribute | cst.Subscript | cst.Call) and \
                        self._opaque_container(node.value, scope):
                    return "container item"
        return None

    def _opaque_container(self, node: cst.BaseExpression, scope: _Scope) -> bool:
        if isinstance(node, cst.Name):
            return node.value in scope.locals and not _has_tensor_domain(self.analysis.value(node))
        return self._cut_action(node, scope) is not None

    def _call_kind(self, node: cst.Call, scope: _Scope) -> str:
        """"keep" (rewrite and run), "helper" (a local function), or "cut" (never run)."""
        func = node.func
        values = self.analysis.values.get(func)
        if isinstance(func, cst.Name) and func.value in scope.overrides:
            values = scope.overrides[func.value]  # a helper's parameter: what its caller passes
        if values:
            if _sole_qualname(values) is not None:
                return "keep"
            if _is_rebuildable(_sole_object(values)):
                return "keep"
            objects = [v.obj for v in values]
            if objects and all(isinstance(o, Function | BoundMethod) for o in objects) and \
                    len({id(_function_of(o).node) for o in objects}) == 1:
                return "helper"
            if objects and all(_is_rebuildable(o) for o in objects):
                return "keep"
            if objects and all(o is not None and not _is_rebuildable(o) for o in objects):
                return "cut"
        if isinstance(func, cst.Attribute):
            if self._is_self_attribute(func, scope):
                return "cut"
            return "keep" if func.attr.value in allowlist.TENSOR_METHODS else "cut"
        if isinstance(func, cst.Name) and func.value in scope.locals:
            return "cut"  # a parameter or local that is called: a model, a callback
        return "keep"  # globals and builtins: resolved (or refused) by name

    # -- free names ---------------------------------------------------------

    def _free(self, key: str, node: cst.CSTNode, scope: _Scope) -> None:
        """A name the slice reads but never defines: rebuild it, or make it an input."""
        if "." in key:  # self.<attr>
            attr = key.split(".", 1)[1]
            self._resolve_self(attr, node, scope)
            return
        values = self._values_of_name(key, node, scope)
        rebuilt = _sole_object(values)
        if rebuilt is not None and _is_rebuildable(rebuilt):
            self._construct(key, rebuilt)
            return
        default = self._parameter_default(key, scope)
        self._add_cut(key, key, node, values, self._definition_comment(key, scope), scope, default)

    def _parameter_default(self, name: str, scope: _Scope) -> object:
        if scope.function is None:
            return MISSING
        params = scope.function.node.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            if param.name.value == name and param.default is not None:
                return literal(param.default)
        return MISSING

    def _definition_comment(self, name: str, scope: _Scope) -> str:
        if scope.function is None:
            return ""
        header = scope.function.node
        text = self.module.code_for_node(header.params)
        match = re.search(rf"\b{re.escape(name)}\b[^,\n]*,?\s*(#[^\n]*)", text)
        return match.group(1) if match else ""

    def _resolve_self(self, attr: str, node: cst.CSTNode, scope: _Scope) -> str:
        name = f"self_{attr}"
        if name in self.slice.prelude or name in self.slice.cuts:
            return name
        values = self.analysis.value(node)
        if scope.owner is not None and (not values or values == UNKNOWN):
            values = scope.owner.find_attribute(attr) or UNKNOWN
        rebuilt = _sole_object(values)
        if rebuilt is not None and _is_rebuildable(rebuilt):
            self._construct(name, rebuilt)
            return name
        if scope.kind == "helper":
            raise NotExecutable(f"helper `{scope.function.name if scope.function else '?'}` reads `self.{attr}`, "
                                "which --confirm cannot rebuild")
        self._add_cut(name, f"self.{attr}", node, values, self._comment_of(node), scope)
        return name

    def _construct(self, name: str, obj: LossObject | Layer | LossClass) -> None:
        """`name = <the constructor call the object was built with>`, rewritten where it was written."""
        if name in self.slice.prelude:
            return
        if isinstance(obj, LossClass):
            self.slice.prelude[name] = f"{name} = {obj.contract.module}"
            return
        self.slice.prelude[name] = ""  # reserve: constructors may refer to each other
        home = self.enclosing_function(obj.node)
        prefix = _identifier(home.name.value).strip("_") + "_" if home is not None else "module_"
        scope = self.scope_for(home, "constructor", prefix=prefix)
        self._scan(obj.node, scope)
        text, _ = self.rewrite(obj.node, scope)
        self.slice.prelude[name] = f"{name} = {text}"

    # -- helpers ------------------------------------------------------------

    def _helper(self, function: Function) -> str:
        owner = function.owner
        name = f"self_{function.name}" if owner is not None and not _is_static(function.node) else function.name
        if name in self.slice.helpers or name in self._helpers_in_progress:
            return name
        self._helpers_in_progress.add(name)
        scope = self.scope_for(function.node, "helper", prefix=f"{function.name}_")
        self._scan(function.node.body, scope)
        node = function.node
        params = node.params
        kept = [*params.posonly_params, *params.params]
        if scope.self_name is not None:
            kept = kept[1:]
        new_params = params.with_changes(posonly_params=(), params=tuple(
            p.with_changes(annotation=None, default=self._rewrite_default(p.default, scope), equal=p.equal)
            for p in kept),
            kwonly_params=tuple(p.with_changes(annotation=None, default=self._rewrite_default(p.default, scope))
                                for p in params.kwonly_params),
            posonly_ind=cst.MaybeSentinel.DEFAULT)
        body = node.body.visit(_Rewriter(self, scope))
        definition = node.with_changes(name=cst.Name(name), params=new_params, decorators=(), returns=None,
                                       asynchronous=None, body=body, leading_lines=())
        self.slice.helpers[name] = cst.Module(body=[definition]).code.rstrip("\n")
        self._helpers_in_progress.discard(name)
        return name

    def _rewrite_default(self, default: cst.BaseExpression | None, scope: _Scope):
        if default is None:
            return None
        text, _ = self.rewrite(default, scope)
        return cst.parse_expression(text)

    # -- rewriting ----------------------------------------------------------

    def rewrite(self, node: cst.CSTNode, scope: _Scope) -> tuple[str, dict[str, cst.CSTNode]]:
        rewriter = _Rewriter(self, scope)
        new = node.visit(rewriter)
        return cst.Module(body=[]).code_for_node(new).strip(), rewriter.reads

    def rewrite_statement(self, node: cst.BaseSmallStatement, scope: _Scope):
        rewriter = _Rewriter(self, scope)
        new = node.visit(rewriter)
        line = cst.SimpleStatementLine(body=[new.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)])
        return cst.Module(body=[line]).code.rstrip("\n"), rewriter.reads

    def _scan(self, node: cst.CSTNode, scope: _Scope) -> None:
        """Refuse a slice that names anything forbidden, even in a part that would be cut."""
        for name in _all_names(node):
            if allowlist.is_dunder(name.value):
                raise NotExecutable(f"`{name.value}` (line {self.line(name)}) is a dunder name, "
                                    "which --confirm never runs")
            values = self.analysis.values.get(name)
            qualname = _sole_qualname(values) if values else None
            if qualname is None:
                continue
            qualname = api.canonical(qualname)
            root = qualname.split(".")[0]
            if root == "builtins":
                builtin = qualname.split(".", 1)[1]
                if builtin not in allowlist.SAFE_BUILTINS and name.value not in scope.locals:
                    raise NotExecutable(f"`{name.value}` (line {self.line(name)}) is the builtin `{builtin}`, "
                                        "which --confirm never runs")
            elif root not in allowlist.NAMESPACE_ROOTS:
                raise NotExecutable(f"`{name.value}` (line {self.line(name)}) is `{qualname}`, outside the "
                                    "allowed set (only torch and math are allowed)")

    def qualified(self, qualname: str, node: cst.CSTNode) -> cst.BaseExpression:
        """The canonical spelling of an imported name, if the allow-list has it."""
        qualname = api.canonical(qualname)
        if qualname.startswith("builtins."):
            builtin = qualname.split(".", 1)[1]
            if builtin in allowlist.SAFE_BUILTINS:
                return cst.Name(builtin)
            raise NotExecutable(f"`{self.text(node)}` (line {self.line(node)}) is the builtin `{builtin}`, "
                                "which --confirm never runs")
        if allowlist.allowed_qualname(qualname):
            return cst.parse_expression(qualname)
        raise NotExecutable(f"`{self.text(node)}` (line {self.line(node)}) is `{qualname}`, which is not on "
                            "the allow-list of --confirm")

    def _qualname(self, node: cst.CSTNode) -> str | None:
        values = self.analysis.values.get(node)
        return _sole_qualname(values) if values else None

    def _is_self_attribute(self, node: cst.CSTNode, scope: _Scope) -> bool:
        return (isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name)
                and scope.self_name is not None and node.value.value == scope.self_name)

    def global_name(self, node: cst.Name, scope: _Scope) -> cst.BaseExpression:
        """A name not local to its scope: an import, a helper, a rebuilt instance, a constant, or an input."""
        name = node.value
        values = self.analysis.values.get(node) or self.analysis.module_env.get(name) or UNKNOWN
        qualname = _sole_qualname(values)
        if qualname is not None:
            return self.qualified(qualname, node)
        if name in allowlist.SAFE_BUILTINS and name not in self.analysis.module_env:
            return cst.Name(name)
        obj = _sole_object(values)
        if isinstance(obj, Function | BoundMethod):
            return cst.Name(self._helper(_function_of(obj)))
        if obj is not None and _is_rebuildable(obj):
            self._construct(name, obj)
            return cst.Name(name)
        constant = self._module_constant(name)
        if constant is not None:
            self.slice.prelude.setdefault(name, f"{name} = {constant}")
            return cst.Name(name)
        if name not in self.analysis.module_env:
            return cst.Name(name)  # unknown: the allow-list check names it
        if scope.kind == "helper":
            raise NotExecutable(f"helper `{scope.function.name if scope.function else '?'}` reads the global "
                                f"`{name}`, which --confirm cannot rebuild")
        self._add_cut(name, name, node, values, "", scope)
        return cst.Name(name)

    def _module_constant(self, name: str) -> str | None:
        """The literal a module-level name is bound to, when it is bound exactly once."""
        found: list[cst.BaseExpression] = []
        for statement in self.module.body:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if isinstance(small, cst.Assign):
                        for target in small.targets:
                            if isinstance(target.target, cst.Name) and target.target.value == name:
                                found.append(small.value)
                    elif isinstance(small, cst.AnnAssign | cst.AugAssign) and \
                            isinstance(small.target, cst.Name) and small.target.value == name:
                        found.append(cst.Name("None") if small.value is None else small.value)
        if len(found) == 1 and literal(found[0]) is not MISSING and not isinstance(literal(found[0]), str):
            return self.text(found[0])
        return None


class _Rewriter(cst.CSTTransformer):
    """Rewrites one statement or expression of a scope (see the module docstring)."""

    def __init__(self, slicer: Slicer, scope: _Scope) -> None:
        self.slicer = slicer
        self.scope = scope
        self.reads: dict[str, cst.CSTNode] = {}
        self.replacements: dict[int, cst.CSTNode] = {}
        self.not_loads: set[int] = set()
        self.comprehension_locals: set[str] = set()

    def on_visit(self, node: cst.CSTNode) -> bool:
        if id(node) in self.replacements:
            return False
        replacement = self._decide(node)
        if replacement is not None:
            self.replacements[id(node)] = replacement
            return False
        return True

    def on_leave(self, original_node, updated_node):
        return self.replacements.get(id(original_node), updated_node)

    def _decide(self, node: cst.CSTNode) -> cst.CSTNode | None:
        slicer, scope = self.slicer, self.scope
        if isinstance(node, cst.Attribute):
            self.not_loads.add(id(node.attr))
            if slicer._is_self_attribute(node, scope):
                return self._self_attribute(node)
            qualname = slicer._qualname(node)
            if qualname is not None:
                return slicer.qualified(qualname, node)
            if slicer._cut_action(node, scope) is not None:
                return self._cut(node)
            return None
        if isinstance(node, cst.Call):
            kind = slicer._call_kind(node, scope)
            if kind == "cut":
                return self._cut(node)
            if kind == "helper":
                values = slicer.analysis.values.get(node.func)
                function = _function_of(values[0].obj)
                self.replacements[id(node.func)] = cst.Name(slicer._helper(function))
            return None
        if isinstance(node, cst.Subscript):
            if slicer._cut_action(node, scope) is not None:
                return self._cut(node)
            return None
        if isinstance(node, cst.Arg) and node.keyword is not None:
            self.not_loads.add(id(node.keyword))
        elif isinstance(node, cst.Param):
            self.not_loads.add(id(node.name))
        elif isinstance(node, cst.FunctionDef):
            self.not_loads.add(id(node.name))
        elif isinstance(node, cst.CompFor):
            self.comprehension_locals |= _comprehension_names(node)
            collector = _StoreCollector()
            collector._targets(node.target)
            self.not_loads |= {id(n) for n in _all_names(node.target)}
        elif isinstance(node, cst.AssignTarget | cst.AnnAssign | cst.AugAssign | cst.For):
            target = node.target
            if slicer._is_self_attribute(target, scope):
                self.replacements[id(target)] = self._self_attribute(target, store=True)
            elif isinstance(target, cst.Name | cst.Tuple | cst.List | cst.StarredElement):
                if not isinstance(node, cst.AugAssign):
                    self.not_loads |= {id(n) for n in _all_names(target)}
        elif isinstance(node, cst.Name):
            return self._name(node)
        return None

    def _name(self, node: cst.Name) -> cst.CSTNode | None:
        if id(node) in self.not_loads:
            return None
        name = node.value
        if name in ("True", "False", "None"):
            return None
        if name in self.comprehension_locals:
            return None
        values = self.slicer.analysis.values.get(node)
        qualname = _sole_qualname(values) if values else None
        if qualname is not None and not qualname.startswith("builtins."):
            return self.slicer.qualified(qualname, node)  # an import, wherever it was bound
        if name in self.scope.locals:
            if self.scope.kind == "main":
                self.reads.setdefault(name, node)
                return None
            if self.scope.kind == "constructor":
                default = self.slicer._parameter_default(name, self.scope)
                cut = self.scope.prefix + name
                self.slicer._add_cut(cut, name, node, self.slicer.analysis.value(node), "", self.scope, default)
                return cst.Name(cut)
            return None
        return self.slicer.global_name(node, self.scope)

    def _self_attribute(self, node: cst.Attribute, store: bool = False) -> cst.Name:
        attr = node.attr.value
        if self.scope.kind == "main":
            if not store:
                self.reads.setdefault(f"{self.scope.self_name}.{attr}", node)
            return cst.Name(f"self_{attr}")
        return cst.Name(self.slicer._resolve_self(attr, node, self.scope))

    def _cut(self, node: cst.BaseExpression) -> cst.Name:
        return self.slicer._cut_expression(node, self.scope)


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def _alias(statement: cst.CSTNode, text: str, cuts: dict[str, Cut]) -> tuple[str, str] | None:
    if isinstance(statement, cst.Assign) and len(statement.targets) == 1 and \
            isinstance(statement.targets[0].target, cst.Name):
        name = statement.targets[0].target.value
        match = re.fullmatch(rf"{re.escape(name)} = (\w+)", text.strip())
        if match and match.group(1) in cuts:
            return name, match.group(1)
    return None


def _block_statements(block) -> list[cst.CSTNode]:
    if isinstance(block, cst.If):
        return [block]
    if isinstance(block, cst.Module):
        return list(block.body)
    if isinstance(block, cst.IndentedBlock):
        return list(block.body)
    if isinstance(block, cst.SimpleStatementSuite):
        return [block]
    return []


def _child_blocks(statement: cst.CSTNode) -> list[cst.CSTNode]:
    blocks: list[cst.CSTNode] = []
    if isinstance(statement, cst.If):
        blocks.append(statement.body)
        orelse = statement.orelse
        if isinstance(orelse, cst.Else):
            blocks.append(orelse.body)
        elif isinstance(orelse, cst.If):
            blocks.append(orelse)  # an elif: walked as a one-statement block
    elif isinstance(statement, cst.For | cst.While | cst.With):
        blocks.append(statement.body)
    elif isinstance(statement, cst.Try):
        blocks.append(statement.body)
        blocks.extend(handler.body for handler in statement.handlers)
        if statement.orelse is not None:
            blocks.append(statement.orelse.body)
        if statement.finalbody is not None:
            blocks.append(statement.finalbody.body)
    elif isinstance(statement, cst.Match):
        blocks.extend(case.body for case in statement.cases)
    return blocks


def _comment(line: cst.CSTNode) -> str:
    trailing = getattr(line, "trailing_whitespace", None)
    comment = getattr(trailing, "comment", None)
    return comment.value if comment is not None else ""


def _all_names(node: cst.CSTNode) -> list[cst.Name]:
    found: list[cst.Name] = []

    class Visitor(cst.CSTVisitor):
        def visit_Name(self, name: cst.Name) -> None:
            found.append(name)

    node.visit(Visitor())
    return found


def _identifier(text: str) -> str:
    name = re.sub(r"\W+", "_", text).strip("_") or "value"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = "v_" + name
    return name[:48].rstrip("_")


def _sole_qualname(values: AbsVal | None) -> str | None:
    if not values:
        return None
    names = {v.qualname for v in values}
    if len(names) == 1:
        return next(iter(names))
    return None


def _sole_object(values: AbsVal) -> object | None:
    """The one object all values denote; a parameter with a default counts as its default."""
    defaults = [v for v in values if not (v.param is not None and v.obj is None and v.domain is Domain.UNKNOWN)]
    values = tuple(defaults) or values
    objects = [v.obj for v in values]
    if objects and all(o is not None for o in objects) and len({id(o) for o in objects}) == 1:
        return objects[0]
    if objects and all(isinstance(o, LossObject | Layer) for o in objects):
        nodes = {id(o.node) for o in objects}
        if len(nodes) == 1:
            return objects[0]
    return None


def _is_rebuildable(obj: object) -> bool:
    """A loss instance or an activation module (rebuilt from its constructor call), or a loss class."""
    if isinstance(obj, LossClass):
        return obj.contract.module is not None and allowlist.allowed_qualname(obj.contract.module)
    if isinstance(obj, LossObject):
        return obj.contract.module is not None and allowlist.allowed_qualname(obj.contract.module)
    if isinstance(obj, Layer):
        # An activation (softmax, sigmoid, ...) has no weights; a layer producing logits (Linear, Conv) does.
        return obj.producer.domain is not Domain.LOGITS and allowlist.allowed_qualname(api.canonical(obj.qualname))
    return False


def _function_of(obj: object) -> Function:
    return obj.function if isinstance(obj, BoundMethod) else obj


def _has_tensor_domain(values: AbsVal) -> bool:
    return bool(values) and all(v.domain not in (Domain.UNKNOWN, Domain.NUMBER) and v.obj is None for v in values)


def _sequence_items(values: AbsVal, count: int) -> list[AbsVal] | None:
    from losslint.objects import Sequence

    if len(values) == 1 and isinstance(values[0].obj, Sequence) and len(values[0].obj.items) == count:
        return list(values[0].obj.items)
    return None


def _is_static(node: cst.FunctionDef) -> bool:
    return any(isinstance(d.decorator, cst.Name) and d.decorator.value == "staticmethod" for d in node.decorators)
