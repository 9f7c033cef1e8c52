"""The domain of a number a user sets: one rule, one message (``name must be in [a, b], got v``).

Written here rather than taken from pydantic because the settings are frozen dataclasses
already (one definition each) and the rule is a comparison; NaN fails every comparison, so
a NaN or an infinity outside the bounds is refused with the same message.
"""

from __future__ import annotations

import math


def check_range(name: str, value: object, low: float, high: float = math.inf, *,
                low_open: bool = False, high_open: bool = False) -> None:  # fmt: skip
    """Raise ``ValueError`` unless ``value`` is a real number within the interval."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (above and below and math.isfinite(value)):
        if high == math.inf:
            raise ValueError(f"{name} must be a finite number {'>' if low_open else '>='} "
                             f"{_number(low)}, got {value}")  # fmt: skip
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        interval = f"{left}{_number(low)}, {_number(high)}{right}"
        raise ValueError(f"{name} must be in {interval}, got {value}")


def _number(bound: float) -> str:
    """``4294967295`` rather than ``4.29497e+09``: a bound must be readable exactly."""
    if math.isfinite(bound) and float(bound).is_integer():
        return str(int(bound))
    return f"{bound:g}"
