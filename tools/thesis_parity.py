"""Measure, once, that the seed thesis' cfgs and checkpoints come in unchanged: parameter
counts equal those of the thesis' own ``Darknet``, and an imported checkpoint gives its
outputs. Needs a checkout of the thesis repository (AndreydeAguiarSalvi/yolo_compression,
GPL-3.0, so neither its code nor its cfgs are copied here); writes
``bench/results/thesis_parity.json`` with the commit it ran against.

    python tools/thesis_parity.py --thesis-repo PATH [--img-size 416]

The thesis' code is imported from PATH as it is, with one stub: ``torchvision`` (which its
utils import for NMS only, not installed here) is replaced by an empty module. For every
cfg under ``PATH/cfg`` it builds both models, compares parameter counts, saves the thesis
model's state dict the way its ``train.py`` does, imports it with ``yct import``'s code,
compares the raw head maps (before decoding and NMS) on one random batch in eval mode, and
reads the ``.weights`` its ``save_weights`` writes (the layout told from the file's size).
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thesis-repo", type=Path, required=True)
    parser.add_argument("--img-size", type=int, default=416)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "thesis_parity.json"
    )
    args = parser.parse_args()
    from yolo.config import load_cfg
    from yolo.thesis import import_thesis_checkpoint

    warnings.filterwarnings("ignore")
    thesis = _thesis_darknet(args.thesis_repo.resolve())
    commit = subprocess.run(["git", "-C", str(args.thesis_repo), "rev-parse", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"  # fmt: skip
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
            rows[name] = {"thesis": f"refused: {type(exc).__name__}: {str(exc)[:80]}"}
            continue
        try:
            cfg = load_cfg(path)
            with tempfile.TemporaryDirectory() as folder:
                saved = Path(folder) / "best.pt"
                torch.save({"epoch": 0, "model": theirs.state_dict()}, saved)
                ours = import_thesis_checkpoint(saved, cfg, img_size=args.img_size).model.eval()
                row["reads_its_weights"] = _reads_its_weights(theirs, ours, Path(folder))
        except ValueError as exc:
            rows[name] = {**row, "ours": f"refused: {' '.join(str(exc).split())[:120]}"}
            continue
        row["our_params"] = sum(p.numel() for p in ours.parameters())
        with torch.no_grad():
            our_maps = ours(x, decode=False)
            try:  # its Darknet class does not run [softconv] (the thesis' CS scripts use
                _, their_maps = theirs(x)  # another one): recorded, counts still compared
            except RuntimeError as exc:
                row["thesis_forward"] = f"fails: {str(exc)[:80]}"
                rows[name] = row
                continue
        if not all(bool(torch.isfinite(a).all()) for a in their_maps):
            row["thesis_forward"] = "non-finite outputs (the random statistics overflowed)"
        row["max_abs_diff"] = max(float((a - b).abs().max()) for a, b in zip(their_maps, our_maps))
        row["max_abs_output"] = max(float(a.abs().max()) for a in their_maps)
        rows[name] = row
        print(name, row)
    args.out.write_text(json.dumps({"command": "python tools/thesis_parity.py --thesis-repo PATH",
                                    "thesis_commit": commit, "img_size": args.img_size,
                                    "cfgs": rows}, indent=2) + "\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
