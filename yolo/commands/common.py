"""What several commands share: a trained checkpoint with its class names, and a method's
settings from a config section overridden by flags."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yolo.model import Darknet


@dataclass
class Trained:
    model: Darknet
    names: tuple[str, ...]
    img_size: int


def load_trained(path: str | Path) -> Trained:
    """A checkpoint with its class names (from training metadata, else numbered)."""
    from yolo.io import load_checkpoint

    checkpoint = load_checkpoint(path)
    model = checkpoint.model
    names = tuple(checkpoint.metadata.get("names") or
                  (f"class{i}" for i in range(model.num_classes)))  # fmt: skip
    if len(names) != model.num_classes:
        raise ValueError(
            f"{path}: metadata names {len(names)} classes, the model {model.num_classes}"
        )
    return Trained(model, names, int(checkpoint.metadata.get("img_size", 416)))


def method_values(cls: type, args: argparse.Namespace, section: Mapping[str, Any],
                  flags: Mapping[str, str]) -> dict[str, Any]:  # fmt: skip
    """A method's settings: the ``--config`` YAML's section for it (keys checked against
    the method's config dataclass), then the flags that were given (``flags``: flag -> field)."""
    values = dict(section)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{args.config}: {args.method}: unknown key '{unknown[0]}'; "
                         f"allowed: {', '.join(sorted(known))}")  # fmt: skip
    for flag, name in flags.items():
        value = getattr(args, flag)
        if value is not None:
            values[name] = value
    return values
