"""Search spaces: one YAML per method (shipped beside this file), their schema and the
conversion to Optuna's define-by-run form."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SHIPPED = (
    "train",
    "lth",
    "cs",
    "structured",
    "kd",
    "kd_gan",
    "demo",
    "speed",
    "nas_mobile",
    "nas_nano",
)


def shipped_path(name: str) -> Path:
    """Path of a shipped search space; unknown names list the shipped ones."""
    if name not in SHIPPED:
        raise ValueError(f"unknown shipped search space '{name}'; shipped: {', '.join(SHIPPED)}")
    return Path(str(resources.files("search_spaces").joinpath(f"{name}.yaml")))
