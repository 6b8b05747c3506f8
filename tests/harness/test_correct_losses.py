"""Correct losses pass every property that applies: a false failure is as bad as a missed bug."""

from __future__ import annotations

import functools
import math

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional
nn = torch.nn

from losslint.testing import check_loss  # noqa: E402

K = 5


def sequence_ce_guarded(logits, target):
    """Token cross-entropy with ignore_index whose denominator cannot be zero."""
    total = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=-100, reduction="sum")
    return total / (target != -100).sum().clamp_min(1)


def sequence_ce_masked(logits, target, mask):
    per_token = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none").view(target.shape)
    return (per_token * mask).sum() / mask.sum().clamp_min(1)


def sequence_ce_per_sequence(logits, target):
    """Mean over each sequence's real tokens, then over the sequences that have any."""
    per_token = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100, reduction="none")
    lengths = (target != -100).sum(1)
    present = lengths > 0
    return (per_token.sum(1) / lengths.clamp_min(1))[present].sum() / present.sum().clamp_min(1)


def sequence_ce_pad_token_0(logits, target):
    total = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=0, reduction="sum")
    return total / (target != 0).sum().clamp_min(1)


def focal(logits, target, gamma=2.0):
    ce = F.cross_entropy(logits, target, reduction="none")
    return ((1 - torch.exp(-ce)) ** gamma * ce).mean()


def log_softmax_gather(logits, target):
    return -F.log_softmax(logits, 1).gather(1, target.unsqueeze(1)).mean()


def stable_bce(logits, target):
    return (logits.clamp(min=0) - logits * target + torch.log1p(torch.exp(-logits.abs()))).mean()


def log_cosh(prediction, target):
    assert prediction.shape == target.shape, (prediction.shape, target.shape)
    difference = prediction - target
    return (difference + F.softplus(-2 * difference) - math.log(2)).mean()


def masked_mse(prediction, target, mask):
    assert prediction.shape == target.shape == mask.shape
    return ((prediction - target) ** 2 * mask).sum() / mask.sum().clamp_min(1)


def info_nce(anchor, positive, negative, temperature=0.1):
    anchor, positive, negative = (F.normalize(v, dim=-1) for v in (anchor, positive, negative))
    logits = torch.cat([anchor @ positive.T, (anchor * negative).sum(-1, keepdim=True)], 1) / temperature
    return F.cross_entropy(logits, torch.arange(anchor.shape[0]))


def soft_dice(logits, target, smooth=1.0):
    p = torch.sigmoid(logits)
    return 1 - ((2 * (p * target).sum(0) + smooth) / (p.sum(0) + target.sum(0) + smooth)).mean()


def pairwise_logistic(s1, s2, y):
    return F.softplus(-y * (s1 - s2)).mean()


def smoothed_entropy(epsilon: float, k: int) -> float:
    """The infimum of label-smoothed cross-entropy: the entropy of the smoothed target."""
    high, low = 1 - epsilon + epsilon / k, epsilon / k
    return -(high * math.log(high) + (k - 1) * low * math.log(low))


CORRECT = [
    pytest.param(F.cross_entropy, "multiclass", 10, {}, id="cross_entropy"),
    pytest.param(nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 3.0, 1.0, 0.5])), "multiclass", K, {},
                 id="CrossEntropyLoss-weighted"),
    pytest.param(nn.CrossEntropyLoss(label_smoothing=0.1), "multiclass", K,
                 {"minimum": smoothed_entropy(0.1, K)}, id="CrossEntropyLoss-label_smoothing"),
    pytest.param(nn.CrossEntropyLoss(reduction="sum"), "multiclass", K, {"reduction": "sum"}, id="CrossEntropy-sum"),
    pytest.param(F.cross_entropy, "multiclass", K, {"mixed_precision": True}, id="cross_entropy-mixed_precision"),
    pytest.param(focal, "multiclass", K, {"baseline": (1 - 1 / K) ** 2 * math.log(K)}, id="focal"),
    pytest.param(log_softmax_gather, "multiclass", K, {}, id="log_softmax-gather"),
    pytest.param(F.binary_cross_entropy_with_logits, "binary", None, {}, id="bce_with_logits"),
    pytest.param(nn.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0])), "binary", None, {"baseline": None},
                 id="BCEWithLogitsLoss-pos_weight"),
    pytest.param(stable_bce, "binary", None, {}, id="stable-handwritten-bce"),
    pytest.param(nn.BCEWithLogitsLoss(), "multilabel", K, {"mixed_precision": True}, id="BCEWithLogitsLoss-multilabel"),
    pytest.param(soft_dice, "multilabel", K, {"baseline": None}, id="soft-dice"),
    pytest.param(F.mse_loss, "regression", None, {"mixed_precision": True}, id="mse_loss"),
    pytest.param(F.huber_loss, "regression", None, {}, id="huber_loss"),
    pytest.param(F.l1_loss, "regression", 4, {}, id="l1_loss"),
    pytest.param(nn.SmoothL1Loss(reduction="sum"), "regression", None, {"reduction": "sum"}, id="SmoothL1Loss-sum"),
    pytest.param(log_cosh, "regression", None, {}, id="log-cosh"),
    pytest.param(masked_mse, "regression", None, {}, id="masked-mse"),
    pytest.param(F.margin_ranking_loss, "ranking", None, {}, id="margin_ranking_loss"),
    pytest.param(nn.MarginRankingLoss(margin=0.5), "ranking", None, {"baseline": 0.5}, id="MarginRankingLoss-margin"),
    pytest.param(pairwise_logistic, "ranking", None, {"baseline": math.log(2)}, id="pairwise-logistic"),
    pytest.param(F.triplet_margin_loss, "embedding", None, {"baseline": 1.0}, id="triplet_margin_loss"),
    pytest.param(nn.TripletMarginWithDistanceLoss(distance_function=lambda a, b: 1 - F.cosine_similarity(a, b)),
                 "embedding", 16, {}, id="triplet-cosine-distance"),
    pytest.param(info_nce, "embedding", None, {"minimum": None}, id="info-nce"),
    pytest.param(sequence_ce_guarded, "sequence", 11, {}, id="sequence-ce-guarded"),
    pytest.param(sequence_ce_masked, "sequence", 11, {}, id="sequence-ce-masked"),
    pytest.param(sequence_ce_per_sequence, "sequence", 11, {}, id="sequence-ce-per-sequence"),
    pytest.param(sequence_ce_pad_token_0, "sequence", 11, {"ignore_index": 0}, id="sequence-ce-pad-token-0"),
    pytest.param(functools.partial(F.cross_entropy, weight=torch.tensor([1.0, 2.0, 3.0, 1.0, 0.5])), "multiclass", K,
                 {}, id="partial-cross_entropy-weighted"),
    pytest.param(nn.CrossEntropyLoss(weight=torch.rand(11) + 0.5), "multiclass", 11, {},
                 id="CrossEntropyLoss-random-weights"),
    pytest.param(F.binary_cross_entropy, "reconstruction", None, {"mixed_precision": True}, id="bce-reconstruction"),
    pytest.param(F.mse_loss, "reconstruction", None, {}, id="mse-reconstruction"),
]


@pytest.mark.parametrize(("loss_fn", "task", "num_classes", "options"), CORRECT)
def test_correct_loss_passes(loss_fn, task, num_classes, options):
    report = check_loss(loss_fn, task, num_classes, **options)
    assert report.passed
    assert not report.blocked


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("loss_fn", "task", "num_classes"), [
    (F.cross_entropy, "multiclass", 3),
    (F.binary_cross_entropy_with_logits, "multilabel", 4),
    (F.mse_loss, "regression", None),
    (F.triplet_margin_loss, "embedding", None),
    (sequence_ce_guarded, "sequence", 6),
])
def test_correct_losses_pass_whatever_the_seed(loss_fn, task, num_classes, seed):
    assert check_loss(loss_fn, task, num_classes, seed=seed).passed
