"""Measured thresholds and verdicts on the runtime fixtures (direct, via-variable, via-attribute, via-helper forms).

The thresholds are found by search in the worker; here they are compared with the analytic
floating-point limits (float-and-torch facts): within 1%, or one representable step where the
dtype's steps are coarser than that (bfloat16 near 93 and 89 is 0.5 apart).
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

from losslint.api import lint_source
from losslint.runtime import confirm_findings
from losslint.runtime.verdict import Verdict

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "runtime"

LOG_SOFTMAX = {"float32": 103.97, "float16": 17.34, "bfloat16": 93.0}
LOG_ONE_MINUS_SIGMOID = {"float32": 16.64, "float16": 8.32, "bfloat16": 6.25}
EXP_OVERFLOW = {"float32": 88.72, "float16": 11.09, "bfloat16": 89.0}
MANTISSA_BITS = {"float32": 23, "float16": 10, "bfloat16": 7}

# fixture → the functions its findings sit in (one per form) and the limit they must reproduce.
FORMS = {
    "log_of_softmax.py": ({"direct", "via_variable", "via_attribute", "log_probabilities"}, LOG_SOFTMAX),
    "log_of_sigmoid.py": ({"direct", "via_variable", "via_attribute", "closed_gate_log_likelihood"},
                          LOG_ONE_MINUS_SIGMOID),
    "exp_overflow.py": ({"direct", "via_variable", "via_attribute", "softplus"}, EXP_OVERFLOW),
    "hand_written_losses.py": ({"manual_cross_entropy", "manual_binary_cross_entropy"}, None),
}
HAND_WRITTEN = {"manual_cross_entropy": LOG_SOFTMAX, "manual_binary_cross_entropy": LOG_ONE_MINUS_SIGMOID}


@pytest.fixture(scope="module")
def confirmed():
    """Every fixture finding, confirmed in one run (one worker), by (file, enclosing function)."""
    findings, sources = [], {}
    for path in sorted(FIXTURES.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        sources[str(path)] = source
        findings += lint_source(source, str(path))
    results = confirm_findings(findings, sources)
    by_function: dict[tuple[str, str], list] = {}
    for finding in results:
        name = _function_at(sources[finding.path], finding.line)
        by_function.setdefault((Path(finding.path).name, name), []).append(finding)
    return by_function


def _function_at(source: str, line: int) -> str:
    best = "<module>"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.lineno <= line <= node.end_lineno:
            best = node.name
    return best


def _close(measured: float | None, analytic: float, dtype: str) -> bool:
    step = 2.0 ** (math.floor(math.log2(analytic)) - MANTISSA_BITS[dtype])
    return measured is not None and abs(measured - analytic) <= max(0.01 * analytic, step)


def _overflow_cases():
    for fixture, (functions, limits) in FORMS.items():
        for function in sorted(functions):
            yield pytest.param(fixture, function, limits or HAND_WRITTEN[function], id=f"{fixture}:{function}")


@pytest.mark.parametrize(("fixture", "function", "limits"), list(_overflow_cases()))
def test_overflow_thresholds_match_the_analytic_limits(confirmed, fixture, function, limits):
    [finding] = confirmed[(fixture, function)]
    confirmation = finding.confirmation
    assert confirmation.verdict is Verdict.CONFIRMED, confirmation.describe()
    for dtype, analytic in limits.items():
        measured = next(m for m in confirmation.measurements if m.dtype == dtype and "value_threshold" in m.measured)
        assert _close(measured.measured["value_threshold"], analytic, dtype), (dtype, measured, analytic)
    assert any("compute in float32 and round" in note for note in confirmation.notes)
    assert confirmation.describe()[0].startswith("runtime: confirmed:")


@pytest.mark.parametrize("function", ["direct", "via_variable", "via_attribute", "via_helper"])
def test_double_softmax_floors_the_loss_at_log_1_plus_k_minus_1_over_e(confirmed, function):
    [finding] = confirmed[("double_softmax.py", function)]
    confirmation = finding.confirmation
    assert confirmation.verdict is Verdict.CONFIRMED, confirmation.describe()
    classes = 10
    floor = math.log(1 + (classes - 1) / math.e)
    assert confirmation.primary.measured["min_loss"] == pytest.approx(floor, rel=0.01)
    assert confirmation.primary.reference["min_loss"] < 0.01
    assert confirmation.primary.measured["grad_norm_scale_100"] * 5 < confirmation.primary.reference[
        "grad_norm_scale_100"]


@pytest.mark.parametrize("function", ["direct", "via_variable", "via_attribute", "via_helper"])
def test_bce_on_a_sigmoid_loses_its_gradient_from_the_saturation_logit(confirmed, function):
    [finding] = confirmed[("bce_on_sigmoid.py", function)]
    confirmation = finding.confirmation
    assert confirmation.verdict is Verdict.CONFIRMED, confirmation.describe()
    for dtype in ("float32", "bfloat16"):
        measured = next(m for m in confirmation.measurements if m.dtype == dtype)
        assert _close(measured.threshold, LOG_ONE_MINUS_SIGMOID[dtype], dtype)
        assert measured.measured["gradient"] == "exactly 0"
        assert measured.measured["loss"] == pytest.approx(100.0)  # BCELoss clamps its log at -100
        assert measured.reference["grad_norm"] > 0


@pytest.mark.parametrize(("function", "evidence"), [
    ("double_sigmoid", "never drops below"),
    ("probabilities_into_nll", "reaches -1.000"),
    ("logits_into_nll", "falls without bound"),
    ("logits_into_bce", "all elements of input should be between 0 and 1"),
    ("kl_on_probabilities", "for perfect predictions"),
])
def test_values_in_the_wrong_domain_are_confirmed(confirmed, function, evidence):
    [finding] = confirmed[("wrong_domains.py", function)]
    confirmation = finding.confirmation
    assert confirmation.verdict is Verdict.CONFIRMED, confirmation.describe()
    assert evidence in confirmation.summary
