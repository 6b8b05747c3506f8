"""Everything losslint knows about torch's API, as data.

Which loss expects what (its input contract), which call produces which value
domain, which operations keep a domain unchanged. Rules, the dataflow, the
generated docs and the runtime companion all read these tables; adding a loss
or an activation is a one-entry change here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from losslint.domains import Domain

# ---------------------------------------------------------------------------
# Loss contracts
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class When:
    """An input expectation that depends on an option: `option == value` → `domain`."""

    option: str
    value: object
    domain: Domain | None


@dataclass(frozen=True)
class LossContract:
    key: str
    functional: str | None
    module: str | None
    # Positional parameters of the functional form, of the module's constructor and of its forward.
    params: tuple[str, ...]
    ctor_params: tuple[str, ...]
    forward_params: tuple[str, ...] = ("input", "target")
    input_param: str = "input"
    target_param: str = "target"
    # Expected domains; None means "any real values".
    input: Domain | None = None
    target: Domain | None = None
    input_when: tuple[When, ...] = ()
    target_when: tuple[When, ...] = ()
    defaults: dict[str, object] = field(default_factory=dict)
    # Class-index target (cross_entropy, nll_loss): a same-shape float target means probabilities.
    index_target: bool = False
    # Binary losses whose target must be float.
    float_target: bool = False
    regression: bool = False

    @property
    def module_name(self) -> str | None:
        return self.module.rsplit(".", 1)[1] if self.module else None

    @property
    def functional_name(self) -> str | None:
        return self.functional.rsplit(".", 1)[1] if self.functional else None

    def expected_input(self, options: dict[str, object]) -> Domain | None:
        return _resolve(self.input, self.input_when, options, self.defaults)

    def expected_target(self, options: dict[str, object]) -> Domain | None:
        return _resolve(self.target, self.target_when, options, self.defaults)


def _resolve(
    base: Domain | None, overrides: tuple[When, ...], options: dict[str, object], defaults: dict[str, object]
) -> Domain | None:
    for when in overrides:
        if options.get(when.option, defaults.get(when.option)) == when.value:
            return when.domain
    return base


_F = "torch.nn.functional."
_NN = "torch.nn."

LOSSES: tuple[LossContract, ...] = (
    LossContract(
        "cross_entropy", _F + "cross_entropy", _NN + "CrossEntropyLoss",
        params=("input", "target", "weight", "size_average", "ignore_index", "reduce", "reduction", "label_smoothing"),
        ctor_params=("weight", "size_average", "ignore_index", "reduce", "reduction", "label_smoothing"),
        input=Domain.LOGITS, index_target=True,
        defaults={"ignore_index": -100, "reduction": "mean", "label_smoothing": 0.0},
    ),
    LossContract(
        "nll_loss", _F + "nll_loss", _NN + "NLLLoss",
        params=("input", "target", "weight", "size_average", "ignore_index", "reduce", "reduction"),
        ctor_params=("weight", "size_average", "ignore_index", "reduce", "reduction"),
        input=Domain.LOG_PROBABILITIES, index_target=True,
        defaults={"ignore_index": -100, "reduction": "mean"},
    ),
    LossContract(
        "nll_loss2d", None, _NN + "NLLLoss2d",
        params=(), ctor_params=("weight", "size_average", "ignore_index", "reduce", "reduction"),
        input=Domain.LOG_PROBABILITIES, index_target=True,
        defaults={"ignore_index": -100, "reduction": "mean"},
    ),
    LossContract(
        "binary_cross_entropy_with_logits", _F + "binary_cross_entropy_with_logits", _NN + "BCEWithLogitsLoss",
        params=("input", "target", "weight", "size_average", "reduce", "reduction", "pos_weight"),
        ctor_params=("weight", "size_average", "reduce", "reduction", "pos_weight"),
        input=Domain.LOGITS, float_target=True, defaults={"reduction": "mean"},
    ),
    LossContract(
        "binary_cross_entropy", _F + "binary_cross_entropy", _NN + "BCELoss",
        params=("input", "target", "weight", "size_average", "reduce", "reduction"),
        ctor_params=("weight", "size_average", "reduce", "reduction"),
        input=Domain.PROBABILITIES, float_target=True, defaults={"reduction": "mean"},
    ),
    LossContract(
        "kl_div", _F + "kl_div", _NN + "KLDivLoss",
        params=("input", "target", "size_average", "reduce", "reduction", "log_target"),
        ctor_params=("size_average", "reduce", "reduction", "log_target"),
        input=Domain.LOG_PROBABILITIES, target=Domain.PROBABILITIES,
        target_when=(When("log_target", True, Domain.LOG_PROBABILITIES),),
        defaults={"reduction": "mean", "log_target": False},
    ),
    LossContract(
        "poisson_nll_loss", _F + "poisson_nll_loss", _NN + "PoissonNLLLoss",
        params=("input", "target", "log_input", "full", "size_average", "eps", "reduce", "reduction"),
        ctor_params=("log_input", "full", "size_average", "eps", "reduce", "reduction"),
        # log_input=True: the input is a log-rate (unconstrained); False: a positive rate.
        input=None, defaults={"log_input": True, "reduction": "mean"},
    ),
    LossContract(
        "ctc_loss", _F + "ctc_loss", _NN + "CTCLoss",
        params=("log_probs", "targets", "input_lengths", "target_lengths", "blank", "reduction", "zero_infinity"),
        ctor_params=("blank", "reduction", "zero_infinity"),
        forward_params=("log_probs", "targets", "input_lengths", "target_lengths"),
        input_param="log_probs", target_param="targets",
        input=Domain.LOG_PROBABILITIES, defaults={"blank": 0, "reduction": "mean"},
    ),
    LossContract(
        "mse_loss", _F + "mse_loss", _NN + "MSELoss",
        params=("input", "target", "size_average", "reduce", "reduction"),
        ctor_params=("size_average", "reduce", "reduction"),
        regression=True, defaults={"reduction": "mean"},
    ),
    LossContract(
        "l1_loss", _F + "l1_loss", _NN + "L1Loss",
        params=("input", "target", "size_average", "reduce", "reduction"),
        ctor_params=("size_average", "reduce", "reduction"),
        regression=True, defaults={"reduction": "mean"},
    ),
    LossContract(
        "smooth_l1_loss", _F + "smooth_l1_loss", _NN + "SmoothL1Loss",
        params=("input", "target", "size_average", "reduce", "reduction", "beta"),
        ctor_params=("size_average", "reduce", "reduction", "beta"),
        regression=True, defaults={"reduction": "mean"},
    ),
    LossContract(
        "huber_loss", _F + "huber_loss", _NN + "HuberLoss",
        params=("input", "target", "reduction", "delta"),
        ctor_params=("reduction", "delta"),
        regression=True, defaults={"reduction": "mean"},
    ),
    LossContract(
        "multilabel_soft_margin_loss", _F + "multilabel_soft_margin_loss", _NN + "MultiLabelSoftMarginLoss",
        params=("input", "target", "weight", "size_average", "reduce", "reduction"),
        ctor_params=("weight", "size_average", "reduce", "reduction"),
        input=Domain.LOGITS, defaults={"reduction": "mean"},
    ),
    LossContract(
        "gaussian_nll_loss", _F + "gaussian_nll_loss", _NN + "GaussianNLLLoss",
        params=("input", "target", "var", "full", "eps", "reduction"),
        ctor_params=(), forward_params=("input", "target", "var"),
        regression=True, defaults={"reduction": "mean"},
    ),
    LossContract(
        "margin_ranking_loss", _F + "margin_ranking_loss", _NN + "MarginRankingLoss",
        params=("input1", "input2", "target", "margin", "size_average", "reduce", "reduction"),
        ctor_params=("margin", "size_average", "reduce", "reduction"),
        forward_params=("input1", "input2", "target"), input_param="input1", target_param="target",
        defaults={"reduction": "mean"},
    ),
    LossContract(
        "triplet_margin_loss", _F + "triplet_margin_loss", _NN + "TripletMarginLoss",
        params=("anchor", "positive", "negative", "margin", "p", "eps", "swap", "size_average", "reduce", "reduction"),
        ctor_params=("margin", "p", "eps", "swap", "size_average", "reduce", "reduction"),
        forward_params=("anchor", "positive", "negative"), input_param="anchor", target_param="positive",
        defaults={"reduction": "mean"},
    ),
    LossContract(
        "cosine_embedding_loss", _F + "cosine_embedding_loss", _NN + "CosineEmbeddingLoss",
        params=("input1", "input2", "target", "margin", "size_average", "reduce", "reduction"),
        ctor_params=("margin", "size_average", "reduce", "reduction"),
        forward_params=("input1", "input2", "target"), input_param="input1", target_param="target",
        defaults={"reduction": "mean"},
    ),
    LossContract(
        "hinge_embedding_loss", _F + "hinge_embedding_loss", _NN + "HingeEmbeddingLoss",
        params=("input", "target", "margin", "size_average", "reduce", "reduction"),
        ctor_params=("margin", "size_average", "reduce", "reduction"),
        defaults={"reduction": "mean"},
    ),
    LossContract(
        "soft_margin_loss", _F + "soft_margin_loss", _NN + "SoftMarginLoss",
        params=("input", "target", "size_average", "reduce", "reduction"),
        ctor_params=("size_average", "reduce", "reduction"),
        input=Domain.LOGITS, defaults={"reduction": "mean"},
    ),
    LossContract(
        "multi_margin_loss", _F + "multi_margin_loss", _NN + "MultiMarginLoss",
        params=("input", "target", "p", "margin", "weight", "size_average", "reduce", "reduction"),
        ctor_params=("p", "margin", "weight", "size_average", "reduce", "reduction"),
        index_target=False, defaults={"reduction": "mean"},
    ),
    LossContract(
        "multilabel_margin_loss", _F + "multilabel_margin_loss", _NN + "MultiLabelMarginLoss",
        params=("input", "target", "size_average", "reduce", "reduction"),
        ctor_params=("size_average", "reduce", "reduction"),
        defaults={"reduction": "mean"},
    ),
)

LOSS_BY_FUNCTIONAL: dict[str, LossContract] = {c.functional: c for c in LOSSES if c.functional}
LOSS_BY_MODULE: dict[str, LossContract] = {c.module: c for c in LOSSES if c.module}
LOSS_BY_KEY: dict[str, LossContract] = {c.key: c for c in LOSSES}

# Loss classes torch deprecated in favour of another (LL503).
DEPRECATED_LOSS_CLASSES: dict[str, str] = {_NN + "NLLLoss2d": _NN + "NLLLoss"}

# ---------------------------------------------------------------------------
# Producers: calls whose result has a known domain
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Producer:
    domain: Domain
    op: str  # the operation's name in messages: "softmax", "sigmoid", ...


SOFTMAX = Producer(Domain.PROBABILITIES, "softmax")
SIGMOID = Producer(Domain.PROBABILITIES, "sigmoid")
LOG_SOFTMAX = Producer(Domain.LOG_PROBABILITIES, "log_softmax")
LOGSIGMOID = Producer(Domain.LOG_PROBABILITIES, "logsigmoid")
LINEAR = Producer(Domain.LOGITS, "linear layer")

# Functions (canonical qualified names) → what their result is.
FUNCTION_PRODUCERS: dict[str, Producer] = {
    "torch.softmax": SOFTMAX,
    _F + "softmax": SOFTMAX,
    "torch.sigmoid": SIGMOID,
    "torch.log_softmax": LOG_SOFTMAX,
    _F + "log_softmax": LOG_SOFTMAX,
    _F + "logsigmoid": LOGSIGMOID,
    _F + "linear": LINEAR,
}

# Tensor methods → what their result is.
METHOD_PRODUCERS: dict[str, Producer] = {
    "softmax": SOFTMAX,
    "sigmoid": SIGMOID,
    "log_softmax": LOG_SOFTMAX,
}

# nn.Module classes whose call produces a domain; with the producer, the
# positional index of their `dim` constructor argument where they have one.
MODULE_PRODUCERS: dict[str, Producer] = {
    _NN + "Softmax": SOFTMAX,
    _NN + "Softmax2d": SOFTMAX,
    _NN + "Sigmoid": SIGMOID,
    _NN + "LogSoftmax": LOG_SOFTMAX,
    _NN + "LogSigmoid": LOGSIGMOID,
    _NN + "Linear": LINEAR,
    _NN + "LazyLinear": LINEAR,
    _NN + "Bilinear": LINEAR,
    _NN + "Conv1d": LINEAR,
    _NN + "Conv2d": LINEAR,
    _NN + "Conv3d": LINEAR,
    _NN + "LazyConv1d": LINEAR,
    _NN + "LazyConv2d": LINEAR,
    _NN + "LazyConv3d": LINEAR,
    _NN + "ConvTranspose1d": LINEAR,
    _NN + "ConvTranspose2d": LINEAR,
    _NN + "ConvTranspose3d": LINEAR,
}

# The log-space counterpart of each activation (same value as log(activation(x)), computed stably).
LOG_COUNTERPART_FUNCTIONS: dict[str, str] = {
    "torch.softmax": "torch.log_softmax",
    _F + "softmax": _F + "log_softmax",
    "torch.sigmoid": _F + "logsigmoid",
}
LOG_COUNTERPART_METHODS: dict[str, str] = {"softmax": "log_softmax"}

# Activations with a `dim` argument, for LL305 and for fixes that must keep the dim.
DIM_ACTIVATION_FUNCTIONS = frozenset({"torch.softmax", _F + "softmax", "torch.log_softmax", _F + "log_softmax"})
DIM_ACTIVATION_METHODS = frozenset({"softmax", "log_softmax"})
DIM_ACTIVATION_MODULES = frozenset({_NN + "Softmax", _NN + "LogSoftmax"})

SEQUENTIAL = _NN + "Sequential"
MODULE_BASE = _NN + "Module"

# ---------------------------------------------------------------------------
# Operations that keep (or transform) a domain
# ---------------------------------------------------------------------------

# Tensor methods that return the same values rearranged, retyped or moved: the domain survives.
DOMAIN_PRESERVING_METHODS = frozenset({
    "view", "view_as", "reshape", "reshape_as", "squeeze", "unsqueeze", "flatten", "unflatten",
    "transpose", "permute", "movedim", "moveaxis", "swapaxes", "swapdims", "t", "contiguous",
    "float", "double", "half", "bfloat16", "to", "type", "type_as", "cpu", "cuda",
    "clone", "detach", "expand", "expand_as", "repeat", "narrow", "select", "index_select",
    "gather", "take_along_dim", "masked_select", "squeeze_", "unsqueeze_", "requires_grad_",
})
DOMAIN_PRESERVING_ATTRIBUTES = frozenset({"T", "mT", "data"})
# Same, as torch functions taking the tensor first.
DOMAIN_PRESERVING_FUNCTIONS = frozenset({
    "torch.reshape", "torch.squeeze", "torch.unsqueeze", "torch.flatten", "torch.transpose",
    "torch.permute", "torch.movedim", "torch.swapaxes", "torch.t", "torch.clone", "torch.gather",
    "torch.index_select", "torch.narrow", "torch.select", "torch.take_along_dim", "torch.masked_select",
})
# Functions that combine several tensors of one domain into one.
CONCATENATING_FUNCTIONS = frozenset({"torch.cat", "torch.concat", "torch.concatenate", "torch.stack"})
# Clamping keeps a domain but changes values at the edges: a fix that drops it is unsafe.
CLAMP_METHODS = frozenset({"clamp", "clamp_min", "clamp_max", "clip", "clamp_", "clamp_min_"})
CLAMP_FUNCTIONS = frozenset({"torch.clamp", "torch.clip", "torch.clamp_min", "torch.clamp_max"})

LOG_FUNCTIONS = frozenset({"torch.log"})
LOG1P_FUNCTIONS = frozenset({"torch.log1p"})
EXP_FUNCTIONS = frozenset({"torch.exp"})
SUM_FUNCTIONS = frozenset({"torch.sum"})
MEAN_FUNCTIONS = frozenset({"torch.mean"})
MAX_FUNCTIONS = frozenset({"torch.max", "torch.amax", "torch.logsumexp"})
ONE_HOT_FUNCTIONS = frozenset({_F + "one_hot"})
# Calls that turn a tensor into a python number (no autograd graph).
TO_NUMBER_METHODS = frozenset({"item", "tolist"})
TO_NUMBER_BUILTINS = frozenset({"float", "int"})

# Attribute and key names under which the big frameworks return raw scores.
LOGITS_NAMES = frozenset({"logits", "logit"})

# ---------------------------------------------------------------------------
# Canonical names: the many spellings torch exports for one object
# ---------------------------------------------------------------------------

_PREFIX_ALIASES: tuple[tuple[str, str], ...] = (
    ("torch.nn.modules.loss.", _NN),
    ("torch.nn.modules.activation.", _NN),
    ("torch.nn.modules.linear.", _NN),
    ("torch.nn.modules.conv.", _NN),
    ("torch.nn.modules.container.", _NN),
    ("torch.nn.modules.module.", _NN),
    ("torch.nn.modules.", _NN),
    ("torch._C._nn.", _F),
)
_EXACT_ALIASES: dict[str, str] = {
    _F + "sigmoid": "torch.sigmoid",
    "torch.special.expit": "torch.sigmoid",
    "torch.special.softmax": "torch.softmax",
    "torch.special.log_softmax": "torch.log_softmax",
    "torch.special.log1p": "torch.log1p",
    "torch.special.logsumexp": "torch.logsumexp",
    "torch.special.exp2": "torch.exp2",
    "torch.Tensor.softmax": "torch.softmax",
    "torch.Tensor.log_softmax": "torch.log_softmax",
    "torch.Tensor.sigmoid": "torch.sigmoid",
    "torch.Tensor.log": "torch.log",
    "torch.Tensor.exp": "torch.exp",
}


def canonical(qualname: str) -> str:
    """The one name the tables use for `qualname`."""
    for prefix, replacement in _PREFIX_ALIASES:
        if qualname.startswith(prefix):
            qualname = replacement + qualname[len(prefix):]
            break
    return _EXACT_ALIASES.get(qualname, qualname)
