"""check_loss as an API: arguments, selection, the report, and leaving the caller's state alone."""

from __future__ import annotations

import inspect
import subprocess
import sys
import warnings

import pytest

from losslint.testing import PROPERTY_NAMES, LossCheckError, Tolerances, check_loss
from losslint.testing.catalog import PROPERTIES, SPECS, run_order
from losslint.testing.tolerances import KEYWORDS


def test_importing_the_harness_and_its_plugin_does_not_import_torch():
    code = ("import sys, losslint.testing, losslint.testing.plugin, losslint.harness_cli; "
            "print('torch' in sys.modules)")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "False"


def test_run_order_puts_every_property_after_its_prerequisites():
    order = [spec.name for spec in run_order()]
    assert sorted(order) == sorted(PROPERTY_NAMES)
    for spec in PROPERTIES:
        assert all(order.index(required) < order.index(spec.name) for required in spec.requires)
        assert set(spec.requires) <= set(SPECS)


@pytest.mark.parametrize(("arguments", "options", "message"), [
    (("sequence-labelling",), {}, "unknown task"),
    (("multiclass",), {}, "needs num_classes"),
    (("multiclass", 1), {}, "at least 2"),
    (("ranking", 4), {}, "does not apply to task 'ranking'"),
    (("regression",), {"reduction": "none"}, "reduction must be 'mean' or 'sum'"),
    (("regression",), {"checks": ["baseline", "smoothness"]}, "unknown checks ['smoothness']"),
    (("regression",), {"skip": ["overfitting"]}, "unknown skip ['overfitting']"),
    (("regression",), {"baseline": "log K"}, "baseline must be"),
    (("regression",), {"minimum": float("nan")}, "minimum must be"),
    (("regression",), {"invariance_tolerance": 0.0}, "invariance_tolerance must be a positive number"),
])
def test_usage_errors_are_value_errors_raised_before_any_check(arguments, options, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        check_loss(lambda prediction, target: prediction.sum(), *arguments, **options)


torch = pytest.importorskip("torch")
F = torch.nn.functional


def test_explicitly_asking_for_a_check_that_does_not_apply_is_an_error():
    with pytest.raises(ValueError, match="'masking' does not apply: the loss takes no mask parameter"):
        check_loss(F.mse_loss, "regression", checks=["masking"])


def test_checks_and_skip_select_properties():
    report = check_loss(F.cross_entropy, "multiclass", 4, checks=["baseline", "minimum", "overfit"], skip=["overfit"])
    assert [r.name for r in report.results] == ["baseline", "minimum"]
    assert [r.name for r in check_loss(F.cross_entropy, "multiclass", 4, checks="baseline").results] == ["baseline"]


def test_a_skipped_prerequisite_does_not_block():
    def sign_error(logits, target):
        return -F.cross_entropy(logits, target)

    report = check_loss(sign_error, "multiclass", 4, checks=["gradcheck"])
    assert report.result("gradcheck").passed


def test_failure_is_an_assertion_error_whose_message_is_the_table():
    def double_softmax(logits, target):
        return F.cross_entropy(logits.softmax(-1), target)

    with pytest.raises(AssertionError) as raised:
        check_loss(double_softmax, "multiclass", 4)
    assert isinstance(raised.value, LossCheckError)
    table = str(raised.value)
    assert table == raised.value.report.format()
    assert table.startswith("losslint harness: double_softmax (multiclass, K=4")
    for result in raised.value.report.results:
        assert result.name in table
    words = " ".join(table.split())  # the table wraps long causes
    assert "minimum FAIL" in words and "softmax is probably applied before cross_entropy" in words


def test_same_seed_same_report_and_other_seeds_draw_other_inputs():
    first = check_loss(F.mse_loss, "regression", seed=3).format()
    assert check_loss(F.mse_loss, "regression", seed=3).format() == first
    assert check_loss(F.mse_loss, "regression", seed=4).format() != first


def test_the_callers_state_is_left_alone():
    module = torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 3.0]))
    weight_before = module.weight.clone()
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    threads_before = torch.get_num_threads()
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        check_loss(module, "multiclass", 3)  # weights and shape probes warn internally
        check_loss(F.mse_loss, "regression")  # the [B, 1] probe makes mse_loss warn
    assert not caught
    assert torch.equal(module.weight, weight_before)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert torch.get_num_threads() == threads_before


def test_a_module_whose_reduction_contradicts_the_declared_one_is_named():
    with pytest.raises(LossCheckError) as raised:
        check_loss(torch.nn.CrossEntropyLoss(reduction="sum"), "multiclass", 4)
    assert raised.value.report.failed == {"reduction"}
    assert "the module's reduction is 'sum'" in raised.value.report.result("reduction").cause


def test_sum_reduction_scales_the_expected_baseline_by_the_element_count():
    report = check_loss(torch.nn.BCEWithLogitsLoss(reduction="sum"), "multilabel", 3, reduction="sum",
                        checks=["baseline"])
    batch_elements = 8 * 3
    assert report.result("baseline").expected.startswith(f"{batch_elements * 0.6931471805599453:.4g}")


def test_inputs_factory_supplies_targets_sizes_and_mask():
    seen = {}

    def inputs(generator):
        seen["generator"] = generator
        logits = torch.randn(6, 4, 7, generator=generator)
        target = torch.randint(0, 7, (6, 4), generator=generator)
        mask = torch.ones(6, 4, dtype=torch.bool)
        mask[1:, 3] = False
        return logits, target, {"mask": mask}

    def masked_sequence_ce(logits, target, mask):
        per_token = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none").view(target.shape)
        return (per_token * mask).sum() / mask.sum().clamp_min(1)

    report = check_loss(masked_sequence_ce, "sequence", inputs=inputs)
    assert isinstance(seen["generator"], torch.Generator)
    assert "V=7" in report.settings
    assert report.result("baseline").expected.startswith(f"{torch.log(torch.tensor(7.0)).item():.4g}")


def test_inputs_factory_in_the_wrong_layout_is_a_usage_error():
    with pytest.raises(ValueError, match=r"inputs\(\) must return the tensors \(s1 \[B\], s2 \[B\]"):
        check_loss(F.margin_ranking_loss, "ranking", inputs=lambda g: (torch.randn(4), torch.ones(4)))


def test_tolerance_keywords_default_to_the_documented_dataclass_defaults():
    defaults = {name: p.default for name, p in inspect.signature(check_loss).parameters.items()}
    for name, keyword in KEYWORDS.items():
        assert defaults[keyword] == getattr(Tolerances(), name)
