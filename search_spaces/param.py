"""One searched parameter of a space: its kind and domain, parsed from the YAML once.

Shared by the ``space:`` section (:mod:`search_spaces.schema`) and the ``architecture:``
section (:mod:`search_spaces.architecture`); errors read ``<key>: <rule>`` and the caller
puts the file in front.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KINDS = ("float", "int", "loguniform", "categorical")


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    low: float = 0.0  # numeric kinds only
    high: float = 0.0
    choices: tuple[Any, ...] = ()

    def values(self) -> list[tuple[str, Any]]:
        """(where, value) of the values the loader checks: both bounds, or every choice."""
        if self.kind == "categorical":
            return [(f"choices[{i}]", c) for i, c in enumerate(self.choices)]
        cast = int if self.kind == "int" else float
        return [("low", cast(self.low)), ("high", cast(self.high))]

    def describe(self) -> dict[str, Any]:
        """The domain as plain data (the recorded trial table of the search bench)."""
        if self.kind == "categorical":
            return {"kind": self.kind, "choices": list(self.choices)}
        return {"kind": self.kind, "low": self.low, "high": self.high}


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{key}: expected a finite number but got {value!r}")
    return float(value)


def parse_param(key: str, name: str, spec: Any) -> Param:
    """The parameter ``name`` from its YAML ``spec`` at ``key``; ``ValueError`` naming the
    key and the rule."""
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ValueError(f"{key}: expected {{type: {'|'.join(KINDS)}, …}} but got {spec!r}")
    kind = spec["type"]
    if kind not in KINDS:
        raise ValueError(f"{key}.type: must be one of {', '.join(KINDS)}, got {kind!r}")
    allowed = {"type", "choices"} if kind == "categorical" else {"type", "low", "high"}
    extra = sorted(set(spec) - allowed)
    if extra:
        raise ValueError(f"{key}.{extra[0]}: unknown key for a {kind}; allowed: "
                         f"{', '.join(sorted(allowed))}")  # fmt: skip
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ValueError(f"{key}.choices: expected a non-empty list")
        for choice in choices:  # what Optuna can store and compare
            if choice is not None and not isinstance(choice, (bool, int, float, str)):
                raise ValueError(f"{key}.choices: {choice!r}: a choice must be a number, string, "
                                 "boolean or null (e.g. hint pairs as '36:12,61:21')")  # fmt: skip
        return Param(name, kind, choices=tuple(choices))
    for bound in ("low", "high"):
        if bound not in spec:
            raise ValueError(f"{key}.{bound}: missing")
    low, high = _number(f"{key}.low", spec["low"]), _number(f"{key}.high", spec["high"])
    if low > high:
        raise ValueError(f"{key}: low must be <= high, got low={spec['low']} > high={spec['high']}")
    if kind == "loguniform" and low <= 0:
        raise ValueError(f"{key}.low: loguniform needs low > 0, got {spec['low']}")
    if kind == "int" and (low != int(low) or high != int(high)):
        raise ValueError(f"{key}: int bounds must be integers, got {spec['low']}, {spec['high']}")
    return Param(name, kind, low, high)
