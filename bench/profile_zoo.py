"""Profile the six zoo models at 416: params, MACs, storage and CPU latency.

Writes ``bench/results/zoo.json`` and prints the README table. Not a test: latency depends
on the machine, which the JSON records.

    python bench/profile_zoo.py [--img-size 416] [--runs 10] [--out bench/results/zoo.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from results_io import parse_with_smoke, write_results

from yolo.metrics.profile import profile_model
from yolo.zoo import ZOO, create_model

# The seed's own MAC figures (VOC), from a counter that skipped some operations.
SEED_MACS = {
    "yolov3": 32_829_119_167,
    "yolov3-tiny": 2_753_665_551,
    "yolo-nano": 2_082_423_381,
    "yolo-nano-leaky": 2_098_305_681,
    "yolov3-mobile": 1_419_864_487,
    "yolov3-mobile-leaky": 1_458_910_247,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--img-size", type=int, default=416)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per model (median)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/zoo.json"))
    parser.add_argument("--models", nargs="+", default=list(ZOO), choices=ZOO)
    args = parse_with_smoke(parser, {"img_size": 64, "runs": 1,
                                     "models": ["yolov3-tiny", "yolo-nano"]}, "zoo")  # fmt: skip

    results = {}
    for name in args.models:
        voc = profile_model(
            create_model(name, num_classes=20), args.img_size, latency_runs=args.runs
        )
        exdark = profile_model(create_model(name, num_classes=12), args.img_size, latency_runs=0)
        results[name] = {
            "voc": voc.as_dict(),
            "exdark": {k: v for k, v in exdark.as_dict().items() if k != "latency_ms"},
            "seed_quoted_macs_voc": SEED_MACS[name],
        }
        print(f"{name}: {voc.params:,} params, {voc.macs:,} MACs, {voc.latency_ms:.1f} ms")

    command = f"python bench/profile_zoo.py --img-size {args.img_size} --runs {args.runs}"
    write_results(args.out, command, {"img_size": args.img_size, "models": results})

    print()
    print(
        "| model | params (VOC / ExDark) | MACs at 416 (thop) | seed's quoted MACs "
        "| storage MB | CPU latency ms |"
    )
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        voc, ex = r["voc"], r["exdark"]
        print(
            f"| {name} | {voc['params']:,} / {ex['params']:,} | {voc['macs']:,} | "
            f"{r['seed_quoted_macs_voc']:,} | {voc['storage_mb']:.2f} | {voc['latency_ms']:.1f} |"
        )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
