"""The language server, driven over stdio by a real LSP client (pytest-lsp, built on pygls)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

from losslint.findings import Position
from losslint.lsp.positions import UTF8, UTF16, UTF32, split_lines, to_lsp

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TIMEOUT = 10.0

BUGGY = textwrap.dedent("""\
    import torch.nn.functional as F

    def step(model, x, y):
        logits = model(x)
        return F.cross_entropy(F.softmax(logits, dim=1), y)
""")
FIXED = BUGGY.replace("F.softmax(logits, dim=1)", "logits")
# Non-ASCII and astral characters before the finding on its line: UTF-16, UTF-8 and
# code-point columns all differ there.
WIDE = textwrap.dedent("""\
    import torch.nn.functional as F

    def step(model, x, y):
        label = "é😀"; return F.cross_entropy(F.softmax(model(x), dim=1), y)
""")
ANCHOR = "F.softmax(logits, dim=1)"


def _make_client() -> LanguageClient:
    """The pytest-lsp client, also recording every publication and capability registration."""
    client = LanguageClient(converter_factory=default_converter)
    client.published = []
    client.registrations = []

    def publish(ls: LanguageClient, params: types.PublishDiagnosticsParams) -> None:
        ls.published.append(params)
        ls.diagnostics[params.uri] = params.diagnostics

    def register(ls: LanguageClient, params: types.RegistrationParams) -> None:
        ls.registrations.extend(params.registrations)

    features = dict(DEFAULT_CLIENT_FEATURES)
    features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = publish
    features[types.CLIENT_REGISTER_CAPABILITY] = register
    register_lsp_features(client, features)
    return client


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=[sys.executable, "-m", "losslint", "server"], client_factory=_make_client))
async def client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


async def _initialize(client: LanguageClient, root: Path, encodings: list[str] | None = None,
                      editor: str = "visual-studio-code") -> types.InitializeResult:
    capabilities = client_capabilities(editor)
    if encodings is not None:
        capabilities.general = types.GeneralClientCapabilities(position_encodings=encodings)
    return await client.initialize_session(types.InitializeParams(
        capabilities=capabilities, root_uri=root.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="project")]))


async def _eventually(condition, timeout: float = TIMEOUT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting for the server")
        await asyncio.sleep(0.02)


async def _open(client: LanguageClient, path: Path, text: str) -> list[types.Diagnostic]:
    path.write_text(text, encoding="utf-8")
    uri = path.as_uri()
    before = len(client.published)
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    await _eventually(lambda: any(p.uri == uri for p in client.published[before:]))
    return list(client.diagnostics[uri])


async def _change(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))


async def _published_for(client: LanguageClient, uri: str, version: int) -> list[types.Diagnostic]:
    await _eventually(lambda: any(p.uri == uri and p.version == version for p in client.published))
    return list(client.diagnostics[uri])


def _units(text: str, encoding: str) -> int:
    """Code units of `text` in an LSP position encoding (written independently of the server's code)."""
    return {"utf-8": len(text.encode("utf-8")), "utf-16": len(text.encode("utf-16-le")) // 2,
            "utf-32": len(text)}[encoding]


def _expected_range(text: str, anchor: str, encoding: str = "utf-16") -> types.Range:
    lines = text.split("\n")
    line = next(number for number, content in enumerate(lines) if anchor in content)
    start = _units(lines[line][:lines[line].index(anchor)], encoding)
    return types.Range(types.Position(line, start), types.Position(line, start + _units(anchor, encoding)))


def _apply(text: str, edits: list[types.TextEdit], encoding: str = "utf-16") -> str:
    """What an editor does with text edits: applied from the last to the first."""
    line_starts = [0] + [match.end() for match in re.finditer(r"\r\n|\r|\n", text)]

    def offset(position: types.Position) -> int:
        start = line_starts[position.line]
        end = line_starts[position.line + 1] if position.line + 1 < len(line_starts) else len(text)
        line = text[start:end].rstrip("\r\n")
        characters = 0
        while characters < len(line) and _units(line[:characters + 1], encoding) <= position.character:
            characters += 1
        return start + characters

    spans = sorted(((offset(e.range.start), offset(e.range.end), e.new_text) for e in edits), reverse=True)
    for start, end, new_text in spans:
        text = text[:start] + new_text + text[end:]
    return text


async def _code_actions(client: LanguageClient, uri: str, lsp_range: types.Range,
                        only: list[str] | None = None) -> list[types.CodeAction]:
    return await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=lsp_range,
        context=types.CodeActionContext(diagnostics=[], only=only))) or []


# -- positions (pure functions) -------------------------------------------------


@pytest.mark.parametrize("encoding", [UTF8, UTF16, UTF32])
def test_positions_count_code_units_of_every_encoding(encoding):
    text = 'a = "é😀x"\r\nb = 1\rc = "€"\n'
    lines = split_lines(text)
    assert lines == ['a = "é😀x"', "b = 1", 'c = "€"', ""]
    for number, line in enumerate(lines, start=1):
        for column in range(1, len(line) + 2):
            assert to_lsp(lines, Position(number, column), encoding) == (number - 1, _units(line[:column - 1], encoding))


def test_positions_past_the_end_clamp_to_the_document():
    lines = split_lines('s = "😀"\n')
    assert to_lsp(lines, Position(1, 99), UTF16) == (0, _units(lines[0], UTF16))
    assert to_lsp(lines, Position(9, 1), UTF16) == (1, 0)


@pytest.mark.parametrize(("old", "new"), [
    ("a = 1\r\nb = 2\r\n", "a = 1\r\nb = 3\r\n"),
    ("a\r\nb", "a\rb"),  # the shared prefix ends between "\r" and "\n"
    ("x = '😀'\nloss = f(g(x))\n", "x = '😀'\nloss = f(x)\n"),
    ("same\n", "same\n"),
])
def test_a_replacement_edit_turns_the_old_text_into_the_new(old, new):
    from losslint.lsp.convert import Lines, replacement

    for encoding in (UTF8, UTF16, UTF32):
        edit = replacement(old, new, Lines(old, encoding))
        assert _apply(old, [edit], encoding) == new


def test_form_feeds_and_other_unicode_separators_do_not_end_lines():
    # str.splitlines() would split here; Python, libcst and the LSP do not.
    assert split_lines("a\x0cb\u2028c\nd") == ["a\x0cb\u2028c", "d"]


# -- the server -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_diagnostics_on_open_carry_code_severity_source_link_and_utf16_range(client, tmp_path):
    result = await _initialize(client, tmp_path)
    assert result.capabilities.position_encoding in (None, types.PositionEncodingKind.Utf16)

    diagnostics = await _open(client, tmp_path / "train.py", BUGGY)

    assert len(diagnostics) == 1
    diagnostic = diagnostics[0]
    assert diagnostic.code == "LL101"
    assert diagnostic.source == "losslint"
    assert diagnostic.severity == types.DiagnosticSeverity.Error
    assert diagnostic.range == _expected_range(BUGGY, ANCHOR)
    assert "softmax" in diagnostic.message and "cross_entropy" in diagnostic.message
    assert diagnostic.code_description.href.endswith("docs/rules.md#ll101-softmax-into-cross-entropy")


@pytest.mark.asyncio
@pytest.mark.parametrize("encoding", ["utf-16", "utf-8", "utf-32"])
async def test_ranges_count_in_the_negotiated_encoding_on_lines_with_astral_characters(client, tmp_path, encoding):
    offered = None if encoding == "utf-16" else [encoding]
    result = await _initialize(client, tmp_path, encodings=offered)
    assert (result.capabilities.position_encoding or "utf-16") == encoding

    diagnostics = await _open(client, tmp_path / "wide.py", WIDE)

    assert [d.range for d in diagnostics] == [_expected_range(WIDE, "F.softmax(model(x), dim=1)", encoding)]


@pytest.mark.asyncio
async def test_quick_fix_is_labelled_with_its_safety_and_applies_cleanly(client, tmp_path):
    await _initialize(client, tmp_path)
    uri = (tmp_path / "train.py").as_uri()
    diagnostics = await _open(client, tmp_path / "train.py", BUGGY)

    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=diagnostics[0].range,
        context=types.CodeActionContext(diagnostics=diagnostics, only=[types.CodeActionKind.QuickFix])))

    assert [a.title for a in actions] == ["Fix LL101: Remove the softmax and pass the logits (unsafe)",
                                          "Disable LL101 for this line"]
    action = actions[0]
    assert action.kind == types.CodeActionKind.QuickFix
    assert not action.is_preferred  # unsafe fixes are never applied by "auto fix" shortcuts
    assert action.diagnostics[0].code == "LL101"
    fixed = _apply(BUGGY, action.edit.changes[uri])
    assert fixed == FIXED

    await _change(client, uri, 2, fixed)
    assert await _published_for(client, uri, 2) == []


@pytest.mark.asyncio
async def test_quick_fix_on_a_line_with_astral_characters(client, tmp_path):
    await _initialize(client, tmp_path)
    uri = (tmp_path / "wide.py").as_uri()
    diagnostics = await _open(client, tmp_path / "wide.py", WIDE)

    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=diagnostics[0].range,
        context=types.CodeActionContext(diagnostics=diagnostics)))

    quick_fixes = [a for a in actions if a.kind == types.CodeActionKind.QuickFix]
    assert _apply(WIDE, quick_fixes[0].edit.changes[uri]) == WIDE.replace("F.softmax(model(x), dim=1)", "model(x)")


@pytest.mark.asyncio
async def test_crlf_documents_keep_their_line_ends_through_a_fix(client, tmp_path):
    await _initialize(client, tmp_path)
    uri = (tmp_path / "train.py").as_uri()
    crlf = BUGGY.replace("\n", "\r\n")
    diagnostics = await _open(client, tmp_path / "train.py", crlf)
    assert diagnostics[0].range == _expected_range(BUGGY, ANCHOR)

    actions = await _code_actions(client, uri, diagnostics[0].range, only=[types.CodeActionKind.QuickFix])

    assert _apply(crlf, actions[0].edit.changes[uri]) == FIXED.replace("\n", "\r\n")


@pytest.mark.asyncio
async def test_no_code_action_away_from_the_finding(client, tmp_path):
    await _initialize(client, tmp_path)
    uri = (tmp_path / "train.py").as_uri()
    await _open(client, tmp_path / "train.py", BUGGY)

    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(types.Position(0, 0), types.Position(0, 3)),
        context=types.CodeActionContext(diagnostics=[], only=[types.CodeActionKind.QuickFix])))

    assert not actions


@pytest.mark.asyncio
async def test_changes_are_debounced_into_one_lint_of_the_latest_text(client, tmp_path):
    await _initialize(client, tmp_path)
    uri = (tmp_path / "train.py").as_uri()
    await _open(client, tmp_path / "train.py", FIXED)
    before = len(client.published)

    for version, text in enumerate([BUGGY, FIXED, BUGGY], start=2):
        await _change(client, uri, version, text)

    diagnostics = await _published_for(client, uri, 4)
    await asyncio.sleep(0.5)  # anything still pending would have been published by now
    assert [p.version for p in client.published[before:] if p.uri == uri] == [4]
    assert [d.code for d in diagnostics] == ["LL101"]


@pytest.mark.asyncio
async def test_save_lints_at_once_and_close_clears(client, tmp_path):
    await _initialize(client, tmp_path)
    uri = (tmp_path / "train.py").as_uri()
    await _open(client, tmp_path / "train.py", FIXED)
    await _change(client, uri, 2, BUGGY)
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri)))
    # Published before the debounce delay is over: by the save.
    await _published_for(client, uri, 2)

    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri)))
    await _eventually(lambda: client.published[-1].uri == uri and not client.published[-1].diagnostics)


@pytest.mark.asyncio
async def test_notebook_cells_are_linted_together_and_reported_on_their_cell(client, tmp_path):
    await _initialize(client, tmp_path)
    notebook_uri = (tmp_path / "train.ipynb").as_uri()
    cells = [
        "%matplotlib inline\nimport torch.nn.functional as F\n",
        "# just prose in a code cell",
        "probs = F.softmax(model(x), dim=1)\n!nvidia-smi",
        'print("é😀"); loss = F.cross_entropy(probs, y)',
    ]
    cell_uris = [f"vscode-notebook-cell:{tmp_path}/train.ipynb#cell{index}" for index in range(len(cells))]
    client.notebook_document_did_open(types.DidOpenNotebookDocumentParams(
        notebook_document=types.NotebookDocument(
            uri=notebook_uri, notebook_type="jupyter-notebook", version=1,
            cells=[types.NotebookCell(kind=types.NotebookCellKind.Code, document=uri) for uri in cell_uris]),
        cell_text_documents=[types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
                             for uri, text in zip(cell_uris, cells)]))

    await _eventually(lambda: all(uri in client.diagnostics for uri in cell_uris))
    assert [list(client.diagnostics[uri]) for uri in cell_uris[:3]] == [[], [], []]
    (diagnostic,) = client.diagnostics[cell_uris[3]]
    assert diagnostic.code == "LL101"
    assert diagnostic.range == _expected_range(cells[3], "probs")


def test_the_static_linter_never_imports_pygls():
    code = ("import sys, losslint.cli, losslint.api, losslint.flake8_plugin;"
            "from click.testing import CliRunner;"
            "CliRunner().invoke(losslint.cli.main, ['check', '-'], input='import torch\\n');"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pygls', 'lsprotocol')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# -- configuration, suppressions and fixes as in every other mode -----------------

REDUNDANT = textwrap.dedent("""\
    import torch  # noqa: LL101
    import torch.nn.functional as F

    def step(logits, y):
        a = F.cross_entropy(F.log_softmax(logits, dim=1), y)
        return a + F.cross_entropy(F.softmax(logits, dim=1), y)
""")


@pytest.mark.asyncio
async def test_fix_all_applies_every_safe_fix_the_configuration_allows_and_no_unsafe_one(client, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.losslint]\nextend-select = ["LL102"]\n')
    await _initialize(client, tmp_path)
    uri = (tmp_path / "train.py").as_uri()
    diagnostics = await _open(client, tmp_path / "train.py", REDUNDANT)
    assert sorted(d.code for d in diagnostics) == ["LL101", "LL102", "LL900"]

    whole = types.Range(types.Position(0, 0), types.Position(6, 0))
    actions = await _code_actions(client, uri, whole, only=[types.CodeActionKind.SourceFixAll])

    assert [(a.title, a.kind) for a in actions] == [("losslint: fix all safe findings", "source.fixAll.losslint")]
    fixed = _apply(REDUNDANT, actions[0].edit.changes[uri])
    assert fixed == (REDUNDANT.replace("import torch  # noqa: LL101", "import torch")
                     .replace("F.log_softmax(logits, dim=1)", "logits"))
    await _change(client, uri, 2, fixed)
    assert [d.code for d in await _published_for(client, uri, 2)] == ["LL101"]


@pytest.mark.asyncio
async def test_unfixable_codes_get_no_fix_action(client, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.losslint]\nunfixable = ["LL101"]\n')
    await _initialize(client, tmp_path)
    uri = (tmp_path / "train.py").as_uri()
    diagnostics = await _open(client, tmp_path / "train.py", BUGGY)

    actions = await _code_actions(client, uri, diagnostics[0].range)

    assert [a.title for a in actions] == ["Disable LL101 for this line"]


@pytest.mark.asyncio
async def test_noqa_action_writes_a_suppression_that_silences_the_finding(client, tmp_path):
    await _initialize(client, tmp_path)
    uri = (tmp_path / "train.py").as_uri()
    diagnostics = await _open(client, tmp_path / "train.py", WIDE)

    (action,) = [a for a in await _code_actions(client, uri, diagnostics[0].range) if a.title.startswith("Disable")]
    silenced = _apply(WIDE, action.edit.changes[uri])

    assert silenced == WIDE.replace("dim=1), y)\n", "dim=1), y)  # noqa: LL101\n")
    await _change(client, uri, 2, silenced)
    assert await _published_for(client, uri, 2) == []


@pytest.mark.asyncio
async def test_nearest_configuration_is_respected_and_reloaded_when_it_changes(client, tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.losslint]\nignore = ["LL101"]\n')
    await _initialize(client, tmp_path)
    await _eventually(lambda: any(r.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES for r in client.registrations))
    uri = (tmp_path / "train.py").as_uri()
    assert await _open(client, tmp_path / "train.py", BUGGY) == []

    pyproject.write_text("[tool.losslint]\n")
    before = len(client.published)
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[
        types.FileEvent(uri=pyproject.as_uri(), type=types.FileChangeType.Changed)]))

    await _eventually(lambda: any(p.uri == uri for p in client.published[before:]))
    assert [d.code for d in client.diagnostics[uri]] == ["LL101"]


@pytest.mark.asyncio
async def test_excluded_files_get_no_diagnostics(client, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.losslint]\nextend-exclude = ["generated"]\n')
    (tmp_path / "generated").mkdir()
    await _initialize(client, tmp_path)

    assert await _open(client, tmp_path / "generated" / "train.py", BUGGY) == []
    assert len(await _open(client, tmp_path / "train.py", BUGGY)) == 1


@pytest.mark.asyncio
async def test_a_broken_configuration_is_shown_and_the_defaults_are_used(client, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.losslint]\nselct = ["LL1"]\n')
    await _initialize(client, tmp_path)

    diagnostics = await _open(client, tmp_path / "train.py", BUGGY)

    assert [d.code for d in diagnostics] == ["LL101"]
    await _eventually(lambda: client.messages)
    assert client.messages[0].type == types.MessageType.Error
    assert "selct" in client.messages[0].message


async def _open_notebook(client: LanguageClient, path: Path, cells: list[str]) -> list[str]:
    cell_uris = [f"vscode-notebook-cell:{path}#cell{index}" for index in range(len(cells))]
    client.notebook_document_did_open(types.DidOpenNotebookDocumentParams(
        notebook_document=types.NotebookDocument(
            uri=path.as_uri(), notebook_type="jupyter-notebook", version=1,
            cells=[types.NotebookCell(kind=types.NotebookCellKind.Code, document=uri) for uri in cell_uris]),
        cell_text_documents=[types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
                             for uri, text in zip(cell_uris, cells)]))
    await _eventually(lambda: all(uri in client.diagnostics for uri in cell_uris))
    return cell_uris


@pytest.mark.asyncio
async def test_notebook_fixes_edit_only_their_own_cells(client, tmp_path):
    await _initialize(client, tmp_path)
    cells = ["import torch  # noqa: LL101\nimport torch.nn.functional as F", "x = 1",
             "loss = F.cross_entropy(F.softmax(z, dim=1), y)"]
    cell_uris = await _open_notebook(client, tmp_path / "train.ipynb", cells)
    (unsafe,) = client.diagnostics[cell_uris[2]]

    quick = await _code_actions(client, cell_uris[2], unsafe.range, only=[types.CodeActionKind.QuickFix])
    fix_all = await _code_actions(client, cell_uris[0], types.Range(types.Position(0, 0), types.Position(0, 0)),
                                  only=["source.fixAll"])

    assert list(quick[0].edit.changes) == [cell_uris[2]]
    assert _apply(cells[2], quick[0].edit.changes[cell_uris[2]]) == "loss = F.cross_entropy(z, y)"
    assert list(fix_all[0].edit.changes) == [cell_uris[0]]
    assert _apply(cells[0], fix_all[0].edit.changes[cell_uris[0]]) == "import torch\nimport torch.nn.functional as F"


@pytest.mark.asyncio
async def test_documents_that_are_not_python_are_left_alone(client, tmp_path):
    await _initialize(client, tmp_path)
    notebook_json = tmp_path / "raw.ipynb"
    notes = tmp_path / "notes.md"
    for path, language in ((notebook_json, "json"), (notes, "markdown")):
        client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=path.as_uri(), language_id=language, version=1, text=BUGGY)))
    # A Python file opened afterwards is answered; the two before it never were.
    await _open(client, tmp_path / "train.py", BUGGY)
    assert notebook_json.as_uri() not in client.diagnostics and notes.as_uri() not in client.diagnostics
