"""LTH and CS: exact prune counts, zeros that stay zero, rewinding, schedules, resume."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from tests.yolo.test_engine import Crash, _config
from yolo.callbacks import Callback
from yolo.compress.cs import CSConfig, SoftMaskCallback, run_cs
from yolo.compress.lth import LTHConfig, prune_by_magnitude, run_lth
from yolo.compress.masks import MaskCallback, prunable_parameters, sparsity
from yolo.compress.registry import get_method
from yolo.engine import Trainer
from yolo.io import load_checkpoint, save_checkpoint
from yolo.zoo import create_model


def test_prunable_set_excludes_biases_bn_and_prediction_convs() -> None:
    model = create_model("yolov3-tiny", num_classes=2, width=0.25)
    names = list(prunable_parameters(model))
    assert all(n.endswith(".weight") and ".bn." not in n for n in names)
    assert "blocks.15.conv.weight" not in names and "blocks.22.conv.weight" not in names
    assert "blocks.0.conv.weight" in names
    assert "blocks.15.conv.weight" in prunable_parameters(model, include_prediction=True)
    assert "blocks.0.conv.weight" not in prunable_parameters(model, ignored_layers=[0])
    nano = create_model("yolo-nano", num_classes=2, width=0.25)
    assert "blocks.9.fc1.weight" in prunable_parameters(nano)  # FCA linear layers too
    with pytest.raises(ValueError, match="ignored_layers: 99 is not a block"):
        prunable_parameters(model, ignored_layers=[99])


def test_local_pruning_counts_over_rounds_with_ties() -> None:
    weights = {"a": torch.tensor([3.0, 1, 1, 1, 2, 5, 1, 4]), "b": torch.arange(1.0, 12.0)}
    masks = {k: torch.ones_like(v, dtype=torch.bool) for k, v in weights.items()}
    remaining = {"a": 8, "b": 11}
    for _ in range(4):
        masks = prune_by_magnitude(weights, masks, 0.3, "local")
        for k in weights:
            remaining[k] -= math.floor(0.3 * remaining[k])
            assert int(masks[k].sum()) == remaining[k]
    # first round in 'a': floor(0.3 * 8) = 2 of the four tied 1s, the lowest positions first
    first = prune_by_magnitude(weights, {k: torch.ones_like(v, dtype=torch.bool)
                                         for k, v in weights.items()}, 0.3, "local")  # fmt: skip
    assert first["a"].tolist() == [True, False, False, True, True, True, True, True]


def test_global_pruning_pools_tensors_and_breaks_ties_by_order() -> None:
    weights = {"a": torch.tensor([1.0, 1, 9]), "b": torch.tensor([1.0, 0.5, 9, 9])}
    masks = {k: torch.ones_like(v, dtype=torch.bool) for k, v in weights.items()}
    new = prune_by_magnitude(weights, masks, 0.5, "global")  # floor(3.5) = 3
    assert new["b"].tolist() == [True, False, True, True]  # 0.5 goes first
    assert new["a"].tolist() == [False, False, True]  # then the tied 1s of 'a' (earlier)
    total = 7
    for _ in range(3):
        before = sum(int(m.sum()) for m in new.values())
        new = prune_by_magnitude(weights, new, 0.5, "global")
        assert sum(int(m.sum()) for m in new.values()) == before - math.floor(0.5 * before)
    assert total == 7


@pytest.mark.parametrize("scope", ["local", "global"])
def test_pruning_selects_what_a_stable_sort_would(scope) -> None:
    """The selection (kthvalue, ties by position) against the definition: a stable sort of
    the remaining weights, the first floor(rate * remaining) removed; few distinct values, so
    ties straddle the cut."""
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        weights = {
            k: torch.randint(-3, 4, (int(n),), generator=generator).float()
            for k, n in zip("abc", torch.randint(1, 30, (3,), generator=generator))
        }
        masks = {k: torch.rand(v.shape, generator=generator) > 0.3 for k, v in weights.items()}
        rate = float(torch.rand(1, generator=generator))
        new = prune_by_magnitude(weights, masks, rate, scope)
        groups = [[k] for k in weights] if scope == "local" else [list(weights)]
        expected = {k: m.clone() for k, m in masks.items()}
        for group in groups:
            alive = [(k, i) for k in group for i in masks[k].nonzero().squeeze(1).tolist()]
            values = torch.tensor([abs(weights[k][i].item()) for k, i in alive])
            order = torch.sort(values, stable=True).indices[: math.floor(rate * len(alive))]
            for position in order.tolist():
                k, i = alive[position]
                expected[k][i] = False
        assert all(torch.equal(new[k], expected[k]) for k in weights)


class ZeroCheck(Callback):
    """Asserts after every step that masked weights are exactly zero in model and EMA."""

    def __init__(self, masks) -> None:
        self.expected, self.checked = masks, 0

    def after_step(self, trainer) -> None:
        for model in (trainer.model, trainer.ema.model):
            params = dict(model.named_parameters())
            for name, mask in self.expected.items():
                assert torch.all(params[name][~mask] == 0), name
        self.checked += 1


def test_pruned_weights_stay_exactly_zero_with_ema_and_weight_decay(demo_spec, tmp_path) -> None:
    model = create_model("yolov3-tiny", num_classes=10, width=0.25)
    masks = {k: torch.rand_like(p) > 0.5 for k, p in prunable_parameters(model).items()}
    check = ZeroCheck(masks)
    trainer = Trainer(
        _config(demo_spec, tmp_path, epochs=1, accumulate=1),
        model=model,
        callbacks=[MaskCallback(masks), check],
        progress=False,
        log=lambda _: None,
    )
    assert trainer.hyp.weight_decay > 0 and trainer.ema is not None
    trainer.fit()
    assert check.checked == 6
    saved = load_checkpoint(tmp_path / "last.pt")
    assert set(saved.masks) == set(masks) and all(
        torch.equal(saved.masks[k], masks[k]) for k in masks
    )
    assert sparsity(saved.model) == pytest.approx(
        1 - sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())
    )


class RoundSpy(Callback):
    """Records the weights of every round: at epoch-0 start and at the end of epoch 0."""

    def __init__(self) -> None:
        self.start, self.after_first = {}, {}

    def on_epoch_start(self, trainer, epoch) -> None:
        if epoch == 0:
            self.start[trainer.out.name] = {
                k: v.clone() for k, v in trainer.model.state_dict().items()
            }

    def on_epoch_end(self, trainer, epoch, metrics) -> None:
        if epoch == 0:
            self.after_first[trainer.out.name] = {
                k: v.clone() for k, v in trainer.model.state_dict().items()
            }


def test_lth_rewinds_exactly_to_the_rewind_epoch_under_the_mask(demo_spec, tmp_path) -> None:
    spy = RoundSpy()
    reports = run_lth(_config(demo_spec, tmp_path, epochs=2), LTHConfig(rate=0.5, rounds=2, rewind_epoch=1),
                      callbacks=[spy], progress=False, log=lambda _: None)  # fmt: skip
    assert [r["remaining"] for r in reports] == pytest.approx([1.0, 0.5, 0.25], abs=1e-3)
    assert reports[1]["params"] < reports[0]["params"] and reports[2]["macs"] < reports[0]["macs"]
    rewind = spy.after_first["round_00"]  # = the weights at the start of epoch 1
    masks = load_checkpoint(tmp_path / "round_01" / "last.pt").masks
    for name, value in spy.start["round_01"].items():
        expected = rewind[name] * masks[name] if name in masks else rewind[name]
        assert torch.equal(value, expected), name
    ticket = load_checkpoint(tmp_path / "ticket.pt")
    kept = sum(int(v.sum()) for v in ticket.masks.values()) / sum(
        v.numel() for v in ticket.masks.values()
    )
    assert kept == pytest.approx(0.25, abs=1e-3) and ticket.metadata["method"] == "lth"


def test_lth_resumes_mid_round_with_the_same_masks(demo_spec, tmp_path) -> None:
    lth = LTHConfig(rate=0.5, rounds=1, rewind_epoch=0)
    whole = run_lth(_config(demo_spec, tmp_path / "whole"), lth, progress=False, log=lambda _: None)

    class CrashInRound1(Crash):
        def on_report(self, trainer, metrics) -> None:
            if trainer.out.name == "round_01":
                super().on_report(trainer, metrics)

    with pytest.raises(KeyboardInterrupt):
        run_lth(_config(demo_spec, tmp_path / "cut"), lth, callbacks=[CrashInRound1(0)],
                progress=False, log=lambda _: None)  # fmt: skip
    resumed = run_lth(_config(demo_spec, tmp_path / "cut"), lth, progress=False, log=lambda _: None)
    assert [r["params"] for r in resumed] == [r["params"] for r in whole]
    a = load_checkpoint(tmp_path / "whole" / "ticket.pt")
    b = load_checkpoint(tmp_path / "cut" / "ticket.pt")
    assert all(torch.equal(a.masks[k], b.masks[k]) for k in a.masks)
    for (name, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(x, y), name


def test_lth_without_dense_round_prunes_the_start_and_rewinds_to_it(demo_spec, tmp_path) -> None:
    start = create_model("yolov3-tiny", num_classes=10, width=0.25)
    save_checkpoint(tmp_path / "start.pt", start)
    initial = {k: v.clone() for k, v in start.state_dict().items()}
    train = _config(demo_spec, tmp_path / "run", weights=str(tmp_path / "start.pt"))
    lth = LTHConfig(rate=0.5, rounds=2, rewind_epoch=0, dense_round=False)
    spy = RoundSpy()
    reports = run_lth(train, lth, callbacks=[spy], progress=False, log=lambda _: None)
    assert [r["round"] for r in reports] == [1.0, 2.0]
    assert [r["remaining"] for r in reports] == pytest.approx([0.5, 0.25], abs=1e-3)
    assert not (tmp_path / "run" / "round_00").exists() and set(spy.start) == {
        "round_01",
        "round_02",
    }
    params = prunable_parameters(start)
    first = prune_by_magnitude({k: p.detach() for k, p in params.items()},
                               {k: torch.ones_like(p, dtype=torch.bool) for k, p in params.items()},
                               0.5, "global")  # fmt: skip
    for round_name in ("round_01", "round_02"):  # every round restarts from the start, masked
        masks = load_checkpoint(tmp_path / "run" / round_name / "last.pt").masks
        for name, value in spy.start[round_name].items():
            expected = initial[name] * masks[name] if name in masks else initial[name]
            assert torch.equal(value, expected), (round_name, name)
    assert all(torch.equal(load_checkpoint(tmp_path / "run" / "round_01" / "last.pt").masks[k],
                           first[k]) for k in first)  # fmt: skip
    method = get_method("lth")
    assert method.reports(train, lth) == 4 and method.first_telling_report(train, lth) == 1
    dense = LTHConfig(rate=0.5, rounds=2, rewind_epoch=0)
    assert method.reports(train, dense) == 6 and method.first_telling_report(train, dense) == 3
    # the dense round measures the dense model it saves: a deliverable, though no telling one
    assert method.first_delivering_report(train, dense) == 1
    cs = get_method("cs")  # its search measures the soft-gated model: its ticket delivers
    cs_config = CSConfig(rounds=1, rewind_epoch=0)
    assert cs.first_delivering_report(train, cs_config) == train.epochs + 1
    assert cs.first_delivering_report(train, cs_config) == cs.first_telling_report(train, cs_config)


def test_lth_without_dense_round_needs_a_trained_start_and_rewind_epoch_0(
    demo_spec, tmp_path
) -> None:
    lth = LTHConfig(rate=0.5, rounds=1, rewind_epoch=0, dense_round=False)
    with pytest.raises(ValueError, match=r"dense_round: false .* needs weights"):
        run_lth(_config(demo_spec, tmp_path), lth, progress=False, log=lambda _: None)
    save_checkpoint(tmp_path / "start.pt", create_model("yolov3-tiny", num_classes=10, width=0.25))
    late = LTHConfig(rate=0.5, rounds=1, rewind_epoch=1, dense_round=False)
    with pytest.raises(ValueError, match="rewind_epoch must be 0 with dense_round: false"):
        get_method("lth").validate(_config(demo_spec, tmp_path, weights=str(tmp_path / "start.pt")),
                                   late)  # fmt: skip
    assert not (tmp_path / "round_01").exists()


def test_cs_penalty_and_temperature_schedule() -> None:
    model = create_model("yolov3-tiny", num_classes=2, width=0.25)
    cs = SoftMaskCallback(CSConfig(rounds=2, final_temperature=100, penalty=1e-3), epochs=4)
    cs.setup(SimpleNamespace(model=model, ema=None, device=torch.device("cpu")))
    count = sum(s.numel() for s in cs.scores.values())
    # at s = mask_init = 0 every gate is sigmoid(0) = 0.5, so the penalty is 1e-3 * 0.5 * count
    assert cs.loss_terms(None, None)["mask_l1"].item() == pytest.approx(
        1e-3 * 0.5 * count, rel=1e-5
    )
    with torch.no_grad():
        for s in cs.scores.values():
            s.fill_(0.01)
    metrics = {}
    cs.on_epoch_end(None, 0, metrics)  # 2 epochs per round: beta = 100 ** (1/2)
    assert cs.beta == pytest.approx(10.0) and metrics["temperature"] == pytest.approx(10.0)
    cs.on_epoch_end(None, 1, metrics)  # end of round 1: s <- min(beta * s, 0) = 0, beta -> 1
    assert cs.beta == 1.0
    assert all(torch.all(s == 0) for s in cs.scores.values())
    with torch.no_grad():
        for s in cs.scores.values():
            s.fill_(-0.02)
    cs.on_epoch_end(None, 2, metrics)
    cs.on_epoch_end(None, 3, metrics)  # the last round ends without the clamp
    assert cs.beta == pytest.approx(100.0) and metrics["sparsity"] == 1.0
    # the gated forward: weight * sigmoid(beta * s) / sigmoid(0)
    x = torch.rand(1, 3, 64, 64)
    conv = model.blocks[0].conv
    expected = torch.nn.functional.conv2d(
        x, conv.weight * torch.sigmoid(torch.tensor(-2.0)) * 2, None, 1, 1
    )
    assert torch.allclose(conv(x), expected, atol=1e-6)


def test_a_higher_lambda_gives_a_sparser_ticket(demo_spec, tmp_path) -> None:
    kept = []
    for penalty in (0.0, 3e-4):
        (report,) = run_cs(_config(demo_spec, tmp_path / str(penalty), epochs=3, accumulate=1),
                           CSConfig(rounds=1, final_temperature=50, penalty=penalty, rewind_epoch=1),
                           progress=False, log=lambda _: None)  # fmt: skip
        kept.append(report["remaining"])
    assert kept[1] < kept[0] - 0.05, kept
