"""``yct import``: a checkpoint of the seed thesis' code as a project checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from yolo.zoo import ZOO_SIZE

HELP = "import a checkpoint of the seed thesis' code (its cfg, weights, LTH masks) unchanged"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, metavar="THESIS.pt",
                        help="what the thesis' train/prune/kd scripts saved")  # fmt: skip
    parser.add_argument("--cfg", type=Path, required=True, metavar="MODEL.cfg",
                        help="the thesis cfg the checkpoint was trained with")  # fmt: skip
    parser.add_argument(
        "--data",
        metavar="SPEC",
        help="dataset spec for the class names (default: class0, class1, …)",
    )
    parser.add_argument(
        "--img-size",
        type=int,
        default=ZOO_SIZE,
        metavar="PX",
        help=f"the training input size, kept as metadata ({ZOO_SIZE})",
    )
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="MODEL.pt",
                        help="the project checkpoint to write")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from yolo.commands.common import check_img_size
    from yolo.config import load_cfg
    from yolo.io import save_checkpoint
    from yolo.thesis import import_thesis_checkpoint

    check_img_size(args.img_size)
    if not args.checkpoint.is_file():
        raise FileNotFoundError(f"thesis checkpoint not found: {args.checkpoint}")
    names = None
    if args.data:
        from yolo.data.spec import load_spec

        names = load_spec(args.data).names or None
    cfg = load_cfg(args.cfg)
    imported = import_thesis_checkpoint(args.checkpoint, cfg, names=names,
                                        img_size=args.img_size)  # fmt: skip
    save_checkpoint(args.out, imported.model, masks=imported.masks, metadata=imported.metadata)
    pruned = sum(int((~m).sum()) for m in imported.masks.values())
    print(
        f"wrote {args.out}: {imported.model.num_classes} classes, "
        f"{sum(p.numel() for p in imported.model.parameters()):,} params, "
        f"{len(imported.masks)} masked weights ({pruned:,} pruned), "
        "maxpool_padding=zero, batchnorm_eps=1e-05"
    )
    return 0
