"""Shared fixtures: small cfg files written on the fly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

TINY_CFG = """\
[net]
width=64
height=64
channels=3

# 0
[convolutional]
filters=8
size=3
stride=2
pad=1
batch_normalize=1
activation=leaky

# 1
[convolutional]
filters=8
size=3
stride=1
pad=1
batch_normalize=1
activation=leaky

# 2
[shortcut]
from=-2
activation=linear

# 3
[convolutional]
filters=16
size=3
stride=2
pad=1
activation=relu

# 4
[convolutional]
filters=21
size=1
stride=1
pad=1
activation=linear

# 5
[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58
classes=2
num=3
"""


@pytest.fixture
def write_cfg(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write cfg text to a file and return its path."""

    def write(text: str, name: str = "model.cfg") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def demo_spec(tmp_path_factory) -> Path:
    """A small demo set (60 images, 64 px) shared by the engine and command tests."""
    from yolo.data.demo import DemoConfig, build_demo_set

    return build_demo_set(tmp_path_factory.mktemp("demo64"), DemoConfig(images=60, size=64))
