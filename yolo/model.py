"""A detector built from a parsed cfg: one module per block, block indices as in the cfg.

``model(x)`` returns the raw head maps in training and decoded boxes in eval;
``model(x, taps=[i, j])`` also returns the outputs of blocks i and j (distillation reads
features this way without hooks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch
from torch import nn

from yolo.config import Cfg, YoloBlock, format_cfg
from yolo.head import FusedYoloHead, YoloHead
from yolo.layers import DarknetMaxPool, Route, TwoStream, share_parameters
from yolo.topology import infer_shapes


class Darknet(nn.Module):
    """The model of a cfg. ``cfg_text`` reproduces it; the state dict holds its weights."""

    def __init__(self, cfg: Cfg) -> None:
        super().__init__()
        self.cfg = cfg
        self.shapes = infer_shapes(cfg)
        self.blocks = nn.ModuleList(
            block.module(shape) for block, shape in zip(cfg.blocks, self.shapes)
        )
        for i, shape in enumerate(self.shapes):  # darknet's share_index: one set of weights
            if shape.shares is not None:
                share_parameters(self.blocks[i], self.blocks[shape.shares])
        for module in self.modules():  # [net] settings: one place for every layer they set
            if isinstance(module, DarknetMaxPool):
                module.zero_padding = cfg.net.maxpool_padding == "zero"
            if isinstance(module, nn.BatchNorm2d) and cfg.net.batchnorm_eps is not None:
                module.eps = cfg.net.batchnorm_eps
        self.head_indices = tuple(
            i for i, block in enumerate(cfg.blocks) if isinstance(block, YoloBlock)
        )
        if not self.head_indices:
            raise ValueError(f"{cfg.source}: a detector needs at least one [yolo] block")
        heads = [block for block in cfg.blocks if isinstance(block, YoloBlock)]
        classes = {head.classes for head in heads}
        if len(classes) != 1:
            raise ValueError(f"{cfg.source}: [yolo] blocks disagree on classes: {sorted(classes)}")
        self.num_classes = classes.pop()
        self.head_strides = tuple(self.shapes[i].stride for i in self.head_indices)
        # Outputs that later blocks read; everything else is freed as the forward goes.
        self._kept = frozenset(s for shape in self.shapes for s in shape.sources)

    # ------------------------------------------------------------------ description

    @property
    def cfg_text(self) -> str:
        return format_cfg(self.cfg)

    @property
    def heads(self) -> list[YoloHead]:
        return [cast(YoloHead, self.blocks[i]) for i in self.head_indices]

    def prediction_conv_indices(self) -> tuple[int, ...]:
        """Blocks whose conv writes the 3·(N+5) head channels (kept dense by default)."""
        return self.cfg.prediction_convs()

    def shared_blocks(self) -> dict[int, int]:
        """Blocks that use another block's weights (darknet's ``share_index``) -> that block."""
        return {i: s.shares for i, s in enumerate(self.shapes) if s.shares is not None}

    def weight_ties(self) -> dict[int, int]:
        """Every block in a ``share_index`` tie, sharer or owner, -> the other side (an
        owner of several sharers -> one of them): what must keep its channels whole."""
        shared = self.shared_blocks()
        return {**{owner: sharer for sharer, owner in shared.items()}, **shared}

    def own_state_dict(self) -> dict[str, torch.Tensor]:
        """The state dict without the entries of blocks that share another block's weights:
        every tensor once, as a file stores it (:meth:`load_state_dict` fills them in)."""
        shared = self.shared_blocks()
        return {k: v for k, v in self.state_dict().items() if _block_of(k) not in shared}

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True,
                        assign: bool = False) -> Any:  # fmt: skip
        """``nn.Module.load_state_dict``; a sharer's entries may be left out (they are its
        owner's tensors, see :meth:`own_state_dict`)."""
        shared = self.shared_blocks()
        if shared:
            state_dict = dict(state_dict)
            for key in self.state_dict():
                block = _block_of(key)
                if block in shared and key not in state_dict:
                    owner = f"blocks.{shared[block]}.{key.split('.', 2)[2]}"
                    if owner in state_dict:
                        state_dict[key] = state_dict[owner]
        return super().load_state_dict(state_dict, strict, assign)

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        x: torch.Tensor,
        taps: Sequence[int] | None = None,
        *,
        decode: bool | None = None,
    ) -> torch.Tensor | list[torch.Tensor] | tuple[object, list[torch.Tensor]]:
        """Run the network.

        Args:
            x: (B, C, H, W) images; H and W multiples of the largest head stride.
            taps: block indices whose outputs to return as well, in the order given.
            decode: decode boxes (default: in eval mode only).

        Returns:
            Training / ``decode=False``: a list of (B, A, H_i, W_i, 5+N) raw maps, one per head.
            Eval / ``decode=True``: (B, boxes, 5+N) with xywh in input pixels, objectness and
            class probabilities. With ``taps``: ``(output, [tap outputs])``.
        """
        decode = (not self.training) if decode is None else decode
        x_in = x
        tap_list = self._check_taps(taps)
        wanted = self._kept | frozenset(tap_list)
        saved: dict[int, torch.Tensor] = {}
        raw_maps: list[torch.Tensor] = []
        for i, module in enumerate(self.blocks):
            if isinstance(module, (Route, FusedYoloHead)):
                x = module([saved[s] for s in module.sources])
                if isinstance(module, FusedYoloHead):
                    raw_maps.append(x)
            elif isinstance(module, TwoStream):
                x = module(x, saved[module.source])
            elif isinstance(module, YoloHead):
                x = module(x)
                raw_maps.append(x)
            else:
                x = module(x)
            if i in wanted:
                saved[i] = x
        output: torch.Tensor | list[torch.Tensor] = raw_maps
        if decode:
            output = self.decode(raw_maps, (int(x_in.shape[-2]), int(x_in.shape[-1])))
        if taps is None:
            return output
        return output, [saved[i] for i in tap_list]

    def decode(self, raw_maps: list[torch.Tensor], input_size: tuple[int, int]) -> torch.Tensor:
        """Decode the raw maps of every head into one (B, boxes, 5+N) tensor; ``input_size``
        is the (H, W) of the images they came from."""
        return torch.cat(
            [
                head.decode(raw, grid_steps(raw, input_size))
                for head, raw in zip(self.heads, raw_maps)
            ],
            1,
        )

    def _check_taps(self, taps: Sequence[int] | None) -> list[int]:
        if taps is None:
            return []
        count = len(self.blocks)
        result = []
        for tap in taps:
            if isinstance(tap, bool) or not isinstance(tap, int):
                raise TypeError(f"taps: expected block indices (int) but got {tap!r}")
            index = tap + count if tap < 0 else tap
            if not 0 <= index < count:
                raise ValueError(f"tap {tap} is not a block; allowed: 0..{count - 1}")
            result.append(index)
        return result


def _block_of(key: str) -> int | None:
    """The block index of a state-dict key ``blocks.<i>.…``."""
    parts = key.split(".", 2)
    return int(parts[1]) if parts[0] == "blocks" and len(parts) > 2 else None


def grid_steps(raw: torch.Tensor, input_size: tuple[int, int]) -> tuple[float, float]:
    """Input pixels per cell of a (B, A, H, W, 5+N) head map, (vertical, horizontal), as
    darknet places boxes: the input size over the grid size. It is the head's stride
    wherever the input is a multiple of it, and stays exact where a non-square stride
    leaves a grid that does not divide the input (yolov3-spp-matrix's 7-row heads at 416)."""
    h, w = raw.shape[2], raw.shape[3]
    return input_size[0] / h, input_size[1] / w
