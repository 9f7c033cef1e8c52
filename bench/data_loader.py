"""Loader throughput: images/s with the seed's augmentation at 416 on this machine.

Builds a demo set of 416 px images (if missing), then times full passes of the training
loader for several settings (workers, mosaic, RAM cache). Writes
``bench/results/data_loader.json``.

    python bench/data_loader.py [--images 200] [--img-size 416] [--batch 8] [--epochs 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from results_io import SMOKE_DIR, parse_with_smoke, write_results

from yolo.data.demo import DemoConfig, build_demo_set
from yolo.data.loader import create_dataloader
from yolo.data.transforms import AugmentConfig


def throughput(spec: Path, *, img_size: int, batch: int, epochs: int, workers: int,
               mosaic: float, cache: bool) -> float:  # fmt: skip
    loader = create_dataloader(
        spec, "train", img_size=img_size, batch_size=batch, augment=AugmentConfig(mosaic=mosaic),
        shuffle=True, workers=workers, cache=cache,
    )  # fmt: skip
    images = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        loader.dataset.set_epoch(epoch)
        for batch_data in loader:
            images += batch_data.images.shape[0]
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--img-size", type=int, default=416)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=Path("runs/bench_data_416"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/data_loader.json"))
    smoke = {"images": 24, "img_size": 64, "batch": 4, "epochs": 1,
             "data_dir": SMOKE_DIR / "data_loader"}  # fmt: skip
    args = parse_with_smoke(parser, smoke, "data_loader")

    spec = args.data_dir / "data.yaml"
    if not spec.is_file():
        build_demo_set(args.data_dir, DemoConfig(images=args.images, size=args.img_size))
    settings = [
        {"workers": 0, "mosaic": 0.0, "cache": False},
        {"workers": 2, "mosaic": 0.0, "cache": False},
        {"workers": 2, "mosaic": 1.0, "cache": False},
        {"workers": 2, "mosaic": 0.0, "cache": True},
    ]
    rows = []
    for setting in settings:
        rate = throughput(spec, img_size=args.img_size, batch=args.batch, epochs=args.epochs,
                          **setting)  # fmt: skip
        rows.append({**setting, "images_per_s": round(rate, 1)})
        print(f"{setting}: {rate:.1f} images/s")
    command = (f"python bench/data_loader.py --images {args.images} --img-size {args.img_size} "
               f"--batch {args.batch} --epochs {args.epochs}")  # fmt: skip
    augmentation = "seed defaults (affine 1.98/0.05/0.05/0.641, HSV, flip)"
    write_results(args.out, command, {"augmentation": augmentation, "results": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
