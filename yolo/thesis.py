"""Importing a checkpoint of the seed thesis' code (an ultralytics/yolov3 fork) unchanged.

The thesis saves ``torch.save({'epoch', 'best_fitness', 'training_results', 'model':
state_dict, 'optimizer', ['mask'], ['iteration']})`` (or a bare state dict, as its
``model_it_N.pt``), with module keys such as ``module_list.3.Conv2d.weight`` or
``module_list.5.PEP.sepconv.3.weight``; its LTH runs add ``'mask'``, a ``ParameterDict``
whose keys are the parameter names with ``-`` for ``.`` (``module_list-3-Conv2d-weight``).

The tensors of one cfg block are matched to ours *in registration order*: the thesis and
this project build every block type from the same architecture description, so a block's
tensors come in the same order (conv before its BatchNorm, PEP's 1x1 projection before its
separable conv, a mobile block's squeeze-excite between depthwise and projection), with
the same leaf names (``weight``, ``bias``, ``running_mean`` …) and shapes. Every pair is
checked on both, so a checkpoint of another cfg is refused with the block, not loaded
wrongly. A ``[softconv]`` (the thesis' Continuous Sparsification) comes in as the ticket
its code evaluates: weights times ``mask_weight > 0`` times ``1/sigmoid(mask_initial_value)``,
the binary mask kept as the checkpoint's mask. The imported cfg gets
``maxpool_padding=zero`` (the thesis pads YOLOv3-Tiny's size-2 stride-1 max-pool with
zeros; darknet with -inf) and ``batchnorm_eps=1e-05`` (PyTorch's default, which the thesis
keeps; this project trains with 1e-4), so the model gives the thesis' outputs.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from yolo.blocks import SoftConvBlock
from yolo.config import Cfg
from yolo.io import Checkpoint, load_torch_file
from yolo.model import Darknet
from yolo.zoo import model_from_cfg

THESIS_PREFIX = "module_list."
_BLOCK_KEY = re.compile(r"^module_list\.(\d+)\.(.+)$")


def _thesis_state(payload: Any, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(the model state dict, the rest of the file) from either layout the thesis writes."""
    if isinstance(payload, Mapping) and isinstance(payload.get("model"), Mapping):
        return dict(payload["model"]), {k: v for k, v in payload.items() if k != "model"}
    if isinstance(payload, Mapping) and any(str(k).startswith(THESIS_PREFIX) for k in payload):
        return dict(payload), {}
    raise ValueError(f"{path}: not a thesis checkpoint (expected a dict with 'model', or a "
                     f"state dict of '{THESIS_PREFIX}…' keys)")  # fmt: skip


def _by_block(keys: Sequence[str], pattern: re.Pattern[str], path: Path) -> dict[int, list[str]]:
    blocks: dict[int, list[str]] = {}
    for key in keys:
        found = pattern.match(key)
        if found is None:
            raise ValueError(f"{path}: model.{key}: not a '{THESIS_PREFIX}<block>.…' key")
        blocks.setdefault(int(found.group(1)), []).append(key)
    return blocks


SOFT_LEAVES = (".init_weight", ".mask_weight")  # a [softconv]'s rewind copy and mask logits


def key_map(model: Darknet, thesis_keys: Sequence[str], path: Path) -> dict[str, str]:
    """Thesis key -> our state-dict key, block by block in registration order; raises
    naming the block where count, leaf name or (checked later) shape disagree. A
    ``[softconv]``'s ``mask_weight`` maps to its conv weight; its ``init_weight`` (the
    rewind copy) to nothing."""
    ours = _by_block(list(model.state_dict()), re.compile(r"^blocks\.(\d+)\.(.+)$"), path)
    theirs = _by_block(thesis_keys, _BLOCK_KEY, path)
    extra = sorted(set(theirs) - set(range(len(model.blocks))))
    if extra:
        raise ValueError(f"{path}: model: block {extra[0]} is beyond the cfg's "
                         f"{len(model.blocks)} blocks; a checkpoint of another cfg?")  # fmt: skip
    mapping: dict[str, str] = {}
    for index, block in enumerate(model.cfg.blocks):
        mine, other = ours.get(index, []), theirs.get(index, [])
        if isinstance(block, SoftConvBlock):
            masks = [k for k in other if k.endswith(".mask_weight")]
            other = [k for k in other if not k.endswith(SOFT_LEAVES)]
            weights = [k for k in mine if k.endswith("conv.weight")]
            mapping.update(zip(masks, weights))
        if len(mine) != len(other):
            raise ValueError(f"{path}: block {index} [{block.section}]: the checkpoint holds "
                             f"{len(other)} tensors, the cfg's block {len(mine)}; a "
                             "checkpoint of another cfg?")  # fmt: skip
        for our_key, their_key in zip(mine, other):
            if our_key.rsplit(".", 1)[-1] != their_key.rsplit(".", 1)[-1]:
                raise ValueError(f"{path}: block {index} [{block.section}]: {their_key} "
                                 f"does not correspond to {our_key}")  # fmt: skip
            mapping[their_key] = our_key
    return mapping


THESIS_BATCHNORM_EPS = 1e-5  # its nn.BatchNorm2d(filters, momentum=0.1): PyTorch's default


def _with_thesis_numerics(cfg: Cfg) -> Cfg:
    net = dataclasses.replace(cfg.net, maxpool_padding="zero", batchnorm_eps=THESIS_BATCHNORM_EPS)
    return dataclasses.replace(cfg, net=net)


def import_thesis_checkpoint(path: str | Path, cfg: Cfg, *, names: Sequence[str] | None = None,
                             img_size: int = 416) -> Checkpoint:  # fmt: skip
    """The thesis checkpoint at ``path`` as this project's :class:`Checkpoint` of ``cfg``
    (the thesis cfg it was trained with, unchanged)."""
    path = Path(path)
    payload = load_torch_file(path)
    state, rest = _thesis_state(payload, path)
    cfg = _with_thesis_numerics(cfg)
    model = model_from_cfg(cfg)
    mapping = key_map(model, list(state), path)
    own = model.state_dict()
    converted: dict[str, torch.Tensor] = {}
    soft = {k: v for k, v in mapping.items() if k.endswith(".mask_weight")}
    for their_key, our_key in mapping.items():
        if their_key in soft:
            continue
        value = state[their_key]
        if not isinstance(value, torch.Tensor) or value.shape != own[our_key].shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{path}: model.{their_key}: shape {shape} but the cfg's "
                             f"{our_key} is {tuple(own[our_key].shape)}")  # fmt: skip
        converted[our_key] = value
    masks: dict[str, torch.Tensor] = {}
    if soft:
        scale = _ticket_scale(cfg, path)
        for their_key, our_key in soft.items():
            ticket = state[their_key] > 0  # the thesis' binary mask of a trained ticket
            if ticket.shape != converted[our_key].shape:
                raise ValueError(f"{path}: model.{their_key}: shape {tuple(ticket.shape)} but "
                                 f"its weight is {tuple(converted[our_key].shape)}")  # fmt: skip
            converted[our_key] = converted[our_key] * ticket * scale
            masks[our_key] = ticket
    model.load_state_dict(converted)
    for their_name, mask in dict(rest.get("mask") or {}).items():
        target = mapping.get(str(their_name).replace("-", "."))
        if target is None or not isinstance(mask, torch.Tensor) or mask.shape != own[target].shape:
            raise ValueError(f"{path}: mask.{their_name}: names no weight of the model, or its "
                             "shape differs")  # fmt: skip
        if not bool(mask.bool().all()):  # an all-ones mask prunes nothing: not kept
            masks[target] = mask.bool()
    classes = model.num_classes
    names = tuple(names) if names is not None else tuple(f"class{i}" for i in range(classes))
    if len(names) != classes:
        raise ValueError(f"{path}: the cfg predicts {classes} classes but the data names "
                         f"{len(names)}")  # fmt: skip
    metadata = {
        "names": list(names),
        "img_size": int(img_size),
        "imported_from": str(path),
        "thesis_epoch": rest.get("epoch"),
        "thesis_best_fitness": rest.get("best_fitness"),
    }
    metadata = {k: _plain(v) for k, v in metadata.items() if v is not None}
    return Checkpoint(model=model, masks=masks, metadata=metadata)


def _ticket_scale(cfg: Cfg, path: Path) -> float:
    """1 / sigmoid(mask_initial_value): the thesis multiplies a ticket's binary mask by it
    (``SoftMaskedConv2d.compute_mask``), so the imported weights carry it."""
    text = dict(cfg.net.extras).get("mask_initial_value")
    if text is None:
        raise ValueError(f"{cfg.source}: [net]: mask_initial_value is needed for [softconv] "
                         "blocks (the thesis scales their weights by 1/sigmoid of it)")  # fmt: skip
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{cfg.source}: [net]: mask_initial_value must be a number, got "
                         f"'{text}'") from None  # fmt: skip
    return 1.0 + math.exp(-value)


def _plain(value: Any) -> Any:
    """Metadata as plain Python (the thesis stores numpy or tensor scalars)."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value
