"""LL900: a `# noqa` code that suppresses nothing.

The engine computes this rule's findings (it needs every other rule's results; see
`losslint.suppressions`); the class holds its code, documentation and examples.
"""

from losslint.findings import Applicability, Severity
from losslint.rule import Flagged, Rule, Silent


class UnusedNoqa(Rule):
    """
    ## What it does
    Finds losslint codes in `# noqa: ...` comments that suppress nothing on their line:
    the rule no longer reports there (*unused*), the rule is not enabled for the file
    (*non-enabled*), or no rule has the code (*unknown*). Codes of other tools (`E501`,
    `F401`) and a bare `# noqa` are left alone: they belong to other linters too.

    ## Why is this bad?
    A stale suppression is a hole in the net. Once the code under a `# noqa: LL101` is
    fixed, the comment stays, and the next time someone reintroduces the bug on that line
    (a softmax before `cross_entropy`, flooring the loss at 1.461 for 10 classes) losslint
    stays silent. A baseline made with `--add-noqa` should shrink as code is fixed, and
    this rule is what makes it shrink.

    ## Example
    ```python
    loss = F.cross_entropy(logits, y)  # noqa: LL101
    ```

    ## Use instead
    ```python
    loss = F.cross_entropy(logits, y)
    ```

    ## Fix safety
    Removing an unused code is **safe**: it changes a comment only. Other codes in the same
    comment (another tool's `E501`, a losslint code still in use) and any explanation after
    the codes are kept.

    ## References
    - [ruff: unused-noqa (RUF100)](https://docs.astral.sh/ruff/rules/unused-noqa/)
    - [flake8: selecting and ignoring violations](https://flake8.pycqa.org/en/latest/user/violations.html)
    """

    code = "LL900"
    name = "unused-noqa"
    summary = "A `# noqa` code that suppresses nothing on its line"
    severity = Severity.WARNING
    fix_availability = Applicability.SAFE
    tokens = ("noqa", "NOQA")

    def check(self, ctx):
        return ()

    flagged = (
        Flagged(
            """
            import torch.nn.functional as F

            def step(logits, y):
                return F.cross_entropy(logits, y)  # noqa: LL101
            """,
            anchor="# noqa: LL101",
            fixed="""
            import torch.nn.functional as F

            def step(logits, y):
                return F.cross_entropy(logits, y)
            """,
        ),
        Flagged(
            """
            import torch

            def nll(p, y):
                return -torch.log(p[range(len(y)), y]).mean()  # noqa: E501, LL203
            """,
            anchor="# noqa: E501, LL203",
            fixed="""
            import torch

            def nll(p, y):
                return -torch.log(p[range(len(y)), y]).mean()  # noqa: E501
            """,
        ),
        Flagged(
            """
            from torch import nn

            criterion = nn.CrossEntropyLoss()  # noqa: LL999 -- kept from an old version
            """,
            anchor="# noqa: LL999",
            fixed="""
            from torch import nn

            criterion = nn.CrossEntropyLoss()  # -- kept from an old version
            """,
        ),
    )
    silent = (
        Silent(
            """
            import torch.nn.functional as F

            def step(logits, y):
                return F.cross_entropy(logits, y)  # noqa
            """,
            why="A bare `# noqa` is shared with flake8 and other tools; losslint cannot know it is unused.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def step(logits_of_a_very_long_name, targets_of_a_very_long_name):
                return F.cross_entropy(logits_of_a_very_long_name, targets_of_a_very_long_name)  # noqa: E501
            """,
            why="Codes of other tools are theirs to judge.",
        ),
        Silent(
            '''
            HELP = """
            Silence a finding with  # noqa: LL101
            """
            ''',
            why="Text inside a string is not a comment.",
        ),
    )
