"""Darknet .weights and checkpoints: round trips that reproduce outputs bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolo.io import (
    load_checkpoint,
    read_darknet_weights,
    save_checkpoint,
    write_darknet_weights,
)
from yolo.zoo import ZOO, create_model


def _randomise(model: torch.nn.Module) -> None:
    """Give BN statistics non-trivial values so a round trip that skipped them would fail."""
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.uniform_(-0.5, 0.5)
            elif name.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)


def _eval_output(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("name", ZOO)
def test_darknet_weights_round_trip_bit_for_bit(name: str, tmp_path) -> None:
    source = create_model(name, num_classes=3, width=0.25)
    _randomise(source)
    path = tmp_path / "model.weights"
    write_darknet_weights(source, path, seen=1234)
    target = create_model(name, num_classes=3, width=0.25)
    assert read_darknet_weights(target, path) == 1234
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(_eval_output(source, x), _eval_output(target, x))
    for (k, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        if a.is_floating_point():
            assert torch.equal(a, b), k


def test_darknet_file_layout_is_darknets(tmp_path) -> None:
    model = create_model("yolov3-tiny", num_classes=2, width=0.25)
    path = tmp_path / "tiny.weights"
    write_darknet_weights(model, path, seen=7)
    header = np.fromfile(path, dtype="<i4", count=3)
    assert header.tolist() == [0, 2, 5]
    values = np.fromfile(path, dtype="<f4", offset=20)
    first = model.blocks[0]
    expected = (
        torch.cat(
            [
                first.bn.bias,
                first.bn.weight,
                first.bn.running_mean,
                first.bn.running_var,
                first.conv.weight.flatten(),
            ]
        )
        .detach()
        .numpy()
    )
    assert np.array_equal(values[: expected.size], expected)
    assert values.size == sum(
        t.numel() for k, t in model.state_dict().items() if not k.endswith("num_batches_tracked")
    )


def test_darknet_weights_for_another_cfg_is_an_error(tmp_path) -> None:
    path = tmp_path / "m.weights"
    write_darknet_weights(create_model("yolov3-tiny", num_classes=2, width=0.25), path)
    with pytest.raises(ValueError, match=r"values after the header, but this cfg's weights are "
                       r"[\d,]+ \(darknet\), [\d,]+ \(thesis\); weights for another cfg"):  # fmt: skip
        read_darknet_weights(create_model("yolov3-tiny", num_classes=1, width=0.25), path)
    # with the layout given, where the file ends or what is left over is named
    with pytest.raises(ValueError, match="values left after the last block"):
        read_darknet_weights(create_model("yolov3-tiny", num_classes=1, width=0.25), path,
                             layout="darknet")  # fmt: skip
    with pytest.raises(ValueError, match="file ends while reading block"):
        read_darknet_weights(create_model("yolov3-tiny", num_classes=2, width=0.5), path,
                             layout="darknet")  # fmt: skip
    with pytest.raises(FileNotFoundError, match="darknet weights file not found"):
        read_darknet_weights(create_model("yolov3-tiny", num_classes=2), tmp_path / "x")


def test_darknet_cutoff_reads_the_backbone_only(tmp_path) -> None:
    source = create_model("yolov3-tiny", num_classes=2, width=0.25)
    _randomise(source)
    full = tmp_path / "full.weights"
    write_darknet_weights(source, full)
    # a backbone file: the first 13 blocks' values only
    target = create_model("yolov3-tiny", num_classes=2, width=0.25)
    count = sum(
        t.numel()
        for k, t in source.blocks[:13].state_dict().items()
        if not k.endswith("num_batches_tracked")
    )
    backbone = tmp_path / "backbone.weights"
    backbone.write_bytes(full.read_bytes()[: 20 + 4 * count])
    read_darknet_weights(target, backbone, cutoff=13)
    assert torch.equal(target.blocks[12].conv.weight, source.blocks[12].conv.weight)
    assert not torch.equal(target.blocks[13].conv.weight, source.blocks[13].conv.weight)


def test_checkpoint_round_trip(tmp_path) -> None:
    model = create_model("yolo-nano", num_classes=4, width=0.25)
    _randomise(model)
    mask = {"blocks.0.conv.weight": torch.rand_like(model.blocks[0].conv.weight) > 0.5}
    path = tmp_path / "ckpt.pt"
    save_checkpoint(
        path,
        model,
        masks=mask,
        metadata={"epoch": 3, "names": ["a", "b", "c", "d"]},
        extra={"optimizer": {"lr": 0.01}},
    )
    loaded = load_checkpoint(path)
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(_eval_output(model, x), _eval_output(loaded.model, x))
    assert loaded.model.cfg_text == model.cfg_text
    assert torch.equal(loaded.masks["blocks.0.conv.weight"], mask["blocks.0.conv.weight"])
    assert loaded.metadata == {"epoch": 3, "names": ["a", "b", "c", "d"]}
    assert loaded.extra == {"optimizer": {"lr": 0.01}}
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write left no temp file


def test_bad_checkpoints(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": 1}, foreign)
    with pytest.raises(ValueError, match="not a yct checkpoint"):
        load_checkpoint(foreign)
    model = create_model("yolov3-tiny", num_classes=2, width=0.25)
    path = tmp_path / "bad.pt"
    save_checkpoint(path, model)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"].pop("blocks.0.conv.weight")
    torch.save(payload, path)
    with pytest.raises(ValueError, match="state dict does not fit its cfg") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["yolo-nano", "yolov3-mobile", "yolov3-tiny"])
def test_the_thesis_weights_layout_holds_its_plain_convs_and_is_told_by_size(
    name, tmp_path
) -> None:
    """The seed thesis' save_weights writes [convolutional] blocks only: a Nano or Mobile
    file of it is shorter, read (from its size) into those blocks, the rest untouched."""
    from yolo.io import darknet_values

    source = create_model(name, num_classes=3, width=0.5)
    _randomise(source)
    path = tmp_path / "thesis.weights"
    write_darknet_weights(source, path, layout="thesis")
    plain = [i for i, b in enumerate(source.cfg.blocks) if b.section == "convolutional"]
    expected = sum(
        p.numel()
        for k, p in source.state_dict().items()
        if int(k.split(".")[1]) in plain and not k.endswith("num_batches_tracked")
    )
    assert path.stat().st_size == 20 + 4 * expected == 20 + 4 * darknet_values(source, "thesis")
    if name != "yolov3-tiny":  # every weighted block of tiny is a plain conv: one layout
        assert darknet_values(source, "thesis") < darknet_values(source)
    target = create_model(name, num_classes=3, width=0.5)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    read_darknet_weights(target, path)  # the layout told from the size
    for key, value in target.state_dict().items():
        block = int(key.split(".")[1])
        if key.endswith("num_batches_tracked"):
            continue
        want = source.state_dict()[key] if block in plain else before[key]
        assert torch.equal(value, want), key
