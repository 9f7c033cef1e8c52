"""Pruning on the demo set: LTH (global, local) to 10% of prunable weights and CS (seed
defaults), from the yolov3-tiny that ``bench/train_demo.py`` trained; plus the per-step
overhead of masked training and of CS against dense training.

Records mAP50 (demo test split, VOC07), non-zero params, effective MACs, sparse storage
and CPU latency per method, in ``bench/results/prune_demo.json``.

    python bench/prune_demo.py [--teacher runs/bench_train_demo/yolov3-tiny/best.pt]
        [--rounds 4] [--epochs 6] [--cs-epochs 9] [--retrain-epochs 6]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

import torch
from results_io import SMOKE_DIR, parse_with_smoke, smoke_inputs, write_results

from yolo.compress.compact import compact
from yolo.compress.cs import CSConfig, SoftMaskCallback, run_cs
from yolo.compress.lth import LTHConfig, run_lth
from yolo.compress.masks import MaskCallback, prunable_parameters
from yolo.data.loader import create_dataloader
from yolo.engine import Trainer, evaluate
from yolo.io import load_checkpoint
from yolo.metrics.profile import profile_model
from yolo.train_config import Hyp, TrainConfig


def measure(path: Path, spec: Path, img_size: int) -> dict:
    model = load_checkpoint(path).model
    test = create_dataloader(spec, "test", img_size=img_size, batch_size=32)
    profile = profile_model(model, img_size, latency_runs=20)
    smaller = compact(model)
    compacted = profile_model(smaller, img_size, latency_runs=20)
    return {
        "compacted": {
            "test_map50_voc07": round(evaluate(smaller, test).result.map50, 4),
            "params": compacted.params,
            "dense_macs": compacted.macs,
            "latency_ms": round(compacted.latency_ms, 2),
        },
        "test_map50_voc07": round(evaluate(model, test).result.map50, 4),
        "nonzero_params": profile.nonzero_params,
        "effective_macs": profile.effective_macs,
        "dense_macs": profile.macs,
        "sparse_storage_mb": round(profile.sparse_storage_mb, 3),
        "dense_storage_mb": round(profile.storage_mb, 3),
        "latency_ms_dense_kernels": round(profile.latency_ms, 2),
    }


def step_overhead(config: TrainConfig, steps: int) -> dict:
    """Seconds per training step: dense, with a 90%-sparse mask, with CS soft masks."""
    times = {}
    for label in ("dense", "masked", "cs"):
        model = load_checkpoint(config.weights).model
        callbacks = []
        if label == "masked":
            masks = {k: torch.rand_like(p) > 0.9 for k, p in prunable_parameters(model).items()}
            callbacks = [MaskCallback(masks)]
        elif label == "cs":
            callbacks = [SoftMaskCallback(CSConfig(), epochs=3)]
        trainer = Trainer(config, model=model, callbacks=callbacks, progress=False,
                          log=lambda _: None)  # fmt: skip
        batches = iter(trainer.train_loader)
        batch = next(batches)
        for _ in range(3):  # warm-up
            trainer.train_step(0, 0, batch)
            trainer.optimizer_step()
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(0, 0, batch)
            trainer.optimizer_step()
        times[label] = (time.perf_counter() - start) / steps
    return {
        "seconds_per_step": {k: round(v, 4) for k, v in times.items()},
        "masked_over_dense": round(times["masked"] / times["dense"], 3),
        "cs_over_dense": round(times["cs"] / times["dense"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path,
                        default=Path("runs/bench_train_demo/yolov3-tiny/best.pt"))  # fmt: skip
    parser.add_argument("--data", type=Path, default=Path("demo_data/data.yaml"))
    parser.add_argument("--img-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=6, help="epochs per LTH round")
    parser.add_argument("--cs-epochs", type=int, default=9)
    parser.add_argument("--retrain-epochs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=20, help="steps timed for the overhead")
    parser.add_argument("--runs", type=Path, default=Path("runs/bench_prune_demo"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/prune_demo.json"))
    parser.add_argument(
        "--measure-only",
        action="store_true",
        help="re-measure the tickets of an earlier run into the same JSON",
    )
    args = parse_with_smoke(parser, {"img_size": 64, "rounds": 1, "epochs": 1, "cs_epochs": 2,
                                     "retrain_epochs": 1, "steps": 2,
                                     "runs": SMOKE_DIR / "prune_demo"}, "prune_demo")  # fmt: skip
    if args.smoke:
        args.data, args.teacher = smoke_inputs(SMOKE_DIR / "prune_demo")
    if args.measure_only:
        payload = json.loads(args.out.read_text())
        payload["results"]["dense"] = measure(args.teacher, args.data, args.img_size)
        for name in ("lth_global", "lth_local", "cs"):
            payload["results"][name] = measure(
                args.runs / name / "ticket.pt", args.data, args.img_size
            )
        args.out.write_text(json.dumps(payload, indent=2) + "\n")
        print(json.dumps(payload["results"], indent=1))
        return
    if not args.teacher.is_file():
        raise SystemExit(f"{args.teacher} not found: run bench/train_demo.py first")

    hyp = Hyp(lr0=0.002, warmup_epochs=0)  # fine-tuning a trained model: no warm-up
    base = TrainConfig(model=str(args.teacher), weights=str(args.teacher), data=str(args.data),
                       out="", img_size=args.img_size, batch_size=16, accumulate=1, cache=True,
                       epochs=args.epochs, hyp=hyp)  # fmt: skip
    rate = round(1 - 0.1 ** (1 / args.rounds), 6)  # (1 - rate)^rounds = 10%
    for name in ("lth_global", "lth_local", "cs", "overhead"):  # measured afresh, not resumed
        shutil.rmtree(args.runs / name, ignore_errors=True)
    results: dict = {"dense": measure(args.teacher, args.data, args.img_size)}
    timings = {}
    for scope in ("global", "local"):
        start = time.perf_counter()
        out = args.runs / f"lth_{scope}"
        run_lth(dataclasses.replace(base, out=str(out)),
                LTHConfig(rate=rate, rounds=args.rounds, scope=scope, rewind_epoch=0),
                progress=False)  # fmt: skip
        timings[f"lth_{scope}"] = round(time.perf_counter() - start, 1)
        results[f"lth_{scope}"] = measure(out / "ticket.pt", args.data, args.img_size)
    start = time.perf_counter()
    out = args.runs / "cs"
    cs = CSConfig(rewind_epoch=0, retrain_epochs=args.retrain_epochs)
    run_cs(dataclasses.replace(base, out=str(out), epochs=args.cs_epochs), cs,
           progress=False)  # fmt: skip
    timings["cs"] = round(time.perf_counter() - start, 1)
    results["cs"] = measure(out / "ticket.pt", args.data, args.img_size)
    overhead = step_overhead(dataclasses.replace(base, out=str(args.runs / "overhead")),
                             args.steps)  # fmt: skip
    print(json.dumps({"results": results, "overhead": overhead, "seconds": timings}, indent=1))
    command = (f"python bench/prune_demo.py --rounds {args.rounds} --epochs {args.epochs} "
               f"--cs-epochs {args.cs_epochs} --retrain-epochs {args.retrain_epochs}")  # fmt: skip
    write_results(args.out, command, {
        "settings": {"lth_rate": rate, "lth_rounds": args.rounds, "rewind_epoch": 0,
                     "start": str(args.teacher), "img_size": args.img_size,
                     "cs": "seed defaults (3 rounds, T 200, lambda 1e-8), rewind to start"},
        "results": results, "overhead": overhead, "wall_seconds": timings,
        "note": "latency uses dense kernels: zeros save no time until channels are removed",
    })  # fmt: skip


if __name__ == "__main__":
    main()
