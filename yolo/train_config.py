"""Training settings as typed data: the seed's hyper-parameters and a run's configuration.

Loaded from YAML (``--hyp``) with every key checked; unknown keys and bad values are
one-line errors naming the file and key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from yolo.data.transforms import AugmentConfig
from yolo.domains import check_range
from yolo.loss import LossGains
from yolo.metrics.ap import METRICS
from yolo.safe_yaml import read_yaml
from yolo.zoo import ZOO_SIZE

SCHEDULES = ("lambda", "cosine")


@dataclass(frozen=True)
class Hyp:
    """Optimiser, schedule, loss and augmentation hyper-parameters (the seed's defaults)."""

    lr0: float = 0.01
    lrf: float = -4.0  # lambda schedule: lr0 * 10 ** (lrf * epoch / epochs)
    schedule: str = "lambda"  # or cosine, from lr0 down to lr0 * 10 ** lrf
    momentum: float = 0.937
    weight_decay: float = 4.84e-4  # conv weights only
    warmup_epochs: float = 3.0
    warmup_min_iters: int = 500  # the seed: max(3 epochs, 500 iterations)
    warmup_momentum: float = 0.9
    warmup_bias_lr: float = 0.1
    ema_decay: float = 0.9999
    loss: LossGains = field(default_factory=LossGains)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {', '.join(SCHEDULES)}, got '{self.schedule}'"
            )
        check_range("lr0", self.lr0, 0, 10, low_open=True)
        check_range("lrf", self.lrf, -20, 0)  # a power of ten: the lr ends at lr0·10^lrf
        for name in ("momentum", "warmup_momentum", "ema_decay"):
            check_range(name, getattr(self, name), 0, 1, high_open=True)
        check_range("weight_decay", self.weight_decay, 0, 1, high_open=True)
        check_range("warmup_epochs", self.warmup_epochs, 0, 10_000)
        check_range("warmup_min_iters", self.warmup_min_iters, 0, 10**9)
        check_range("warmup_bias_lr", self.warmup_bias_lr, 0, 10)


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"{where}: unknown key '{key}'; allowed: {', '.join(known)}")
        nested = {"loss": LossGains, "augment": AugmentConfig}.get(key) if cls is Hyp else None
        if nested is not None:
            if not isinstance(value, dict):
                raise ValueError(f"{where}: {key} must be a mapping, got {value!r}")
            kwargs[key] = _build(nested, value, f"{where}: {key}")
            continue
        default = known[key].default
        expected = type(default) if default is not dataclasses.MISSING else None
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if expected is not None and not isinstance(value, expected):
            raise ValueError(f"{where}: {key}: expected {expected.__name__} but got {value!r}")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def read_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping; missing or malformed files are one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    loaded = read_yaml(path) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of {what} settings")
    return loaded


def load_hyp(path: str | Path | None, overrides: dict[str, Any] | None = None) -> Hyp:
    """Seed defaults, updated by a YAML file and then by ``overrides``."""
    data: dict[str, Any] = read_yaml_mapping(path, "hyp") if path is not None else {}
    data.update(overrides or {})
    return _build(Hyp, data, str(path) if path else "hyp")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``data`` is a dataset spec path; ``model`` a zoo name or cfg."""

    model: str
    data: str
    out: str
    img_size: int = ZOO_SIZE
    epochs: int = 100
    batch_size: int = 8
    accumulate: int = 8  # the seed: batch 8 x accumulate 8 = 64 images per step
    width: float = 1.0
    # a checkpoint or darknet .weights to start from (a file that must exist before a run)
    weights: str | None = field(default=None, metadata={"file": True})
    # a trained checkpoint of the same family whose overlapping weights `model` (another
    # architecture of it: depth, expansion, kernel…) starts from (yolo/inherit.py)
    inherit: str | None = field(default=None, metadata={"file": True})
    device: str = "auto"
    workers: int = 0
    multi_scale: bool = False  # sizes from 2/3 to 3/2 of img_size, multiples of 32
    cache: bool = False
    seed: int = 0
    eval_interval: int = 1
    patience: int = 75  # early stop after this many epochs without a better mAP
    metric: str = "voc07"
    ema: bool = True
    amp: bool = True  # used only where CUDA is present
    val_split: str = "val"
    time_budget_s: float | None = None  # stop after the epoch that passes this wall time
    hyp: Hyp = field(default_factory=Hyp)

    def __post_init__(self) -> None:
        for name in ("img_size", "epochs", "batch_size", "accumulate", "eval_interval",
                     "patience"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.img_size % 32:
            raise ValueError(f"img_size must be a multiple of 32, got {self.img_size}")
        check_range("workers", self.workers, 0, 1024)
        check_range("seed", self.seed, 0, 2**32 - 1)  # what numpy and torch seeders accept
        if self.time_budget_s is not None:
            check_range("time_budget_s", self.time_budget_s, 0, low_open=True)
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if self.inherit is not None and self.weights is not None:
            raise ValueError(f"inherit and weights both start the model: give one, got "
                             f"inherit {self.inherit!r} and weights {self.weights!r}")  # fmt: skip
        if not isinstance(self.width, (int, float)) or not 0 < self.width <= 16:
            raise ValueError(f"width must be in (0, 16], got {self.width!r}")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        hyp = data.pop("hyp", {})
        return TrainConfig(**data, hyp=_build(Hyp, hyp, "checkpoint hyp"))
