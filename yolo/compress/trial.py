"""One trial's settings, as flat keys: training, cost measurement and the method's own.

A search space names settings by flat keys (``lr0``, ``mosaic``, ``rate``); this module is
the one map from those keys to the dataclasses that own them (:class:`TrainConfig`,
:class:`~yolo.train_config.Hyp`, its augmentation and loss gains, :class:`CostConfig` and
the method's config), so that the search-space loader and the trial that runs build the
same objects with the same checks.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from yolo.compress.delivery import ExportConfig
from yolo.compress.method import Method
from yolo.data.transforms import AugmentConfig
from yolo.loss import LossGains
from yolo.metrics.profile import LATENCY_RUNS, LATENCY_RUNTIMES
from yolo.settings import (
    AT_LEAST_ONE,
    NON_NEGATIVE,
    OneOf,
    Setting,
    check_fields,
    coerce,
    option,
    plain_type,
    type_error,
)
from yolo.train_config import Hyp, TrainConfig


@dataclass(frozen=True)
class CostConfig:
    """How a trial measures what its model costs."""

    latency_runs: int = option(LATENCY_RUNS, "timed CPU runs per report (median); 0: latency "
                               "is not measured and cannot be an objective",
                               domain=NON_NEGATIVE)  # fmt: skip
    latency_runtime: str = option("eager", "where latency_ms is measured: PyTorch eager or "
                                  "the model's ONNX graph on ONNX Runtime CPU",
                                  domain=OneOf(LATENCY_RUNTIMES))  # fmt: skip
    latency_threads: int = option(1, "CPU threads latency_ms is measured with (a 1-CPU Ray "
                                  "trial has 1)", domain=AT_LEAST_ONE)  # fmt: skip

    def __post_init__(self) -> None:
        check_fields(self)


# flat key -> the dataclass that owns it; `out` and the nested sections are not flat keys
_OWNERS: tuple[tuple[type, frozenset[str]], ...] = (
    (TrainConfig, frozenset({"out", "hyp"})),
    (Hyp, frozenset({"loss", "augment"})),
    (AugmentConfig, frozenset()),
    (LossGains, frozenset()),
    (CostConfig, frozenset()),
    (ExportConfig, frozenset()),
)


def _plain_settings(cls: type, exclude: frozenset[str]) -> list[tuple[Setting, type]]:
    hints = typing.get_type_hints(cls)
    result = []
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        kind, optional = plain_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else None
        meta = f.metadata
        setting = Setting(name=f.name, kind=kind, default=default, help=meta.get("help", ""),
                          domain=meta.get("domain"), label=f.name, flag=f.name.replace("_", "-"),
                          file=meta.get("file", False), optional=optional,
                          normalised=False)  # fmt: skip
        result.append((setting, cls))
    return result


@cache
def common_settings() -> dict[str, tuple[Setting, type]]:
    """Every key any trial takes, with the dataclass that owns it."""
    result: dict[str, tuple[Setting, type]] = {}
    for cls, exclude in _OWNERS:
        for setting, owner in _plain_settings(cls, exclude):
            assert setting.name not in result, setting.name
            result[setting.name] = (setting, owner)
    return result


@cache
def trial_settings(method: Method) -> dict[str, Setting]:
    """The keys a trial of ``method`` takes: the common ones and the method's own."""
    result = {name: setting for name, (setting, _) in common_settings().items()}
    for setting in method.settings:
        if setting.name in result:
            raise ValueError(f"method '{method.name}': setting '{setting.name}' shadows a "
                             "training setting")  # fmt: skip
        result[setting.name] = setting
    return result


@dataclass(frozen=True)
class Trial:
    """A trial's settings, built and checked."""

    method: Method
    train: TrainConfig
    config: Any  # the method's config dataclass, or None
    costs: CostConfig
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)


def build_trial(method: Method, values: Mapping[str, Any], *, out: str, where: str) -> Trial:
    """The trial of ``method`` from flat ``values`` (which must hold ``model`` and ``data``).

    Unknown keys, wrong types, out-of-domain values and rules across settings (a rewind
    epoch past the last epoch) raise ``ValueError("<where>.<key>: …")`` or
    ``ValueError("<where>: …")``.
    """
    allowed = trial_settings(method)
    parts: dict[type, dict[str, Any]] = {cls: {} for cls, _ in _OWNERS}
    own: dict[str, Any] = {}
    common = common_settings()
    for key, value in values.items():
        setting = allowed.get(key)
        if setting is None:
            raise ValueError(f"{where}: method '{method.name}' takes no setting '{key}'; "
                             f"allowed: {', '.join(sorted(allowed))}")  # fmt: skip
        problem = type_error(setting, value)
        if problem is not None:
            raise ValueError(f"{where}.{key}: {problem}")
        if key in common:
            parts[common[key][1]][key] = coerce(setting, value)
        else:
            own[key] = value
    for key in ("model", "data"):
        if key not in parts[TrainConfig]:
            raise ValueError(f"{where}: '{key}' is required")
    try:
        hyp = Hyp(**parts[Hyp], loss=LossGains(**parts[LossGains]),
                  augment=AugmentConfig(**parts[AugmentConfig]))  # fmt: skip
        train = TrainConfig(**parts[TrainConfig], out=out, hyp=hyp)
        costs = CostConfig(**parts[CostConfig])
        export = ExportConfig(**parts[ExportConfig])
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    if export.export == "int8" and costs.latency_runs and costs.latency_runtime != "onnxruntime":
        raise ValueError(f"{where}.latency_runtime: export int8 delivers a model that only "
                         "ONNX Runtime runs, so its latency_ms is timed there; set "
                         "latency_runtime: onnxruntime (or latency_runs: 0), got "
                         f"'{costs.latency_runtime}'")  # fmt: skip
    config = method.make_config(own, where)
    try:
        method.validate(train, config)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return Trial(method, train, config, costs, export)
