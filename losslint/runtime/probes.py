"""The stress schedules, one per kind of defect, and the verdicts they reach (worker side: imports torch).

A rule names its probe (`Rule.probe`); the catalogue:

- `overflow` (hand-written maths, LL2): for float32, float16 and bfloat16, and for each
  logit pattern (a logit gap, a single large logit, all logits large, all logits very
  negative), a doubling-then-bisection search for the first stress level at which the
  flagged expression or its gradient stops being finite; the stable reference (the fix,
  else float64) is evaluated at the same inputs.
- `wrong-input-domain` (a value in the wrong domain reaching a loss, LL1): the loss for
  perfect, increasingly confident predictions (its reachable minimum), the gradient norm
  against the correct form at logit scales 1, 10 and 100 and the share of rows that get
  exactly zero gradient, and whether the loss raises where the correct form runs.
- `vanishing-gradient` (BCELoss on a sigmoid, LL104): the confidently wrong logit from
  which the gradient with respect to the logits is exactly zero.
- `empty-mask` (LL401): an all-False mask, and targets that are all one padding value.
- `ignore-dilution` (LL402): a plain mean over targets half equal to ignore_index.
- `broadcast` (LL304): the shapes the loss broadcasts its arguments to.
- `runs-as-written` (LL3/LL4/LL5 misuse): the slice on ordinary inputs; an exception or a
  torch warning is the evidence.

Thresholds are always found by search; none is written down here.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from losslint.runtime import allowlist
from losslint.runtime.inputs import DRIVEN_ROLES, InputSpec, Layout, Role
from losslint.runtime.slicer import TAPS_VARIABLE
from losslint.runtime.tensors import PATTERNS, Scenario, cast, materialize
from losslint.runtime.verdict import Confirmation, Measurement, NotExecutable, Verdict

LOW_PRECISION_NOTE = ("float16 and bfloat16 ops on the CPU compute in float32 and round the result; "
                      "CUDA kernels may differ")
STRESS_DTYPES = ("float32", "float16", "bfloat16")
SEARCH_CAP = 1.0e4
# Order matters on ties: the first pattern that breaks the expression names the stress in the evidence.
OVERFLOW_PATTERNS = ("rise", "fall", "gap", "spike")


class OutOfTime(BaseException):
    """Raised by the worker's CPU-time signal; a BaseException so that nothing on the way catches it."""


# ---------------------------------------------------------------------------
# Running a slice
# ---------------------------------------------------------------------------


class Compiled:
    """A program checked against the allow-list and compiled once; run with fresh globals each time."""

    def __init__(self, source: str, input_names: set[str], environment: dict[str, Any]) -> None:
        refusals = allowlist.check_program(source, input_names)
        if refusals:
            raise NotExecutable(f"the slice uses {refusals[0]}")
        self.code = compile(source, "<losslint slice>", "exec")
        self.environment = environment

    def run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        scope = dict(self.environment)
        scope.update(inputs)
        exec(self.code, scope)  # noqa: S102 - checked against the allow-list, run in the sandboxed worker
        return scope[TAPS_VARIABLE]


@dataclass
class Outcome:
    taps: dict[str, Any] | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    grads: list[torch.Tensor | None] | None = None
    logits_grad: torch.Tensor | None = None
    class_axis: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None

    def value(self, tap: str) -> Any:
        return self.taps.get(tap) if self.taps else None

    def finite(self, tap: str) -> bool:
        return _finite(self.value(tap))

    def grad_finite(self) -> bool:
        return all(g is None or bool(torch.isfinite(g).all()) for g in self.grads or ())


def _finite(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return not value.is_floating_point() or bool(torch.isfinite(value).all())
    if isinstance(value, float):
        return math.isfinite(value)
    return True


class Session:
    """One finding's plan, compiled, with the layout the slice runs on."""

    def __init__(self, plan: dict[str, Any], environment: dict[str, Any]) -> None:
        self.plan = plan
        self.context = plan.get("context", {})
        self.specs = tuple(InputSpec.from_dict(spec) for spec in plan["inputs"])
        self.layouts = tuple(Layout.from_dict(layout) for layout in plan["layouts"]) or (Layout(),)
        names = {spec.name for spec in self.specs}
        self.original = Compiled(plan["program"]["source"], names, environment)
        reference = plan.get("reference")
        self.reference = Compiled(reference["source"], names, environment) if reference else None
        self.reference_kind = plan.get("reference_kind") or ("float64" if reference is None else "fix")
        self.layout = self.layouts[0]

    def run(self, scenario: Scenario, *, reference: bool = False, grad_tap: str | None = None) -> Outcome:
        program = self.original
        if reference and self.reference is not None:
            program = self.reference
        elif reference and self.reference_kind == "float64":
            scenario = scenario.but(dtype="float64")
        scenario = scenario.but(reference=reference)
        try:
            made = materialize(self.specs, self.layout, scenario)
        except (RuntimeError, ValueError, IndexError) as error:
            return Outcome(error=f"cannot build the inputs: {error}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                taps = program.run(made.inputs)
                outcome = Outcome(taps=taps, class_axis=made.class_axis)
                if grad_tap is not None:
                    self._gradients(outcome, taps.get(grad_tap), made)
            except MemoryError:
                return Outcome(error="MemoryError: the slice exceeded the memory limit")
            except Exception as error:  # the user's code may raise anything; that is evidence, not a crash
                message = str(error).strip().splitlines()[0] if str(error).strip() else ""
                if "can't allocate memory" in message or "not enough memory" in message:
                    message = f"{message} (the worker's memory limit)"
                return Outcome(error=f"{type(error).__name__}: {message}", warnings=_messages(caught))
        outcome.warnings = _messages(caught)
        return outcome

    @staticmethod
    def _gradients(outcome: Outcome, value: Any, made) -> None:
        if not isinstance(value, torch.Tensor) or not value.requires_grad or not made.leaves:
            return
        total = value.float().sum() if value.is_floating_point() else None
        if total is None:
            return
        grads = torch.autograd.grad(total, made.leaves, allow_unused=True)
        outcome.grads = list(grads)
        if made.logits is not None:
            for leaf, grad in zip(made.leaves, grads):
                if leaf is made.logits:
                    outcome.logits_grad = grad

    def choose_layout(self, witness_reference: bool, tap: str) -> Outcome:
        """The first layout on which the slice (or its reference) runs and gives finite values."""
        last = None
        for layout in self.layouts:
            self.layout = layout
            last = self.run(Scenario(), reference=witness_reference and self.reference is not None, grad_tap=tap)
            if last.ok and last.finite(tap):
                return last
        detail = last.error if last is not None and last.error else f"a non-finite `{tap}`"
        raise NotExecutable(f"the slice does not run on the inferred inputs ({detail}); inputs: "
                            + "; ".join(self.context.get("inputs", [])))


def _messages(caught) -> list[str]:
    return [str(w.message).splitlines()[0] for w in caught]


# ---------------------------------------------------------------------------
# Searches
# ---------------------------------------------------------------------------


def first_failure(predicate: Callable[[float], bool], dtype: str, cap: float = SEARCH_CAP,
                  start: float = 0.0) -> float | None:
    """The smallest stress level above `start` (as held in `dtype`) at which `predicate` holds: doubling, then
    bisection down to adjacent representable values."""
    low, high = start, (start * 2 if start > 0 else 1.0)
    while not predicate(high):
        low = high
        high *= 2
        if high > cap:
            return None
    for _ in range(60):
        if high - low <= 1e-6 * high:
            break
        middle = (low + high) / 2
        held = cast(middle, dtype)
        if held == cast(high, dtype):
            high = middle
        elif held == cast(low, dtype):
            low = middle
        elif predicate(middle):
            high = middle
        else:
            low = middle
    return cast(high, dtype)


# ---------------------------------------------------------------------------
# Probes
# ---------------------------------------------------------------------------


def overflow(session: Session) -> Confirmation:
    tap = "value"
    session.choose_layout(False, tap)
    found: dict[str, _Breakdown] = {}
    skipped: list[str] = []
    driven = tuple(spec.name for spec in session.specs if spec.role in DRIVEN_ROLES)
    # With several driven inputs, equal stress can cancel (`a - b`): also stress each alone, the others at 0.
    variants: list[tuple[str, ...] | None] = [None] + ([(name,) for name in driven] if len(driven) > 1 else [])
    for dtype in STRESS_DTYPES:
        try:
            best = _overflow_in(session, dtype, tap, variants)
        except _Unsupported as error:
            skipped.append(f"{dtype} ({error})")
            continue
        if best is not None:
            found[dtype] = best
            variants = [best.stressed]
    tried = (f"logit patterns {'; '.join(PATTERNS[p] for p in OVERFLOW_PATTERNS)}; stress level up to "
             f"{SEARCH_CAP:g}; in {', '.join(STRESS_DTYPES)}",)
    measurements = []
    for dtype, breakdown in found.items():
        level = breakdown.value_level if breakdown.value_level is not None else breakdown.grad_level
        scenario = Scenario(dtype=dtype, pattern=breakdown.pattern, level=level, targets="adversarial",
                            stressed=breakdown.stressed)
        outcome = session.run(scenario, grad_tap=tap)
        reference = session.run(scenario, reference=True, grad_tap=tap)
        reference_ok = reference.ok and reference.finite(tap) and reference.grad_finite()
        # Thresholds are logit values: negative for the "fall" pattern (every logit equal to -d).
        sign = -1.0 if breakdown.pattern == "fall" else 1.0
        measured = {"pattern": breakdown.pattern, "value": _describe(outcome.value(tap)),
                    "gradient": "finite" if outcome.grad_finite() else _nonfinite_kind(outcome.grads),
                    "value_threshold": _times(sign, breakdown.value_level),
                    "gradient_threshold": _times(sign, breakdown.grad_level),
                    "stressed": list(breakdown.stressed) if breakdown.stressed else None}
        reference_values = {"kind": session.reference_kind, "finite": reference_ok,
                            "value": _describe(reference.value(tap)) if reference.ok else reference.error}
        measurements.append(Measurement(dtype, sign * level, _stress_name(breakdown.pattern), measured,
                                        reference_values))
    confirmed = [m for m in measurements if m.reference["finite"]]
    if not confirmed:
        accuracy = _accuracy_loss(session, tap)
        if accuracy is not None:
            return accuracy
        summary = "the flagged expression and its gradient stayed finite under the whole stress schedule"
        if measurements:
            summary = "it becomes non-finite, but so does the reference at the same inputs"
        notes = tuple(f"skipped {item}" for item in skipped)
        return Confirmation(Verdict.NOT_REPRODUCED, "overflow", _OVERFLOW_METRIC, summary, tuple(measurements),
                            tried, notes)
    summary = _overflow_summary(confirmed) + "; " + _reference_phrase(session, tap, confirmed[0])
    if confirmed[0].dtype != "float32":
        # Finite in float32 (an eps or a clamp): say what it costs there.
        accuracy = _accuracy_loss(session, tap)
        if accuracy is not None:
            summary += f"; in float32 it {accuracy.summary}"
            measurements.extend(accuracy.measurements)
    stressed = found[confirmed[0].dtype].stressed or driven
    sources = [f"`{spec.source}`" for spec in session.specs if spec.name in stressed]
    notes = [f"stress applied to every entry of {', '.join(sources)}"
             + ("; the other inputs held at 0" if found[confirmed[0].dtype].stressed else "")]
    if any(m.dtype != "float32" for m in measurements):
        notes.append(LOW_PRECISION_NOTE)
    notes += [f"skipped {item}" for item in skipped]
    return Confirmation(Verdict.CONFIRMED, "overflow", _OVERFLOW_METRIC, summary, tuple(measurements), tried,
                        tuple(notes))


_OVERFLOW_METRIC = "stress level from which the flagged value (or else its gradient) stops being finite"


@dataclass
class _Breakdown:
    pattern: str
    value_level: float | None
    grad_level: float | None
    stressed: tuple[str, ...] | None = None

    @property
    def first(self) -> float:
        return min(level for level in (self.value_level, self.grad_level) if level is not None)

    @property
    def key(self) -> float:
        return self.value_level if self.value_level is not None else self.grad_level


class _Unsupported(Exception):
    pass


def _overflow_in(session: Session, dtype: str, tap: str, variants) -> _Breakdown | None:
    """The pattern that breaks the expression soonest in `dtype`, with its value and gradient thresholds."""
    baseline = session.run(Scenario(dtype=dtype), grad_tap=tap)
    if not baseline.ok:
        raise _Unsupported(baseline.error)
    best: _Breakdown | None = None
    for stressed, pattern in ((v, p) for v in variants for p in OVERFLOW_PATTERNS):
        def run(level: float, pattern=pattern, stressed=stressed) -> Outcome:
            return session.run(Scenario(dtype=dtype, pattern=pattern, level=level, targets="adversarial",
                                        stressed=stressed), grad_tap=tap)

        def value_broken(level: float) -> bool:
            outcome = run(level)
            return outcome.ok and not outcome.finite(tap)

        def grad_broken(level: float) -> bool:
            outcome = run(level)
            return outcome.ok and not outcome.grad_finite()

        first = first_failure(lambda level: value_broken(level) or grad_broken(level), dtype)
        if first is None:
            continue
        at_first = run(first)
        value_level = first if not at_first.finite(tap) else first_failure(value_broken, dtype, start=first)
        grad_level = first if not at_first.grad_finite() else first_failure(grad_broken, dtype, start=first)
        candidate = _Breakdown(pattern, value_level, grad_level, stressed)
        if best is None or candidate.key < best.key * 0.999 or (
                best.value_level is None and candidate.value_level is not None):
            best = candidate
    return best


def _overflow_summary(measurements: list[Measurement]) -> str:
    first = measurements[0]
    others = measurements[1:]
    value_at = first.measured.get("value_threshold")
    grad_at = first.measured.get("gradient_threshold")
    value_kind, grad_kind = first.measured.get("value"), first.measured.get("gradient")

    def elsewhere(key: str) -> str:
        items = [f"{_number(m.measured.get(key))} in {m.dtype}" for m in others
                 if m.measured.get(key) is not None]
        return f" ({', '.join(items)})" if items else ""

    phrase = _stress_phrase(first)
    if value_at is not None:
        text = (f"the value becomes {value_kind} from {phrase} of {_number(value_at)} in "
                f"{first.dtype}{elsewhere('value_threshold')}")
        if grad_at is not None and abs(grad_at) < abs(value_at):
            text += (f", and its gradient NaN already from {_number(grad_at)}"
                     f"{elsewhere('gradient_threshold')}")
        elif grad_kind not in (None, "finite"):
            text += f", with {'an' if grad_kind == 'inf' else 'a'} {grad_kind} gradient"
        return text
    return (f"the gradient becomes {grad_kind} from {phrase} of {_number(grad_at)} in "
            f"{first.dtype}{elsewhere('gradient_threshold')} while the value stays finite")


def _times(sign: float, level: float | None) -> float | None:
    return None if level is None else sign * level


def _accuracy_loss(session: Session, tap: str) -> Confirmation | None:
    """No overflow: does the expression lose accuracy (e.g. an eps-guarded log) where the reference does not?"""
    tolerance = 1e-2

    exact = session.reference is not None  # the stable form in float64 is the exact value; else the original

    def error_at(pattern: str, level: float, reference: bool) -> float:
        scenario = Scenario(pattern=pattern, level=level, targets="adversarial")
        computed = session.run(scenario, reference=reference)
        truth = session.run(scenario.but(dtype="float64"), reference=exact)
        return _relative_error(computed.value(tap), truth.value(tap)) if computed.ok and truth.ok else math.inf

    best = None
    for pattern in OVERFLOW_PATTERNS:
        level = first_failure(lambda d, p=pattern: error_at(p, d, False) > tolerance, "float32", cap=700.0)
        if level is not None and (best is None or level < best[1]):
            best = (pattern, level)
    if best is None:
        return None
    pattern, level = best
    scenario = Scenario(pattern=pattern, level=level, targets="adversarial")
    original = error_at(pattern, level, False)
    measured = {"pattern": pattern, "relative_error": original,
                "value": _describe(session.run(scenario).value(tap)),
                "exact": _describe(session.run(scenario.but(dtype="float64"), reference=exact).value(tap))}
    reference_error = error_at(pattern, level, True) if session.reference is not None else None
    if reference_error is not None and reference_error > tolerance:
        return None
    measurement = Measurement("float32", -level if pattern == "fall" else level, _stress_name(pattern), measured,
                              {"kind": session.reference_kind, "relative_error": reference_error})
    against = "the stable form in float64" if exact else "float64"
    summary = (f"loses accuracy: relative error {original:.2g} against {against} from "
               f"{_stress_phrase(measurement)} of {_number(measurement.threshold)} in float32")
    if "finite" not in (measured["value"], measured["exact"]):
        summary += f" ({measured['value']} instead of {measured['exact']})"
    if reference_error is not None:
        summary += f"; the stable form stays within {reference_error:.1g}"
    return Confirmation(Verdict.CONFIRMED, "overflow", "stress level at which the relative error against "
                        "float64 exceeds 1%", summary, (measurement,), (), ())


def wrong_input_domain(session: Session) -> Confirmation:
    tap = "loss"
    witness = session.reference is not None or any(s.reference_role for s in session.specs)
    baseline = session.choose_layout(witness, tap)
    reference_runs = session.reference is not None or any(s.reference_role for s in session.specs)
    original = session.run(Scenario(), grad_tap=tap)
    label = session.context.get("loss_label", "the loss")
    tried = ("perfect predictions at logit scales 1 to 1024", "random logits at scales 1, 10 and 100 (float32)")
    if not original.ok:
        return Confirmation(Verdict.CONFIRMED, "wrong-input-domain", "whether the loss runs",
                            f"{label} raises {original.error} on ordinary inputs, while the correct form runs "
                            f"(loss {_describe(baseline.value(tap))})",
                            (Measurement("float32", None, "logit scale", {"error": original.error},
                                         {"loss": _describe(baseline.value(tap))}),), tried)
    if not reference_runs:
        raise NotExecutable("no correct-domain reference could be built for this loss call")
    scales = [2.0 ** k for k in range(11)]
    curve = [_scalar(session.run(Scenario(pattern="perfect", level=s, targets="perfect")).value(tap)) for s in scales]
    reference_curve = [_scalar(session.run(Scenario(pattern="perfect", level=s, targets="perfect"),
                                           reference=True).value(tap)) for s in scales]
    floor, reference_floor = _minimum(curve), _minimum(reference_curve)
    gradients = {}
    for scale in (1.0, 10.0, 100.0):
        scenario = Scenario(pattern="random", level=scale, batch=256)
        mine = session.run(scenario, grad_tap=tap)
        theirs = session.run(scenario, reference=True, grad_tap=tap)
        gradients[scale] = (_norm(mine.logits_grad), _norm(theirs.logits_grad), _zero_rows(mine))
    measured = {"min_loss": floor, "loss_at_scale_1024": curve[-1]}
    reference_values = {"kind": session.reference_kind, "min_loss": reference_floor}
    for scale, (mine, theirs, zero) in gradients.items():
        measured[f"grad_norm_scale_{scale:g}"] = mine
        measured[f"zero_grad_rows_scale_{scale:g}"] = zero
        reference_values[f"grad_norm_scale_{scale:g}"] = theirs
    evidence = []
    tolerance = 0.02 + 0.01 * abs(reference_floor) if math.isfinite(reference_floor) else 0.02
    if math.isnan(floor) or any(math.isnan(v) for v in curve):
        evidence.append("the loss is NaN for perfect predictions")
    elif floor - reference_floor > tolerance:
        evidence.append(f"the loss never drops below {_loss(floor)} even for perfect predictions (the correct form "
                        f"reaches {_loss(reference_floor)}){_floor_explanation(session, floor)}")
    elif reference_floor - floor > tolerance:
        unbounded = curve[-1] < curve[-2] - tolerance
        if unbounded:
            evidence.append(f"the loss falls without bound as predictions improve ({curve[-1]:.4g} at logit scale "
                            f"{scales[-1]:g}); the correct form's minimum is {_loss(reference_floor)}")
        else:
            evidence.append(f"the loss reaches {_loss(floor)} for perfect predictions, below the correct form's "
                            f"minimum of {_loss(reference_floor)}")
    mine, theirs, zero = gradients[100.0]
    if mine > 0 and theirs / mine >= 5:
        text = f"the gradient is {theirs / mine:.0f}× smaller than the correct form's at logit scale 100"
        if zero >= 0.005:
            text += f", and {zero:.0%} of rows get exactly zero gradient"
        evidence.append(text)
    elif mine == 0 and theirs > 0:
        evidence.append("the gradient is exactly zero at logit scale 100 where the correct form's is not")
    metric = "minimum reachable loss and gradient norm against the correct form"
    measurement = Measurement("float32", None, "logit scale", measured, reference_values)
    if evidence:
        return Confirmation(Verdict.CONFIRMED, "wrong-input-domain", metric, "; ".join(evidence), (measurement,),
                            tried)
    return Confirmation(Verdict.NOT_REPRODUCED, "wrong-input-domain", metric,
                        f"minimum loss {_loss(floor)} vs {_loss(reference_floor)} for the correct form, "
                        "gradient within 5×",
                        (measurement,), tried)


def vanishing_gradient(session: Session) -> Confirmation:
    tap = "loss"
    session.choose_layout(False, tap)
    measurements = []
    for dtype in STRESS_DTYPES:
        best = None
        for pattern in ("rise", "fall"):
            def vanished(level: float, pattern=pattern) -> bool:
                outcome = session.run(Scenario(dtype=dtype, pattern=pattern, level=level, targets="adversarial"),
                                      grad_tap=tap)
                return outcome.ok and _gradient_lost(outcome.logits_grad) is not None

            level = first_failure(vanished, dtype, cap=1000.0)
            if level is not None and (best is None or level < best[1]):
                best = (pattern, level)
        if best is None:
            continue
        pattern, level = best
        scenario = Scenario(dtype=dtype, pattern=pattern, level=level, targets="adversarial")
        outcome = session.run(scenario, grad_tap=tap)
        reference = session.run(scenario, reference=True, grad_tap=tap)
        measurements.append(Measurement(
            dtype, level, "confidently wrong logit",
            {"loss": _scalar(outcome.value(tap)), "gradient": _gradient_lost(outcome.logits_grad)},
            {"kind": session.reference_kind, "loss": _scalar(reference.value(tap)),
             "grad_norm": _norm(reference.logits_grad)}))
    tried = (f"confidently wrong logits (all equal to ±d against the targets) up to 1000 in "
             f"{', '.join(STRESS_DTYPES)}",)
    metric = "logit from which the gradient with respect to the logits is exactly zero (or NaN)"
    alive = [m for m in measurements if m.reference.get("grad_norm", 0) > 0]
    if not alive:
        return Confirmation(Verdict.NOT_REPRODUCED, "vanishing-gradient", metric,
                            "the gradient never vanished while the reference's survived", tuple(measurements), tried)
    first = alive[0]
    others = ", ".join(f"{m.measured['gradient']} from {_number(m.threshold)} in {m.dtype}" for m in alive[1:])
    summary = (f"the gradient with respect to the logits is {first.measured['gradient']} from a confidently wrong "
               f"logit of {_number(first.threshold)} in {first.dtype}{f' ({others})' if others else ''}, where the "
               f"loss is {first.measured['loss']:.4g}; the {_reference_name(session)} keeps a gradient "
               f"(norm {first.reference['grad_norm']:.3g}, loss {first.reference['loss']:.4g})")
    notes = (LOW_PRECISION_NOTE,) if len(alive) > 1 else ()
    return Confirmation(Verdict.CONFIRMED, "vanishing-gradient", metric, summary, tuple(measurements), tried, notes)


def _gradient_lost(grad: torch.Tensor | None) -> str | None:
    """"exactly 0" or "NaN" when no usable gradient reaches the logits, else None."""
    if grad is None:
        return None
    if bool((grad == 0).all()):
        return "exactly 0"
    if not bool(torch.isfinite(grad).all()):
        return "NaN" if bool(torch.isnan(grad).any()) else "inf"
    return None


def empty_mask(session: Session) -> Confirmation:
    tap = "value"
    session.choose_layout(False, tap)
    ignore_index = session.context.get("ignore_index")
    fills = [-100 if ignore_index is None else ignore_index, -100, 0] + [
        spec.value for spec in session.specs
        if spec.role is Role.NUMBER and isinstance(spec.value, int) and not isinstance(spec.value, bool)]
    scenarios = [("the mask is empty (all False)", Scenario(masks="empty"))]
    if any(s.role is Role.CLASS_INDICES for s in session.specs):
        scenarios += [(f"every target equals {fill}", Scenario(targets="fill", fill=fill))
                      for fill in dict.fromkeys(f for f in fills if f is not None)]
    tried = tuple(description for description, _ in scenarios)
    for description, scenario in scenarios:
        outcome = session.run(scenario, grad_tap=tap)
        if not outcome.ok or (outcome.finite(tap) and outcome.grad_finite()):
            continue
        reference = session.run(scenario, reference=True, grad_tap=tap)
        reference_ok = reference.ok and reference.finite(tap) and reference.grad_finite()
        value = _describe(outcome.value(tap))
        gradient = "finite" if outcome.grad_finite() else _nonfinite_kind(outcome.grads)
        measurement = Measurement("float32", None, description, {"value": value, "gradient": gradient},
                                  {"kind": session.reference_kind, "finite": reference_ok,
                                   "value": _describe(reference.value(tap)) if reference.ok else reference.error})
        if session.reference_kind != "float64" and not reference_ok:
            continue
        summary = f"the loss is {value} and its gradient {gradient} when {description}"
        if session.reference_kind == "fix":
            guarded = measurement.reference["value"]
            summary += (f"; the guarded form gives {'finite values' if guarded == 'finite' else guarded} "
                        "with a finite gradient")
        return Confirmation(Verdict.CONFIRMED, "empty-mask", "loss and gradient on an empty batch", summary,
                            (measurement,), tried)
    return Confirmation(Verdict.NOT_REPRODUCED, "empty-mask", "loss and gradient on an empty batch",
                        "the loss and its gradient stayed finite", (), tried)


def ignore_dilution(session: Session) -> Confirmation:
    tap = "value"
    session.choose_layout(False, tap)
    ignore_index = session.context.get("ignore_index")
    ignore_index = -100 if ignore_index is None else ignore_index
    scenario = Scenario(targets="ignore", fill=ignore_index, fraction=0.5)
    outcome = session.run(scenario)
    tried = (f"half of the targets equal to ignore_index ({ignore_index})",)
    metric = "mean loss against the mean over the positions that are not ignored"
    if not outcome.ok:
        raise NotExecutable(f"the slice fails with ignored targets: {outcome.error}")
    value = _scalar(outcome.value(tap))
    elements = outcome.value("elements")
    if isinstance(elements, torch.Tensor) and elements.is_floating_point():
        counted = elements.detach().double()
        proper = float(counted.sum() / (counted != 0).sum().clamp_min(1))
    elif session.reference is not None:
        proper = _scalar(session.run(scenario, reference=True).value(tap))
    else:
        raise NotExecutable("the per-position losses of the mean could not be tapped")
    measurement = Measurement("float32", 0.5, "fraction of ignored targets", {"mean": value},
                              {"mean_over_counted": proper})
    if math.isfinite(value) and math.isfinite(proper) and abs(value - proper) > 0.01 * abs(proper):
        summary = (f"with half of the targets equal to ignore_index ({ignore_index}), `.mean()` gives "
                   f"{value:.4g} where the mean over the positions that count is {proper:.4g}: the ignored "
                   "positions dilute the loss")
        return Confirmation(Verdict.CONFIRMED, "ignore-dilution", metric, summary, (measurement,), tried)
    return Confirmation(Verdict.NOT_REPRODUCED, "ignore-dilution", metric,
                        f"the mean ({value:.4g}) matches the mean over the counted positions ({proper:.4g})",
                        (measurement,), tried)


def broadcast(session: Session) -> Confirmation:
    tap = "loss"
    session.choose_layout(session.reference is not None, tap)
    outcome = session.run(Scenario())
    tried = ("ordinary inputs with the inferred shapes",)
    metric = "shape the loss broadcasts its arguments to"
    prediction, target = outcome.value("input"), outcome.value("target")
    if not outcome.ok or not isinstance(prediction, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise NotExecutable(f"the loss arguments could not be evaluated ({outcome.error or 'not tensors'})")
    shapes = [list(prediction.shape), list(target.shape)]
    try:
        result = list(torch.broadcast_shapes(prediction.shape, target.shape))
    except RuntimeError as error:
        result = None
        outcome.error = str(error)
    measured = {"input_shape": shapes[0], "target_shape": shapes[1], "broadcast_shape": result,
                "loss": _scalar(outcome.value(tap)), "warnings": outcome.warnings[:1]}
    reference = session.run(Scenario(), reference=True) if session.reference is not None else None
    reference_values = {"kind": session.reference_kind,
                        "loss": _scalar(reference.value(tap)) if reference and reference.ok else None}
    measurement = Measurement("float32", None, "shapes", measured, reference_values)
    label = session.context.get("loss_label", "the loss")
    if result is not None and shapes[0] != shapes[1] and result != shapes[0]:
        summary = f"{label} broadcasts {shapes[0]} against {shapes[1]} to {result}"
        if outcome.warnings:
            summary += " (torch only warns)"
        if reference_values["loss"] is not None:
            summary += f"; loss {measured['loss']:.4g} instead of {reference_values['loss']:.4g}"
        return Confirmation(Verdict.CONFIRMED, "broadcast", metric, summary, (measurement,), tried)
    return Confirmation(Verdict.NOT_REPRODUCED, "broadcast", metric,
                        f"the arguments have shapes {shapes[0]} and {shapes[1]}, which do not broadcast further",
                        (measurement,), tried)


def runs_as_written(session: Session) -> Confirmation:
    tap = "value"
    if session.reference is not None:
        session.choose_layout(True, tap)
    outcome = session.run(Scenario(), grad_tap=None)
    tried = ("ordinary inputs: " + "; ".join(session.context.get("inputs", [])),)
    metric = "whether the flagged code runs without error or warning"
    if not outcome.ok:
        measurement = Measurement("float32", None, "ordinary inputs", {"error": outcome.error})
        return Confirmation(Verdict.CONFIRMED, "runs-as-written", metric, f"it raises {outcome.error}",
                            (measurement,), tried)
    if outcome.warnings:
        measurement = Measurement("float32", None, "ordinary inputs", {"warning": outcome.warnings[0]})
        return Confirmation(Verdict.CONFIRMED, "runs-as-written", metric, f"torch warns: {outcome.warnings[0]}",
                            (measurement,), tried)
    value = outcome.value(tap)
    if isinstance(value, torch.nn.Module) and type(value).__name__.endswith("Loss"):
        # A loss class called with tensors builds a loss module instead of computing a loss.
        measurement = Measurement("float32", None, "ordinary inputs", {"result": type(value).__name__})
        return Confirmation(Verdict.CONFIRMED, "runs-as-written", metric,
                            f"it returns a {type(value).__name__} module, not a loss value", (measurement,), tried)
    return Confirmation(Verdict.NOT_REPRODUCED, "runs-as-written", metric, "it ran without error or warning", (),
                        tried)


PROBES: dict[str, Callable[[Session], Confirmation]] = {
    "overflow": overflow,
    "wrong-input-domain": wrong_input_domain,
    "vanishing-gradient": vanishing_gradient,
    "empty-mask": empty_mask,
    "ignore-dilution": ignore_dilution,
    "broadcast": broadcast,
    "runs-as-written": runs_as_written,
}


def confirm(plan: dict[str, Any], environment: dict[str, Any]) -> Confirmation:
    """Run one plan's probe; any failure to run becomes a "not executable" verdict with the reason."""
    started = time.perf_counter()
    probe = plan["probe"]
    try:
        session = Session(plan, environment)
        result = PROBES[probe](session)
    except NotExecutable as error:
        result = Confirmation(Verdict.NOT_EXECUTABLE, probe, reason=str(error))
    except MemoryError:
        result = Confirmation(Verdict.NOT_EXECUTABLE, probe, reason="the slice exceeded the worker's memory limit")
    except Exception as error:  # a bug of ours: report it on this finding and keep serving the others
        result = Confirmation(Verdict.NOT_EXECUTABLE, probe,
                              reason=f"internal error in the {probe} probe ({type(error).__name__}: {error}; "
                                     "please report it)")
    return _timed(result, time.perf_counter() - started)


def _timed(result: Confirmation, seconds: float) -> Confirmation:
    return replace(result, seconds=seconds)


# ---------------------------------------------------------------------------
# Wording and numbers
# ---------------------------------------------------------------------------


def _stress_name(pattern: str) -> str:
    return {"gap": "logit gap", "spike": "largest logit", "rise": "logit", "fall": "logit",
            "perfect": "logit scale", "random": "logit scale"}[pattern]


def _stress_phrase(measurement: Measurement) -> str:
    return {"logit gap": "a logit gap", "largest logit": "a largest logit", "logit": "a logit"}.get(
        measurement.stress, f"a {measurement.stress}")


def _reference_name(session: Session) -> str:
    return {"fix": "fixed form", "correct domain": "correct form", "float64": "float64 evaluation"}.get(
        session.reference_kind, "reference")


def _reference_phrase(session: Session, tap: str, first: Measurement) -> str:
    if session.reference_kind == "float64":
        value = first.reference.get("value")
        shown = f" (value {value})" if value not in (None, "finite") else ""
        return f"the same expression evaluated in float64 stays finite there{shown}"
    worst = _grid_error(session, tap, first)
    text = f"the {_reference_name(session)} stays finite"
    if worst is not None:
        text += f" (float32, up to that level: max relative error {worst:.1g} against its float64 value)"
        first.reference["max_relative_error"] = worst
    return text


def _grid_error(session: Session, tap: str, first: Measurement) -> float | None:
    """Worst relative error of the reference in float32 against its float64 value, on a grid up to 1.25×."""
    pattern = first.measured.get("pattern")
    limit = min(abs(first.threshold) * 1.25, 700.0)
    worst = 0.0
    for step in range(1, 26):
        stressed = first.measured.get("stressed")
        scenario = Scenario(pattern=pattern, level=limit * step / 25, targets="adversarial",
                            stressed=tuple(stressed) if stressed else None)
        truth = session.run(scenario.but(dtype="float64"), reference=True)
        stable = session.run(scenario, reference=True)
        if not (truth.ok and stable.ok) or not truth.finite(tap):
            continue
        worst = max(worst, _relative_error(stable.value(tap), truth.value(tap)))
    return worst


def _relative_error(value: Any, truth: Any) -> float:
    if not isinstance(value, torch.Tensor) or not isinstance(truth, torch.Tensor):
        return math.inf
    value, truth = value.detach().double(), truth.detach().double()
    if value.shape != truth.shape or not bool(torch.isfinite(value).all()):
        return math.inf
    scale = float(truth.abs().max()) if truth.numel() else 0.0
    return float((value - truth).abs().max()) / max(scale, 1e-30) if truth.numel() else 0.0


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            return f"tensor of {value.dtype}"
        data = value.detach().double()
        if data.numel() == 1:
            return _number(float(data))
        if bool(torch.isnan(data).any()):
            return "NaN"
        if bool(torch.isinf(data).any()):
            return "-inf" if bool((data == -math.inf).any()) and not bool((data == math.inf).any()) else "inf"
        return "finite"
    if isinstance(value, float):
        return _number(value)
    return type(value).__name__


def _nonfinite_kind(grads) -> str:
    for grad in grads or ():
        if grad is not None and bool(torch.isnan(grad).any()):
            return "NaN"
    return "inf"


def _number(value: float | None) -> str:
    if value is None:
        return "?"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return f"{value:.5g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def _loss(value: float) -> str:
    """A loss to three decimals, without a "-0.000"."""
    text = f"{value:.3f}"
    return "0.000" if text == "-0.000" else text


def _scalar(value: Any) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach().double())
    if isinstance(value, float | int):
        return float(value)
    return math.nan


def _minimum(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return min(finite) if finite else math.nan


def _norm(grad: torch.Tensor | None) -> float:
    return float(grad.double().norm()) if grad is not None else 0.0


def _zero_rows(outcome: Outcome) -> float:
    grad = outcome.logits_grad
    if grad is None or grad.dim() < 2:
        return 0.0
    rows = grad.movedim(outcome.class_axis, -1).reshape(-1, grad.shape[outcome.class_axis])
    return float((rows == 0).all(dim=1).double().mean())


def _floor_explanation(session: Session, floor: float) -> str:
    """The closed form, where the measured floor is the double-softmax floor log(1 + (K − 1)/e)."""
    if session.context.get("loss") != "cross_entropy" or "softmax" not in (session.context.get("producer") or ""):
        return ""
    classes = session.layout.classes
    closed = math.log(1 + (classes - 1) / math.e)
    if abs(floor - closed) <= 0.01 * closed:
        return f"; log(1 + (K−1)/e) = {closed:.3f} for K = {classes}"
    return ""
