"""Metric names every trial and training run reports (one place, used everywhere)."""

from __future__ import annotations

MAP50 = "map50"  # VOC AP at IoU 0.5 (the chosen form: voc07 11-point or voc area)
MAP50_95 = "map50_95"  # COCO AP@[.5:.95]
PARAMS = "params"  # non-zero parameters
MACS = "macs"  # effective MACs at the run's image size
MACS_416 = "macs_416"  # effective MACs at 416 (comparable across runs)
STORAGE_MB = "storage_mb"  # sparse model file size
SPARSITY = "sparsity"  # share of prunable weights that are zero
LATENCY_MS = "latency_ms"  # CPU, batch 1, median
EPOCH = "epoch"
ROUND = "round"
LOSS_BOX = "loss_box"
LOSS_OBJ = "loss_obj"
LOSS_CLS = "loss_cls"
LOSS = "loss"
LR = "lr"
PRECISION = "precision"
RECALL = "recall"
EPOCH_TIME_S = "epoch_time_s"  # training part of an epoch
EVAL_TIME_S = "eval_time_s"  # validation part of an epoch
COST_TIME_S = "cost_time_s"  # a trial's cost metrics (MACs, storage, latency) of a report
REPORT_TIME_S = "report_time_s"  # the previous report to Tune (checkpoint persisted)
TRAIN_IMAGES_PER_S = "train_images_per_s"
TRAINED_EPOCHS = "trained_epochs"  # a trial's epochs of training so far, all rounds: its step
MAP50_BEST = "map50_best"  # a trial's best map50 so far (map50 itself is the latest report's)
MAP50_BEST_STEP = "map50_best_step"  # the trained epochs at which map50_best came
PLANNED_REPORTS = "planned_reports"  # how many reports a full run of the trial makes
FIRST_TELLING_REPORT = "first_telling_report"  # where the trial's rungs start counting
FIRST_DELIVERING_REPORT = "first_delivering_report"  # the first measured on a deliverable
NESTED_RUN = "nested_run"  # {config key: value} of the cheaper run a report ends (LTH round)

# name -> does a higher value mean better (for objectives and Pareto fronts)
HIGHER_IS_BETTER: dict[str, bool] = {
    MAP50: True,
    MAP50_95: True,
    PRECISION: True,
    RECALL: True,
    PARAMS: False,
    MACS: False,
    MACS_416: False,
    STORAGE_MB: False,
    SPARSITY: True,
    LATENCY_MS: False,
    LOSS: False,
}


def units(settings: dict[str, object]) -> dict[str, str]:
    """What each cost and accuracy figure of a run means, with the settings it was measured
    at (``settings``: a trial's or a run's flat config): shown beside the numbers (MLflow
    tags ``unit.<metric>``) so a compare view reads MACs at a size and latency on a runtime.
    """
    size = settings.get("img_size", "?")
    metric = settings.get("metric", "voc07")
    runtime = settings.get("latency_runtime", "eager")
    threads = settings.get("latency_threads", 1)
    return {
        MAP50: f"{metric} mAP@0.5 on the validation split at {size} px; per report, the last "
        "is the delivered model's",
        MAP50_BEST: f"the best {MAP50} of the trial so far; its step: tag {MAP50_BEST_STEP}",
        MACS: f"multiply-accumulates per {size}x{size} image; zero weights not counted",
        PARAMS: "non-zero parameters (a count)",
        STORAGE_MB: "MB of the model file in its sparse format",
        LATENCY_MS: f"ms per {size}x{size} image, batch 1, median; {runtime} on {threads} CPU "
        "thread(s)",
        SPARSITY: "share of the prunable weights that are zero",
    }
