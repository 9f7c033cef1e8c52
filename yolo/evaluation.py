"""Evaluate a model on a loader: detections mapped back to original pixels, then AP."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from yolo.data.dataset import DetectionDataset
from yolo.data.loader import Batch
from yolo.metrics.ap import APResult, GroundTruth, evaluate_detections
from yolo.nms import postprocess

EVAL_CONF = 0.001
EVAL_IOU = 0.5


@dataclass
class Evaluation:
    result: APResult
    detections: dict[str, np.ndarray]  # image id -> (K, 6) in original pixels
    images_per_s: float


def to_original(dets: torch.Tensor, batch: Batch, index: int) -> np.ndarray:
    """(K, 6) input-pixel detections of one image -> original pixels, clipped to the image."""
    out = dets.detach().float().cpu().numpy().astype(np.float64)
    out[:, :4] = batch.letterboxes[index].to_original(out[:, :4])
    width, height = batch.original_sizes[index]
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: DataLoader,
    *,
    device: torch.device | str = "cpu",
    conf_threshold: float = EVAL_CONF,
    iou_threshold: float = EVAL_IOU,
    multi_label: bool = True,
    max_detections: int = 300,
    progress: bool = False,
) -> tuple[dict[str, np.ndarray], float]:
    """Detections per image id in original pixels, and images per second."""
    was_training = model.training
    model.eval()
    detections: dict[str, np.ndarray] = {}
    images, start = 0, time.perf_counter()
    try:
        for batch in tqdm(loader, desc="evaluating", leave=False, disable=not progress):
            decoded = model(batch.images.to(device, non_blocking=True))
            per_image = postprocess(
                decoded, conf_threshold=conf_threshold, iou_threshold=iou_threshold,
                max_detections=max_detections, multi_label=multi_label,
            )  # fmt: skip
            for i, dets in enumerate(per_image):
                detections[batch.image_ids[i]] = to_original(dets, batch, i)
            images += len(batch.image_ids)
    finally:
        model.train(was_training)
    return detections, images / max(time.perf_counter() - start, 1e-9)


def evaluate(
    model: nn.Module,
    loader: DataLoader,
    *,
    metric: str = "voc07",
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> Evaluation:
    """AP of ``model`` on the loader's dataset (ground truth in original pixels)."""
    dataset = cast(DetectionDataset, loader.dataset)
    detections, rate = predict(model, loader, device=device, progress=progress)
    empty = np.zeros((0, 6))
    records = dataset.records
    dets = [detections.get(r.image_id, empty) for r in records]
    truths = [GroundTruth(r.boxes, r.labels, r.difficult) for r in records]
    result = evaluate_detections(dets, truths, dataset.names, metric=metric)
    return Evaluation(result, detections, rate)
