"""Measure, once, that the seed thesis' cfgs and checkpoints come in unchanged: parameter
counts equal those of the thesis' own ``Darknet``, and an imported checkpoint gives its
outputs. Needs a checkout of the thesis repository (AndreydeAguiarSalvi/yolo_compression,
GPL-3.0, so neither its code nor its cfgs are copied here); writes
``bench/results/thesis_parity.json`` with the commit it ran against.

    python tools/thesis_parity.py --thesis-repo PATH [--img-size 416]
    python tools/thesis_parity.py --thesis-repo ULTRALYTICS_ARCHIVE \
        --out bench/results/ultralytics_parity.json

The second form runs the same comparison against ultralytics/yolov3's ``archive`` branch
(the code the thesis forked, whose ``models.py`` has the same ``Darknet``,
``save_weights`` and state-dict layout) over its own ``cfg/`` folder.

The reference code is imported from PATH as it is, with one stub: ``torchvision`` (which
its utils import for NMS only, not installed here) is replaced by an empty module. For
every cfg under ``PATH/cfg`` it builds both models, compares parameter counts, saves the
reference model's state dict the way its ``train.py`` does, imports it with ``yct
import``'s code, compares the raw head maps (before decoding and NMS) on one random batch
in eval mode, and reads the ``.weights`` its ``save_weights`` writes (the layout told from
the file's size). A cfg the reference refuses is still loaded and profiled by ours (our
figures are recorded beside the refusal).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import types
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _thesis_darknet(repo: Path) -> type:
    stub = types.ModuleType("torchvision")
    stub.ops = types.ModuleType("torchvision.ops")  # type: ignore[attr-defined]
    sys.modules.setdefault("torchvision", stub)
    sys.modules.setdefault("torchvision.ops", stub.ops)  # type: ignore[attr-defined]
    sys.path.insert(0, str(repo))
    from models import Darknet  # type: ignore[import-not-found]

    return Darknet  # type: ignore[no-any-return]


def _with_asff(model: torch.nn.Module) -> bool:
    """Switch on the reference's own ASFF branch in every YOLOLayer of ``model`` (the port
    ships it behind ``ASFF = False`` in ``YOLOLayer.forward``, so ``[yolo] from=`` cfgs do
    not run there as published); the method is rebuilt from its source with that one
    constant changed, in memory only. False where the code has no such branch."""
    import inspect
    import textwrap

    layers = [m for m in model.modules() if type(m).__name__ == "YOLOLayer"]
    if not layers:
        return False
    cls = type(layers[0])
    source = textwrap.dedent(inspect.getsource(cls.forward))
    if "ASFF = False" not in source:
        return False
    namespace: dict[str, object] = {}
    module = sys.modules[cls.__module__]
    exec(source.replace("ASFF = False", "ASFF = True"), vars(module), namespace)
    for layer in layers:
        layer.forward = types.MethodType(namespace["forward"], layer)  # type: ignore[method-assign]
    return True


def _reads_its_weights(theirs: torch.nn.Module, ours: torch.nn.Module, folder: Path) -> bool:
    """The thesis' save_weights file, read by ours (layout told from its size), gives its
    model's outputs."""
    from models import save_weights  # type: ignore[import-not-found]

    from yolo.io import read_darknet_weights
    from yolo.model import Darknet

    path = folder / "thesis.weights"
    save_weights(theirs, str(path))
    fresh = Darknet(ours.cfg)
    fresh.load_state_dict(ours.state_dict())  # its non-conv blocks come from its .pt only
    for block, module in zip(fresh.cfg.blocks, fresh.blocks):  # what the file must restore
        if block.section == "convolutional":
            for conv in module.modules():
                if isinstance(conv, torch.nn.Conv2d):
                    torch.nn.init.zeros_(conv.weight)
    read_darknet_weights(fresh, path)
    return all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(),
                                                 ours.state_dict().values()))  # fmt: skip


def _like_trained(model: torch.nn.Module) -> torch.nn.Module:
    """BatchNorm statistics and affine terms away from their initial 0 / 1, as training
    leaves them (so that a wrong eps, padding or misplaced tensor shows in the outputs);
    [softconv] mask logits on both sides of 0, so that a ticket prunes something."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(n, generator=generator) * 0.5 + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) * 0.5 + 0.5)
                module.bias.copy_(torch.rand(n, generator=generator) * 0.4 - 0.2)
            mask = getattr(module, "mask_weight", None)
            if isinstance(mask, torch.Tensor):
                mask.copy_(torch.randn(mask.shape, generator=generator))
    return model


def _thop_macs(model: torch.nn.Module, img_size: int) -> int:
    """``thop.profile``'s count of the reference model (the rules ours re-implements)."""
    import copy

    from thop import profile

    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        macs, _ = profile(copy.deepcopy(model), inputs=(torch.zeros(1, 3, img_size, img_size),),
                          verbose=False)  # fmt: skip
    return int(macs)


def _round_trips(cfg: object) -> bool:
    """Written back and read again, the cfg is the same blocks (line numbers aside) and
    writes the same text again."""
    import dataclasses

    from yolo.config import Cfg, format_cfg, parse_cfg

    assert isinstance(cfg, Cfg)
    text = format_cfg(cfg)
    again = parse_cfg(text)

    def unlined(c: Cfg) -> list[object]:
        return [dataclasses.replace(b, line=0) for b in c.blocks]

    same_net = dataclasses.replace(again.net, line=0) == dataclasses.replace(cfg.net, line=0)
    return same_net and unlined(again) == unlined(cfg) and format_cfg(again) == text


def _ours_alone(path: Path, img_size: int) -> dict[str, object]:
    """Our load, build and profile of a cfg the reference code cannot build."""
    from yolo.config import CfgError, load_cfg
    from yolo.metrics.profile import count_macs, count_params
    from yolo.model import Darknet

    try:
        model = Darknet(load_cfg(path))
    except (CfgError, ValueError) as exc:
        return {"ours": f"refused: {' '.join(str(exc).split())[:240]}"}
    return {"our_params": count_params(model), "our_macs": count_macs(model, img_size).dense,
            "round_trips": _round_trips(model.cfg)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thesis-repo", type=Path, required=True)
    parser.add_argument("--img-size", type=int, default=416)
    parser.add_argument("--commit", help="the checkout's commit, where PATH is not a git work tree")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "thesis_parity.json"
    )
    args = parser.parse_args()
    from yolo.config import load_cfg
    from yolo.thesis import import_thesis_checkpoint

    warnings.filterwarnings("ignore")
    thesis = _thesis_darknet(args.thesis_repo.resolve())
    commit = (
        args.commit
        or subprocess.run(
            ["git", "-C", str(args.thesis_repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        or "unknown"
    )
    torch.manual_seed(0)
    x = torch.rand(2, 3, args.img_size, args.img_size)
    rows = {}
    for path in sorted((args.thesis_repo / "cfg").rglob("*.cfg")):
        name = str(path.relative_to(args.thesis_repo))
        row: dict[str, object] = {}
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                theirs = _like_trained(thesis(str(path)).eval())
            row["thesis_params"] = sum(p.numel() for p in theirs.parameters())
        except Exception as exc:
            rows[name] = {"thesis": f"refused: {type(exc).__name__}: {str(exc)[:80]}",
                          **_ours_alone(path, args.img_size)}  # fmt: skip
            print(name, rows[name])
            continue
        try:
            cfg = load_cfg(path)
            with tempfile.TemporaryDirectory() as folder:
                saved = Path(folder) / "best.pt"
                # ultralytics' Darknet.info() runs thop, whose counters it leaves as buffers
                state = {k: v for k, v in theirs.state_dict().items()
                         if not k.endswith(("total_ops", "total_params"))}  # fmt: skip
                torch.save({"epoch": 0, "model": state}, saved)
                ours = import_thesis_checkpoint(saved, cfg, img_size=args.img_size).model.eval()
                row["reads_its_weights"] = _reads_its_weights(theirs, ours, Path(folder))
        except ValueError as exc:
            rows[name] = {**row, "import": f"refused: {' '.join(str(exc).split())[:160]}",
                          **_ours_alone(path, args.img_size)}  # fmt: skip
            print(name, rows[name])
            continue
        row["our_params"] = sum(p.numel() for p in ours.parameters())
        row["round_trips"] = _round_trips(ours.cfg)
        from yolo.metrics.profile import count_macs

        row["our_macs"] = count_macs(ours, args.img_size).dense
        with torch.no_grad():
            our_maps = ours(x, decode=False)
            try:  # its Darknet class does not run [softconv] (the thesis' CS scripts use
                _, their_maps = theirs(x)  # another one): recorded, counts still compared
            except RuntimeError as exc:
                row["thesis_forward"] = f"fails: {str(exc)[:80]}"
                if not (any(b.section == "yolo" and b.from_ for b in cfg.blocks)
                        and _with_asff(theirs)):  # fmt: skip
                    rows[name] = row
                    continue
                row["thesis_forward"] += "; compared with its ASFF branch switched on"
                _, their_maps = theirs(x)
        if not all(bool(torch.isfinite(a).all()) for a in their_maps):
            row["thesis_forward"] = "non-finite outputs (the random statistics overflowed)"
        row["max_abs_diff"] = max(float((a - b).abs().max()) for a, b in zip(their_maps, our_maps))
        if "ASFF" not in str(row.get("thesis_forward", "")):  # thop on its code as published
            row["thesis_macs_thop"] = _thop_macs(theirs, args.img_size)
        row["max_abs_output"] = max(float(a.abs().max()) for a in their_maps)
        rows[name] = row
        print(name, row)
    command = "python tools/thesis_parity.py --thesis-repo PATH"
    if args.out.name != "thesis_parity.json":
        out = args.out.resolve()
        command += f" --out {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}"
    args.out.write_text(json.dumps({"command": command,
                                    "thesis_commit": commit, "img_size": args.img_size,
                                    "cfgs": rows}, indent=2) + "\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
