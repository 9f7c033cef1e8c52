"""The ``[yolo]`` detection head: reshapes a prediction map, and decodes it to boxes in eval.

Layout follows darknet: for each of the A anchors of the mask, channels
``tx, ty, tw, th, objectness, class_0 … class_{N-1}``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class YoloHead(nn.Module):
    """One detection scale.

    Args:
        anchors: (A, 2) anchor widths and heights in input pixels, for this head's mask.
        num_classes: N.
    """

    anchors: torch.Tensor  # a buffer, (A, 2) in input pixels

    def __init__(self, anchors: torch.Tensor, num_classes: int) -> None:
        super().__init__()
        # Anchors come from the cfg text, which travels with every checkpoint; keeping them
        # out of the state dict means a state dict never disagrees with its cfg.
        self.register_buffer("anchors", anchors.float().reshape(-1, 2), persistent=False)
        self.num_classes = num_classes
        self.num_anchors = int(self.anchors.shape[0])

    def raw(self, prediction: torch.Tensor) -> torch.Tensor:
        """(B, A·(5+N), H, W) conv output -> (B, A, H, W, 5+N) raw logits."""
        b, _, h, w = prediction.shape
        return (
            prediction.view(b, self.num_anchors, self.num_classes + 5, h, w)
            .permute(0, 1, 3, 4, 2)
            .contiguous()
        )

    def decode(self, raw: torch.Tensor, stride: float | tuple[float, float]) -> torch.Tensor:
        """(B, A, H, W, 5+N) logits -> (B, A·H·W, 5+N) boxes.

        ``stride``: input pixels per grid cell, or (vertical, horizontal) where they differ.
        Columns: centre x, centre y, width, height in input pixels, objectness probability,
        then per-class probabilities (independent sigmoids, as YOLOv3 trains them).
        """
        b, a, h, w, _ = raw.shape
        ys, xs = torch.meshgrid(
            torch.arange(h, device=raw.device, dtype=raw.dtype),
            torch.arange(w, device=raw.device, dtype=raw.dtype),
            indexing="ij",
        )
        grid = torch.stack((xs, ys), -1).view(1, 1, h, w, 2)
        anchor_wh = self.anchors.to(raw.dtype).view(1, a, 1, 1, 2)
        steps = stride if isinstance(stride, tuple) else (stride, stride)
        scale = torch.tensor([steps[1], steps[0]], device=raw.device, dtype=raw.dtype)
        xy = (raw[..., :2].sigmoid() + grid) * scale
        wh = raw[..., 2:4].exp() * anchor_wh
        scores = raw[..., 4:].sigmoid()
        return torch.cat((xy, wh, scores), -1).view(b, -1, self.num_classes + 5)

    def forward(self, prediction: torch.Tensor) -> torch.Tensor:
        return self.raw(prediction)


class FusedYoloHead(YoloHead):
    """The ultralytics port's ASFF head (``[yolo] from=…``): every listed prediction map
    carries the head channels and, last, one fusion weight per map. This head's own map
    (``sources[own]``) sets the grid; the others are resampled to it (bilinear, corners
    not aligned) and summed, each times sigmoid(its weight channel of the own map) · 2/n.
    This is the port's own disabled ASFF branch, the one meaning ``from`` has; resampling
    is an element-wise op and, as in ``thop``, costs no MACs in the count."""

    def __init__(self, anchors: torch.Tensor, num_classes: int, sources: tuple[int, ...],
                 own: int) -> None:  # fmt: skip
        super().__init__(anchors, num_classes)
        self.sources, self.own = sources, own

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        n = len(maps)
        mine = maps[self.own]
        weights = mine[:, -n:].sigmoid() * (2 / n)
        fused = mine[:, :-n] * weights[:, self.own : self.own + 1]
        for j, other in enumerate(maps):
            if j != self.own:
                resized = F.interpolate(other[:, :-n], size=mine.shape[-2:], mode="bilinear",
                                        align_corners=False)  # fmt: skip
                fused = fused + weights[:, j : j + 1] * resized
        return self.raw(fused)
