"""The pytest11 plugin: auto-loaded, torch-free until used, and its `loss_check` fixture reports failures readably."""

from __future__ import annotations

import pytest

try:
    # Imported before the pytester fixture snapshots sys.modules: its teardown removes modules first
    # imported during the test, and torch's extension cannot be imported a second time (segfault).
    import torch
except ImportError:
    torch = None

pytest_plugins = ["pytester"]

# Other dependencies' plugins are not under test: pytest-lsp alone takes a second to import, and
# pytest-asyncio warns about its configuration in a folder without an ini file. Ours stays auto-loaded.
UNRELATED_PLUGINS_OFF = ("-p", "no:asyncio", "-p", "no:pytest-lsp", "-p", "no:anyio")

USER_TESTS = """
    import sys

    def test_plugin_is_loaded_without_importing_torch(request):
        assert request.config.pluginmanager.has_plugin("losslint")
        assert "torch" not in sys.modules

    def test_fixture_is_check_loss(loss_check):
        from losslint.testing import check_loss
        assert loss_check is check_loss

    def test_correct_loss(loss_check):
        import torch.nn.functional as F
        assert loss_check(F.cross_entropy, task="multiclass", num_classes=10).passed

    def test_softmax_before_cross_entropy(loss_check):
        import torch
        import torch.nn.functional as F

        def double_softmax(logits, target):
            return F.cross_entropy(torch.softmax(logits, 1), target)

        loss_check(double_softmax, task="multiclass", num_classes=10)
"""


@pytest.mark.slow  # a fresh interpreter imports pytest, losslint and torch: about 4 s
def test_plugin_is_auto_loaded_and_the_fixture_reports_failures(pytester):
    if torch is None:
        pytest.skip("needs torch")
    pytester.makepyfile(test_user_losses=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *UNRELATED_PLUGINS_OFF)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([
        "*LossCheckError: losslint harness: double_softmax (multiclass, K=10*",
        "*minimum*FAIL*1.461*",
        "*loss stays ≥ 1.461 = log(1 + (K-1)/e)*",
    ])


def test_the_fixture_comes_from_the_entry_point_plugin(pytester):
    pytester.makepyfile(test_uses_fixture="def test_it(loss_check):\n    pass\n")
    result = pytester.runpytest("-p", "no:losslint", *UNRELATED_PLUGINS_OFF)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'loss_check' not found*"])
