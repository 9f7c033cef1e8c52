"""How long one training step takes: this project's against the seed thesis' code.

One step is what a training batch costs: forward in training mode, the YOLO loss, backward
and an SGD step, on the same images and targets for both. With ``--thesis-repo PATH`` (a
checkout of AndreydeAguiarSalvi/yolo_compression; GPL-3.0, so not copied here) the thesis'
``Darknet`` and ``compute_loss`` run on the thesis' cfg text of the same model and the two
steps alternate, pair by pair, in one process (the ratio is the median of the per-pair
ratios, so machine noise hits both alike); without it only ours is timed. The thesis'
utils import ``torchvision`` for NMS only; an empty module stands in for it.

    python bench/train_step.py [--models yolov3-tiny yolov3] [--img-size 416] [--batch 8]
                               [--pairs 50] [--pairs-for yolov3=10] [--threads 2]
                               [--thesis-repo PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import torch
from results_io import parse_with_smoke, write_results

ROOT = Path(__file__).resolve().parents[1]
# the thesis' hyp.yaml defaults for its loss (its train.py): gains, positive weights, iou_t
THESIS_HYP = {"giou": 3.54, "cls": 37.4, "cls_pw": 1.0, "obj": 64.3, "obj_pw": 1.0,
              "iou_t": 0.225, "fl_gamma": 0.0, "lr0": 0.01, "momentum": 0.937}  # fmt: skip


def _targets(batch: int, classes: int, generator: torch.Generator) -> torch.Tensor:
    """(M, 6) image, class, cx, cy, w, h (normalised): 4 objects per image, the format both
    codes train on."""
    rows = []
    for image in range(batch):
        for _ in range(4):
            w, h = (torch.rand(2, generator=generator) * 0.4 + 0.05).tolist()
            cx, cy = (torch.rand(2, generator=generator) * 0.5 + 0.25).tolist()
            cls = int(torch.randint(classes, (1,), generator=generator))
            rows.append([image, cls, cx, cy, w, h])
    return torch.tensor(rows)


def _ours(name: str, classes: int):
    from yolo.loss import YoloLoss
    from yolo.zoo import create_model

    model = create_model(name, num_classes=classes).train()
    loss = YoloLoss(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def step(images: torch.Tensor, targets: torch.Tensor) -> None:
        total, _ = loss(model(images), targets)
        total.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return model, step


def _thesis(repo: Path, cfg_text: str, classes: int):
    stub = types.ModuleType("torchvision")
    stub.ops = types.ModuleType("torchvision.ops")  # type: ignore[attr-defined]
    sys.modules.setdefault("torchvision", stub)
    sys.modules.setdefault("torchvision.ops", stub.ops)  # type: ignore[attr-defined]
    sys.path.insert(0, str(repo))
    from models import Darknet  # type: ignore[import-not-found]
    from utils.utils import compute_loss  # type: ignore[import-not-found]

    with tempfile.TemporaryDirectory() as folder:
        cfg = Path(folder) / "model.cfg"
        cfg.write_text(cfg_text)
        with contextlib.redirect_stdout(io.StringIO()):
            model = Darknet(str(cfg)).train()
    model.hyp, model.gr, model.nc, model.arc = THESIS_HYP, 1.0, classes, "default"
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def step(images: torch.Tensor, targets: torch.Tensor) -> None:
        total, _ = compute_loss(model(images), targets, model)
        total.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return model, step


def _timed(step, images: torch.Tensor, targets: torch.Tensor) -> float:
    start = time.perf_counter()
    step(images, targets)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["yolov3-tiny", "yolov3"])
    parser.add_argument("--img-size", type=int, default=416)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument(
        "--pairs-for",
        nargs="*",
        default=["yolov3=10"],
        metavar="MODEL=N",
        help="fewer pairs for slow models (yolov3: ~10 s a pair here)",
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--thesis-repo", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train_step.json")
    args = parse_with_smoke(parser, {"models": ["yolov3-tiny"], "img_size": 64, "batch": 2,
                                     "pairs": 3, "warmup": 1}, "train_step")  # fmt: skip
    from yolo.zoo import ZOO

    for name in args.models:
        if name not in ZOO:
            parser.error(f"--models: unknown model '{name}'; valid: {', '.join(ZOO)}")
    if args.thesis_repo is not None and not (args.thesis_repo / "models.py").is_file():
        parser.error(f"--thesis-repo: {args.thesis_repo} holds no models.py (the thesis code)")
    pairs_for = {}
    for item in args.pairs_for:
        model_name, _, count = item.partition("=")
        if model_name not in ZOO or not count.isdigit() or int(count) < 1:
            parser.error(f"--pairs-for: expected MODEL=N with a zoo model and N >= 1, got '{item}'")
        pairs_for[model_name] = int(count)
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    results = {}
    for name in args.models:
        images = torch.rand(args.batch, 3, args.img_size, args.img_size, generator=generator)
        targets = _targets(args.batch, args.classes, generator)
        model, ours = _ours(name, args.classes)
        steps = {"ours": ours}
        if args.thesis_repo is not None:
            _, steps["thesis"] = _thesis(args.thesis_repo.resolve(), model.cfg_text, args.classes)
        for _ in range(args.warmup):
            for step in steps.values():
                step(images, targets)
        times: dict[str, list[float]] = {key: [] for key in steps}
        pairs = min(args.pairs, pairs_for.get(name, args.pairs))
        for _ in range(pairs):  # interleaved: a pair shares the machine's state
            for key, step in steps.items():
                times[key].append(_timed(step, images, targets))
        row: dict[str, object] = {f"{k}_step_ms_median": 1e3 * statistics.median(v)
                                  for k, v in times.items()}  # fmt: skip
        if "thesis" in times:
            ratios = [a / b for a, b in zip(times["ours"], times["thesis"])]
            row["ours_over_thesis"] = statistics.median(ratios)
            q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
            row["ratio_quartiles"] = [q[0], q[2]]
        row["pairs"] = pairs
        results[name] = row
        print(name, {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
    command = "python bench/train_step.py " + " ".join(sys.argv[1:])
    write_results(args.out, command, {"models": results, "img_size": args.img_size,
                                      "batch": args.batch, "pairs": args.pairs,
                                      "threads": args.threads,
                                      "thesis": args.thesis_repo is not None})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
