"""``yct export``: a checkpoint as a sparse file, a dense checkpoint or ONNX."""

from __future__ import annotations

import argparse
from pathlib import Path

from yolo.zoo import ZOO_SIZE

HELP = "export a checkpoint: sparse (METHODS.md format), dense fp32, ONNX, or darknet weights"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path, help="output file")
    parser.add_argument(
        "--format", default="sparse", choices=("sparse", "dense", "onnx", "darknet"),
        help="darknet: .weights (what darknet and the seed thesis read) and the .cfg beside it",
    )  # fmt: skip
    parser.add_argument("--half", action="store_true", help="sparse: store values as fp16")
    parser.add_argument(
        "--weights-layout", default="darknet", choices=("darknet", "thesis"),
        help="darknet: every block (darknet); thesis: [convolutional] blocks only, as the seed "
        "thesis' save_weights writes",
    )  # fmt: skip
    parser.add_argument("--img-size", type=int, help="onnx: example input size (training size)")
    parser.add_argument(
        "--compact", action="store_true",
        help="first remove all-zero filters (exactly, outputs checked): a smaller dense model",
    )  # fmt: skip
    parser.add_argument(
        "--int8", action="store_true",
        help="onnx: static INT8 (QDQ, per-channel weights) calibrated on --calib",
    )  # fmt: skip
    parser.add_argument("--calib", help="--int8: dataset spec whose train images calibrate")
    parser.add_argument("--calib-images", type=int, default=64, help="--int8: images calibrated on")
    parser.add_argument("--calib-method", default="minmax",
                        choices=("minmax", "entropy", "percentile"),
                        help="--int8: ONNX Runtime's calibrator")  # fmt: skip
    parser.add_argument("--int8-activations", default="int8", choices=("int8", "uint8"),
                        help="--int8: signed activations (S8S8, fastest on AVX2) or unsigned "
                        "(U8S8, ORT's native kernels on CPUs with VNNI)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from yolo.commands.common import check_img_size
    from yolo.compress.export import export_model
    from yolo.io import load_checkpoint
    from yolo.resources import check_fits

    if args.int8 and (args.format != "onnx" or not args.calib):
        raise ValueError("--int8 needs --format onnx and --calib DATA (a dataset spec)")
    checkpoint = load_checkpoint(args.checkpoint)
    img_size = args.img_size or int(checkpoint.metadata.get("img_size", ZOO_SIZE))
    check_img_size(img_size)
    model = checkpoint.model
    check_fits(model.cfg, img_size)
    if args.compact:
        from yolo.compress.compact import compact
        from yolo.metrics.profile import count_macs

        before = count_macs(model, img_size).dense
        model = compact(model)
        after = count_macs(model, img_size).dense
        print(f"compacted: dense MACs at {img_size} {before:,} -> {after:,}")
    if args.int8:
        import tempfile

        from yolo.compress.quantize import quantize_int8
        from yolo.data.spec import load_spec
        from yolo.onnx_runtime import read_metadata, write_metadata

        load_spec(args.calib)  # a bad spec is named before the export starts
        with tempfile.TemporaryDirectory() as folder:
            float_onnx = Path(folder) / "float.onnx"
            export_model(model, float_onnx, "onnx", img_size=img_size,
                         metadata=checkpoint.metadata)  # fmt: skip
            quantize_int8(float_onnx, args.out, data=args.calib, img_size=img_size,
                          images=args.calib_images, calibrator=args.calib_method,
                          activations=args.int8_activations)  # fmt: skip
            write_metadata(args.out, {**read_metadata(float_onnx), "int8": True,
                                      "calibration": args.calib_method,
                                      "calibration_images": args.calib_images,
                                      "activations": args.int8_activations})  # fmt: skip
        size = args.out.stat().st_size
        print(f"wrote {args.out} (onnx int8, {size / 2**20:.3f} MB)")
        return 0
    if args.format == "darknet":
        import dataclasses

        from yolo.config import format_cfg
        from yolo.io import write_darknet_weights

        if args.out.suffix.lower() == ".cfg":
            raise ValueError(f"{args.out}: --format darknet writes the .weights file; its .cfg "
                             "goes beside it")  # fmt: skip
        write_darknet_weights(model, args.out, layout=args.weights_layout)
        cfg_path = args.out.with_suffix(".cfg")
        # darknet's dialect: no project keys (the thesis' parser refuses unknown ones, and its
        # code pads max-pools with zeros by itself)
        net = dataclasses.replace(model.cfg.net, maxpool_padding="edge", batchnorm_eps=None)
        cfg_path.write_text(format_cfg(dataclasses.replace(model.cfg, net=net)))
        print(f"wrote {args.out} (darknet, {args.out.stat().st_size / 2**20:.3f} MB) "
              f"and {cfg_path}")  # fmt: skip
        return 0
    size = export_model(model, args.out, args.format, img_size=img_size,
                        half=args.half, metadata=checkpoint.metadata)  # fmt: skip
    print(f"wrote {args.out} ({args.format}, {size / 2**20:.3f} MB)")
    return 0
