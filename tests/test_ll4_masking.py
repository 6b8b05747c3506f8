"""The LL4 rules (masking, padding, reduction) on fixtures/masking.py, and the mask / count model under them.

The fixture marks every expected finding with a trailing `# LL4xx` comment; everything else in it is a
near miss that must stay silent.
"""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest
from fixture_marks import FIXTURES, marked, reported

from losslint.engine import check_text
from losslint.fixes import apply_edits
from losslint.masks import is_mask_name, is_pad_name
from losslint.registry import all_rules

FIXTURE = FIXTURES / "masking.py"
LL4 = [rule for rule in all_rules() if rule.code.startswith("LL4")]


def _found(source: str, rules=LL4) -> set[tuple[int, str]]:
    return reported(source, rules)


def _check(code: str) -> set[tuple[int, str]]:
    return _found(textwrap.dedent(code).lstrip("\n"))


def test_fixture_reports_exactly_the_marked_lines():
    source = FIXTURE.read_text(encoding="utf-8")
    expected = marked(source, "LL4")
    assert {code for _, code in expected} == {rule.code for rule in LL4}, "the fixture exercises every LL4 rule"
    assert _found(source) == expected


def test_fixture_fixes_apply_together_and_remove_their_findings():
    source = FIXTURE.read_text(encoding="utf-8")
    findings = [f for f in check_text(source, str(FIXTURE), LL4) if f.fix is not None]
    assert findings, "the fixture has fixable findings"
    fixed = apply_edits(source, [edit for finding in findings for edit in finding.fix.edits])
    cst.parse_module(fixed)
    remaining = {(f.code, f.line) for f in check_text(fixed, str(FIXTURE), LL4)}
    assert not remaining & {(f.code, f.line) for f in findings}


def test_helper_division_is_reported_once_inside_the_helper():
    found = _check("""
        def masked_mean(values, m):
            return (values * m).sum() / m.sum()

        def a(x, labels):
            return masked_mean(x, labels != -100)

        def b(x, labels):
            return masked_mean(x, labels.ne(0))
        """)
    assert found == {(2, "LL401")}


def test_helper_division_is_silent_when_no_caller_passes_a_mask():
    assert _check("""
        def normalise(values, weights):
            return (values * weights).sum() / weights.sum()

        def a(x, w):
            return normalise(x, w)
        """) == set()


def test_helper_returning_a_count_makes_the_caller_divide_by_it():
    found = _check("""
        def n_valid(mask):
            return mask.sum()

        def loss(per_token, labels):
            return (per_token * (labels != 0)).sum() / n_valid(labels != 0)
        """)
    assert found == {(5, "LL401")}


@pytest.mark.parametrize("guard", [
    "if n == 0:\n        return x.sum() * 0",
    "if not mask.any():\n        return x.sum() * 0",
    "if mask.sum().item() < 1:\n        raise ValueError('empty')",
    "assert n > 0",
    "n = n.clamp_min(1)",
    "n = max(n, 1)",
    "n = torch.maximum(n, torch.ones_like(n))",
    "n.clamp_(min=1)",
    "n[n == 0] = 1",
    "n = n.masked_fill(n == 0, 1)",
    "n = n + 1e-6",
])
def test_every_guard_silences_the_division(guard):
    code = "import torch\n\ndef f(x, mask):\n    n = mask.sum()\n    " + guard + "\n    return (x * mask).sum() / n\n"
    assert _found(code) == set()
    assert _found(code.replace("    " + guard + "\n", "")) == {(5, "LL401")}


def test_a_check_inside_a_branch_does_not_leak_out_of_it():
    assert _check("""
        def f(x, mask, log):
            if mask.any():
                log(x[mask].mean())
            return x[mask].mean()
        """) == {(4, "LL401")}


def test_per_element_loss_survives_masks_weights_and_reshapes_until_reduced():
    found = _check("""
        import torch.nn.functional as F

        def f(logits, y, w, mask):
            a = F.cross_entropy(logits, y, reduction="none").view(-1) * w
            a = -a * mask
            a.backward()
            b = (F.cross_entropy(logits, y, reduction="none") * w).sum(-1)
            b.backward()
            c = F.cross_entropy(logits, y, reduction="none").sum()
            c.backward()
        """)
    assert found == {(6, "LL404"), (8, "LL404")}


@pytest.mark.parametrize(("name", "expected"), [
    ("mask", True), ("attention_mask", True), ("key_padding_mask", True), ("loss_mask", True), ("valid", True),
    ("non_pad", True), ("padMask", True), ("mask_bool", True),
    ("num_masks", False), ("mask_token_id", False), ("use_mask", False), ("masked", False), ("mask_ratio", False),
    ("masked_lm_labels", False), ("apply_mask", False),
])
def test_mask_names(name, expected):
    assert is_mask_name(name) is expected


@pytest.mark.parametrize(("text", "expected"), [
    ("pad_id", True), ("self.pad_idx", True), ("tokenizer.pad_token_id", True), ("PAD", True), ("tgt_pad_idx", True),
    ("pad_len", False), ("padding_side", False), ("pad_to_multiple_of", False), ("max_pad", False),
])
def test_pad_id_names(text, expected):
    assert is_pad_name(text) is expected


def test_a_mask_name_never_overrides_arithmetic_or_a_known_domain():
    assert _check("""
        def f(x, attention_mask):
            attention_mask = (1.0 - attention_mask) * -10000.0
            return x.sum() / attention_mask.sum()
        """) == set()


def test_an_optional_mask_is_a_mask_once_none_is_ruled_out():
    found = _check("""
        def f(x, mask=None):
            if mask is None:
                return x.mean()
            return (x * mask).sum() / mask.sum()

        def g(x, *, mask=None):
            if mask is not None:
                return (x * mask).sum() / mask.sum()
            return x.mean()
        """)
    assert found == {(4, "LL401"), (8, "LL401")}


def test_checks_through_boolean_variables_and_on_expressions():
    assert _check("""
        def area_ratio(mask_a, mask_b):
            area_a = mask_a.sum()
            area_b = mask_b.sum()
            exists = area_a > 0 and area_b > 0
            if exists:
                return area_a.float().sum() / area_b
            return None

        def split_means(losses, mask):
            inside = losses[mask].mean() if mask.any() else 0
            outside = losses[~mask].mean() if (~mask).any() else 0
            return inside + outside
        """) == set()


def test_training_wrappers_and_loss_scaling_keep_the_per_element_loss():
    found = _check("""
        import torch.nn.functional as F

        def step(accelerator, scaler, self, pred, y):
            loss = F.l1_loss(pred, y, reduction="none")
            accelerator.backward(loss)
            scaler.scale(loss).backward()
            self.manual_backward(loss)
            accelerator.backward(loss.mean())
        """)
    assert found == {(5, "LL404"), (6, "LL404"), (7, "LL404")}


def test_selections_checked_by_expression_or_finite_values_are_not_reported():
    assert _check("""
        import torch

        def macro(res):
            return res[~torch.isnan(res)].mean()

        def coco(prec):
            return torch.tensor([-1.0]) if len(prec[prec > -1]) == 0 else torch.mean(prec[prec > -1])

        def ratio(scores, relevant, all_scores):
            ranking = scores[relevant]
            if len(ranking) > 0:
                return (ranking / all_scores[relevant]).mean()
            return 0.0
        """) == set()


def test_a_mean_needs_a_total_over_the_count():
    assert _check("""
        def weights(mask):
            return mask.float() / mask.sum(-1, keepdim=True)

        def step(mask):
            return 1.0 / mask.sum(1)
        """) == set()


def test_the_deprecated_reduce_false_is_a_per_element_loss():
    assert _check("""
        import torch.nn as nn

        criterion = nn.MSELoss(reduce=False)

        def step(pred, target):
            loss = criterion(pred, target)
            loss.backward()
            criterion(pred, target).mean().backward()
        """) == {(7, "LL404")}
