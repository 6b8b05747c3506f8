"""The view of one analysed file that rules work with.

It exposes the dataflow's facts, turns nodes into source positions (computed
lazily: most files report nothing and never pay for them), writes evidence
chains, and spells torch names the way the file imports them.
"""

from __future__ import annotations

from functools import cached_property

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from losslint.domains import AbsVal, Value
from losslint.facts import BinOpFact, CallFact, LossCall, StatementFact
from losslint.findings import Edit, Position, Span
from losslint.interpreter import FileAnalysis
from losslint.torch_api import canonical


class Context:
    def __init__(self, path: str, module: cst.Module, analysis: FileAnalysis) -> None:
        self.path = path
        self.module = module
        self.analysis = analysis

    # -- facts ------------------------------------------------------------

    @property
    def loss_calls(self) -> list[LossCall]:
        return list(self.analysis.loss_calls.values())

    @property
    def calls(self) -> list[CallFact]:
        return list(self.analysis.calls.values())

    @property
    def binops(self) -> list[BinOpFact]:
        return list(self.analysis.binops.values())

    @property
    def derived_binops(self) -> list[BinOpFact]:
        """Binary operations inside helpers, with an operand as one call of the helper passes it."""
        return list(self.analysis.derived_binops.values())

    @property
    def statements(self) -> list[StatementFact]:
        return list(self.analysis.statements.values())

    @property
    def constructions(self) -> dict[cst.Call, Value]:
        return self.analysis.constructions

    def value(self, node: cst.CSTNode) -> AbsVal:
        return self.analysis.value(node)

    def call(self, node: cst.CSTNode) -> CallFact | None:
        return self.analysis.calls.get(node) if isinstance(node, cst.Call) else None

    # -- source -----------------------------------------------------------

    def text(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node).strip()

    @cached_property
    def _positions(self):
        return MetadataWrapper(self.module, unsafe_skip_copy=True).resolve(PositionProvider)

    def span(self, node: cst.CSTNode) -> Span:
        code_range = self._positions[node]
        return Span(
            Position(code_range.start.line, code_range.start.column + 1),
            Position(code_range.end.line, code_range.end.column + 1),
        )

    def line(self, node: cst.CSTNode) -> int:
        return self._positions[node].start.line

    @cached_property
    def _parents(self) -> dict[cst.CSTNode, cst.CSTNode]:
        parents: dict[cst.CSTNode, cst.CSTNode] = {}
        pending: list[cst.CSTNode] = [self.module]
        while pending:
            node = pending.pop()
            for child in node.children:
                parents[child] = node
                pending.append(child)
        return parents

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        """The node directly containing `node` (computed on first use, like positions)."""
        return self._parents.get(node)

    # -- evidence ---------------------------------------------------------

    def origin(self, value: Value) -> str:
        """`softmax, line 12`: what produced the value's domain, and where."""
        where = f", line {self.line(value.producer_node)}" if value.producer_node is not None else ""
        return f"{value.producer}{where}"

    def describe(self, node: cst.CSTNode, value: Value) -> str:
        """`probs` (softmax, line 12)."""
        return f"`{shorten(self.text(node))}` ({self.origin(value)})"

    def chain(self, value: Value) -> tuple[str, ...]:
        """The evidence chain of a value: where it was produced and the names it passed through."""
        steps = []
        if value.producer_node is not None:
            steps.append(f"line {self.line(value.producer_node)}: `{shorten(self.text(value.producer_node))}` "
                         f"gives {value.domain.value} ({value.producer})")
        for step in value.trail:
            if step.node is not None:
                steps.append(f"line {self.line(step.node)}: stored in `{step.text}`")
        return tuple(steps)

    def loss_label(self, loss_call: LossCall) -> str:
        """`self.criterion` (CrossEntropyLoss, built line 5), or `F.cross_entropy`."""
        contract = loss_call.contract
        if loss_call.instance is not None:
            built = f", built line {self.line(loss_call.instance.node)}"
            label = f"`{shorten(loss_call.callee_text)}` ({contract.module_name}{built})"
        else:
            label = f"`{shorten(loss_call.callee_text)}`"
        if loss_call.helper_call is not None:
            label += f" inside `{loss_call.helper_name}` (line {self.line(loss_call.node)})"
        if loss_call.context_call is not None:
            label += f" when called from line {self.line(loss_call.context_call)}"
        return label

    def loss_evidence(self, loss_call: LossCall, param: str, value: Value) -> tuple[str, ...]:
        arg = loss_call.arg(param)
        steps = list(self.chain(value))
        if arg is not None:
            steps.append(f"line {self.line(arg)}: passed as `{param}` of {self.loss_label(loss_call)}")
        return tuple(steps)

    # -- fixes ------------------------------------------------------------

    def spell(self, qualname: str) -> str | None:
        """How this file can refer to `qualname` with the imports it already has."""
        imports = self.analysis.imports
        qualname = canonical(qualname)
        parts = qualname.split(".")
        for cut in range(len(parts), 0, -1):
            local = imports.get(".".join(parts[:cut]))
            if local is not None:
                return ".".join([local, *parts[cut:]])
        return None

    def reference(self, qualname: str, module_alias: tuple[str, str] | None = None) -> tuple[str, tuple[Edit, ...]]:
        """A spelling of `qualname`, with the import edit to add when the file has none.

        `module_alias` (module, alias) is the import to add, e.g. ("torch.nn.functional", "F").
        """
        spelled = self.spell(qualname)
        if spelled is not None:
            return spelled, ()
        module, alias = module_alias or ("torch", "torch")
        if alias in self.analysis.module_env:
            module, alias = "torch", "torch"
        statement = f"import {module} as {alias}\n" if module != alias else f"import {module}\n"
        rest = qualname[len(module) + 1:] if qualname.startswith(module + ".") else qualname
        return f"{alias}.{rest}", (Edit(self._import_position(), statement),)

    def _import_position(self) -> Span:
        """Where a new import goes: after the last top-level import, else after the docstring."""
        line = 1
        for statement in self.module.body:
            if isinstance(statement, cst.SimpleStatementLine) and any(
                isinstance(small, cst.Import | cst.ImportFrom) for small in statement.body
            ):
                line = self._positions[statement].end.line + 1
            elif line == 1 and isinstance(statement, cst.SimpleStatementLine) and isinstance(
                statement.body[0], cst.Expr) and isinstance(statement.body[0].value, cst.SimpleString):
                line = self._positions[statement].end.line + 1
        position = Position(line, 1)
        return Span(position, position)


def shorten(text: str, limit: int = 60) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis (for messages)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
