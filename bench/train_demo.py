"""Train yolov3-tiny and yolo-nano on the demo set at 128 px on CPU for a fixed time budget.

Records, per model: mAP50 reached on the demo test split (VOC07), training and evaluation
images/s, peak memory (RSS), epochs done. Writes ``bench/results/train_demo.json``.

    python bench/train_demo.py [--budget-min 15] [--models yolov3-tiny yolo-nano] [--img-size 128]

The number of epochs (which the learning-rate schedule needs) is set from a one-epoch
calibration so that the schedule ends when the budget does.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from results_io import SMOKE_DIR, parse_with_smoke, write_results

from yolo.data.demo import DemoConfig, build_demo_set
from yolo.data.loader import create_dataloader
from yolo.data.transforms import AugmentConfig
from yolo.engine import Trainer, evaluate
from yolo.io import load_checkpoint
from yolo.train_config import Hyp, TrainConfig


def train_one(model: str, spec: Path, out: Path, args: argparse.Namespace) -> dict:
    hyp = Hyp(schedule="cosine", lrf=-2.0, warmup_epochs=2.0, warmup_min_iters=100,
              augment=AugmentConfig(mosaic=args.mosaic, scale=0.3, translate=0.1))  # fmt: skip
    common = dict(model=model, data=str(spec), img_size=args.img_size, batch_size=args.batch,
                  accumulate=1, seed=args.seed, workers=args.workers, cache=True,
                  hyp=hyp)  # fmt: skip
    budget = args.budget_min * 60
    calibration = Trainer(TrainConfig(**common, out=str(out / "calibration"), epochs=1),
                          progress=False, log=lambda _: None)  # fmt: skip
    start = time.perf_counter()
    calibration.fit()
    epoch_time = time.perf_counter() - start
    epochs = max(1, int((budget - epoch_time) / epoch_time))
    config = TrainConfig(**common, out=str(out / model), epochs=epochs,
                         time_budget_s=budget - epoch_time)  # fmt: skip
    trainer = Trainer(config, progress=False)
    start = time.perf_counter()
    trainer.fit()
    train_time = time.perf_counter() - start
    best = load_checkpoint(out / model / "best.pt").model
    test = create_dataloader(spec, "test", img_size=args.img_size, batch_size=32)
    result = evaluate(best, test, metric="voc07")
    rates = [h["train_images_per_s"] for h in trainer.history]
    evals = [h["eval_images_per_s"] for h in trainer.history if "eval_images_per_s" in h]
    return {
        "model": model,
        "test_map50_voc07": round(result.result.map50, 4),
        "val_best_map50": round(trainer.best_fitness, 4),
        "best_epoch": trainer.best_epoch + 1,
        "epochs_done": len(trainer.history),
        "epochs_planned": epochs,
        "train_seconds": round(train_time + epoch_time, 1),
        "train_images_per_s": round(sum(rates) / len(rates), 1),
        "eval_images_per_s": round(sum(evals) / max(len(evals), 1), 1),
        "test_eval_images_per_s": round(result.images_per_s, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-min", type=float, default=15.0)
    parser.add_argument("--models", nargs="+", default=["yolov3-tiny", "yolo-nano"])
    parser.add_argument("--img-size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--mosaic", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=Path("demo_data"))
    parser.add_argument("--runs", type=Path, default=Path("runs/bench_train_demo"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/train_demo.json"))
    parser.add_argument("--images", type=int, default=500, help="demo set size if built")
    args = parse_with_smoke(parser, {"budget_min": 0.05, "models": ["yolov3-tiny"],
                                     "img_size": 64, "batch": 8, "images": 24,
                                     "data_dir": SMOKE_DIR / "train_demo" / "data",
                                     "runs": SMOKE_DIR / "train_demo"}, "train_demo")  # fmt: skip

    spec = args.data_dir / "data.yaml"
    if not spec.is_file():
        build_demo_set(args.data_dir, DemoConfig(images=args.images, size=args.img_size))
    results = []
    for model in args.models:
        row = train_one(model, spec, args.runs, args)
        results.append(row)
        print(json.dumps(row))
        command = (f"python bench/train_demo.py --budget-min {args.budget_min:g} "
                   f"--models {' '.join(args.models)} --img-size {args.img_size}")  # fmt: skip
        body = {
            "settings": {
                "batch": args.batch,
                "accumulate": 1,
                "schedule": "cosine to 1e-2",
                "mosaic": args.mosaic,
                "scale": 0.3,
                "translate": 0.1,
                "dataset": "yct data demo (500 images, 128 px)",
            },
            "results": results,
        }
        write_results(args.out, command, body)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
