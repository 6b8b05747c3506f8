"""The result of confirming one finding at runtime: a verdict with its measured evidence.

Plain data: it pickles, crosses the worker boundary as JSON (`to_dict` / `from_dict`)
and feeds every reporter. The text reporter prints `describe()` under the finding;
the machine-readable reporters serialize `to_dict()`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class NotExecutable(Exception):
    """The finding cannot be confirmed by running it; the message says why."""


class Verdict(str, Enum):
    CONFIRMED = "confirmed"
    NOT_REPRODUCED = "not reproduced"
    NOT_EXECUTABLE = "not executable"


@dataclass(frozen=True)
class Measurement:
    """What one stress run measured in one dtype, next to the reference (stable form or float64)."""

    dtype: str
    # The stress value at which the defect first shows (None: it never did in the range tried).
    threshold: float | None = None
    # What the threshold is a value of: "logit gap", "logit", "logit scale", ...
    stress: str = ""
    measured: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype,
            "threshold": _plain(self.threshold),
            "stress": self.stress,
            "measured": {key: _plain(value) for key, value in self.measured.items()},
            "reference": {key: _plain(value) for key, value in self.reference.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        return cls(
            dtype=data["dtype"],
            threshold=_number(data.get("threshold")),
            stress=data.get("stress", ""),
            measured={key: _number(value) for key, value in data.get("measured", {}).items()},
            reference={key: _number(value) for key, value in data.get("reference", {}).items()},
        )


@dataclass(frozen=True)
class Confirmation:
    verdict: Verdict
    # The probe strategy that ran (see `losslint.runtime.probes.PROBES`).
    probe: str | None = None
    # What was measured, e.g. "logit gap at which the value or its gradient stops being finite".
    metric: str = ""
    # One sentence of evidence, the way a reviewer would say it.
    summary: str = ""
    measurements: tuple[Measurement, ...] = ()
    # The stress schedule, in words (always filled for "not reproduced").
    tried: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    # Why it could not run (for "not executable").
    reason: str = ""
    seconds: float = 0.0

    @property
    def primary(self) -> Measurement | None:
        return self.measurements[0] if self.measurements else None

    @property
    def dtype(self) -> str | None:
        return self.primary.dtype if self.primary else None

    @property
    def threshold(self) -> float | None:
        return self.primary.threshold if self.primary else None

    def threshold_in(self, dtype: str) -> float | None:
        for measurement in self.measurements:
            if measurement.dtype == dtype:
                return measurement.threshold
        return None

    def describe(self) -> list[str]:
        """The lines the text reporter prints under the finding."""
        if self.verdict is Verdict.NOT_EXECUTABLE:
            return [f"runtime: not executable: {self.reason}"]
        lines = [f"runtime: {self.verdict.value}: {self.summary}"]
        if self.verdict is Verdict.NOT_REPRODUCED and self.tried:
            lines.append(f"runtime: tried {'; '.join(self.tried)}")
        lines.extend(f"runtime: {note}" for note in self.notes)
        return lines

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (non-finite numbers as the strings "inf", "-inf", "nan")."""
        primary = self.primary
        return {
            "verdict": self.verdict.value,
            "probe": self.probe,
            "metric": self.metric,
            "summary": self.summary,
            "dtype": primary.dtype if primary else None,
            "threshold": _plain(primary.threshold) if primary else None,
            "measured": {k: _plain(v) for k, v in primary.measured.items()} if primary else {},
            "reference": {k: _plain(v) for k, v in primary.reference.items()} if primary else {},
            "measurements": [m.to_dict() for m in self.measurements],
            "tried": list(self.tried),
            "notes": list(self.notes),
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Confirmation:
        return cls(
            verdict=Verdict(data["verdict"]),
            probe=data.get("probe"),
            metric=data.get("metric", ""),
            summary=data.get("summary", ""),
            measurements=tuple(Measurement.from_dict(m) for m in data.get("measurements", ())),
            tried=tuple(data.get("tried", ())),
            notes=tuple(data.get("notes", ())),
            reason=data.get("reason", ""),
            seconds=float(data.get("seconds", 0.0)),
        )


def not_executable(reason: str, probe: str | None = None, seconds: float = 0.0) -> Confirmation:
    return Confirmation(Verdict.NOT_EXECUTABLE, probe=probe, reason=reason, seconds=seconds)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _number(value: Any) -> Any:
    if value in ("inf", "-inf", "nan"):
        return float(value)
    return value
