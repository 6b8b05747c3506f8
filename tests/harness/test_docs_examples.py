"""The per-task examples in docs/harness.md run and pass, so the documentation cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("torch")

DOC = Path(__file__).resolve().parents[2] / "docs" / "harness.md"


def _examples() -> str:
    section = DOC.read_text(encoding="utf-8").split("### Examples, one per task kind", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_documented_examples_cover_every_task_kind():
    from losslint.testing import TASKS

    code = _examples()
    assert {task for task in TASKS if f'task="{task}"' in code} == set(TASKS)


def test_the_documented_examples_pass():
    namespace: dict[str, object] = {}
    exec(compile(_examples(), str(DOC), "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_") and callable(value)]
    assert len(tests) >= 8
    for test in tests:
        test()
