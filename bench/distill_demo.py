"""Does distillation help on the demo set? Students trained plain vs ``kd`` vs ``kd_gan``.

Teacher: the demo's dense yolov3-tiny (width 0.5, 96 px; ``make demo-dense``). Students:
``yolo-nano-leaky`` and ``yolov3-mobile-leaky`` at ``--width``, from scratch, the same
seed, epochs and hyper-parameters (configs/demo_dense_hyp.yaml) for all three methods; only
the method's terms differ. KD uses the stride-16 and stride-32 neck hint pairs (the student
blocks of the seed's "fts 79" / "fts 91" kind); kd_gan the defaults with the second stage
at two thirds of the epochs. Records best and last val mAP50 per run, mean ± std over seeds,
in ``bench/results/distill_demo.json``. Runs go two at a time (one thread each); a run
that already finished in --out is read back, not retrained; a run that fails is recorded.

    python bench/distill_demo.py [--epochs 30] [--seeds 0 1] [--width 0.5]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from results_io import SMOKE_DIR, parse_with_smoke, smoke_inputs, write_results

ROOT = Path(__file__).resolve().parents[1]
TEACHER = ROOT / "runs" / "demo" / "dense" / "best.pt"
DATA = ROOT / "demo_data" / "data.yaml"
STUDENTS = ("yolo-nano-leaky", "yolov3-mobile-leaky")
METHODS = ("plain", "kd", "kd_gan")


def neck_hints(student_name: str, width: float) -> tuple[tuple[int, int], ...]:
    """The stride-16 and stride-32 neck pairs between the teacher and this student."""
    from yolo.compress.teacher import candidate_pairs
    from yolo.io import load_checkpoint
    from yolo.zoo import create_model

    teacher = load_checkpoint(TEACHER).model
    student = create_model(student_name, num_classes=teacher.num_classes, width=width)
    return tuple((c.teacher, c.student) for c in candidate_pairs(teacher, student)
                 if c.kind == "neck")  # fmt: skip


def run_one(student: str, method: str, seed: int, epochs: int, width: float, out: Path) -> dict:
    import torch

    from yolo.compress.distill import run_distill
    from yolo.compress.gan_kd import GANKDConfig
    from yolo.compress.kd import KDConfig
    from yolo.engine import Trainer
    from yolo.io import load_checkpoint
    from yolo.train_config import TrainConfig, load_hyp

    torch.set_num_threads(1)
    folder = out / f"{student}_{method}_{seed}"
    done = folder / "last.pt"
    if done.is_file() and load_checkpoint(done).metadata["epoch"] == epochs - 1:
        return _figures(student, method, seed, load_checkpoint(done).metadata, None)
    hyp = load_hyp(ROOT / "configs" / "demo_dense_hyp.yaml")
    train = TrainConfig(model=student, data=str(DATA), out=str(folder), img_size=96, width=width,
                        epochs=epochs, batch_size=16, accumulate=1, seed=seed, eval_interval=5,
                        hyp=hyp)  # fmt: skip
    start = time.perf_counter()
    quiet = {"progress": False, "log": lambda _: None}
    try:
        if method == "plain":
            Trainer(train, **quiet).fit()
        else:
            config = (KDConfig(teacher=str(TEACHER), hints=neck_hints(student, width))
                      if method == "kd" else
                      GANKDConfig(teacher=str(TEACHER), second_stage=epochs * 2 // 3))  # fmt: skip
            run_distill(train, config, **quiet)
    except Exception as error:  # a run that fails is recorded, the others go on
        print(f"{student} {method} seed {seed}: FAILED: {error}", flush=True)
        return {"student": student, "method": method, "seed": seed, "error": str(error)}
    return _figures(student, method, seed, load_checkpoint(done).metadata,
                    time.perf_counter() - start)  # fmt: skip


def _figures(student: str, method: str, seed: int, last: dict, wall: float | None) -> dict:
    best, final = last["best_map50"], last["metrics"].get("map50", float("nan"))
    figures = {"student": student, "method": method, "seed": seed,
               "best_map50": round(float(best), 4),
               "last_map50": round(float(final), 4),
               "wall_s": round(wall, 1) if wall is not None else None}  # fmt: skip
    print(f"{student:<20} {method:<7} seed {seed}: best {figures['best_map50']:.4f}, last "
          f"{figures['last_map50']:.4f}", flush=True)  # fmt: skip
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_distill")
    parser.add_argument("--students", nargs="+", default=list(STUDENTS), choices=STUDENTS)
    parser.add_argument("--results", type=Path,
                        default=ROOT / "bench" / "results" / "distill_demo.json")  # fmt: skip
    args = parse_with_smoke(parser, {"epochs": 1, "seeds": [0], "width": 0.25, "jobs": 1,
                                     "students": ["yolo-nano-leaky"],
                                     "out": SMOKE_DIR / "distill_demo",
                                     "results": SMOKE_DIR / "distill_demo.json"},
                            "distill_demo")  # fmt: skip
    global DATA, TEACHER
    if args.smoke:  # a tiny set and an untrained teacher (globals: the pool forks after this)
        DATA, TEACHER = (p.resolve() for p in smoke_inputs(SMOKE_DIR / "distill_demo_inputs"))
    if not TEACHER.is_file():
        subprocess.run(["make", "-C", str(ROOT), "demo-dense"], check=True)
    from yolo.io import load_checkpoint

    teacher_map = load_checkpoint(TEACHER).metadata.get("best_map50")
    jobs = [(s, m, seed, args.epochs, args.width, args.out)
            for seed in args.seeds for s in args.students for m in METHODS]  # fmt: skip
    shutil.rmtree(args.out, ignore_errors=True)  # measured afresh, never resumed from before
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(run_one, *zip(*jobs)))
    summary = {}
    for student in args.students:
        for method in METHODS:
            best = np.array([r["best_map50"] for r in runs if "error" not in r
                             and r["student"] == student and r["method"] == method])  # fmt: skip
            if not len(best):
                summary[f"{student}/{method}"] = {"error": "every run failed"}
                continue
            summary[f"{student}/{method}"] = {"best_map50_mean": round(float(best.mean()), 4),
                                              "best_map50_std": round(float(best.std()), 4),
                                              "seeds": len(best)}  # fmt: skip
            print(f"{student:<20} {method:<7} best mAP50 {best.mean():.4f} ± {best.std():.4f} "
                  f"over {len(best)} seeds")  # fmt: skip
    write_results(
        args.results,
        "python bench/distill_demo.py " + " ".join(sys.argv[1:]),
        {"teacher": {"model": "yolov3-tiny", "width": 0.5, "img_size": 96,
                     "val_map50": teacher_map},
         "students_width": args.width, "epochs": args.epochs, "img_size": 96,
         "hyp": "configs/demo_dense_hyp.yaml", "seeds": args.seeds,
         "wall_s": round(time.perf_counter() - start, 1), "summary": summary, "runs": runs},
    )  # fmt: skip


if __name__ == "__main__":
    main()
