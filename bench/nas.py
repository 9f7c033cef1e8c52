"""Architecture search over yolov3-mobile: do inherited weights help, and does searching the
architecture beat searching the width alone at equal compute?

1. **Inheritance.** ``--candidates`` architectures drawn at random from
   ``search_spaces/nas_mobile.yaml`` (under its MACs cap), each fine-tuned ``--epochs`` epochs
   twice on the demo data: from the parent's overlapping weights (``inherit``,
   :mod:`yolo.inherit`) with the space's fine-tune recipe, and from scratch with the recipe
   the parent itself was trained with (``configs/demo_dense_hyp.yaml``: a from-scratch run
   needs its warm-up and higher learning rate). mAP50 on the validation split at the last
   epoch, as a trial measures it; the median over candidates.
2. **Search.** Per seed, three real studies (``trainables.study.run_study``, TPE + MOASHA,
   2 trials at a time on local Ray): the architecture space at ``--budget`` trial-epochs; the
   width-only space (``width`` in 0.25..1.0 and ``lr0``, from scratch, as
   ``search_spaces/train.yaml`` searches the family) at the same budget; and the width-only
   space at the budget plus the parent's own training epochs, since the architecture search
   stands on a parent that cost ``parent_epochs`` full-size epochs to train. The front of
   each (mAP50 vs MACs of every trial's last report, stopped trials included) is scored by
   its hypervolume against a fixed reference: mAP50 0 and the parent's MACs. Median over
   seeds.

Needs the parent: ``make nas-parents`` (``runs/nas/mobile/best.pt``).

    python bench/nas.py [--candidates 10] [--epochs 3] [--seeds 0 1 2] [--budget 36]

Writes ``bench/results/nas.json`` and ``bench/results/nas.png``.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from results_io import SMOKE_DIR, parse_with_smoke, write_results

from analysis.pareto import hypervolume

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "nas.json"
SPACE = ROOT / "search_spaces" / "nas_mobile.yaml"
PARENT = ROOT / "runs" / "nas" / "mobile" / "best.pt"
DATA = ROOT / "demo_data" / "data.yaml"
SCRATCH_HYP = ROOT / "configs" / "demo_dense_hyp.yaml"
WIDTHS = [0.25, 0.5, 0.75, 1.0]


def nas_space(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """The shipped NAS space with this run's data, parent, size and width."""
    data = yaml.safe_load(SPACE.read_text())
    data["data"] = str(args.data.resolve())
    data["fixed"].update(inherit=str(args.parent.resolve()), img_size=args.img_size,
                         epochs=args.epochs, width=args.width)  # fmt: skip
    if args.smoke:  # the tiny parent: no cap binds
        data["architecture"].pop("constraints", None)
    return data


def draw_candidates(space: Any, count: int, seed: int, classes: int, img_size: int,
                    width: float) -> list[dict[str, Any]]:  # fmt: skip
    """``count`` architectures the space's define-by-run draws at random under its cap."""
    import optuna

    from search_spaces.architecture import PREFIX
    from search_spaces.optuna_space import define_by_run

    arch = space.architecture
    function = define_by_run(space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    drawn: list[dict[str, Any]] = []
    while len(drawn) < count:
        trial = study.ask()
        config = {**function(trial), **trial.params}
        values = {k: v for k, v in config.items() if k.startswith(PREFIX)}
        study.tell(trial, 0.0)
        if arch.violation(values, img_size=img_size, classes=classes, width=width) is None:
            drawn.append(values)
    return drawn


def fine_tune(cfg: Path, args: argparse.Namespace, out: Path, inherit: bool,
              fixed: dict[str, Any]) -> dict[str, float]:  # fmt: skip
    from yolo.engine import Trainer
    from yolo.metrics import names as m
    from yolo.train_config import Hyp, TrainConfig, load_hyp

    if inherit:  # the space's fine-tune recipe
        hyp = Hyp(lr0=fixed["lr0"], warmup_epochs=fixed["warmup_epochs"],
                  schedule=fixed["schedule"], lrf=fixed["lrf"])  # fmt: skip
    else:  # the recipe that trained the parent from scratch
        hyp = load_hyp(SCRATCH_HYP)
    config = TrainConfig(model=str(cfg), data=str(args.data), out=str(out),
                         img_size=args.img_size, epochs=args.epochs, width=args.width,
                         batch_size=fixed["batch_size"], accumulate=fixed["accumulate"],
                         inherit=str(args.parent) if inherit else None, seed=0,
                         eval_interval=args.epochs, cache=True, hyp=hyp)  # fmt: skip
    started = time.perf_counter()
    metrics = Trainer(config, progress=False, log=lambda _: None).fit()
    return {"map50": float(metrics[m.MAP50]), "wall_s": round(time.perf_counter() - started, 1)}


def inheritance(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from search_spaces.architecture import trial_cfg
    from search_spaces.schema import space_from_mapping
    from yolo.data.spec import load_spec

    data = nas_space(args, folder)
    space = space_from_mapping(data, str(SPACE))
    classes = len(load_spec(args.data).names)
    arch = space.architecture
    assert arch is not None
    rows = []
    draws = draw_candidates(space, args.candidates, 0, classes, args.img_size, args.width)
    for number, drawn in enumerate(draws):
        cfg = folder / f"candidate{number}.cfg"
        cfg.write_text(trial_cfg(arch.parent, arch, drawn))
        inherited = fine_tune(cfg, args, folder / f"c{number}-inherit", True, data["fixed"])
        scratch = fine_tune(cfg, args, folder / f"c{number}-scratch", False, data["fixed"])
        macs = _macs(cfg, args, classes)
        rows.append({"architecture": {k.removeprefix("arch."): v for k, v in drawn.items()},
                     "macs": macs, "map50_inherited": inherited["map50"],
                     "map50_scratch": scratch["map50"],
                     "wall_s": inherited["wall_s"] + scratch["wall_s"]})  # fmt: skip
        print(
            f"candidate {number}: {macs / 1e6:.1f}M MACs, mAP50 inherited "
            f"{inherited['map50']:.4f} vs scratch {scratch['map50']:.4f}",
            flush=True,
        )
    inherited = statistics.median(r["map50_inherited"] for r in rows)
    scratch = statistics.median(r["map50_scratch"] for r in rows)
    return {"candidates": rows, "epochs": args.epochs,
            "median_map50_inherited": inherited, "median_map50_scratch": scratch,
            "inherited_beats_scratch": inherited > scratch,
            "inherited_better_count": sum(r["map50_inherited"] > r["map50_scratch"]
                                          for r in rows)}  # fmt: skip


def _macs(cfg: Path, args: argparse.Namespace, classes: int) -> float:
    from yolo.config import parse_cfg
    from yolo.metrics.profile import count_macs
    from yolo.resources import meta_model
    from yolo.zoo import with_classes, with_width

    parsed = parse_cfg(cfg.read_text(), source=cfg.name)
    return float(count_macs(meta_model(with_width(with_classes(parsed, classes), args.width)),
                            args.img_size).dense)  # fmt: skip


def width_space(args: argparse.Namespace, budget: int) -> dict[str, Any]:
    """The family's width-only search, from scratch (no parent to inherit at other widths)."""
    data = yaml.safe_load(SPACE.read_text())
    fixed = {k: v for k, v in data["fixed"].items()
             if k not in ("inherit", "lr0", "warmup_epochs", "schedule", "lrf")}  # fmt: skip
    scratch = yaml.safe_load(SCRATCH_HYP.read_text())
    fixed.update(img_size=args.img_size, epochs=args.width_epochs,
                 warmup_epochs=scratch["warmup_epochs"], schedule=scratch["schedule"],
                 lrf=scratch["lrf"])  # fmt: skip
    widths = sorted({max(0.25, w * args.width) for w in WIDTHS})  # 0.25 of the smoke's 0.25
    return {**{k: data[k] for k in ("method", "model", "objectives", "resources")},
            "data": str(args.data.resolve()), "fixed": fixed,
            "space": {"width": {"type": "categorical", "choices": widths},
                      "lr0": {"type": "loguniform", "low": 3.0e-3, "high": 1.5e-2}},
            "search": {**data["search"], "budget": budget}}  # fmt: skip


def run_search(data: dict[str, Any], name: str, seed: int, folder: Path,
               reference: list[float]) -> dict[str, Any]:  # fmt: skip
    from search_spaces.schema import load_space
    from trainables.study import StudyOptions, run_study
    from yct.tune import file_front

    data = {**data, "search": {**data["search"], "seed": seed}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    space = load_space(path)
    uri = f"sqlite:///{(folder / 'mlruns.db').resolve()}"
    options = StudyOptions(name=name, storage=str((folder / "tune").resolve()), mlflow_uri=uri)
    started = time.perf_counter()
    result = run_study(space, options, functools.partial(file_front, space, None))
    points = [[t.metrics["map50"], t.metrics["macs"]] for t in result.trials
              if t.error is None and "map50" in t.metrics and "macs" in t.metrics]  # fmt: skip
    volume = hypervolume(np.asarray(points, dtype=float).reshape(-1, 2), reference,
                         ["max", "min"])  # fmt: skip
    reports = int(sum(t.metrics.get("training_iteration", 0) for t in result.trials))
    print(f"{name}: {len(result.trials)} trials, {reports} trial-epochs, hypervolume "
          f"{volume:.5g}", flush=True)  # fmt: skip
    return {"hypervolume": volume, "trials": len(result.trials), "trial_epochs": reports,
            "points": points, "wall_s": round(time.perf_counter() - started, 1)}  # fmt: skip


def search(args: argparse.Namespace, folder: Path, parent_epochs: int) -> dict[str, Any]:
    import ray

    from yolo.io import load_checkpoint
    from yolo.metrics.profile import count_macs

    parent = load_checkpoint(args.parent).model
    reference = [0.0, float(count_macs(parent, args.img_size).effective)]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    studies: dict[str, list[dict[str, Any]]] = {"architecture": [], "width": [],
                                                 "width_with_parent_cost": []}  # fmt: skip
    try:
        for seed in args.seeds:
            studies["architecture"].append(
                run_search(nas_space(args, folder), f"arch-{seed}", seed, folder, reference)
            )
            studies["width"].append(
                run_search(width_space(args, args.budget), f"width-{seed}", seed, folder, reference)
            )
            studies["width_with_parent_cost"].append(run_search(
                width_space(args, args.budget + parent_epochs), f"width-parent-{seed}", seed,
                folder, reference))  # fmt: skip
    finally:
        ray.shutdown()
    medians = {k: statistics.median(s["hypervolume"] for s in v) for k, v in studies.items()}
    return {"reference": {"map50": reference[0], "macs": reference[1]}, "seeds": args.seeds,
            "budget_trial_epochs": args.budget, "parent_epochs": parent_epochs,
            "studies": studies, "median_hypervolume": medians,
            "architecture_beats_width": medians["architecture"] > medians["width"],
            "architecture_beats_width_with_parent_cost":
                medians["architecture"] > medians["width_with_parent_cost"]}  # fmt: skip


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.pareto import non_dominated

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    rows = result["inheritance"]["candidates"]
    macs = [r["macs"] / 1e6 for r in rows]
    left.scatter(macs, [r["map50_inherited"] for r in rows], label="inherited", marker="o")
    left.scatter(macs, [r["map50_scratch"] for r in rows], label="from scratch", marker="x")
    left.set(
        xlabel="MACs (M)",
        ylabel="mAP50 (val)",
        title=f"{len(rows)} candidates, {result['inheritance']['epochs']} epochs each",
    )
    left.legend()
    styles = {"architecture": "o-", "width": "s--", "width_with_parent_cost": "^:"}
    seed = 0
    for kind, studies in result["search"]["studies"].items():
        points = np.asarray(studies[seed]["points"], dtype=float).reshape(-1, 2)
        if not len(points):
            continue
        front = points[non_dominated(points, ["max", "min"])]
        front = front[np.argsort(front[:, 1])]
        right.plot(
            front[:, 1] / 1e6,
            front[:, 0],
            styles[kind],
            label=f"{kind} (HV median {result['search']['median_hypervolume'][kind]:.3g})",
        )
    right.set(xlabel="MACs (M)", ylabel="mAP50 (val)", title="fronts, first seed")
    right.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def smoke_parent(folder: Path) -> tuple[Path, Path]:
    """The smoke run's tiny demo set and a 1-epoch yolov3-mobile parent at width 0.25."""
    from results_io import smoke_inputs

    from yolo.engine import Trainer
    from yolo.train_config import TrainConfig

    spec, _ = smoke_inputs(folder)
    parent = folder / "parent"
    if not (parent / "best.pt").is_file():
        Trainer(TrainConfig(model="yolov3-mobile", data=str(spec), out=str(parent),
                            img_size=64, epochs=1, batch_size=8, accumulate=1, width=0.25),
                progress=False, log=lambda _: None).fit()  # fmt: skip
    return spec, parent / "best.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=3, help="fine-tune epochs per candidate")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=36, help="trial-epochs per study")
    parser.add_argument(
        "--width-epochs",
        type=int,
        default=12,
        help="epochs of a width-only trial (MOASHA stops most earlier)",
    )
    parser.add_argument("--parent", type=Path, default=PARENT)
    parser.add_argument(
        "--parent-epochs",
        type=int,
        default=60,
        help="epochs that trained the parent (make nas-parents)",
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--img-size", type=int, default=96)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--skip-search", action="store_true", help="the inheritance part only")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parse_with_smoke(parser, {"candidates": 2, "epochs": 2, "seeds": [0], "budget": 4,
                                     "width_epochs": 2, "parent_epochs": 1, "img_size": 64,
                                     "width": 0.25}, "nas")  # fmt: skip
    folder = (SMOKE_DIR if args.smoke else ROOT / "runs") / "bench_nas"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    folder = folder.resolve()
    if args.smoke:
        args.data, args.parent = smoke_parent(SMOKE_DIR.resolve() / "nas_inputs")
    if not args.parent.is_file():
        sys.exit(f"bench/nas.py: --parent: {args.parent} not found; run `make nas-parents`")
    started = time.perf_counter()
    result: dict[str, Any] = {"parent": str(args.parent), "img_size": args.img_size,
                              "width": args.width}  # fmt: skip
    result["inheritance"] = inheritance(args, folder)
    print(f"inheritance: median mAP50 {result['inheritance']['median_map50_inherited']:.4f} "
          f"inherited vs {result['inheritance']['median_map50_scratch']:.4f} from scratch "
          f"over {args.candidates} candidates", flush=True)  # fmt: skip
    if not args.skip_search:
        result["search"] = search(args, folder, args.parent_epochs)
        print("median hypervolume:", result["search"]["median_hypervolume"], flush=True)
        plot(result, args.out.with_suffix(".png"))
    result["wall_s"] = round(time.perf_counter() - started, 1)
    write_results(args.out, "python bench/nas.py " + " ".join(sys.argv[1:]), result)


if __name__ == "__main__":
    main()
