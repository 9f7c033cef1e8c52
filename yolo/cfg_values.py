"""How the cfg dialect writes a value: integers, flags, lists, anchor pairs, activations."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from yolo.layers import ACTIVATIONS

# darknet spells the sigmoid "logistic"; it is the same function, not a fallback.
ACTIVATION_ALIASES: dict[str, str] = {"logistic": "sigmoid"}


def parse_int(text: str) -> int:
    return int(text.strip())


def parse_float(text: str) -> float:
    value = float(text.strip())
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got '{text.strip()}'")
    return value


def parse_flag(text: str) -> int:
    value = int(text.strip())
    if value not in (0, 1):
        raise ValueError(f"must be 0 or 1, got {value}")
    return value


def parse_int_list(text: str) -> tuple[int, ...]:
    items = [t for t in (s.strip() for s in text.split(",")) if t]
    if not items:
        raise ValueError("must be a comma-separated list of integers, got an empty list")
    return tuple(int(t) for t in items)


def parse_anchors(text: str) -> tuple[tuple[float, float], ...]:
    values = [float(t) for t in (s.strip() for s in text.split(",")) if t]
    if not values or len(values) % 2:
        raise ValueError(f"must be pairs 'w,h, w,h, …', got {len(values)} numbers")
    bad = next((v for v in values if not (0 < v < math.inf)), None)
    if bad is not None:
        raise ValueError(f"anchor sizes must be finite and > 0, got {bad}")
    return tuple((values[i], values[i + 1]) for i in range(0, len(values), 2))


def parse_activation(text: str) -> str:
    name = text.strip().lower()
    name = ACTIVATION_ALIASES.get(name, name)
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{text.strip()}'; allowed: {', '.join(ACTIVATIONS)}")
    return name


KIND_WORDS: dict[Callable[[str], Any], str] = {
    parse_int: "an integer",
    parse_float: "a number",
    parse_flag: "0 or 1",
    parse_int_list: "a list of integers",
    parse_anchors: "anchor pairs",
    parse_activation: "an activation name",
}
