"""Each deliberately broken loss fails on the property that names its bug, and on no other."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from losslint.testing import LossCheckError, check_loss  # noqa: E402


def softmax_before_cross_entropy(logits, target):
    return F.cross_entropy(torch.softmax(logits, 1), target)


def masked_mean_without_guard(logits, target, mask):
    per_token = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none").view(target.shape)
    return (per_token * mask).sum() / mask.sum()  # noqa: LL401 - the bug under test (the linter sees it too)


def padding_in_the_mean(logits, target, mask):
    per_token = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none").view(target.shape)
    return (per_token * mask).sum() / mask.numel()


def ignored_tokens_in_the_mean(logits, target):
    # reduction='none' zeroes the ignored tokens, .mean() still counts them.
    return F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=-100, reduction="none").mean()


def sum_used_as_mean(logits, target):
    return F.cross_entropy(logits, target, reduction="sum")


def broadcasting_mse(prediction, target):
    return ((prediction - target) ** 2).mean()


def unstable_bce(logits, target):
    p = torch.sigmoid(logits)
    return -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()


def bce_on_sigmoid(logits, target):
    # Finite (torch clamps the log at -100) but the gradient dies once the sigmoid saturates.
    return F.binary_cross_entropy(torch.sigmoid(logits), target)


def sigmoid_before_bce_with_logits(logits, target):
    return F.binary_cross_entropy_with_logits(torch.sigmoid(logits), target)


def bce_on_probabilities_by_hand(reconstruction, target):
    return -(target * torch.log(reconstruction) + (1 - target) * torch.log(1 - reconstruction)).mean()


def log_of_softmax(logits, target):
    return -torch.log(torch.softmax(logits, 1).gather(1, target.unsqueeze(1))).mean()


def sign_error_cross_entropy(logits, target):
    return (torch.logsumexp(logits, 1) + logits.gather(1, target.unsqueeze(1)).squeeze(1)).mean()


def negated_mse(prediction, target):
    return -F.mse_loss(prediction, target)


def rounded_prediction(prediction, target):
    return F.mse_loss(prediction.round(), target)


def zero_one_loss(logits, target):
    return ((logits > 0).float() != target).float().mean()


class _HalfGradientSquaredError(torch.autograd.Function):
    @staticmethod
    def forward(ctx, prediction, target):
        ctx.save_for_backward(prediction, target)
        return ((prediction - target) ** 2).mean()

    @staticmethod
    def backward(ctx, grad):
        prediction, target = ctx.saved_tensors
        return grad * (prediction - target) / prediction.numel(), None  # the factor 2 is missing


def wrong_custom_backward(prediction, target):
    assert prediction.shape == target.shape
    return _HalfGradientSquaredError.apply(prediction, target)


def mean_written_as_sum_over_n(prediction, target):
    assert prediction.shape == target.shape
    return ((prediction - target) ** 2).sum() / prediction.numel()


def inverted_class_weights(logits, target, weight=None):
    return F.cross_entropy(logits, target, weight=None if weight is None else 1 / weight)


def per_example_losses(logits, target):
    return F.cross_entropy(logits, target, reduction="none")


def detached_value(logits, target):
    return F.cross_entropy(logits, target).item()


def pad_token_counted(logits, target):
    """Padding is token 0 here, but the loss averages over every position."""
    return F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="sum") / target.numel()


def sequence_cross_entropy(logits, target):
    return F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=-100)


BROKEN = [
    pytest.param(softmax_before_cross_entropy, "multiclass", 10, {}, "minimum", id="softmax-before-cross_entropy"),
    pytest.param(sigmoid_before_bce_with_logits, "binary", None, {}, "minimum",
                 id="sigmoid-before-bce_with_logits"),
    pytest.param(masked_mean_without_guard, "sequence", 7, {}, "empty_batch", id="masked-mean-without-guard"),
    pytest.param(sequence_cross_entropy, "sequence", 7, {}, "empty_batch", id="ignore_index-mean-all-ignored"),
    pytest.param(padding_in_the_mean, "sequence", 7, {}, "masking", id="padding-in-the-mean"),
    pytest.param(pad_token_counted, "sequence", 7, {"ignore_index": 0}, "masking", id="pad-token-0-counted"),
    pytest.param(ignored_tokens_in_the_mean, "sequence", 7, {}, "masking", id="ignored-tokens-in-the-mean"),
    pytest.param(sum_used_as_mean, "multiclass", 5, {}, "reduction", id="wrong-reduction"),
    pytest.param(per_example_losses, "multiclass", 5, {}, "reduction", id="not-reduced"),
    pytest.param(broadcasting_mse, "regression", None, {}, "shape_contract", id="broadcasting-mse"),
    pytest.param(unstable_bce, "binary", None, {}, "stability", id="unstable-handwritten-bce"),
    pytest.param(bce_on_sigmoid, "binary", None, {}, "stability", id="bce-on-saturated-sigmoid"),
    pytest.param(log_of_softmax, "multiclass", 5, {}, "stability", id="log-of-softmax"),
    pytest.param(bce_on_probabilities_by_hand, "reconstruction", None, {}, "stability",
                 id="unstable-reconstruction-bce"),
    pytest.param(mean_written_as_sum_over_n, "regression", None, {"mixed_precision": True}, "stability",
                 id="fp16-sum-over-n"),
    pytest.param(sign_error_cross_entropy, "multiclass", 5, {}, "improves", id="sign-error-cross_entropy"),
    pytest.param(negated_mse, "regression", None, {}, "improves", id="sign-error-mse"),
    pytest.param(rounded_prediction, "regression", None, {}, "improves", id="non-differentiable-round"),
    pytest.param(zero_one_loss, "binary", None, {}, "improves", id="non-differentiable-step"),
    pytest.param(detached_value, "multiclass", 5, {}, "improves", id="returns-a-float"),
    pytest.param(wrong_custom_backward, "regression", None, {}, "gradcheck", id="wrong-custom-backward"),
    pytest.param(inverted_class_weights, "multiclass", 5, {}, "weights", id="inverted-class-weights"),
]


def failure(loss_fn, task, num_classes, **options):
    with pytest.raises(LossCheckError) as raised:
        check_loss(loss_fn, task, num_classes, **options)
    return raised.value.report


@pytest.mark.parametrize(("loss_fn", "task", "num_classes", "options", "bug"), BROKEN)
def test_broken_loss_fails_exactly_on_its_property(loss_fn, task, num_classes, options, bug):
    report = failure(loss_fn, task, num_classes, **options)
    assert report.failed == {bug}, report.format()
    assert report.result(bug).cause  # a failure always says what probably caused it


def test_double_softmax_is_named_with_its_floor():
    report = failure(softmax_before_cross_entropy, "multiclass", 10)
    floor = math.log(1 + 9 / math.e)
    result = report.result("minimum")
    assert result.measured.startswith(f"{floor:.4g}")
    assert f"loss stays ≥ {floor:.4g} = log(1 + (K-1)/e)" in result.cause
    assert "softmax is probably applied before cross_entropy" in result.cause


def test_ignore_index_mean_reports_nan_with_the_guard():
    report = failure(sequence_cross_entropy, "sequence", 7)
    result = report.result("empty_batch")
    assert result.measured.startswith("loss nan")
    assert "reduction='sum'" in result.cause and "(target != -100).sum().clamp_min(1)" in result.cause


def test_unguarded_masked_mean_reports_the_mask_guard():
    result = failure(masked_mean_without_guard, "sequence", 7).result("empty_batch")
    assert "mask.sum().clamp_min(1)" in result.cause


def test_later_properties_are_blocked_not_failed():
    report = failure(sign_error_cross_entropy, "multiclass", 5)
    assert {"baseline", "minimum", "gradcheck", "overfit"} <= report.blocked
    assert "blocked" in report.format()


def test_fp16_sum_is_reported_as_a_reduction_overflow():
    result = failure(mean_written_as_sum_over_n, "regression", None, mixed_precision=True).result("stability")
    assert "although every per-example loss is finite" in result.measured
    # Without mixed precision the same loss is fine: float32 does not overflow.
    assert check_loss(mean_written_as_sum_over_n, "regression").passed


def test_a_declared_sum_passes_where_a_mean_fails():
    assert check_loss(sum_used_as_mean, "multiclass", 5, reduction="sum").passed


def test_a_loss_that_cannot_be_called_reports_the_call():
    def two_arguments(prediction, target):
        return F.mse_loss(prediction, target)

    report = failure(two_arguments, "ranking", None)
    assert report.failed == {"call"}
    assert "TypeError" in report.result("call").measured
    assert "well-formed ranking inputs" in report.result("call").cause


def test_a_sum_over_time_steps_is_named_by_its_factor():
    def summed_over_time(logits, target):
        return F.cross_entropy(logits.transpose(1, 2), target, reduction="none").sum(1).mean()

    report = failure(summed_over_time, "sequence", 7)
    assert report.failed == {"baseline"}
    assert "6 times its baseline: it sums over 6 elements" in report.result("baseline").cause
