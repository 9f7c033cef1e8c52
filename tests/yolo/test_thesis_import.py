"""Checkpoints in the seed thesis' format come in unchanged: ``yct import``.

The thesis checkpoints are built here from our models under the thesis' own module names
(read from its ``models.py`` / ``utils/layers.py``: ``module_list.<i>.Conv2d``,
``.BatchNorm2d``, ``.PEP.conv.0``, ``.PEP.sepconv.3``, ``.FCA.fc.2``,
``.MobileBottleneck.conv.5.fc.0`` …), saved the way its ``train.py`` / ``prune.py`` save
them, imported, and compared.
"""

from __future__ import annotations

import collections
import json

import pytest
import torch
from torch import nn

from yct.cli import main
from yolo.config import format_cfg, parse_cfg
from yolo.io import load_checkpoint, read_darknet_weights
from yolo.layers import DarknetMaxPool
from yolo.model import Darknet
from yolo.zoo import create_model

# our sub-module path -> the thesis' one, per block section (and mobile's two layouts)
_CONV = {"conv": "Conv2d", "bn": "BatchNorm2d"}
_SEPCONV = {"block.expand.conv": "sepconv.0", "block.expand.bn": "sepconv.1",
            "block.depthwise.conv": "sepconv.3", "block.depthwise.bn": "sepconv.4",
            "block.project.conv": "sepconv.6", "block.project.bn": "sepconv.7"}  # fmt: skip
THESIS_NAMES = {
    "convolutional": _CONV,
    "softconv": _CONV,  # SoftMaskedConv2d is registered as 'Conv2d' too
    "PEP": {"project_in.conv": "PEP.conv.0", "project_in.bn": "PEP.conv.1",
            **{k: f"PEP.{v}" for k, v in _SEPCONV.items()}},
    "EP": {k: f"EP.{v}" for k, v in _SEPCONV.items()},
    "FCA": {"fc1": "FCA.fc.0", "fc2": "FCA.fc.2"},
    "mobile": {"depthwise.conv": "MobileBottleneck.conv.0",
               "depthwise.bn": "MobileBottleneck.conv.1",
               "se.fc1": "MobileBottleneck.conv.3.fc.0", "se.fc2": "MobileBottleneck.conv.3.fc.2",
               "project.conv": "MobileBottleneck.conv.4",
               "project.bn": "MobileBottleneck.conv.5"},
    "mobile-expanded": {"expand.conv": "MobileBottleneck.conv.0",
                        "expand.bn": "MobileBottleneck.conv.1",
                        "depthwise.conv": "MobileBottleneck.conv.3",
                        "depthwise.bn": "MobileBottleneck.conv.4",
                        "se.fc1": "MobileBottleneck.conv.5.fc.0",
                        "se.fc2": "MobileBottleneck.conv.5.fc.2",
                        "project.conv": "MobileBottleneck.conv.7",
                        "project.bn": "MobileBottleneck.conv.8"},
}  # fmt: skip


def thesis_key(model: Darknet, key: str) -> str:
    _, index, rest = key.split(".", 2)
    module = model.blocks[int(index)]
    section = model.cfg.blocks[int(index)].section
    if section == "mobile" and getattr(module, "expand", None) is not None:
        section = "mobile-expanded"
    path, leaf = rest.rsplit(".", 1)
    return f"module_list.{index}.{THESIS_NAMES[section][path]}.{leaf}"


def thesis_checkpoint(model: Darknet, path, *, mask: dict[str, torch.Tensor] | None = None,
                      bare: bool = False) -> None:  # fmt: skip
    state = collections.OrderedDict(
        (thesis_key(model, k), v.clone()) for k, v in model.state_dict().items()
    )
    if bare:  # what its prune.py writes as model_it_N.pt
        torch.save(state, path)
        return
    payload = {"epoch": 272, "best_fitness": torch.tensor(0.41), "training_results": "…",
               "model": state, "optimizer": None}  # fmt: skip
    if mask is not None:  # an LTH run: a ParameterDict's state, '-' for '.'
        payload["mask"] = collections.OrderedDict(
            (thesis_key(model, k).replace(".", "-"), m.float()) for k, m in mask.items()
        )
        payload["iteration"] = 2
    torch.save(payload, path)


def _trained_like(name: str, classes: int = 3) -> Darknet:
    """A model whose BatchNorm statistics are not the defaults, so that a misplaced tensor
    shows in the outputs."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=classes, width=0.5)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model.eval()


def _thesis_reference(model: Darknet) -> Darknet:
    """The same weights under the thesis' max-pool padding and BatchNorm eps (what its
    code computes: tools/thesis_parity.py checks that against the thesis' own Darknet)."""
    thesis_net = "channels=3\nmaxpool_padding=zero\nbatchnorm_eps=1e-05"
    cfg = parse_cfg(format_cfg(model.cfg).replace("channels=3", thesis_net))
    reference = Darknet(cfg).eval()
    reference.load_state_dict(model.state_dict())
    return reference


@pytest.mark.parametrize("name", ["yolov3-tiny", "yolo-nano", "yolov3-mobile"])
def test_a_thesis_checkpoint_imports_with_equal_outputs(name, tmp_path, capsys) -> None:
    model = _trained_like(name)
    cfg_path = tmp_path / "thesis.cfg"
    cfg_path.write_text(format_cfg(model.cfg))  # the cfg the thesis trained with
    thesis_checkpoint(model, tmp_path / "best.pt")
    assert main(["import", str(tmp_path / "best.pt"), "--cfg", str(cfg_path), "--img-size", "96",
                 "-o", str(tmp_path / "model.pt")]) == 0  # fmt: skip
    assert "maxpool_padding=zero" in capsys.readouterr().out
    imported = load_checkpoint(tmp_path / "model.pt")
    assert "maxpool_padding=zero\nbatchnorm_eps=1e-05" in imported.model.cfg_text
    assert {m.eps for m in imported.model.modules() if isinstance(m, nn.BatchNorm2d)} == {1e-5}
    assert imported.metadata["thesis_epoch"] == 272
    assert imported.metadata["thesis_best_fitness"] == pytest.approx(0.41)
    assert imported.metadata["img_size"] == 96 and imported.metadata["names"][0] == "class0"
    x = torch.rand(2, 3, 96, 96) * 2 - 0.5
    with torch.no_grad():
        want = _thesis_reference(model)(x, decode=False)
        got = imported.model.eval()(x, decode=False)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


def test_the_thesis_maxpool_is_the_ultralytics_port_padding() -> None:
    """What the thesis' create_modules builds for [maxpool]: ZeroPad2d((0, 1, 0, 1)) before
    a size-2 stride-1 pool, PyTorch's symmetric (size - 1) // 2 padding otherwise."""
    x = torch.randn(2, 4, 13, 13) - 1.0  # mostly negative: zero padding shows at the edge
    for size, stride in ((2, 1), (2, 2), (3, 1), (5, 1), (3, 2)):
        port = nn.MaxPool2d(size, stride, padding=(size - 1) // 2)
        thesis = (
            nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), port) if (size, stride) == (2, 1) else port
        )
        ours = DarknetMaxPool(size, stride, zero_padding=True)
        assert torch.equal(ours(x), thesis(x)), (size, stride)
    edge = DarknetMaxPool(2, 1)(x)
    assert not torch.equal(edge, DarknetMaxPool(2, 1, zero_padding=True)(x))
    assert torch.equal(
        edge[..., :-1, :-1], DarknetMaxPool(2, 1, zero_padding=True)(x)[..., :-1, :-1]
    )


def test_lth_masks_become_the_projects_masks_and_a_bare_state_dict_imports(tmp_path) -> None:
    model = _trained_like("yolov3-tiny")
    weight = "blocks.2.conv.weight"
    pruned = torch.rand_like(model.state_dict()[weight]) > 0.5
    masks = {weight: pruned, "blocks.4.conv.weight": torch.ones_like(
        model.state_dict()["blocks.4.conv.weight"], dtype=torch.bool)}  # fmt: skip
    cfg_path = tmp_path / "t.cfg"
    cfg_path.write_text(format_cfg(model.cfg))
    thesis_checkpoint(model, tmp_path / "lth.pt", mask=masks)
    assert main(["import", str(tmp_path / "lth.pt"), "--cfg", str(cfg_path), "-o",
                 str(tmp_path / "m.pt")]) == 0  # fmt: skip
    imported = load_checkpoint(tmp_path / "m.pt")
    assert list(imported.masks) == [weight]  # the all-ones mask prunes nothing
    assert torch.equal(imported.masks[weight], pruned)
    thesis_checkpoint(model, tmp_path / "model_it_1.pt", bare=True)
    assert main(["import", str(tmp_path / "model_it_1.pt"), "--cfg", str(cfg_path), "-o",
                 str(tmp_path / "bare.pt")]) == 0  # fmt: skip
    bare = load_checkpoint(tmp_path / "bare.pt").model.state_dict()
    assert all(torch.equal(bare[k], v) for k, v in model.state_dict().items())


def test_an_import_exports_back_to_darknet_weights(tmp_path, demo_spec, capsys) -> None:
    model = _trained_like("yolov3-tiny", classes=10)  # the demo set's digits
    cfg_path = tmp_path / "t.cfg"
    cfg_path.write_text(format_cfg(model.cfg))
    thesis_checkpoint(model, tmp_path / "best.pt")
    assert main(["import", str(tmp_path / "best.pt"), "--cfg", str(cfg_path), "--data",
                 str(demo_spec), "-o", str(tmp_path / "m.pt")]) == 0  # fmt: skip
    assert load_checkpoint(tmp_path / "m.pt").metadata["names"][0] == "zero"  # the data's
    assert main(["export", str(tmp_path / "m.pt"), str(tmp_path / "m.weights"),
                 "--format", "darknet"]) == 0  # fmt: skip
    written = (tmp_path / "m.cfg").read_text()
    assert "maxpool_padding" not in written  # darknet's dialect, which the thesis parses
    again = Darknet(parse_cfg(written))
    read_darknet_weights(again, tmp_path / "m.weights")
    assert all(torch.equal(again.state_dict()[k], v) for k, v in model.state_dict().items()
               if not k.endswith("num_batches_tracked"))  # fmt: skip


class Opaque:  # needs code to unpickle
    pass


def _cli_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("yct import: error: "), err
    return err


def test_import_refuses_another_cfg_code_and_foreign_files(tmp_path, capsys) -> None:
    tiny = _trained_like("yolov3-tiny")
    thesis_checkpoint(tiny, tmp_path / "tiny.pt")
    nano_cfg = tmp_path / "nano.cfg"
    nano_cfg.write_text(format_cfg(_trained_like("yolo-nano").cfg))
    err = _cli_error(capsys, ["import", str(tmp_path / "tiny.pt"), "--cfg", str(nano_cfg),
                              "-o", str(tmp_path / "x.pt")])  # fmt: skip
    assert "tiny.pt: block " in err and "a checkpoint of another cfg?" in err
    torch.save({"model": Opaque()}, tmp_path / "code.pt")
    err = _cli_error(capsys, ["import", str(tmp_path / "code.pt"), "--cfg", str(nano_cfg),
                              "-o", str(tmp_path / "x.pt")])  # fmt: skip
    assert "needs code to unpickle" in err
    torch.save({"weights": [1, 2]}, tmp_path / "other.pt")
    err = _cli_error(capsys, ["import", str(tmp_path / "other.pt"), "--cfg", str(nano_cfg),
                              "-o", str(tmp_path / "x.pt")])  # fmt: skip
    assert "not a thesis checkpoint" in err
    err = _cli_error(capsys, ["import", str(tmp_path / "none.pt"), "--cfg", str(nano_cfg),
                              "-o", str(tmp_path / "x.pt")])  # fmt: skip
    assert "thesis checkpoint not found" in err
    assert not (tmp_path / "x.pt").exists()
    json.dumps(err)  # a plain line


def test_maxpool_padding_round_trips_and_is_checked(write_cfg) -> None:
    from yolo.errors import CfgError
    from yolo.zoo import zoo_cfg_text

    text = zoo_cfg_text("yolov3-tiny").replace("channels=3", "channels=3\nmaxpool_padding=zero")
    cfg = parse_cfg(text)
    assert cfg.net.maxpool_padding == "zero"
    assert format_cfg(parse_cfg(format_cfg(cfg))) == format_cfg(cfg)
    assert parse_cfg(format_cfg(cfg)).net.maxpool_padding == "zero"
    plain = parse_cfg(zoo_cfg_text("yolov3-tiny"))
    assert plain.net.maxpool_padding == "edge" and "maxpool_padding" not in format_cfg(plain)
    with pytest.raises(CfgError, match=r"\[net\]: maxpool_padding: must be one of edge, zero, "
                       r"got 'inf'"):  # fmt: skip
        parse_cfg(text.replace("maxpool_padding=zero", "maxpool_padding=inf"))


def test_a_continuous_sparsification_ticket_imports_as_the_thesis_evaluates_it(tmp_path) -> None:
    """[softconv] (SoftMaskedConv2d: weight, init_weight, mask_weight, then its BatchNorm):
    a ticket's conv uses weight · (mask_weight > 0) / sigmoid(mask_initial_value)."""
    from yolo.zoo import zoo_cfg_text

    text = zoo_cfg_text("yolov3-tiny").replace("channels=3", "channels=3\nmask_initial_value=-0.1")
    text = text.replace("[convolutional]", "[softconv]", 2)  # blocks 0 and 2
    cfg = parse_cfg(text, source="soft.cfg")
    assert [b.section for b in cfg.blocks[:3]] == ["softconv", "maxpool", "softconv"]
    model = Darknet(cfg).eval()
    torch.manual_seed(1)
    logits = {i: torch.randn_like(model.blocks[i].conv.weight) for i in (0, 2)}
    state = collections.OrderedDict()
    for key, value in model.state_dict().items():
        index = int(key.split(".")[1])
        name = thesis_key(model, key)
        state[name] = value.clone()
        if index in logits and key.endswith("conv.weight"):  # SoftMaskedConv2d's own tensors
            state[name.replace(".weight", ".init_weight")] = torch.zeros_like(value)
            state[name.replace(".weight", ".mask_weight")] = logits[index]
    torch.save({"epoch": 3, "model": state}, tmp_path / "cs.pt")
    (tmp_path / "soft.cfg").write_text(text)
    assert main(["import", str(tmp_path / "cs.pt"), "--cfg", str(tmp_path / "soft.cfg"), "-o",
                 str(tmp_path / "m.pt")]) == 0  # fmt: skip
    imported = load_checkpoint(tmp_path / "m.pt")
    assert imported.model.cfg.blocks[0].section == "softconv"  # the section round-trips
    scale = 1 / torch.sigmoid(torch.tensor(-0.1))
    for i in (0, 2):
        key = f"blocks.{i}.conv.weight"
        assert torch.equal(imported.masks[key], logits[i] > 0)
        want = model.state_dict()[key] * (logits[i] > 0) * scale
        assert torch.allclose(imported.model.state_dict()[key], want, atol=1e-6)
    others = [k for k in model.state_dict() if not k.startswith(("blocks.0.conv", "blocks.2.conv"))]
    assert all(torch.equal(imported.model.state_dict()[k], model.state_dict()[k]) for k in others)
