"""Typed settings: a dataclass field that carries its help, domain and flag, and the checks
that read them.

A method's config dataclass is the one definition of its settings: the search-space loader,
the ``yct`` flags, ``--dry-run`` and the MLflow parameters all read the fields declared with
:func:`option`. Written here rather than with a schema library because the dataclass must
stay the schema (frozen, typed, picklable) and the rules are few: a type, a closed or open
interval, a set of choices.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, cast


@dataclass(frozen=True)
class Range:
    """``low < value < high`` where open, ``<=`` where closed; ``None`` is unbounded."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        if self.low is None and self.high is None:
            return "finite"
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"in {left}{self.low:g}, {self.high:g}{right}"


@dataclass(frozen=True)
class OneOf:
    choices: tuple[Any, ...]

    def contains(self, value: Any) -> bool:
        return value in self.choices

    def __str__(self) -> str:
        return "one of " + ", ".join(str(c) for c in self.choices)


Domain = Range | OneOf

POSITIVE = Range(0, None, low_open=True)
NON_NEGATIVE = Range(0, None)
AT_LEAST_ONE = Range(1, None)
UNIT_OPEN = Range(0, 1, low_open=True, high_open=True)
UNIT = Range(0, 1)


def option(
    default: Any,
    help: str,
    *,
    domain: Domain | None = None,
    label: str | None = None,
    flag: str | None = None,
    file: bool = False,
    kind: type | None = None,
) -> Any:
    """A dataclass field with its one-line ``help`` and ``domain``.

    ``label`` names the setting in errors ("prune rate"), ``flag`` overrides the CLI flag
    (``--lambda``), ``file`` marks a path that must exist before a run starts, ``kind`` the
    type a user gives where the field's own type is richer (KD hints: a string).
    """
    meta = {"help": help, "domain": domain, "label": label, "flag": flag, "file": file,
            "kind": kind}  # fmt: skip
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Setting:
    """One field of a settings dataclass, as the loader and the CLI see it."""

    name: str
    kind: type  # bool, int, float, str, tuple (of ints)
    default: Any
    help: str
    domain: Domain | None
    label: str
    flag: str
    file: bool
    optional: bool  # None is allowed
    normalised: bool  # given as ``kind``, kept in a richer form (checked by its class)

    def describe(self) -> str:
        rule = f", {self.domain}" if self.domain is not None else ""
        return f"{self.kind.__name__}{rule}; default {self.default!r}"


def plain_type(hint: Any) -> tuple[type, bool]:
    """(the plain type a user writes, whether None is allowed) of a type hint."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        optional = type(None) in args
        rest = [a for a in args if a is not type(None)]
        return plain_type(rest[0])[0], optional
    origin = typing.get_origin(hint)
    if origin is tuple or hint is tuple:
        return tuple, False
    return hint, False


@cache
def settings_of(cls: type) -> tuple[Setting, ...]:
    """Every field of ``cls`` (a dataclass) declared with :func:`option`, in order."""
    hints = typing.get_type_hints(cls)
    result = []
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata:
            continue
        kind, optional = plain_type(hints[f.name])
        meta = f.metadata
        result.append(
            Setting(
                name=f.name,
                kind=meta["kind"] or kind,
                default=f.default,
                help=meta["help"],
                domain=meta["domain"],
                label=meta["label"] or f.name,
                flag=meta["flag"] or f.name.replace("_", "-"),
                file=meta["file"],
                optional=optional,
                normalised=meta["kind"] is not None,
            )
        )
    return tuple(result)


def type_error(setting: Setting, value: Any) -> str | None:
    """Why ``value`` is not of the setting's type, or None. Ints pass as floats, lists as
    tuples; bools never pass as numbers."""
    if value is None:
        return None if setting.optional else f"expected {setting.kind.__name__} but got None"
    kind = setting.kind
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind is tuple:
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
    else:
        ok = isinstance(value, kind)
    if ok:
        return None
    shown = "a list of integers" if kind is tuple else kind.__name__
    return f"expected {shown} but got {value!r}"


def coerce(setting: Setting, value: Any) -> Any:
    """``value`` in the field's own form (float for ints, tuple for lists)."""
    if value is None:
        return None
    if setting.kind is float:
        return float(value)
    if setting.kind is tuple:
        return tuple(value)
    return value


def check_fields(obj: Any) -> None:
    """Every :func:`option` field of ``obj`` is of its type and in its domain; the first that
    is not raises ``ValueError("<label> must be <domain>, got <value>")``. Called from the
    dataclasses' ``__post_init__``: whoever builds a config gets the same check."""
    for setting in settings_of(cast(type, type(obj))):
        value = getattr(obj, setting.name)
        if setting.normalised:
            continue
        problem = type_error(setting, value)
        if problem is not None:
            raise ValueError(f"{setting.label}: {problem}")
        if value is None or setting.domain is None:
            continue
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            if not setting.domain.contains(item):
                raise ValueError(f"{setting.label} must be {setting.domain}, got {value!r}")


def build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """``cls(**values)`` with unknown keys and wrong types named: ``where: key: rule``."""
    by_name = {s.name: s for s in settings_of(cls)}
    kwargs = {}
    for key, value in values.items():
        setting = by_name.get(key)
        if setting is None:
            raise ValueError(f"{where}: unknown key '{key}'; allowed: {', '.join(by_name)}")
        problem = type_error(setting, value)
        if problem is not None:
            raise ValueError(f"{where}.{key}: {problem}")
        kwargs[key] = coerce(setting, value)
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
