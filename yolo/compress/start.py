"""The model a study starts from, measured once: the dense point of its front and its yardstick.

Every trial of a study compresses (or trains) the same starting model: the checkpoint in
``weights``, or the zoo model at ``width``. Measured like a trial's deliverable (mAP on the
validation split, :func:`~yolo.metrics.profile.model_costs`), it is the point the front
is read against (what compression cost) and the hypervolume's reference: 0 for a
maximised objective, the dense model's value for a minimised one. That reference depends on
the model, the data and the size only, so studies of the same start are comparable.
"""

from __future__ import annotations

from yolo.data.spec import load_spec
from yolo.engine import build_model, evaluate, select_device, validation_loader
from yolo.metrics import names as m
from yolo.metrics.profile import model_costs
from yolo.resources import check_fits
from yolo.train_config import TrainConfig


def starting_point(train: TrainConfig, *, latency_runs: int, latency_runtime: str = "eager",
                   latency_threads: int | None = None) -> dict[str, float]:  # fmt: skip
    """mAP50 (and mAP50-95 with the coco metric) on the validation split and the costs of
    the model ``train`` starts from, at ``train.img_size``; its latency measured the way the
    trials measure theirs (runtime, threads), or it would be no yardstick for them."""
    spec = load_spec(train.data)
    names = list(spec.names)
    model = build_model(train, spec.anchors, names)
    # every trial trains this model at this size: one that cannot fit is refused here, once
    check_fits(model.cfg, train.img_size, batch=train.batch_size, training=True)
    loader = validation_loader(train, spec)
    device = select_device(train.device)
    evaluation = evaluate(model.to(device).eval(), loader, metric=train.metric, device=device)
    result = evaluation.result
    point = {m.MAP50: float(result.map50)}
    if result.map50_95 is not None:
        point[m.MAP50_95] = float(result.map50_95)
    return {**point, **model_costs(model.cpu(), train.img_size, latency_runs=latency_runs,
                                   latency_runtime=latency_runtime,
                                   latency_threads=latency_threads)}  # fmt: skip


def reference_of(point: dict[str, float], objectives: list[tuple[str, str]]) -> dict[str, float]:
    """The hypervolume reference: 0 for a maximised objective, the start's value for a
    minimised one (a trial must beat the dense model's cost to add volume)."""
    return {metric: 0.0 if mode == "max" else point[metric] for metric, mode in objectives}
