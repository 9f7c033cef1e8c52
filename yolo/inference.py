"""Detections on one image in its own pixels: what ``yct detect`` and a logged model return.

The same steps as evaluation (letterbox to the square input, the model, NMS with one label
per box, boxes back to the image and clipped to it), for one image a caller already holds.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from yolo.data.transforms import letterbox
from yolo.nms import postprocess


def detect(model: nn.Module, image: np.ndarray, size: int, *, conf: float = 0.25,
           iou: float = 0.45, device: torch.device | str = "cpu") -> np.ndarray:  # fmt: skip
    """(K, 6) float64 rows of x1, y1, x2, y2 (image pixels), score, class for an RGB uint8
    image (H, W, 3); ``model`` (a :class:`~yolo.model.Darknet` or an
    :class:`~yolo.onnx_runtime.OnnxDetector`) in eval mode on ``device``."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} "
                         f"{tuple(image.shape)}")  # fmt: skip
    if not 0 <= conf <= 1 or not 0 <= iou <= 1:
        raise ValueError(f"conf and iou must be in [0, 1], got {conf}, {iou}")
    boxed, lb = letterbox(image, size)
    x = torch.from_numpy(boxed).permute(2, 0, 1)[None].float().div(255).to(device)
    with torch.no_grad():
        (dets,) = postprocess(model(x), conf_threshold=conf, iou_threshold=iou,
                              multi_label=False)  # fmt: skip
    boxes = dets.cpu().numpy().astype(np.float64)
    boxes[:, :4] = lb.to_original(boxes[:, :4])
    h, w = image.shape[:2]
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    return boxes
