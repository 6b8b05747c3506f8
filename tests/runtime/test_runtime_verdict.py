"""The verdict: plain data that pickles, turns into JSON and describes itself in text."""

from __future__ import annotations

import json
import math
import pickle

from losslint.runtime.verdict import Confirmation, Measurement, Verdict, not_executable


def _confirmed() -> Confirmation:
    return Confirmation(
        Verdict.CONFIRMED, "overflow", "stress level", "the value becomes -inf from a logit gap of 103.97",
        (Measurement("float32", 103.97, "logit gap",
                     {"value": "-inf", "value_threshold": 103.97, "relative_error": math.inf},
                     {"kind": "fix", "finite": True, "max_relative_error": math.nan}),
         Measurement("float16", 17.34, "logit gap", {"value": "-inf"}, {"finite": True})),
        ("logit patterns",), ("float16 and bfloat16 ops on the CPU compute in float32 and round the result",), "",
        0.25)


def test_to_dict_is_plain_json_with_the_structured_fields():
    data = _confirmed().to_dict()
    text = json.dumps(data, allow_nan=False)  # non-finite numbers must have become strings
    back = json.loads(text)
    assert back["verdict"] == "confirmed"
    assert back["dtype"] == "float32" and back["threshold"] == 103.97
    assert back["measured"]["relative_error"] == "inf"
    assert back["reference"]["max_relative_error"] == "nan"
    assert [m["dtype"] for m in back["measurements"]] == ["float32", "float16"]
    assert back["metric"] and back["summary"] and back["probe"] == "overflow"


def test_from_dict_restores_the_confirmation():
    original = _confirmed()
    restored = Confirmation.from_dict(json.loads(json.dumps(original.to_dict())))
    assert restored.verdict is Verdict.CONFIRMED
    assert restored.threshold_in("float16") == 17.34
    assert math.isinf(restored.primary.measured["relative_error"])
    assert restored.describe() == original.describe()


def test_it_pickles():
    original = _confirmed()
    restored = pickle.loads(pickle.dumps(original))
    assert restored.to_dict() == original.to_dict()  # (NaN != NaN, so compare the plain data)


def test_describe_gives_the_lines_under_the_finding():
    lines = _confirmed().describe()
    assert lines[0].startswith("runtime: confirmed: the value becomes -inf")
    assert any("compute in float32 and round" in line for line in lines)
    refused = not_executable("`os.system` is outside the allowed set", "overflow").describe()
    assert refused == ["runtime: not executable: `os.system` is outside the allowed set"]
    quiet = Confirmation(Verdict.NOT_REPRODUCED, "overflow", summary="stayed finite", tried=("patterns up to 1e4",))
    assert quiet.describe() == ["runtime: not reproduced: stayed finite", "runtime: tried patterns up to 1e4"]
