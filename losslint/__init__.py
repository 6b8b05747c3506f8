"""losslint: finds PyTorch loss bugs before they waste a training run.

The static path (this package's core) never imports torch; the runtime companion
(`losslint.runtime`) and the test harness (`losslint.testing`) import it lazily.
The API below is imported on first use, so that `import losslint.testing.plugin`
(loaded by pytest in every run) stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "lint_file", "lint_paths", "lint_source"]


def __getattr__(name: str) -> Any:
    if name in ("lint_file", "lint_paths", "lint_source"):
        from losslint import api

        return getattr(api, name)
    raise AttributeError(f"module 'losslint' has no attribute {name!r}")
