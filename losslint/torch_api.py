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
# Loss arguments torch deprecated in favour of `reduction` (LL503).
LEGACY_REDUCTION_ARGS = ("size_average", "reduce")


def legacy_reduction(size_average: object, reduce: object) -> str:
    """The `reduction` torch derives from legacy values (torch/nn/_reduction.py, `legacy_get_string`).

    Torch calls it only when one of them is not None; it then overrides any `reduction` given.
    """
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if size_average and reduce:
        return "mean"
    if reduce:
        return "sum"
    return "none"

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
DIM_ACTIVATION_FUNCTIONS = frozenset({"torch.softmax", _F + "softmax", "torch.log_softmax", _F + "log_softmax",
                                      _F + "softmin"})
DIM_ACTIVATION_METHODS = frozenset({"softmax", "log_softmax"})
DIM_ACTIVATION_MODULES = frozenset({_NN + "Softmax", _NN + "LogSoftmax", _NN + "Softmin"})
# Where the `dim` parameter sits: functional forms (input first) and module constructors.
DIM_PARAMS_FUNCTIONAL = ("input", "dim", "_stacklevel", "dtype")
DIM_PARAMS_MODULE = ("dim",)
# The functional forms whose `dim` may be left out (torch then picks one from the input's rank).
IMPLICIT_DIM_FUNCTIONS = frozenset({_F + "softmax", _F + "log_softmax", _F + "softmin"})

SEQUENTIAL = _NN + "Sequential"
# nn.Module methods that return the module itself: the result is still the same model or loss.
MODULE_SELF_RETURNING_METHODS = frozenset({
    "to", "cuda", "cpu", "train", "eval", "float", "double", "half", "bfloat16", "requires_grad_", "apply",
    "type", "to_empty", "share_memory", "xpu", "mps",
})
# Attributes holding the final layer of torchvision / timm / pretrainedmodels classifiers:
# assigning a new head there decides what calling the model returns.
HEAD_ATTRIBUTES = frozenset({"fc", "classifier", "head", "heads", "_fc", "last_linear"})
# Wrappers whose call behaves like the wrapped model's.
MODULE_WRAPPERS = frozenset({
    _NN + "DataParallel", _NN + "parallel.DistributedDataParallel", "torch.nn.parallel.DataParallel",
    "torch.compile", "torch.jit.script",
})
MODULE_BASE = _NN + "Module"

# ---------------------------------------------------------------------------
# Operations that keep (or transform) a domain
# ---------------------------------------------------------------------------

# Tensor methods that return the same values rearranged, retyped or moved: the domain survives.
DOMAIN_PRESERVING_METHODS = frozenset({
    "view", "view_as", "reshape", "reshape_as", "squeeze", "unsqueeze", "flatten", "unflatten",
    "transpose", "permute", "movedim", "moveaxis", "swapaxes", "swapdims", "t", "contiguous",
    "float", "double", "half", "bfloat16", "long", "int", "short", "byte", "char", "to", "type", "type_as", "cpu",
    "cuda",
    "clone", "detach", "expand", "expand_as", "repeat", "narrow", "select", "index_select",
    "gather", "take_along_dim", "masked_select", "squeeze_", "unsqueeze_", "requires_grad_", "masked_fill",
})
DOMAIN_PRESERVING_ATTRIBUTES = frozenset({"T", "mT", "data"})
# Same, as torch functions taking the tensor first.
DOMAIN_PRESERVING_FUNCTIONS = frozenset({
    "torch.reshape", "torch.squeeze", "torch.unsqueeze", "torch.flatten", "torch.transpose",
    "torch.permute", "torch.movedim", "torch.swapaxes", "torch.t", "torch.clone", "torch.gather",
    "torch.index_select", "torch.narrow", "torch.select", "torch.take_along_dim", "torch.masked_select",
    "torch.masked_fill",
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
MAX_METHODS = frozenset({"max", "amax", "logsumexp"})
# Reductions that return a (values, indices) pair when given a dim.
MAX_WITH_INDICES = frozenset({"torch.max", "max"})
# Indexing by an index tensor along a dim: picks one entry per row (the target class's).
PICKING_METHODS = frozenset({"gather", "take_along_dim"})
PICKING_FUNCTIONS = frozenset({"torch.gather", "torch.take_along_dim"})
# Results that are never negative (so exp of their negation cannot overflow).
# Elementwise minimum / maximum of two tensors: minimum(a, b) - maximum(a, b) is never positive.
ELEMENTWISE_MINIMUM_FUNCTIONS = frozenset({"torch.minimum", "torch.fmin"})
ELEMENTWISE_MAXIMUM_FUNCTIONS = frozenset({"torch.maximum", "torch.fmax"})
NON_NEGATIVE_METHODS = frozenset({"abs", "absolute", "square", "relu"})
NON_NEGATIVE_FUNCTIONS = frozenset({"torch.abs", "torch.absolute", "torch.square", "torch.relu", _F + "relu",
                                    _F + "softplus", "builtins.abs"})
ONE_HOT_FUNCTIONS = frozenset({_F + "one_hot"})
# Calls that turn a tensor into a python number (no autograd graph).
TO_NUMBER_METHODS = frozenset({"item", "tolist"})
TO_NUMBER_BUILTINS = frozenset({"float", "int"})

# Attribute and key names under which the big frameworks return raw scores.
LOGITS_NAMES = frozenset({"logits", "logit"})

# ---------------------------------------------------------------------------
# Masks, counts, padding (LL4)
# ---------------------------------------------------------------------------

# Calls whose result is a boolean mask (every element 0 or 1).
MASK_METHODS = frozenset({
    "eq", "ne", "gt", "ge", "lt", "le", "greater", "greater_equal", "less", "less_equal", "not_equal",
    "logical_not", "logical_and", "logical_or", "logical_xor", "isfinite", "isnan", "isinf", "isin", "bool",
})
MASK_FUNCTIONS = frozenset({
    "torch.eq", "torch.ne", "torch.gt", "torch.ge", "torch.lt", "torch.le", "torch.not_equal",
    "torch.logical_not", "torch.logical_and", "torch.logical_or", "torch.logical_xor",
    "torch.isfinite", "torch.isnan", "torch.isinf", "torch.isin",
})
# Masks of the finite (or NaN) values: selecting with them is the nanmean idiom, not a masked mean.
FINITENESS_MASKS = frozenset({"isfinite", "isnan", "isinf", "isfinite()", "isnan()", "isinf()"})
# Casts: a 0/1 mask stays a 0/1 mask (`mask.float()`, `mask.long()`, `mask.to(dtype)`).
CAST_METHODS = frozenset({"float", "double", "half", "bfloat16", "long", "int", "short", "byte", "to", "type",
                          "type_as"})
# Calls that count the non-zero elements of their argument: a count whatever the mask's values.
COUNT_METHODS = frozenset({"count_nonzero"})
COUNT_FUNCTIONS = frozenset({"torch.count_nonzero"})
# Lower bounds that keep a count away from zero.
MAXIMUM_FUNCTIONS = frozenset({"torch.maximum", "torch.fmax"})
# `torch.where(condition, a, b)`: `a` is evaluated where the condition holds.
CONDITIONAL_FUNCTIONS = frozenset({"torch.where"})
# Boolean-mask selection as a call (`x[mask]` is the subscript form).
SELECTING_METHODS = frozenset({"masked_select"})
SELECTING_FUNCTIONS = frozenset({"torch.masked_select"})
# Replacing some elements: the domain survives, the padding and an unguarded count do not.
FILLING_METHODS = frozenset({"masked_fill", "index_fill", "masked_scatter", "scatter", "index_put", "fill"})

# Name tokens that make a parameter, attribute, key or unknown value a mask (weak evidence:
# such a mask may be soft, so fixes that rely on it being 0/1 are unsafe).
MASK_NAME_TOKENS = frozenset({"mask", "masks"})
# Whole names that mean "the valid (non-padding) positions".
MASK_NAMES = frozenset({"valid", "is_valid", "non_pad", "nonpad", "not_pad", "non_padding", "not_padding"})
# Tokens before `mask` that make the name something else (`num_masks`, `use_mask`, `apply_mask`).
NOT_MASK_PREFIX_TOKENS = frozenset({"num", "n", "count", "len", "length", "size", "shape", "dim", "use", "has", "no",
                                    "with", "need", "apply", "make", "get", "build", "create", "compute", "return",
                                    "is", "to"})
# Tokens after a leading `mask` that make the name something else (`mask_token`, `mask_ratio`, `mask_loss`).
NOT_MASK_SUFFIX_TOKENS = NOT_MASK_PREFIX_TOKENS | {"fill", "value", "id", "ids", "idx", "index", "token", "ratio",
                                                   "prob", "rate", "type", "mode", "fn", "func", "logits", "loss"}

# Padding: functions whose `value` fills the padded positions, with the parameter and its default.
PADDING_FUNCTIONS: dict[str, tuple[str, int, object]] = {
    "torch.nn.utils.rnn.pad_sequence": ("padding_value", 2, 0),
    _F + "pad": ("value", 3, 0),
}
# Filling a whole tensor with a pad id (then writing the real tokens in) also pads it.
FULL_FUNCTIONS: dict[str, int] = {"torch.full": 1, "torch.full_like": 1}
FULL_METHODS: dict[str, int] = {"new_full": 1}
# Name tokens of a pad id (`pad_id`, `self.pad_idx`, `tokenizer.pad_token_id`, `PAD`).
PAD_NAME_TOKENS = frozenset({"pad", "padding"})
# The other tokens a pad id's name may have (`tgt_pad_idx`, `pad_token_id`, `padding_value`).
PAD_ID_TOKENS = frozenset({"id", "idx", "index", "token", "tok", "value", "symbol", "label", "labels", "tgt",
                           "trg", "src", "target", "word", "char", "sym"})
# Class-index losses whose ignore_index decides whether padding positions are trained.
IGNORE_INDEX_LOSSES = frozenset({"cross_entropy", "nll_loss", "nll_loss2d"})

# Data loaders: iterating one yields what its `collate_fn` (keyword, or this positional index) returns.
DATA_LOADERS: dict[str, int] = {"torch.utils.data.DataLoader": 6, "torch.utils.data.dataloader.DataLoader": 6}
# Wrappers a for loop iterates through: they yield the wrapped iterable's steps (enumerate pairs them with
# a step number).
ITERATION_WRAPPERS = frozenset({"tqdm.tqdm", "tqdm.auto.tqdm", "tqdm.notebook.tqdm", "builtins.iter"})

# Backward passes that need a scalar (or an explicit gradient): the method and the functional form.
BACKWARD_METHODS = frozenset({"backward"})
BACKWARD_FUNCTIONS: dict[str, str] = {"torch.autograd.backward": "grad_tensors"}
# `scaler.scale(loss)` (torch.amp.GradScaler) multiplies the loss by the loss scale: same shape.
LOSS_SCALING_METHODS = frozenset({"scale"})

# ---------------------------------------------------------------------------
# Shapes, dtypes, autograd graphs and labels (LL3, LL5)
# ---------------------------------------------------------------------------

# Spellings of a dtype → its canonical name.
DTYPES: dict[str, str] = {
    "torch.float32": "float32", "torch.float": "float32", "torch.float64": "float64", "torch.double": "float64",
    "torch.float16": "float16", "torch.half": "float16", "torch.bfloat16": "bfloat16",
    "torch.int64": "int64", "torch.long": "int64", "torch.int32": "int32", "torch.int": "int32",
    "torch.int16": "int16", "torch.short": "int16", "torch.int8": "int8", "torch.uint8": "uint8",
    "torch.bool": "bool", "builtins.float": "float64", "builtins.int": "int64", "builtins.bool": "bool",
}
# Legacy tensor types (`torch.LongTensor(x)`, `x.type(torch.FloatTensor)`) → dtype.
TENSOR_TYPES: dict[str, str] = {
    f"torch{device}.{name}Tensor": dtype
    for device in ("", ".cuda")
    for name, dtype in (("Float", "float32"), ("Double", "float64"), ("Half", "float16"), ("BFloat16", "bfloat16"),
                        ("Long", "int64"), ("Int", "int32"), ("Short", "int16"), ("Char", "int8"), ("Byte", "uint8"),
                        ("Bool", "bool"))
}
TENSOR_TYPES["torch.Tensor"] = "float32"  # the legacy constructor builds the default dtype
# Cast methods → the dtype they give.
DTYPE_METHODS: dict[str, str] = {
    "float": "float32", "double": "float64", "half": "float16", "bfloat16": "bfloat16", "long": "int64",
    "int": "int32", "short": "int16", "char": "int8", "byte": "uint8", "bool": "bool",
}
FLOAT_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})
INTEGER_DTYPES = frozenset({"uint8", "int8", "int16", "int32", "int64"})

# Tensor methods whose result has the receiver's shape (casts, moves, copies, elementwise maths).
SHAPE_KEEPING_METHODS = frozenset({
    "float", "double", "half", "bfloat16", "long", "int", "short", "char", "byte", "bool", "to", "type", "type_as",
    "cpu", "cuda", "clone", "detach", "detach_", "contiguous", "requires_grad_", "softmax", "log_softmax",
    "sigmoid", "exp", "log", "log1p", "abs", "neg", "relu", "tanh", "clamp", "clamp_min", "clamp_max", "clip",
    "masked_fill", "pin_memory",
})
# Tensor methods whose result keeps the receiver's dtype (moves, copies and rearrangements).
DTYPE_KEEPING_METHODS = frozenset({
    "cpu", "cuda", "clone", "detach", "detach_", "contiguous", "requires_grad_", "pin_memory", "view", "reshape",
    "view_as", "reshape_as", "squeeze", "unsqueeze", "flatten", "transpose", "permute", "t", "expand", "expand_as",
    "movedim", "moveaxis", "swapaxes", "swapdims", "narrow", "select", "index_select", "gather", "masked_select",
    "masked_fill", "clamp", "clamp_min", "clamp_max", "clip",
})
# Reductions: no dim gives a scalar; a dim removes it (or keeps it as 1 with keepdim=True).
REDUCTION_METHODS = frozenset({"sum", "mean", "nansum", "nanmean", "prod", "std", "var", "amax", "amin",
                               "logsumexp", "all", "any", "norm"})
INDEX_REDUCTION_METHODS = frozenset({"argmax", "argmin"})
# Factories whose positional arguments (or one tuple) are the size, and their default dtype.
SIZED_FACTORIES: dict[str, str | None] = {
    "torch.zeros": "float32", "torch.ones": "float32", "torch.empty": "float32", "torch.rand": "float32",
    "torch.randn": "float32",
}
# Factories taking another tensor: same shape (and dtype unless given).
LIKE_FACTORIES = frozenset({"torch.zeros_like", "torch.ones_like", "torch.empty_like", "torch.rand_like",
                            "torch.randn_like", "torch.full_like", "torch.randint_like"})
# Building a tensor from data: the data's facts survive, with the given dtype.
TENSOR_FROM_DATA = frozenset({"torch.tensor", "torch.as_tensor", "torch.from_numpy"})
# Layers whose output has their input's shape, and layers that replace the last dimension
# (with the constructor parameter and position of the new size).
SHAPE_KEEPING_LAYERS = frozenset({_NN + "Softmax", _NN + "LogSoftmax", _NN + "Sigmoid", _NN + "LogSigmoid",
                                  _NN + "Softmin"})
FEATURE_LAYERS: dict[str, tuple[str, int]] = {_NN + "Linear": ("out_features", 1),
                                              _NN + "LazyLinear": ("out_features", 0)}
# Methods that return a tensor cut from the autograd graph, or a python object.
GRAPH_CUTTING_METHODS = frozenset({"detach", "detach_", "numpy", "tolist", "item"})
GRAPH_CUTTING_ATTRIBUTES = frozenset({"data"})
# Context managers and decorators that switch autograd recording off, or back on.
NO_GRAD_CONTEXTS = frozenset({"torch.no_grad", "torch.inference_mode", "torch.autograd.no_grad",
                              "torch.autograd.grad_mode.no_grad", "torch.autograd.grad_mode.inference_mode"})
ENABLE_GRAD_CONTEXTS = frozenset({"torch.enable_grad", "torch.autograd.enable_grad",
                                  "torch.autograd.grad_mode.enable_grad"})
# Context managers whose argument decides (`torch.set_grad_enabled(phase == "train")`).
SWITCHED_GRAD_CONTEXTS = frozenset({"torch.set_grad_enabled", "torch.autograd.set_grad_enabled",
                                    "torch.autograd.grad_mode.set_grad_enabled"})

# Native bindings share the Python function's name (canonical() maps them to it) but not its
# positional signature: `torch._C._nn.l1_loss(input, target, reduction_enum)`.
NATIVE_PREFIXES = ("torch._C.",)

# Methods that back-propagate: `loss.backward()`, and the frameworks' `accelerator.backward(loss)`,
# `self.manual_backward(loss)` (Lightning), `fabric.backward(loss)`.
BACKWARD_DELEGATES = frozenset({"backward", "manual_backward"})

# Names of data-set labels (weak evidence of class indices for a class-index loss): whole
# names, or the last token of a name (`gt_labels`, `batch_targets`).
LABEL_NAMES = frozenset({"y", "labels", "label", "target", "targets", "tgt", "tgts", "gt", "gts", "lbl", "lbls",
                         "y_true", "ys", "cls", "classes", "class_ids", "label_ids", "class_idx", "class_index",
                         # the mini-batch spellings of tutorials and Kaggle notebooks
                         "yb", "y_batch", "batch_y", "y_train", "y_val", "y_test"})
LABEL_NAME_TOKENS = frozenset({"labels", "label", "targets", "target", "tgt", "lbl", "lbls", "gt"})
# Name tokens of a model's prediction (`pred`, `y_hat`, `outputs`): with a label's name, the two
# tensors a loss is called with.
PREDICTION_NAME_TOKENS = frozenset({"pred", "preds", "prediction", "predictions", "predicted", "output", "outputs",
                                    "out", "logits", "logit", "scores", "yhat", "hat", "recon", "reconstruction"})
# Name tokens that make a target a distribution rather than class indices.
SOFT_TARGET_TOKENS = frozenset({"soft", "prob", "probs", "probability", "probabilities", "onehot", "hot", "one",
                                "smooth", "smoothed", "smoothing", "mix", "mixed", "mixup", "cutmix", "dist",
                                "distribution", "teacher", "pseudo", "multi", "multilabel", "weights", "weight",
                                "score", "scores", "logits", "density", "heatmap", "heatmaps", "float"})
# Names of a class dimension in shape unpackings, views and comments (`B, T, V = logits.shape`).
CLASS_DIM_NAMES = frozenset({"v", "c", "k", "vocab", "vocab_size", "n_vocab", "nvocab", "num_classes", "n_classes",
                             "nclasses", "n_class", "num_class", "classes", "num_labels", "n_labels", "nlabels",
                             "n_tokens", "num_tokens", "ntokens", "ntoken", "vocabulary_size", "n_cls", "num_cls"})

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
