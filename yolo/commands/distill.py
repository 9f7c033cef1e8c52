"""``yct distill kd|kd_gan|pairs``: train a student from a teacher, or list hint pairs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from yolo.commands.common import method_values
from yolo.commands.train import add_train_options, build_config, read_config_file

HELP = "distil a teacher into a student: classical KD (hints) or GAN-based KD; list hint pairs"

# flag -> method config field; None values are left at the method's (seed) default
_KD = {"hints": "hints", "mu": "mu", "ni": "ni", "margin": "margin",
       "giou_reg_loss": "giou_reg_loss", "cls_function": "cls_function",
       "temperature": "temperature", "hint_weight": "hint_weight"}  # fmt: skip
_GAN = {"adv_weight": "adv_weight", "d_lr0": "d_lr0", "d_kernel_size": "d_kernel_size",
        "d_channels": "d_channels", "second_stage": "second_stage"}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("method", choices=("kd", "kd_gan", "pairs"),
                        help="kd, kd_gan, or pairs (lists stride-matched hint pairs)")  # fmt: skip
    parser.add_argument("--teacher", required=True, help="trained teacher (.pt), or for "
                        "'pairs' also a zoo name")  # fmt: skip
    parser.add_argument("--student", help="student: zoo name or .cfg (yolo-nano-leaky)")
    add_train_options(parser)
    group = parser.add_argument_group("kd options (seed defaults)")
    group.add_argument("--hints", help="teacher:student block pairs, e.g. '36:12,61:21' (none)")
    group.add_argument("--mu", type=float, help="weight of the hard obj/cls terms (0.7)")
    group.add_argument("--ni", type=float, help="weight of the bounded regression (0.5)")
    group.add_argument("--margin", type=float, help="bounded-regression margin (1e-5)")
    group.add_argument("--giou-reg-loss", type=_bool, help="GIoU error, else L2 (true)")
    group.add_argument("--cls-function", choices=("sigmoid", "softmax"), help="(sigmoid)")
    group.add_argument("--temperature", type=float, help="soft-target temperature T (1)")
    group.add_argument("--hint-weight", type=float, help="weight of the hint L2 (1)")
    group = parser.add_argument_group("kd_gan options (seed defaults)")
    group.add_argument("--adv-weight", type=float, help="adversarial term weight (1)")
    group.add_argument("--d-lr0", type=float, help="discriminator lr, 'Dlr0' (0.01)")
    group.add_argument("--d-kernel-size", type=int, nargs=2, help="D's two kernels (1 1)")
    group.add_argument("--d-channels", type=int, help="D's hidden channels (64)")
    group.add_argument("--second-stage", type=int, help="epoch detection-only starts (200)")


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{text}'")


def _method_config(args: argparse.Namespace, section: dict[str, Any]) -> Any:
    from yolo.compress.gan_kd import GANKDConfig
    from yolo.compress.kd import KDConfig

    cls, fields = (KDConfig, _KD) if args.method == "kd" else (GANKDConfig, _GAN)
    return cls(**method_values(cls, args, section, fields))


def _pairs(args: argparse.Namespace) -> int:
    from yolo.compress.teacher import candidate_pairs, feature_shape
    from yolo.io import load_checkpoint
    from yolo.zoo import create_model

    if not args.student:
        raise ValueError("--student is required (a zoo name or .cfg)")
    size = args.img_size or 416
    if args.teacher.endswith((".pt", ".pth")):
        teacher = load_checkpoint(args.teacher).model
    else:
        teacher = create_model(args.teacher, num_classes=20)
    student = create_model(args.student, num_classes=teacher.num_classes, width=args.width or 1.0)
    candidates = candidate_pairs(teacher, student)
    print(f"stride-matched hint pairs, teacher {args.teacher} -> student {args.student} "
          f"at {size} px:")  # fmt: skip
    for c in candidates:
        t, s = feature_shape(teacher, c.teacher, size), feature_shape(student, c.student, size)
        print(f"  {c!s:<7} stride {c.stride:>2}  {c.kind:<8}  teacher {t[0]}x{t[1]}x{t[2]}  "
              f"student {s[0]}x{s[1]}x{s[2]}")  # fmt: skip
    singles = [str(c) for c in candidates]
    print("search-space choices, e.g.: hints: {type: categorical, choices: "
          f"[{', '.join(repr(x) for x in ['', *singles])}]}}")  # fmt: skip
    return 0


def run(args: argparse.Namespace) -> int:
    if args.method == "pairs":
        return _pairs(args)
    from yolo.compress.distill import run_distill

    if not Path(args.teacher).is_file():
        raise FileNotFoundError(f"teacher checkpoint not found: {args.teacher}")
    settings = read_config_file(args.config)
    section = settings.pop(args.method, {}) or {}
    settings.pop("kd_gan" if args.method == "kd" else "kd", None)
    settings.setdefault("out", f"runs/distill_{args.method}")
    args.model = args.student or settings.pop("student", None) or settings.get("model")
    if not args.model:
        raise ValueError("--student is required (a zoo name or .cfg)")
    method = _method_config(args, section)
    train = build_config(args, settings)
    metrics = run_distill(train, method, args.teacher, progress=not args.quiet)
    out = Path(train.out)
    print(f"student {args.model}: last {metrics.get('map50', float('nan')):.4f} map50; "
          f"weights (student only): {out / 'best.pt'}, {out / 'last.pt'}")  # fmt: skip
    return 0
