"""The editor integration: a Language Server Protocol server over stdio (`losslint server`).

Only `server.py` imports pygls; the rest of losslint never imports this package's
server, so the static linter runs without the `lsp` extra installed.
"""
