"""What several commands share: loading a trained checkpoint with its class names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
