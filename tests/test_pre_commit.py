"""The pre-commit hooks, run by the real `pre-commit` against temporary git repositories.

pre-commit installs the hooks' repository with pip into an environment of its
own (libcst and click only), exactly as for a user: a snapshot of this working
tree, committed into a temporary repository, stands in for the published one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

BUGGY = textwrap.dedent("""\
    import torch.nn.functional as F

    def step(model, x, y):
        logits = model(x)
        return F.cross_entropy(F.softmax(logits, dim=1), y)
""")
FIXED = BUGGY.replace("F.softmax(logits, dim=1)", "logits")
# A log of a softmax: the fix (log_softmax) is safe, the same value computed stably.
UNSTABLE = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F

    def log_probs(logits):
        return torch.log(F.softmax(logits, dim=1))
""")
STABLE = UNSTABLE.replace("torch.log(F.softmax(logits, dim=1))", "F.log_softmax(logits, dim=1)")

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_IDENTITY}).stdout.strip()


def _pre_commit(cwd: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **GIT_IDENTITY, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def hooks_repo(tmp_path_factory) -> tuple[Path, str]:
    """This working tree as pre-commit would fetch it: a git repository and the commit to use."""
    snapshot = tmp_path_factory.mktemp("hooks-repo")
    listed = _git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, snapshot / name)
    _git(snapshot, "init", "-q")
    _git(snapshot, "add", "-A")
    _git(snapshot, "commit", "-q", "-m", "snapshot")
    return snapshot, _git(snapshot, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def project(tmp_path) -> Path:
    _git(tmp_path, "init", "-q")
    return tmp_path


def _config(project: Path, hooks_repo: tuple[Path, str], hooks: str) -> None:
    repo, rev = hooks_repo
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {repo}\n    rev: {rev}\n    hooks:\n{textwrap.indent(hooks, '      ')}")


def test_the_manifest_is_valid_and_declares_both_hooks():
    result = subprocess.run([sys.executable, "-m", "pre_commit", "validate-manifest",
                             str(ROOT / ".pre-commit-hooks.yaml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    import yaml

    hooks = {hook["id"]: hook for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"losslint", "losslint-fix"}
    for hook in hooks.values():
        assert hook["types_or"] == ["python", "jupyter"]
        assert "--force-exclude" in hook["entry"].split()
    assert "--fix" in hooks["losslint-fix"]["entry"].split()


def test_every_subpackage_is_installed_by_a_non_editable_install():
    # pre-commit installs the package with `pip install .`: a subpackage missing from the
    # list installs a `losslint` command that fails on import.
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = set(setuptools["packages"])
    on_disk = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "losslint").rglob("__init__.py") if "__pycache__" not in path.parts
    }
    assert on_disk <= packages, f"missing from [tool.setuptools] packages: {sorted(on_disk - packages)}"


@pytest.mark.slow
def test_try_repo_lint_hook_fails_on_a_staged_buggy_file_and_prints_the_finding(hooks_repo, project,
                                                                                 pre_commit_home):
    (project / "train.py").write_text(BUGGY)
    _git(project, "add", "train.py")

    result = _pre_commit(project, pre_commit_home, "try-repo", str(hooks_repo[0]), "losslint",
                         "--ref", hooks_repo[1])

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "losslint" in output and "Failed" in output
    assert "train.py:5:28: LL101" in output


@pytest.mark.slow
def test_fix_hook_applies_a_safe_fix_and_the_lint_hook_then_passes(hooks_repo, project, pre_commit_home):
    _config(project, hooks_repo, "- id: losslint-fix\n- id: losslint\n")
    (project / "train.py").write_text(UNSTABLE)
    _git(project, "add", "train.py", ".pre-commit-config.yaml")

    fixing = _pre_commit(project, pre_commit_home, "run", "losslint-fix")
    assert fixing.returncode == 1, fixing.stdout + fixing.stderr
    assert "files were modified by this hook" in fixing.stdout
    assert (project / "train.py").read_text() == STABLE

    _git(project, "add", "train.py")
    linting = _pre_commit(project, pre_commit_home, "run", "losslint")
    assert linting.returncode == 0, linting.stdout + linting.stderr


@pytest.mark.slow
def test_fix_hook_applies_unsafe_fixes_only_when_its_args_ask(hooks_repo, project, pre_commit_home):
    # Removing a softmax changes the loss value: an opt-in in this config's args.
    _config(project, hooks_repo, "- id: losslint-fix\n  args: [--unsafe-fixes]\n- id: losslint\n")
    (project / "train.py").write_text(BUGGY)
    _git(project, "add", "train.py", ".pre-commit-config.yaml")

    fixing = _pre_commit(project, pre_commit_home, "run", "losslint-fix")
    assert fixing.returncode == 1, fixing.stdout + fixing.stderr  # pre-commit fails a hook that changed files
    assert "files were modified by this hook" in fixing.stdout
    assert (project / "train.py").read_text() == FIXED

    _git(project, "add", "train.py")
    linting = _pre_commit(project, pre_commit_home, "run", "losslint")
    assert linting.returncode == 0, linting.stdout + linting.stderr
    assert "Passed" in linting.stdout


@pytest.mark.slow
def test_hooks_are_skipped_when_no_python_file_is_staged(hooks_repo, project, pre_commit_home):
    _config(project, hooks_repo, "- id: losslint\n- id: losslint-fix\n")
    (project / "notes.txt").write_text("softmax cross_entropy\n")
    # A buggy file that is not staged must not be checked either (pre-commit never runs on `.`).
    (project / "untracked.py").write_text(BUGGY)
    _git(project, "add", "notes.txt", ".pre-commit-config.yaml")

    result = _pre_commit(project, pre_commit_home, "run")

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("(no files to check)Skipped") == 2


@pytest.mark.slow
def test_lint_hook_checks_staged_notebooks_cell_by_cell(hooks_repo, project, pre_commit_home):
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Training"),
        nbformat.v4.new_code_cell("%matplotlib inline\nimport torch.nn.functional as F"),
        nbformat.v4.new_code_cell("loss = F.cross_entropy(F.softmax(z, dim=1), y)"),
    ])
    nbformat.write(notebook, project / "train.ipynb")
    _config(project, hooks_repo, "- id: losslint\n")
    _git(project, "add", "train.ipynb", ".pre-commit-config.yaml")

    result = _pre_commit(project, pre_commit_home, "run", "losslint")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "train.ipynb:cell 3:1:24: LL101" in result.stdout
