"""`losslint harness package.module:loss_fn --task multiclass --num-classes 10`: the harness from the shell.

Prints the report's table. Exit status: 0 every property passed, 1 a property failed (or the
harness itself broke), 2 usage error — bad option, module not importable, attribute missing,
torch not installed. Importing this module does not import torch.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from losslint.testing import PROPERTY_NAMES, TASKS, LossCheckError, check_loss
from losslint.testing.check import INSTALL_HINT

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _OptionalNumber(click.ParamType):
    """A float, or one of the given keywords (returned as their Python value)."""

    name = "number"

    def __init__(self, keywords: dict[str, Any]) -> None:
        self.keywords = keywords

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        if value.lower() in self.keywords:
            return self.keywords[value.lower()]
        try:
            return float(value)
        except ValueError:
            self.fail(f"{value!r} is not a number or one of {', '.join(self.keywords)}", param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + "|".join([*self.keywords, "NUMBER"]) + "]"


def _missing_torch(error: BaseException) -> bool:
    return isinstance(error, ImportError) and (getattr(error, "name", None) == "torch" or "torch" in str(error))


def load_loss(spec: str) -> Any:
    """The object named by `package.module:attribute[.attribute]`; a loss class is instantiated with no arguments."""
    module_name, colon, attribute_path = spec.partition(":")
    if not colon or not module_name or not attribute_path:
        raise click.UsageError(f"expected package.module:loss_fn, got {spec!r}")
    # Like `python -m`, find modules in the current folder (a console script does not put it on sys.path).
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:  # any failure while importing user code is a usage problem, never a traceback
        if _missing_torch(error):
            raise click.UsageError(f"importing {module_name} needs torch: {INSTALL_HINT}") from error
        raise click.UsageError(f"cannot import {module_name}: {type(error).__name__}: {error}") from error
    for part in attribute_path.split("."):
        if not hasattr(target, part):
            raise click.UsageError(f"{module_name} has no attribute {attribute_path!r}")
        target = getattr(target, part)
    if isinstance(target, type):
        try:
            target = target()
        except Exception as error:
            raise click.UsageError(f"{attribute_path} is a class and cannot be built without arguments "
                                   f"({type(error).__name__}: {error}); point at an instance instead") from error
    if not callable(target):
        raise click.UsageError(f"{spec} is a {type(target).__name__} object, not a callable loss")
    return target


@click.command("harness")
@click.argument("loss", metavar="MODULE:LOSS")
@click.option("--task", required=True, type=click.Choice(TASKS), help="The task kind the loss is for.")
@click.option("--num-classes", type=click.IntRange(min=1), default=None,
              help="K for multiclass / multilabel, the vocabulary size for sequence.")
@click.option("--check", "checks", multiple=True, type=click.Choice(PROPERTY_NAMES),
              help="Run only this property (repeatable).")
@click.option("--skip", multiple=True, type=click.Choice(PROPERTY_NAMES), help="Leave out this property (repeatable).")
@click.option("--baseline", type=_OptionalNumber({"auto": "auto", "none": None}), default="auto", show_default=True,
              help="Loss at uninformative outputs, per element.")
@click.option("--minimum", type=_OptionalNumber({"none": None}), default="0", show_default=True,
              help="The loss's infimum for perfect predictions, per element.")
@click.option("--reduction", type=click.Choice(["mean", "sum"]), default="mean", show_default=True,
              help="How the loss reduces over the batch.")
@click.option("--ignore-index", type=int, default=-100, show_default=True,
              help="Target value marking padding (sequence task).")
@click.option("--mixed-precision", is_flag=True, help="Also check float16 and bfloat16 under autocast.")
@click.option("--seed", type=int, default=0, show_default=True)
def harness(loss: str, task: str, num_classes: int | None, checks: tuple[str, ...], skip: tuple[str, ...],
            baseline: float | str | None, minimum: float | None, reduction: str, ignore_index: int,
            mixed_precision: bool, seed: int) -> None:
    """Run the loss test harness on MODULE:LOSS (a function, an nn.Module instance, or a loss class)."""
    loss_fn = load_loss(loss)
    try:
        report = check_loss(loss_fn, task, num_classes, checks=checks or None, skip=skip, baseline=baseline,
                            minimum=minimum, reduction=reduction, ignore_index=ignore_index,
                            mixed_precision=mixed_precision, seed=seed)
    except LossCheckError as failure:
        click.echo(failure.report.format())
        sys.exit(EXIT_FAILED)
    except ImportError as error:
        raise click.UsageError(str(error) if _missing_torch(error) else f"{type(error).__name__}: {error}") from error
    except ValueError as error:  # check_loss's argument errors name its keywords: num_classes is --num-classes
        raise click.UsageError(str(error).replace("num_classes", "--num-classes")) from error
    except Exception as error:  # a harness bug: one line, not a traceback, and a failing status
        click.echo(f"losslint harness: internal error: {type(error).__name__}: {error}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(report.format())
