"""Export: sparse and dense files load back to identical models; ONNX gives the same boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yct.cli import main
from yolo.compress.export import export_model, load_exported
from yolo.compress.masks import apply_masks, prunable_parameters
from yolo.io import save_checkpoint
from yolo.zoo import create_model


@pytest.fixture
def pruned():
    model = create_model("yolo-nano", num_classes=3, width=0.25).eval()
    masks = {k: torch.rand_like(p) > 0.7 for k, p in prunable_parameters(model).items()}
    apply_masks(model, masks)
    return model, masks


@pytest.mark.parametrize("fmt", ["sparse", "dense"])
def test_sparse_and_dense_round_trip(pruned, tmp_path, fmt: str) -> None:
    model, _ = pruned
    size = export_model(model, tmp_path / "m.bin", fmt)
    restored = load_exported(tmp_path / "m.bin").eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), restored(x))
    assert size == (tmp_path / "m.bin").stat().st_size


def test_sparse_is_smaller_than_dense_for_a_pruned_model(pruned, tmp_path) -> None:
    model, _ = pruned
    sparse = export_model(model, tmp_path / "m.sparse", "sparse")
    dense = export_model(model, tmp_path / "m.pt", "dense")
    half = export_model(model, tmp_path / "m16.sparse", "sparse", half=True)
    assert half < sparse < 0.75 * dense


def test_onnx_matches_torch(pruned, tmp_path) -> None:
    import onnxruntime as ort

    model, _ = pruned
    export_model(model, tmp_path / "m.onnx", "onnx", img_size=64)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    x = torch.rand(2, 3, 64, 64)
    (y,) = session.run(None, {"images": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(y, model(x).numpy(), rtol=1e-4, atol=1e-4)
    assert not model.training


def test_export_command(pruned, tmp_path, capsys) -> None:
    model, masks = pruned
    save_checkpoint(tmp_path / "ticket.pt", model, masks=masks, metadata={"img_size": 64})
    for fmt in ("sparse", "dense", "onnx"):
        out = tmp_path / f"out.{fmt}"
        assert main(["export", str(tmp_path / "ticket.pt"), str(out), "--format", fmt]) == 0
        assert out.is_file() and f"({fmt}," in capsys.readouterr().out
    assert main(["export", str(tmp_path / "none.pt"), str(tmp_path / "x")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="exported model not found"):
        load_exported(tmp_path / "missing.sparse")


def test_prune_command(demo_spec, tmp_path, capsys) -> None:
    args = ["prune", "lth", "yolov3-tiny", "--data", str(demo_spec), "--img-size", "64",
            "--epochs", "1", "--batch", "8", "--accumulate", "1", "--width", "0.25",
            "--rounds", "1", "--rate", "0.5", "--rewind-epoch", "0", "--out", str(tmp_path),
            "--quiet"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| 1 | 0.5000 |" in out and (tmp_path / "ticket.pt").is_file()
    # the same command again resumes the finished run; other settings are refused, not
    # silently answered with the old run's ticket
    ticket = (tmp_path / "ticket.pt").stat().st_mtime_ns
    assert main(args) == 0 and "| 1 | 0.5000 |" in capsys.readouterr().out
    other = [a if a != "0.5" else "0.6" for a in args]
    assert main(other) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"yct prune: error: {tmp_path / 'run_settings.json'}: {tmp_path} holds a run "
                   "started with other settings (lth.rate: 0.5 then, 0.6 now); run it with "
                   "its own settings to resume it, or choose another --out")  # fmt: skip
    assert (tmp_path / "ticket.pt").stat().st_mtime_ns == ticket
    assert main(["prune", "lth", "yolov3-tiny", "--data", str(demo_spec), "--rate", "1.3"]) == 2
    assert "prune rate must be in (0, 1), got 1.3" in capsys.readouterr().err
    config = tmp_path / "cfg.yaml"
    config.write_text("lth: {rate: 0.2, rouns: 3}\n")
    assert (
        main(["prune", "lth", "yolov3-tiny", "--data", str(demo_spec), "--config", str(config)])
        == 2
    )
    assert "lth: unknown key 'rouns'" in capsys.readouterr().err
