"""Real speed of compressed models: structured pruning and INT8 on ONNX Runtime and PyTorch.

From one trained dense checkpoint (default: bench/train_demo.py's yolov3-tiny): the pruned
model is made by ``yct prune structured`` (fine-tuned), its INT8 by ``yct export --int8``;
the commands are recorded in the JSON. mAP50 is measured on the demo validation split at the
training size, each model through the same scoring (``yct evaluate``'s path: ONNX files on
ONNX Runtime). Latency is batch 1 at ``--latency-size`` with ``--threads`` threads: every
model is loaded once, then ``--pairs`` rounds run each model once in a rotating order, and
a speed-up is the median of the per-round ratios, so machine noise hits both sides of a
ratio alike. ``--also`` adds architectures measured for latency only (no trained parent:
their rows carry no mAP), pruned by the same rule from an untrained model.

    python bench/real_speed.py            # writes bench/results/real_speed.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import SMOKE_DIR, parse_with_smoke, smoke_inputs, write_results

from yolo.compress.export import export_model
from yolo.compress.filter_pruning import prune_filters
from yolo.data.loader import create_dataloader
from yolo.engine import evaluate
from yolo.io import load_checkpoint
from yolo.metrics.profile import count_macs, count_params
from yolo.model import Darknet
from yolo.onnx_runtime import OnnxDetector, session
from yolo.zoo import create_model

ROOT = Path(__file__).resolve().parent.parent
YCT = str(Path(sys.executable).with_name("yct"))


def run(command: list[str]) -> str:
    """Run a yct command; returns it as the line a reader would type."""
    subprocess.run(command, check=True)
    return shlex.join(["yct", *command[1:]]).replace(f"{ROOT}/", "")


def map50(model: torch.nn.Module, data: Path, img_size: int) -> float:
    loader = create_dataloader(data, "val", img_size=img_size, batch_size=16)
    return round(evaluate(model, loader, metric="voc07").result.map50, 4)


def interleaved_ms(runners: dict[str, Any], pairs: int) -> dict[str, list[float]]:
    """Per round, each runner once, in an order rotated every round; milliseconds."""
    names = list(runners)
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up: allocations, kernel selection
        for _ in range(3):
            runners[name]()
    for index in range(pairs):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            runners[name]()
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def median_ratio(slow: list[float], fast: list[float]) -> float:
    return round(statistics.median(a / b for a, b in zip(slow, fast)), 3)


def ratio_quartiles(slow: list[float], fast: list[float]) -> list[float]:
    """The first and third quartile of the per-round ratios: how far one round's ratio
    strays from the median on this machine."""
    q1, _, q3 = statistics.quantiles([a / b for a, b in zip(slow, fast)], n=4)
    return [round(q1, 3), round(q3, 3)]


def spread(times: list[float]) -> float:
    """One runner's own noise: (90th - 10th percentile) / median of its latencies."""
    deciles = statistics.quantiles(times, n=10)
    return round((deciles[-1] - deciles[0]) / statistics.median(times), 3)


def ort_runner(path: Path, img_size: int, threads: int) -> Any:
    runner = session(path, threads=threads)
    name = runner.get_inputs()[0].name
    x = np.random.default_rng(0).random((1, 3, img_size, img_size), dtype=np.float32)
    return lambda: runner.run(None, {name: x})


def eager_runner(model: Darknet, img_size: int) -> Any:
    model = model.eval()
    x = torch.rand(1, 3, img_size, img_size)

    def forward() -> None:
        with torch.inference_mode():
            model(x)

    return forward


def latency_table(models: dict[str, Darknet], onnx: dict[str, Path], size: int,
                  threads: int, pairs: int) -> dict[str, Any]:  # fmt: skip
    torch.set_num_threads(threads)
    ort = interleaved_ms({k: ort_runner(p, size, threads) for k, p in onnx.items()}, pairs)
    eager = interleaved_ms({k: eager_runner(m, size) for k, m in models.items()}, pairs)
    table: dict[str, Any] = {
        "ort_ms": {k: round(statistics.median(v), 2) for k, v in ort.items()},
        "eager_ms": {k: round(statistics.median(v), 2) for k, v in eager.items()},
    }
    table["noise"] = {
        "ort": {k: spread(v) for k, v in ort.items()},
        "eager": {k: spread(v) for k, v in eager.items()},
    }
    quartiles: dict[str, list[float]] = {}
    if "pruned" in ort:
        table["ort_speedup_pruned"] = median_ratio(ort["dense"], ort["pruned"])
        table["eager_speedup_pruned"] = median_ratio(eager["dense"], eager["pruned"])
        quartiles["ort_speedup_pruned"] = ratio_quartiles(ort["dense"], ort["pruned"])
        quartiles["eager_speedup_pruned"] = ratio_quartiles(eager["dense"], eager["pruned"])
    if "int8" in ort:
        table["ort_speedup_int8_over_pruned"] = median_ratio(ort["pruned"], ort["int8"])
        table["ort_speedup_int8_over_dense"] = median_ratio(ort["dense"], ort["int8"])
        quartiles["ort_speedup_int8_over_pruned"] = ratio_quartiles(ort["pruned"], ort["int8"])
    table["ratio_quartiles"] = quartiles
    return table


def trained_row(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """The trained dense parent, its fine-tuned structured prune and that one's INT8."""
    pruned_dir = folder / "pruned"
    shutil.rmtree(pruned_dir, ignore_errors=True)  # measured afresh, never resumed from before
    prune_cmd = run([YCT, "prune", "structured", str(args.dense), "--data", str(args.data),
                     "--img-size", str(args.train_size), "--epochs", str(args.finetune_epochs),
                     "--batch", "16", "--accumulate", "1", "--cache", "--hyp", str(args.hyp),
                     "--target-macs", str(args.target), "--criterion", args.criterion,
                     "--round-to", str(args.round_to), "--steps", str(args.steps),
                     "--out", str(pruned_dir), "--quiet"])  # fmt: skip
    dense = load_checkpoint(args.dense)
    pruned = load_checkpoint(pruned_dir / "ticket.pt")
    files: dict[str, dict[int, Path]] = {"dense": {}, "pruned": {}, "int8": {}}
    commands = {"prune": prune_cmd}
    for size in (args.train_size, args.latency_size):
        for name, checkpoint in (("dense", dense), ("pruned", pruned)):
            path = folder / f"{name}_{size}.onnx"
            export_model(checkpoint.model, path, "onnx", img_size=size,
                         metadata=checkpoint.metadata)  # fmt: skip
            files[name][size] = path
        path = folder / f"int8_{size}.onnx"
        int8 = [YCT, "export", str(pruned_dir / "ticket.pt"), str(path), "--format", "onnx",
                "--img-size", str(size), "--int8", "--calib", str(args.data),
                "--calib-images", str(args.calib_images),
                "--calib-method", args.calib_method,
                "--int8-activations", args.int8_activations]  # fmt: skip
        commands[f"int8_{size}"] = run(int8)
        files["int8"][size] = path
    maps = {
        "dense": map50(dense.model, args.data, args.train_size),
        "pruned": map50(pruned.model, args.data, args.train_size),
        "dense_ort": map50(
            OnnxDetector(files["dense"][args.train_size]), args.data, args.train_size
        ),
        "int8": map50(OnnxDetector(files["int8"][args.train_size]), args.data, args.train_size),
    }
    size = args.latency_size
    latency = latency_table({"dense": dense.model, "pruned": pruned.model},
                            {k: files[k][size] for k in ("dense", "pruned", "int8")},
                            size, args.threads, args.pairs)  # fmt: skip
    return {
        "model": dense.model.cfg.source if args.dense_name is None else args.dense_name,
        "dense_checkpoint": str(args.dense),
        "map50_val": maps,
        "map50_drop_pruned": round(maps["dense"] - maps["pruned"], 4),
        "map50_drop_int8": round(maps["pruned"] - maps["int8"], 4),
        "macs_at_latency_size": {
            k: count_macs(c.model, size).dense for k, c in (("dense", dense), ("pruned", pruned))
        },
        "params": {k: count_params(c.model) for k, c in (("dense", dense), ("pruned", pruned))},
        **latency,
        "commands": commands,
    }


def latency_only_row(name: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """An architecture without a trained parent: pruned by the same rule, timed only."""
    dense = create_model(name, num_classes=10, width=args.also_width).eval()
    pruned = prune_filters(dense, target=args.target, criterion=args.criterion,
                           round_to=args.round_to, img_size=args.latency_size).model  # fmt: skip
    size = args.latency_size
    onnx = {}
    for key, model in (("dense", dense), ("pruned", pruned)):
        onnx[key] = folder / f"{name}_{key}_{size}.onnx"
        export_model(model, onnx[key], "onnx", img_size=size)
    latency = latency_table({"dense": dense, "pruned": pruned}, onnx, size, args.threads,
                            max(3, args.pairs // 3))  # fmt: skip
    return {"model": name, "width": args.also_width, "map50_val": None,
            "macs_at_latency_size": {"dense": count_macs(dense, size).dense,
                                     "pruned": count_macs(pruned, size).dense},
            **latency}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dense", type=Path,
                        default=Path("runs/bench_train_demo/yolov3-tiny/best.pt"))  # fmt: skip
    parser.add_argument("--dense-name", default="yolov3-tiny")
    parser.add_argument("--data", type=Path, default=Path("demo_data/data.yaml"))
    parser.add_argument("--hyp", type=Path, default=ROOT / "configs" / "finetune_hyp.yaml")
    parser.add_argument("--train-size", type=int, default=128)
    parser.add_argument("--latency-size", type=int, default=416)
    parser.add_argument("--target", type=float, default=0.35, help="MACs share kept")
    parser.add_argument("--criterion", default="l1")
    parser.add_argument("--round-to", type=int, default=8,
                        help="kept channels: a multiple of this (16 suits AVX-512)")  # fmt: skip
    parser.add_argument("--int8-activations", default="int8", choices=("int8", "uint8"))
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--finetune-epochs", type=int, default=20)
    parser.add_argument("--calib-images", type=int, default=64)
    parser.add_argument("--calib-method", default="minmax")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=30, help="interleaved latency rounds")
    parser.add_argument("--also", nargs="*", default=["yolov3"], help="latency-only models")
    parser.add_argument("--also-width", type=float, default=1.0)
    parser.add_argument("--runs", type=Path, default=Path("runs/bench_real_speed"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/real_speed.json"))
    args = parse_with_smoke(parser, {"train_size": 64, "latency_size": 64, "finetune_epochs": 1,
                                     "calib_images": 4, "pairs": 3, "also": ["yolov3-tiny"],
                                     "also_width": 0.25, "target": 0.6,
                                     "runs": SMOKE_DIR / "real_speed"}, "real_speed")  # fmt: skip
    if args.smoke:
        args.data, args.dense = smoke_inputs(SMOKE_DIR / "real_speed_inputs")
    if not args.dense.is_file():
        raise SystemExit(f"{args.dense} not found: run bench/train_demo.py first")
    args.runs.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = [trained_row(args, args.runs)]
    rows += [latency_only_row(name, args, args.runs) for name in args.also]
    command = "python bench/real_speed.py " + " ".join(sys.argv[1:])
    write_results(args.out, command.strip(), {
        "threads": args.threads, "latency_size": args.latency_size,
        "train_size": args.train_size, "pairs": args.pairs, "target_macs": args.target,
        "criterion": args.criterion, "round_to": args.round_to,
        "finetune_epochs": args.finetune_epochs,
        "calibration": {"images": args.calib_images, "method": args.calib_method,
                        "activations": args.int8_activations},
        "models": rows, "wall_seconds": round(time.perf_counter() - start, 1),
    })  # fmt: skip
    print(json.dumps(rows, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
