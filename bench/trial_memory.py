"""How many trials fit on one GPU: peak memory of one training step per zoo model at 416.

A trial's GPU memory is dominated by the activations of a training step (forward and
backward at the trial's batch size) plus weights, gradients, SGD momentum and EMA. On a
CUDA machine this measures ``torch.cuda.max_memory_allocated``; without one it measures the
peak resident-memory growth of the same step on the CPU (each model in a fresh process),
which tracks the same tensors (CUDA adds its context, ~0.3–0.5 GB per process, and the
caching allocator's slack). Trials per GPU = floor(usable GPU memory / per-trial memory).
Figures go to ``bench/results/trial_memory.json``.

    python bench/trial_memory.py [--img-size 416] [--batch 8] [--width 1.0]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

from results_io import parse_with_smoke, write_results

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("yolov3", "yolov3-tiny", "yolo-nano", "yolo-nano-leaky", "yolov3-mobile",
          "yolov3-mobile-leaky")  # fmt: skip
GPUS_GB = {"T4 (16 GB)": 16, "A10G (24 GB)": 24, "L4 (24 GB)": 24, "A100 (40 GB)": 40,
           "H100 (80 GB)": 80}  # fmt: skip


def measure(name: str, img_size: int, batch: int, width: float) -> dict:
    """One training step (forward, loss, backward, SGD step, EMA update) of a fresh model."""
    import torch

    from yolo.ema import ModelEMA
    from yolo.engine import build_optimizer
    from yolo.loss import YoloLoss
    from yolo.train_config import Hyp
    from yolo.zoo import create_model

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    torch.set_num_threads(2)
    model = create_model(name, num_classes=20, width=width).to(device)
    ema = ModelEMA(model, 0.9999)
    optimizer = build_optimizer(model, Hyp())
    loss_fn = YoloLoss(model)
    images = torch.rand(batch, 3, img_size, img_size, device=device)
    targets = torch.tensor([[i, i % 20, 0.5, 0.5, 0.3, 0.4] for i in range(batch)],
                           device=device)  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # GB (Linux: KB)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for _ in range(2):  # the second step has optimizer state, like every later one
        with torch.autocast(device_type=device.type, enabled=cuda):
            loss, _ = loss_fn(model(images), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update(model)
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 2**30
        how = "cuda max_memory_allocated (AMP)"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20 - before
        how = "CPU peak RSS growth (fp32)"
    return {"model": name, "peak_gb": round(peak, 2), "how": how}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--img-size", type=int, default=416)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child process measures one model
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "trial_memory.json"
    )
    args = parse_with_smoke(parser, {"img_size": 64, "batch": 2, "width": 0.25,
                                     "models": ["yolov3-tiny"]}, "trial_memory")  # fmt: skip
    if args.one:
        print(json.dumps(measure(args.one, args.img_size, args.batch, args.width)))
        return
    rows = []
    for name in args.models:
        command = [sys.executable, __file__, "--one", name, "--img-size", str(args.img_size),
                   "--batch", str(args.batch), "--width", str(args.width)]  # fmt: skip
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        # the CUDA context and allocator slack on top of the tensors
        need = row["peak_gb"] + (0.0 if "cuda" in row["how"] else 0.5)
        row["trials_per_gpu"] = {gpu: int(gb * 0.9 // need) for gpu, gb in GPUS_GB.items()}
        rows.append(row)
        print(
            f"{name:<20} {row['peak_gb']:6.2f} GB ({row['how']}); trials per GPU: "
            + ", ".join(f"{g} {n}" for g, n in row["trials_per_gpu"].items()),
            flush=True,
        )
    write_results(args.out,
                  "python bench/trial_memory.py " + " ".join(sys.argv[1:]),
                  {"img_size": args.img_size, "batch": args.batch, "width": args.width,
                   "usable_share_of_gpu_memory": 0.9, "models": rows})  # fmt: skip


if __name__ == "__main__":
    main()
