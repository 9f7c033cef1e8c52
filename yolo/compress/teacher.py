"""The teacher side of distillation: loading a frozen teacher, and which blocks to pair.

Both distillation methods read a trained teacher on the student's batches and compare
feature maps block by block. A pair (teacher block, student block) only makes sense when the
two maps have the same spatial size at the training size, i.e. the same stride; this module
checks pairs and lists the stride-matched candidates a search space draws from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from torch import nn

from yolo.config import RouteBlock
from yolo.io import check_same_classes, is_checkpoint_path, load_checkpoint
from yolo.model import Darknet

Pair = tuple[int, int]  # (teacher block, student block)


def load_teacher(path: str | Path, names: Sequence[str], data: str) -> Darknet:
    """A trained checkpoint, frozen in eval mode, checked against the student's classes."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"teacher checkpoint not found: {path}")
    if not is_checkpoint_path(path):
        raise ValueError(f"teacher {path}: expected a project checkpoint (.pt)")
    checkpoint = load_checkpoint(path)
    teacher = checkpoint.model
    trained_on = checkpoint.metadata.get("names")
    if trained_on is not None:
        check_same_classes(str(path), trained_on, names, data)
    elif teacher.num_classes != len(names):
        raise ValueError(
            f"teacher {path} predicts {teacher.num_classes} classes but {data} has {len(names)}"
        )
    return freeze(teacher)


def freeze(model: Darknet) -> Darknet:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def parse_pairs(value: str | Sequence[Sequence[int]] | None) -> tuple[Pair, ...]:
    """``"36:12,61:20"`` (what a search space's categorical holds) or ``[[36, 12]]``."""
    if value is None or value == "" or value == "none":
        return ()
    if isinstance(value, str):
        pairs = []
        for item in value.split(","):
            parts = item.strip().split(":")
            if len(parts) != 2 or not all(p.strip().lstrip("-").isdigit() for p in parts):
                raise ValueError(
                    f"hint pair '{item.strip()}': expected TEACHER_BLOCK:STUDENT_BLOCK, "
                    f"e.g. '36:12,61:20'"
                )
            pairs.append((int(parts[0]), int(parts[1])))
        return tuple(pairs)
    result = []
    for pair in value:
        if len(pair) != 2:
            raise ValueError(f"hint pair {list(pair)!r}: expected [teacher block, student block]")
        result.append((int(pair[0]), int(pair[1])))
    return tuple(result)


def format_pairs(pairs: Sequence[Pair]) -> str:
    return ",".join(f"{t}:{s}" for t, s in pairs)


def feature_shape(model: Darknet, block: int, img_size: int) -> tuple[int, int, int]:
    """(channels, height, width) of a block's output at a square input size."""
    shape = model.shapes[block]
    side = -(-img_size // shape.stride)
    return shape.out_channels, side, side


def check_pairs(teacher: Darknet, student: Darknet, pairs: Sequence[Pair], img_size: int) -> None:
    """Each block exists, is not a head, and both maps have the same spatial size."""
    for t, s in pairs:
        for who, model, block in (("teacher", teacher, t), ("student", student, s)):
            if not 0 <= block < len(model.blocks):
                raise ValueError(f"hint pair {t}:{s}: {who} block {block} does not exist "
                                 f"(0..{len(model.blocks) - 1})")  # fmt: skip
            if block in model.head_indices:
                raise ValueError(f"hint pair {t}:{s}: {who} block {block} is a [yolo] head; "
                                 "pair feature blocks")  # fmt: skip
        t_shape, s_shape = feature_shape(teacher, t, img_size), feature_shape(student, s, img_size)
        if t_shape[1:] != s_shape[1:]:
            raise ValueError(
                f"hint pair {t}:{s}: teacher block {t} is {_fmt(t_shape)} but student block {s} "
                f"is {_fmt(s_shape)} at {img_size} px; pair blocks of the same stride "
                f"(candidates: yct distill pairs)"
            )


def _fmt(shape: tuple[int, int, int]) -> str:
    return "x".join(str(v) for v in shape)


@dataclass(frozen=True)
class Candidate:
    """A stride-matched pair: ``kind`` is 'backbone' (stage ends) or 'neck' (head branch)."""

    teacher: int
    student: int
    stride: int
    kind: str

    def __str__(self) -> str:
        return f"{self.teacher}:{self.student}"


def feature_blocks(model: Darknet) -> dict[tuple[int, str], int]:
    """(stride, kind) -> block: backbone stage ends and the neck feature of each head.

    A backbone stage ends at the last block before the first block of a larger stride; a
    head's neck feature is the block its branch to the next head starts from (the source of
    the route right after the head, e.g. YOLOv3's 79 and 91), or, for the last head, the
    block before its prediction conv.
    """
    blocks: dict[tuple[int, str], int] = {}
    first_head = model.head_indices[0]
    strides = [shape.stride for shape in model.shapes]
    for i in range(1, first_head):
        if strides[i] > strides[i - 1] >= 8:  # earlier maps are edges, and costly to hint
            blocks[(strides[i - 1], "backbone")] = i - 1
    for head in model.head_indices:
        stride = strides[head]
        after = head + 1
        feature = head - 2
        if after < len(model.blocks) and isinstance(model.cfg.blocks[after], RouteBlock):
            sources = model.shapes[after].sources
            if len(sources) == 1:
                feature = sources[0]
        blocks[(stride, "neck")] = feature
    return blocks


def candidate_pairs(teacher: Darknet, student: Darknet) -> list[Candidate]:
    """Stride-matched (teacher, student) block pairs, shallow strides first."""
    t_blocks, s_blocks = feature_blocks(teacher), feature_blocks(student)
    shared = sorted(set(t_blocks) & set(s_blocks), key=lambda key: (key[1] != "backbone", key[0]))
    return [Candidate(t_blocks[key], s_blocks[key], key[0], key[1]) for key in shared]


def prediction_pairs(teacher: Darknet, student: Darknet) -> list[tuple[int, int, int]]:
    """(teacher head index, student head index, stride) for heads of the same stride."""
    by_stride = {stride: i for i, stride in enumerate(teacher.head_strides)}
    return [(by_stride[stride], j, stride) for j, stride in enumerate(student.head_strides)
            if stride in by_stride]  # fmt: skip


def adapter(student_channels: int, teacher_channels: int) -> nn.Conv2d:
    """1x1 conv student -> teacher channels; the identity where the channel counts agree, so
    that a student equal to its teacher starts with zero hint loss."""
    conv = nn.Conv2d(student_channels, teacher_channels, 1)
    if student_channels == teacher_channels:
        with torch.no_grad():
            conv.weight.copy_(torch.eye(teacher_channels).view(teacher_channels, -1, 1, 1))
            cast(torch.Tensor, conv.bias).zero_()
    return conv


class AdapterSet(nn.Module):
    """1x1 adaptation convs by name, trained with the student and never exported.

    Their optimiser follows the student's learning rate (warm-up and schedule included):
    :meth:`follow` copies it before each step. The engine steps and checkpoints it as one of
    the callbacks' optimisers.
    """

    def __init__(self, channels: dict[str, tuple[int, int]]) -> None:
        super().__init__()
        self.convs = nn.ModuleDict({k: adapter(s, t) for k, (s, t) in channels.items()})
        self.optimizer: torch.optim.SGD | None = None

    def build_optimizer(self, lr: float, momentum: float) -> list[torch.optim.Optimizer]:
        params = list(self.convs.parameters())
        if not params:
            return []
        self.optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=True)
        return [self.optimizer]

    def follow(self, student_optimizer: torch.optim.Optimizer) -> None:
        if self.optimizer is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = student_optimizer.param_groups[0]["lr"]

    def forward(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return self.convs[name](x)
