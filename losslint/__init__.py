"""losslint: finds PyTorch loss bugs before they waste a training run.

The static path (this package's core) never imports torch; the runtime companion
(`losslint.runtime`) and the test harness (`losslint.testing`) import it lazily.
"""

__version__ = "0.1.0"

from losslint.api import lint_file, lint_paths, lint_source  # noqa: E402

__all__ = ["__version__", "lint_file", "lint_paths", "lint_source"]
