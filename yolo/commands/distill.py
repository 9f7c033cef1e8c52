"""``yct distill kd|kd_gan|pairs``: train a student from a teacher, or list hint pairs."""

from __future__ import annotations

import argparse
from pathlib import Path

from yolo.commands.common import add_method_options, method_config
from yolo.commands.run_settings import check_or_record
from yolo.commands.train import add_train_options, build_config, read_config_file
from yolo.compress.registry import get_method, methods_of_command
from yolo.metrics import names as m
from yolo.zoo import ZOO_SIZE

HELP = "distil a teacher into a student: classical KD (hints) or GAN-based KD; list hint pairs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    methods = methods_of_command("distill")
    parser.add_argument("method", choices=[*(method.name for method in methods), "pairs"],
                        help="a distillation method, or pairs (lists stride-matched hint "
                        "pairs of --teacher and --student)")  # fmt: skip
    parser.add_argument("--student", help="student: zoo name or .cfg (yolo-nano-leaky)")
    add_train_options(parser)
    add_method_options(parser, methods)


def _pairs(args: argparse.Namespace) -> int:
    from yolo.compress.teacher import candidate_pairs, feature_shape
    from yolo.io import is_checkpoint_path, load_checkpoint
    from yolo.zoo import create_model

    if not args.student:
        raise ValueError("--student is required (a zoo name or .cfg)")
    size = args.img_size or ZOO_SIZE
    if is_checkpoint_path(args.method_teacher):
        teacher = load_checkpoint(args.method_teacher).model
    else:
        teacher = create_model(args.method_teacher, num_classes=20)
    student = create_model(args.student, num_classes=teacher.num_classes, width=args.width or 1.0)
    candidates = candidate_pairs(teacher, student)
    print(f"stride-matched hint pairs, teacher {args.method_teacher} -> student {args.student} "
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
        if not args.method_teacher:
            raise ValueError("--teacher is required (a trained checkpoint or a zoo name)")
        return _pairs(args)
    method = get_method(args.method)
    settings = read_config_file(args.config)
    section = settings.pop(args.method, {}) or {}
    for other in methods_of_command("distill"):
        settings.pop(other.name, None)
    settings.setdefault("out", f"runs/distill_{args.method}")
    args.model = args.student or settings.pop("student", None) or settings.get("model")
    if not args.model:
        raise ValueError("--student is required (a zoo name or .cfg)")
    config = method_config(method, args, section)
    train = build_config(args, settings)
    method.validate(train, config)
    if not Path(config.teacher).is_file():
        raise FileNotFoundError(f"teacher checkpoint not found: {config.teacher}")
    check_or_record(train.out, method.name, train, config)
    reports = method.run(train, config, progress=not args.quiet)
    last = reports[-1] if reports else {}
    out = Path(train.out)
    print(f"student {args.model}: last {last.get(m.MAP50, float('nan')):.4f} {m.MAP50}; "
          f"weights (student only): {out / 'best.pt'}, {out / 'last.pt'}")  # fmt: skip
    return 0
