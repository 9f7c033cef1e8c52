"""Model files: darknet ``.weights`` and the project's checkpoints.

A checkpoint is a plain dict of cfg text, state dict, masks and metadata, written atomically
(temp file, then rename) and read with ``torch.load(weights_only=True)``: never a pickled
module, so a checkpoint cannot run code and does not break when classes move.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from yolo.layers import ConvBNAct, InceptionBNAct
from yolo.model import Darknet
from yolo.zoo import model_from_cfg_text

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")  # compared case-blind: MODEL.PT is one too
CHECKPOINT_FORMAT = "yct-checkpoint"
CHECKPOINT_VERSION = 1


# --------------------------------------------------------------------------- darknet weights


# Two layouts of the same header + fp32 stream. ``darknet``: every weighted unit of every
# block. ``thesis``: what the seed thesis' save_weights / load_darknet_weights write and read,
# the [convolutional] blocks only (its PEP, EP, FCA, mobile and softconv weights live in its
# .pt checkpoints alone): for YOLOv3 and -Tiny the two are the same file; for YOLO Nano and
# YOLOv3-Mobile a thesis file holds the values of the plain convs only, which tells them apart.
WEIGHTS_LAYOUTS = ("darknet", "thesis")


def _check_layout(layout: str) -> None:
    if layout not in WEIGHTS_LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(WEIGHTS_LAYOUTS)}, got '{layout}'")


def _weight_units(
    model: Darknet, layout: str = "darknet"
) -> Iterator[tuple[int, list[torch.Tensor]]]:
    """(block index, tensors in darknet file order) for every weighted unit, in forward order.

    Conv with BN: BN bias, BN weight, running mean, running var, conv weight. Conv without
    BN: conv bias, conv weight. Linear (FCA, squeeze-excite): bias if any, weight. A conv
    that shares another's weights (``share_index``) has none of its own in either layout.
    """
    shared = model.shared_blocks()
    for index, block in enumerate(model.blocks):
        if layout == "thesis" and model.cfg.blocks[index].section != "convolutional":
            continue
        if index in shared:
            continue
        for module in block.modules():
            if isinstance(module, ConvBNAct):
                conv, bn = module.conv, module.bn
                if bn is not None:
                    tensors = [bn.bias, bn.weight, bn.running_mean, bn.running_var, conv.weight]
                else:
                    tensors = [conv.bias, conv.weight]
                yield index, [t.data for t in tensors if t is not None]
            elif isinstance(module, InceptionBNAct):  # ours (darknet has no inception)
                bn = module.bn
                norm = [] if bn is None else [bn.bias, bn.weight, bn.running_mean, bn.running_var]
                convs = [t for c in module.convs() for t in (c.bias, c.weight)]
                yield index, [t.data for t in [*norm, *convs] if t is not None]
            elif isinstance(module, nn.Linear):
                tensors = [module.bias, module.weight]
                yield index, [t.data for t in tensors if t is not None]


def darknet_values(model: Darknet, layout: str = "darknet") -> int:
    """fp32 values a ``.weights`` file of ``model`` holds after its header, in ``layout``."""
    return sum(t.numel() for _, tensors in _weight_units(model, layout) for t in tensors)


def write_darknet_weights(model: Darknet, path: str | Path, *, seen: int = 0,
                          layout: str = "darknet") -> None:  # fmt: skip
    """Write darknet ``.weights``: header (major 0, minor 2, revision 5, int64 seen), fp32
    data, in one of :data:`WEIGHTS_LAYOUTS`."""
    _check_layout(layout)
    with open(path, "wb") as handle:
        np.array([0, 2, 5], dtype="<i4").tofile(handle)
        np.array([seen], dtype="<i8").tofile(handle)
        for _, tensors in _weight_units(model, layout):
            for tensor in tensors:
                tensor.detach().cpu().numpy().astype("<f4").tofile(handle)


def _detect_layout(model: Darknet, values: int, path: Path) -> str:
    """The layout whose size is the file's; the darknet one where both fit (the same file)."""
    sizes = {layout: darknet_values(model, layout) for layout in WEIGHTS_LAYOUTS}
    fits = [layout for layout, size in sizes.items() if size == values]
    if fits:
        return fits[0]
    expected = ", ".join(f"{size:,} ({layout})" for layout, size in sizes.items())
    raise ValueError(f"{path}: {values:,} values after the header, but this cfg's weights are "
                     f"{expected}; weights for another cfg or class count?")  # fmt: skip


def read_darknet_weights(model: Darknet, path: str | Path, *, cutoff: int | None = None,
                         layout: str | None = None) -> int:  # fmt: skip
    """Load darknet ``.weights`` into ``model`` in place; returns the header's images-seen.

    Args:
        cutoff: read only blocks with index < cutoff (darknet's backbone-only files such as
            ``darknet53.conv.74``); the file must then hold exactly those blocks.
        layout: one of :data:`WEIGHTS_LAYOUTS`; by default told from the file's size (a
            whole file of either layout: the sizes differ wherever the layouts do).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"darknet weights file not found: {path}")
    data = path.read_bytes()
    if len(data) < 16:
        raise ValueError(f"{path}: too short for a darknet weights header ({len(data)} bytes)")
    major, minor, _ = np.frombuffer(data[:12], dtype="<i4")
    wide = major * 10 + minor >= 2  # darknet stores 'seen' as int64 from version 0.2
    header = 20 if wide else 16
    seen = int(np.frombuffer(data[12:header], dtype="<i8" if wide else "<i4")[0])
    if (len(data) - header) % 4:
        raise ValueError(
            f"{path}: {len(data) - header} bytes after the {header}-byte header is not a whole "
            "number of float32 values; the file is truncated or not darknet weights"
        )
    values = np.frombuffer(data[header:], dtype="<f4")
    if layout is None:
        layout = "darknet" if cutoff is not None else _detect_layout(model, values.size, path)
    _check_layout(layout)
    offset = 0
    for index, tensors in _weight_units(model, layout):
        if cutoff is not None and index >= cutoff:
            break
        for tensor in tensors:
            count = tensor.numel()
            if offset + count > values.size:
                raise ValueError(
                    f"{path}: file ends while reading block {index} (needs {count} more values "
                    f"at offset {offset}, {values.size - offset} left); weights for another cfg?"
                )
            chunk = torch.from_numpy(values[offset : offset + count].copy())
            tensor.copy_(chunk.view_as(tensor))
            offset += count
    if offset != values.size:
        raise ValueError(
            f"{path}: {values.size - offset} values left after the last block; "
            "weights for another cfg or class count?"
        )
    return seen


# --------------------------------------------------------------------------- checkpoints


@dataclass
class Checkpoint:
    """What a checkpoint file holds, with the model rebuilt from its cfg text."""

    model: Darknet
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def checkpoint_dict(
    model: Darknet,
    *,
    masks: dict[str, torch.Tensor] | None = None,
    metadata: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "cfg": model.cfg_text,
        "state_dict": state,
        "masks": {k: v.detach().cpu() for k, v in (masks or {}).items()},
        "metadata": dict(metadata or {}),
    }
    for key, value in (extra or {}).items():
        if key in payload:
            raise ValueError(f"checkpoint extra key '{key}' collides with a reserved key")
        payload[key] = value
    return payload


def atomic_save(payload: Any, path: str | Path) -> None:
    """torch.save to a temp file beside ``path``, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(
    path: str | Path,
    model: Darknet,
    *,
    masks: dict[str, torch.Tensor] | None = None,
    metadata: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    atomic_save(checkpoint_dict(model, masks=masks, metadata=metadata, extra=extra), path)


def dense_model_bytes(model: Darknet) -> bytes:
    """The dense fp32 model file (cfg + state dict), as ``export --format dense`` writes it."""
    buffer = io.BytesIO()
    torch.save(checkpoint_dict(model), buffer)
    return buffer.getvalue()


def check_same_classes(
    path: str | Path, trained_on: Sequence[str], names: Sequence[str], source: str
) -> None:
    """A checkpoint used with a dataset must have been trained on that dataset's classes."""
    if tuple(trained_on) != tuple(names):
        raise ValueError(
            f"{path} was trained on classes {list(trained_on)[:5]}… ({len(trained_on)}) but "
            f"{source} has {list(names)[:5]}… ({len(names)}); use a checkpoint of this dataset"
        )


def is_checkpoint_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in CHECKPOINT_SUFFIXES


def _unreadable(path: Path, exc: Exception) -> ValueError:
    """One line for what ``torch.load`` refused: a file that needs code to unpickle is named
    as such (yct checkpoints hold tensors and plain data only), anything else by torch's
    first line."""
    text = str(exc).strip()
    unsupported = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if unsupported:
        return ValueError(f"{path}: needs code to unpickle ({unsupported.group(1)}), which yct "
                          "refuses to run (torch.load weights_only=True)")  # fmt: skip
    if "Weights only load failed" in text:  # the reason follows torch's advice text
        after = text.split("WeightsUnpickler error:", 1)[-1].strip().splitlines()
        return ValueError(f"{path}: not a readable checkpoint ({after[0] if after else text})")
    first_line = text.splitlines()[0] if text else type(exc).__name__
    return ValueError(f"{path}: not a readable checkpoint ({first_line})")


def load_torch_file(path: str | Path, *, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` with ``weights_only=True``: tensors and plain data, never code; a
    missing, corrupt or code-carrying file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise _unreadable(path, exc) from None


def _check_payload(path: Path, payload: dict[str, Any]) -> None:
    """The checkpoint's own structure: text cfg, a dict of tensors, masks that fit."""
    if not isinstance(payload.get("cfg"), str):
        raise ValueError(f"{path}: cfg: must be the model's cfg text, got "
                         f"{type(payload.get('cfg')).__name__}")  # fmt: skip
    for key in ("state_dict", "masks", "metadata"):
        if key in payload and not isinstance(payload[key], dict):
            raise ValueError(f"{path}: {key}: must be a dict, got {type(payload[key]).__name__}")
    if "state_dict" not in payload:
        raise ValueError(f"{path}: state_dict: missing (the model's weights)")
    for name, value in payload["state_dict"].items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{path}: state_dict.{name}: must be a tensor, got "
                             f"{type(value).__name__}")  # fmt: skip
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"{path}: state_dict.{name}: weights must be finite, got NaN/inf")
    for name, mask in payload.get("masks", {}).items():
        weight = payload["state_dict"].get(name)
        if not isinstance(mask, torch.Tensor) or weight is None or mask.shape != weight.shape:
            shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            want = "no such weight" if weight is None else f"weight shape {tuple(weight.shape)}"
            raise ValueError(f"{path}: masks.{name}: must match its weight ({want}), got {shape}")


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` and rebuild its model."""
    path = Path(path)
    payload = load_torch_file(path, map_location=map_location)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a yct checkpoint (expected format '{CHECKPOINT_FORMAT}')")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"{path}: checkpoint version {payload.get('version')}; this build reads "
            f"{CHECKPOINT_VERSION}"
        )
    _check_payload(path, payload)
    model = model_from_cfg_text(payload["cfg"], source=f"{path} (cfg)")
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise ValueError(f"{path}: state dict does not fit its cfg ({detail})") from None
    reserved = {"format", "version", "cfg", "state_dict", "masks", "metadata"}
    return Checkpoint(
        model=model,
        masks=dict(payload.get("masks", {})),
        metadata=dict(payload.get("metadata", {})),
        extra={k: v for k, v in payload.items() if k not in reserved},
    )
