"""The sparse model file: exact round trip, and smaller than dense once weights are zero."""

from __future__ import annotations

import pytest
import torch

from yolo.compress import sparse_format
from yolo.zoo import create_model, model_from_cfg_text


def _prune_half(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("conv.weight"):
                p.mul_(torch.rand_like(p) > 0.5)


@pytest.mark.parametrize("half", [False, True])
def test_round_trip_loads_an_identical_model(tmp_path, half: bool) -> None:
    model = create_model("yolov3-mobile", num_classes=3, width=0.25)
    _prune_half(model)
    path = tmp_path / "m.sparse"
    size = sparse_format.write(path, model.cfg_text, model.state_dict(), half=half)
    assert size == path.stat().st_size
    cfg_text, state = sparse_format.read(path)
    restored = model_from_cfg_text(cfg_text)
    restored.load_state_dict(state)
    for key, value in model.state_dict().items():
        assert state[key].dtype == value.dtype, key
        expected = value.half().to(value.dtype) if half and value.is_floating_point() else value
        assert torch.equal(state[key], expected), key
    if not half:
        model.eval(), restored.eval()
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            assert torch.equal(model(x), restored(x))


def test_sparse_tensors_use_the_bitmask_and_shrink() -> None:
    model = create_model("yolov3-tiny", num_classes=2, width=0.5)
    dense = len(sparse_format.encode(model.cfg_text, model.state_dict()))
    _prune_half(model)
    sparse = len(sparse_format.encode(model.cfg_text, model.state_dict()))
    # half the conv weights gone: values halve, plus 1 bit per position
    conv = sum(p.numel() for n, p in model.named_parameters() if n.endswith("conv.weight"))
    assert sparse < dense - conv * 4 * 0.4
    assert sparse > dense - conv * 4 * 0.5


def test_tensor_sizes_choose_the_smaller_encoding() -> None:
    dense_tensor = {"w": torch.ones(64)}
    sparse_tensor = {"w": torch.zeros(64)}
    header = len(sparse_format.encode("", {}))
    one_dense = len(sparse_format.encode("", dense_tensor)) - header
    one_sparse = len(sparse_format.encode("", sparse_tensor)) - header
    meta = 2 + 1 + 3 + 4 + 1  # name len, name, dtype codes + ndim, shape, encoding
    assert one_dense == meta + 64 * 4
    assert one_sparse == meta + 4 + 64 // 8


def test_corrupt_files_are_reported(tmp_path) -> None:
    with pytest.raises(ValueError, match="not a yct sparse model file"):
        sparse_format.decode(b"garbage!garbage!")
    data = sparse_format.encode("[net]\n", {"w": torch.ones(8)})
    with pytest.raises(ValueError, match="truncated"):
        sparse_format.decode(data[:-3])
    with pytest.raises(FileNotFoundError, match="sparse model file not found"):
        sparse_format.read(tmp_path / "none.sparse")
