"""Export a trained (possibly pruned) checkpoint for deployment.

- ``sparse``: the sparse model file of METHODS.md (its size is the reported storage).
- ``dense``: cfg text + fp32 state dict, as a project checkpoint (no training state).
- ``onnx``: the dense network through ``torch.onnx``; decoded boxes as the output, the
  class names and image size in its metadata; ``int8`` quantizes it
  (:mod:`yolo.compress.quantize`).

``load_exported`` reads the first two back into an identical model.
"""

from __future__ import annotations

from pathlib import Path

from yolo.compress import sparse_format
from yolo.io import load_checkpoint, save_checkpoint
from yolo.model import Darknet
from yolo.onnx_runtime import write_metadata, write_onnx
from yolo.zoo import ZOO_SIZE, model_from_cfg_text

FORMATS = ("sparse", "dense", "onnx")


def export_model(
    model: Darknet,
    out: str | Path,
    fmt: str,
    *,
    img_size: int = ZOO_SIZE,
    half: bool = False,
    metadata: dict | None = None,
) -> int:
    """Write ``model`` as ``fmt``; returns the file size in bytes."""
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    if fmt == "sparse":
        return sparse_format.write(out, model.cfg_text, model.own_state_dict(), half=half)
    if fmt == "dense":
        save_checkpoint(out, model, metadata=metadata)
        return out.stat().st_size
    write_onnx(model, out, img_size, model.cfg.net.channels)
    meta = metadata or {}
    write_metadata(out, {"names": meta.get("names"), "img_size": img_size,
                         "method": meta.get("method")})  # fmt: skip
    return out.stat().st_size


def load_exported(path: str | Path) -> Darknet:
    """A model from a ``sparse`` or ``dense`` export."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"exported model not found: {path}")
    with open(path, "rb") as handle:
        head = handle.read(len(sparse_format.MAGIC))
    if head == sparse_format.MAGIC:
        cfg_text, state = sparse_format.read(path)
        model = model_from_cfg_text(cfg_text, source=f"{path} (cfg)")
        model.load_state_dict(state)
        return model
    return load_checkpoint(path).model
