"""The model zoo: shipped cfgs by name, and ``create_model`` with class, anchor and width edits.

Edits are made on the typed cfg, never on modules, so the edited model's cfg text (what a
checkpoint stores) describes it exactly.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import cast

from yolo.config import Block, Cfg, ConvBlock, YoloBlock, load_cfg, parse_cfg
from yolo.model import Darknet
from yolo.resources import check_params_fit

# the largest detection vocabularies in use are ~1,200 classes (LVIS); 10,000 leaves room
# and refuses a typo such as 10**6, whose heads alone would not fit in memory
MAX_CLASSES = 10_000

ZOO: tuple[str, ...] = (
    "yolov3",
    "yolov3-tiny",
    "yolo-nano",
    "yolo-nano-leaky",
    "yolov3-mobile",
    "yolov3-mobile-leaky",
)


def zoo_cfg_text(name: str) -> str:
    """The shipped cfg text of a zoo model; unknown names list the valid ones."""
    if name not in ZOO:
        raise ValueError(f"unknown model '{name}'; valid models: {', '.join(ZOO)}")
    return resources.files("yolo.cfg").joinpath(f"{name}.cfg").read_text(encoding="utf-8")


def resolve_cfg(name_or_path: str | Path) -> Cfg:
    """A zoo name, or a path to a cfg file."""
    if isinstance(name_or_path, str) and name_or_path in ZOO:
        return parse_cfg(zoo_cfg_text(name_or_path), source=f"{name_or_path}.cfg")
    path = Path(name_or_path)
    if path.suffix == ".cfg" or path.exists():
        return load_cfg(path)
    raise ValueError(
        f"unknown model '{name_or_path}'; valid models: {', '.join(ZOO)}, or a path to a .cfg file"
    )


# --------------------------------------------------------------------------- cfg edits


def with_classes(cfg: Cfg, num_classes: int) -> Cfg:
    """Every [yolo] block gets ``classes=N`` and its prediction conv(s) the channels it
    reads (``len(mask)·(N+5)``, plus an ASFF head's fusion weights)."""
    blocks = list(cfg.blocks)
    for i, block in enumerate(blocks):
        if not isinstance(block, YoloBlock):
            continue
        blocks[i] = head = dataclasses.replace(block, classes=num_classes)
        for conv in head.prediction_convs():
            previous = blocks[conv] if 0 <= conv < i else None
            if isinstance(previous, ConvBlock):
                blocks[conv] = dataclasses.replace(previous, filters=head.prediction_channels())
    return cfg.replace_blocks(blocks)


def with_anchors(cfg: Cfg, anchors: Sequence[Sequence[float]]) -> Cfg:
    """Replace the anchors of every head; the count must equal each head's ``num``."""
    pairs = tuple((float(w), float(h)) for w, h in anchors)
    if any(w <= 0 or h <= 0 for w, h in pairs):
        raise ValueError(f"anchors must be positive (w, h) pairs, got {list(pairs)}")
    blocks = list(cfg.blocks)
    for i, block in enumerate(blocks):
        if isinstance(block, YoloBlock):
            if len(pairs) != block.num:
                raise ValueError(
                    f"{cfg.source}: block {i} [yolo] expects {block.num} anchors "
                    f"but got {len(pairs)}"
                )
            blocks[i] = dataclasses.replace(block, anchors=pairs)
    return cfg.replace_blocks(blocks)


ZOO_SIZE = 416  # the input size of the zoo cfgs and of the seed's published figures
ANCHOR_REFERENCE_SIZE = ZOO_SIZE  # cfg and dataset-spec anchors are pixels at this size


def cfg_anchors(cfg: Cfg) -> tuple[tuple[float, float], ...]:
    """The anchors of a cfg's first [yolo] block (all heads share the list)."""
    return next(b.anchors for b in cfg.blocks if isinstance(b, YoloBlock))


def anchors_for_size(
    anchors: Sequence[Sequence[float]], img_size: int
) -> tuple[tuple[float, float], ...]:
    """Anchors given at 416 px, scaled to a network input of ``img_size``: objects scale
    with the image, so an anchor must too."""
    scale = img_size / ANCHOR_REFERENCE_SIZE
    return tuple((float(w) * scale, float(h) * scale) for w, h in anchors)


def with_width(cfg: Cfg, width: float) -> Cfg:
    """Scale every hidden channel count; prediction convs keep ``len(mask)·(N+5)``.

    At width 1.0 the cfg is returned unchanged (the rounding would otherwise alter
    counts such as YOLO Nano's 12 or 70).
    """
    if width == 1.0:
        return cfg
    prediction = set(cfg.prediction_convs())
    blocks: list[Block] = [
        block.widen(width, prediction=i in prediction) for i, block in enumerate(cfg.blocks)
    ]
    return cfg.replace_blocks(blocks)


def _check_number(name: str, value: object, kind: type, low: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (kind, int) if kind is float else kind):
        raise TypeError(f"{name}: expected {kind.__name__} but got {type(value).__name__}")
    if low is not None and cast(float, value) < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")


def create_model(
    name_or_cfg_path: str | Path,
    *,
    num_classes: int,
    anchors: Sequence[Sequence[float]] | None = None,
    width: float = 1.0,
) -> Darknet:
    """Build a zoo model (or any cfg) for ``num_classes`` classes.

    Args:
        name_or_cfg_path: a name from :data:`ZOO` or a path to a darknet cfg.
        num_classes: classes the heads predict (rewrites heads and prediction convs).
        anchors: (w, h) pairs in input pixels, one per anchor of the cfg; default: the cfg's.
        width: channel multiplier for tiny test models and architecture search.
    """
    if not isinstance(name_or_cfg_path, (str, Path)):
        raise TypeError(
            "name_or_cfg_path: expected a model name or cfg path (str) but got "
            f"{type(name_or_cfg_path).__name__}"
        )
    _check_number("num_classes", num_classes, int, 1)
    _check_number("width", width, float)
    if not 0 < width < math.inf:
        raise ValueError(f"width must be a finite number > 0, got {width}")
    if num_classes > MAX_CLASSES:
        raise ValueError(f"num_classes must be <= {MAX_CLASSES:,}, got {num_classes:,}")
    cfg = with_classes(resolve_cfg(name_or_cfg_path), num_classes)
    if anchors is not None:
        cfg = with_anchors(cfg, anchors)
    return model_from_cfg(with_width(cfg, float(width)))


def model_from_cfg(cfg: Cfg) -> Darknet:
    """The model of ``cfg``, once its weights are known to fit in memory (sized on the meta
    device first: initialising a model of terabytes would take minutes, then fail)."""
    check_params_fit(cfg)
    return Darknet(cfg)


def model_from_cfg_text(text: str, source: str = "<checkpoint cfg>") -> Darknet:
    """Rebuild a model from the cfg text a checkpoint carries."""
    return model_from_cfg(parse_cfg(text, source=source))
