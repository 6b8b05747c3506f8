"""The losslint language server: diagnostics, quick fixes and "fix all" for editors, over stdio.

Documents are synchronised in full (the client sends the whole text on each
change), so the text linted is exactly the editor's, with no incremental-edit
arithmetic that could drift. Diagnostics are published on open and save at once,
and after a short quiet period while the user types. Notebooks arrive through
notebook document sync: their code cells are linted together, as the kernel runs
them, and each diagnostic is published on its cell.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from losslint import __version__
from losslint.findings import Applicability, Finding
from losslint.lsp import documents
from losslint.lsp.project import Project
from losslint.lsp.positions import UTF16

FIX_ALL = "source.fixAll.losslint"
# Long enough to skip the keystrokes of a word, short enough to feel immediate.
DEBOUNCE_SECONDS = 0.3


class LosslintServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            "losslint",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Full,
            notebook_document_sync=types.NotebookDocumentSyncOptions(
                notebook_selector=[types.NotebookDocumentFilterWithCells(
                    notebook="*", cells=[types.NotebookCellLanguage(language="python")])],
                save=True,
            ),
        )
        self.debounce_seconds = DEBOUNCE_SECONDS
        self._pending: dict[str, asyncio.TimerHandle] = {}
        # The last lint of each open target (a text document or a notebook), by its URI.
        self.results: dict[str, documents.Linted] = {}
        self._shown_problem: str | None = None

    @property
    def root(self) -> Path:
        return Path(self.workspace.root_path or os.getcwd())

    @property
    def encoding(self) -> str:
        return str(self.workspace.position_encoding or UTF16)

    # -- linting -----------------------------------------------------------

    def target_of(self, uri: str) -> documents.Target | None:
        """What to lint for a document URI: the notebook a cell belongs to, or the document."""
        notebook = self.workspace.get_notebook_document(cell_uri=uri) or self.workspace.get_notebook_document(
            notebook_uri=uri)
        if notebook is not None:
            opened = (self._opened(cell.document) for cell in notebook.cells if cell.kind == types.NotebookCellKind.Code)
            parts = tuple(documents.Part(cell.uri, cell.source, cell.version) for cell in opened if cell is not None)
            return documents.Target(notebook.uri, self.path_of(notebook.uri), notebook.version, parts, notebook=True)
        document = self._opened(uri)
        path = self.path_of(uri)
        # A notebook opened as plain JSON text (a client without notebook sync) is not Python.
        if document is None or document.language_id not in (None, "python") or path.endswith(".ipynb"):
            return None
        part = documents.Part(document.uri, document.source, document.version)
        return documents.Target(document.uri, path, document.version, (part,))

    def path_of(self, uri: str) -> str:
        """Where the document lives; an unsaved buffer counts as a file in the workspace root."""
        path = to_fs_path(uri) if uri.startswith("file:") else None
        return path or str(self.root / "untitled.py")

    def _opened(self, uri: str) -> TextDocument | None:
        """An open document (not one pygls would read from disk), whatever the URI's escaping."""
        return self.workspace.text_documents.get(unquote(uri))

    def lint(self, uri: str) -> documents.Linted | None:
        target = self.target_of(uri)
        if target is None:
            return None
        project = Project(self.root)
        linted = documents.Linted(target, self.encoding, project)
        if project.problem is not None and project.problem != self._shown_problem:
            self.window_show_message(types.ShowMessageParams(
                type=types.MessageType.Error, message=f"losslint: {project.problem} (using the defaults meanwhile)"))
        self._shown_problem = project.problem
        previous = self.results.get(target.uri)
        self.results[target.uri] = linted
        self.publish(linted, previous)
        return linted

    def current(self, uri: str) -> documents.Linted | None:
        """The lint of the text the editor shows now (linted again if it changed since)."""
        target = self.target_of(uri)
        if target is None:
            return None
        linted = self.results.get(target.uri)
        if linted is not None and linted.target.version == target.version:
            return linted
        return self.lint(uri)

    def publish(self, linted: documents.Linted, previous: documents.Linted | None = None) -> None:
        by_uri = linted.diagnostics()
        # Cells that had diagnostics and have none now must be cleared explicitly.
        stale = set(previous.target.uris) - set(by_uri) if previous is not None else set()
        for uri in stale:
            by_uri[uri] = []
        versions = {part.uri: part.version for part in linted.target.parts}
        for uri, diagnostics in by_uri.items():
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=versions.get(uri)))

    def lint_soon(self, uri: str) -> None:
        """Lint after `debounce_seconds` without further changes to the document."""
        self.cancel_pending(uri)
        loop = asyncio.get_running_loop()
        self._pending[uri] = loop.call_later(self.debounce_seconds, self._lint_pending, uri)

    def _lint_pending(self, uri: str) -> None:
        self._pending.pop(uri, None)
        self.lint(uri)

    def cancel_pending(self, uri: str) -> None:
        handle = self._pending.pop(uri, None)
        if handle is not None:
            handle.cancel()

    def lint_all(self) -> None:
        for uri in list(self.results):
            self.lint(uri)

    def forget(self, uri: str) -> None:
        self.cancel_pending(uri)
        linted = self.results.pop(uri, None)
        for cell_uri in linted.target.uris if linted is not None else (uri,):
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=cell_uri, diagnostics=[]))

    # -- code actions ------------------------------------------------------

    def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        linted = self.current(params.text_document.uri)
        if linted is None:
            return []
        only = params.context.only
        actions: list[types.CodeAction] = []
        if _wanted(types.CodeActionKind.QuickFix, only):
            for finding, diagnostic in linted.at(params.text_document.uri, params.range):
                actions.extend(_quick_fixes(finding, diagnostic, linted))
        if _wanted(FIX_ALL, only):
            edit = linted.fix_all_edit
            if edit is not None:
                actions.append(types.CodeAction(title="losslint: fix all safe findings", kind=FIX_ALL, edit=edit))
        return actions


def _quick_fixes(finding: Finding, diagnostic: types.Diagnostic, linted: documents.Linted) -> list[types.CodeAction]:
    """The finding's fix, labelled with its safety, and a `# noqa` comment for its line."""
    actions = []
    fix_edit = linted.fix_edit(finding)
    if finding.fix is not None and fix_edit is not None:
        safe = finding.fix.applicability is Applicability.SAFE
        actions.append(types.CodeAction(
            title=f"Fix {finding.code}: {finding.fix.title} ({'safe' if safe else 'unsafe'})",
            kind=types.CodeActionKind.QuickFix,
            diagnostics=[diagnostic],
            # Editors apply a preferred fix with one key ("auto fix"): never one that changes the loss.
            is_preferred=safe,
            edit=fix_edit,
        ))
    noqa_edit = linted.noqa_edit(finding)
    if noqa_edit is not None:
        actions.append(types.CodeAction(
            title=f"Disable {finding.code} for this line", kind=types.CodeActionKind.QuickFix,
            diagnostics=[diagnostic], edit=noqa_edit))
    return actions


def _wanted(kind: str, only: Iterable[str] | None) -> bool:
    """LSP kinds are hierarchical: asking for `source.fixAll` includes `source.fixAll.losslint`."""
    return only is None or any(kind == wanted or kind.startswith(f"{wanted}.") for wanted in only)




def build() -> LosslintServer:
    server = LosslintServer()

    @server.feature(types.INITIALIZED)
    def initialized(ls: LosslintServer, params: types.InitializedParams) -> None:
        # Configuration changes re-lint the open documents (each lint reads the nearest configuration).
        if _client_can_watch_files(ls):
            ls.client_register_capability(types.RegistrationParams(registrations=[types.Registration(
                id="losslint-configuration",
                method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=[
                    types.FileSystemWatcher(glob_pattern="**/pyproject.toml"),
                ]),
            )]))

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: LosslintServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.lint(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LosslintServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.lint_soon(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: LosslintServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.cancel_pending(params.text_document.uri)
        ls.lint(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LosslintServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.forget(params.text_document.uri)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_OPEN)
    def notebook_did_open(ls: LosslintServer, params: types.DidOpenNotebookDocumentParams) -> None:
        ls.lint(params.notebook_document.uri)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_CHANGE)
    def notebook_did_change(ls: LosslintServer, params: types.DidChangeNotebookDocumentParams) -> None:
        ls.lint_soon(params.notebook_document.uri)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_SAVE)
    def notebook_did_save(ls: LosslintServer, params: types.DidSaveNotebookDocumentParams) -> None:
        ls.cancel_pending(params.notebook_document.uri)
        ls.lint(params.notebook_document.uri)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_CLOSE)
    def notebook_did_close(ls: LosslintServer, params: types.DidCloseNotebookDocumentParams) -> None:
        ls.forget(params.notebook_document.uri)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched_files_changed(ls: LosslintServer, params: types.DidChangeWatchedFilesParams) -> None:
        ls.lint_all()

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL]),
    )
    def code_action(ls: LosslintServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        return ls.code_actions(params)

    return server


def _client_can_watch_files(ls: LosslintServer) -> bool:
    workspace = ls.client_capabilities.workspace
    watched = workspace.did_change_watched_files if workspace is not None else None
    return bool(watched is not None and watched.dynamic_registration)


def main() -> None:
    build().start_io()
