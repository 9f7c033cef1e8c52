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
wrongly. The imported cfg gets ``maxpool_padding=zero`` (the thesis pads YOLOv3-Tiny's
size-2 stride-1 max-pool with zeros; darknet with -inf), so the model gives the thesis'
outputs.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from yolo.config import Cfg
from yolo.io import Checkpoint, load_torch_file
from yolo.model import Darknet
from yolo.resources import check_params_fit

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


def key_map(model: Darknet, thesis_keys: Sequence[str], path: Path) -> dict[str, str]:
    """Thesis key -> our state-dict key, block by block in registration order; raises
    naming the block where count, leaf name or (checked later) shape disagree."""
    ours = _by_block(list(model.state_dict()), re.compile(r"^blocks\.(\d+)\.(.+)$"), path)
    theirs = _by_block(thesis_keys, _BLOCK_KEY, path)
    extra = sorted(set(theirs) - set(range(len(model.blocks))))
    if extra:
        raise ValueError(f"{path}: model: block {extra[0]} is beyond the cfg's "
                         f"{len(model.blocks)} blocks; a checkpoint of another cfg?")  # fmt: skip
    mapping: dict[str, str] = {}
    for index, block in enumerate(model.cfg.blocks):
        mine, other = ours.get(index, []), theirs.get(index, [])
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


def _with_thesis_padding(cfg: Cfg) -> Cfg:
    return dataclasses.replace(cfg, net=dataclasses.replace(cfg.net, maxpool_padding="zero"))


def import_thesis_checkpoint(path: str | Path, cfg: Cfg, *, names: Sequence[str] | None = None,
                             img_size: int = 416) -> Checkpoint:  # fmt: skip
    """The thesis checkpoint at ``path`` as this project's :class:`Checkpoint` of ``cfg``
    (the thesis cfg it was trained with, unchanged)."""
    path = Path(path)
    payload = load_torch_file(path)
    state, rest = _thesis_state(payload, path)
    cfg = _with_thesis_padding(cfg)
    check_params_fit(cfg)
    model = Darknet(cfg)
    mapping = key_map(model, list(state), path)
    own = model.state_dict()
    converted: dict[str, torch.Tensor] = {}
    for their_key, our_key in mapping.items():
        value = state[their_key]
        if not isinstance(value, torch.Tensor) or value.shape != own[our_key].shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{path}: model.{their_key}: shape {shape} but the cfg's "
                             f"{our_key} is {tuple(own[our_key].shape)}")  # fmt: skip
        converted[our_key] = value
    model.load_state_dict(converted)
    masks: dict[str, torch.Tensor] = {}
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


def _plain(value: Any) -> Any:
    """Metadata as plain Python (the thesis stores numpy or tensor scalars)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value
