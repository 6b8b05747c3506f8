"""The `losslint server` command; pygls is imported only when the server starts."""

from __future__ import annotations

import click


@click.command("server")
def server() -> None:
    """Start the language server (LSP) over stdio, for editors. Needs the `lsp` extra."""
    try:
        from losslint.lsp.server import main
    except ImportError as error:
        raise click.ClickException(
            f"the language server needs pygls ({error}): pip install 'torch-losslint[lsp]'") from error
    main()
