"""Distillation: each KD term on hand-made cases, hint pairs, and both methods in the engine."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from yolo.compress.distill import distill_callback, run_distill
from yolo.compress.gan_kd import (
    Discriminator,
    GANKDCallback,
    GANKDConfig,
    discriminator_loss,
    generator_loss,
    prediction_map,
)
from yolo.compress.kd import (
    KDConfig,
    bernoulli_kl,
    bounded_regression,
    box_error,
    categorical_kl,
    head_terms,
    hint_loss,
)
from yolo.compress.teacher import (
    adapter,
    candidate_pairs,
    check_pairs,
    format_pairs,
    parse_pairs,
)
from yolo.data.spec import load_spec
from yolo.engine import Trainer
from yolo.io import load_checkpoint, save_checkpoint
from yolo.loss import YoloLoss
from yolo.train_config import Hyp, TrainConfig
from yolo.zoo import create_model

# objects of 13 to 120 px at 128 px: every head of the models below gets some
TARGETS = torch.tensor([[0, 1, 0.30, 0.40, 0.30, 0.35], [1, 0, 0.70, 0.60, 0.10, 0.12],
                        [1, 2, 0.50, 0.50, 0.90, 0.95], [0, 2, 0.60, 0.20, 0.60, 0.50]])  # fmt: skip


def _raw(model, size=128):
    model.train()
    return model(torch.rand(2, 3, size, size))


# ---------------------------------------------------------------------- loss terms


def test_soft_and_regression_terms_are_zero_when_the_student_is_the_teacher() -> None:
    model = create_model("yolov3-tiny", num_classes=3, width=0.25)
    raw = _raw(model)
    loss = YoloLoss(model)
    for cls_function in ("sigmoid", "softmax"):
        config = KDConfig(cls_function=cls_function, temperature=2.0)
        for i, a in enumerate(loss.assignments(raw, TARGETS)):
            assert len(a.image)
            anchors = model.heads[i].anchors / model.head_strides[i]
            terms = head_terms(raw[i], raw[i].detach().clone(), a, anchors, config)
            for value in (terms.obj, terms.cls, terms.reg):
                assert abs(float(value.detach())) < 1e-6
    # and the identity-initialised adapter gives zero hint loss for equal features
    feature = torch.rand(2, 16, 4, 4)
    assert float(hint_loss(adapter(16, 16)(feature), feature).detach()) < 1e-10


def test_soft_terms_pull_the_student_towards_the_teacher() -> None:
    student = torch.tensor([1.0, -1.0], requires_grad=True)
    bernoulli_kl(student, torch.zeros(2)).sum().backward()
    assert student.grad[0] > 0 > student.grad[1]  # descent moves both logits towards 0
    logits = torch.tensor([[2.0, 0.0, 0.0]], requires_grad=True)
    categorical_kl(logits, torch.zeros(1, 3), temperature=3.0).sum().backward()
    assert logits.grad[0, 0] > 0 and logits.grad[0, 1] < 0
    assert float(bernoulli_kl(torch.tensor([0.3]), torch.tensor([0.3]))) == pytest.approx(0)
    # a student above the teacher's feature gets a positive gradient on the hint
    feature = torch.full((1, 2, 2, 2), 1.0, requires_grad=True)
    hint_loss(feature, torch.zeros(1, 2, 2, 2)).backward()
    assert (feature.grad > 0).all()


def test_bounded_regression_gate_opens_and_closes_at_the_margin() -> None:
    teacher = torch.tensor([0.2, 0.2, 0.2])
    margin = 0.1
    student = torch.tensor([0.2 + 0.05, 0.2 + 0.15, 0.2 - 0.3], requires_grad=True)
    loss = bounded_regression(student, teacher, margin)
    # only the second error exceeds the teacher's by more than the margin
    assert float(loss.detach()) == pytest.approx(0.35 / 3)
    loss.backward()
    assert student.grad.tolist() == pytest.approx([0.0, 1 / 3, 0.0])
    # exactly at the margin (dyadic numbers, no rounding): still closed; just above: open
    at = bounded_regression(torch.tensor([0.375]), torch.tensor([0.25]), 0.125)
    above = bounded_regression(torch.tensor([0.375 + 2**-20]), torch.tensor([0.25]), 0.125)
    assert float(at) == 0.0 and float(above) > 0.375
    # the gated error pulls the student's box towards the target (L2 and GIoU)
    target = torch.tensor([[0.5, 0.5, 2.0, 2.0]])
    box = torch.tensor([[0.9, 0.5, 2.0, 2.0]], requires_grad=True)
    bounded_regression(box_error(box, target, giou=False), torch.zeros(1), 1e-5).backward()
    assert box.grad[0, 0] > 0
    box.grad = None
    bounded_regression(box_error(box, target, giou=True), torch.zeros(1), 1e-5).backward()
    assert box.grad[0, 0] > 0


def test_kd_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="mu must be in"):
        KDConfig(mu=1.5)
    with pytest.raises(ValueError, match="cls_function must be one of sigmoid, softmax"):
        KDConfig(cls_function="tanh")
    with pytest.raises(ValueError, match="student block appears twice"):
        KDConfig(hints=((36, 12), (61, 12)))
    with pytest.raises(ValueError, match="d_kernel_size must be two odd sizes"):
        GANKDConfig(d_kernel_size=(2, 1))


# ---------------------------------------------------------------------- hint pairs


def test_candidate_pairs_are_stride_matched_and_include_the_seed_layers() -> None:
    teacher = create_model("yolov3", num_classes=3, width=0.25)
    for name in ("yolo-nano-leaky", "yolov3-mobile-leaky"):
        student = create_model(name, num_classes=3, width=0.25)
        candidates = candidate_pairs(teacher, student)
        assert {c.teacher for c in candidates} >= {36, 61, 79, 91}  # the seed's "fts"
        for c in candidates:
            assert teacher.shapes[c.teacher].stride == student.shapes[c.student].stride == c.stride
        check_pairs(teacher, student, [(c.teacher, c.student) for c in candidates], 96)


def test_bad_hint_pairs_are_one_line_errors_naming_both_blocks() -> None:
    teacher = create_model("yolov3", num_classes=3, width=0.25)
    student = create_model("yolo-nano-leaky", num_classes=3, width=0.25)
    with pytest.raises(ValueError, match=r"teacher block 36 is 64x12x12 but student block 27 "
                                         r"is \d+x3x3 at 96 px"):  # fmt: skip
        check_pairs(teacher, student, [(36, 27)], 96)
    with pytest.raises(ValueError, match="student block 400 does not exist"):
        check_pairs(teacher, student, [(36, 400)], 96)
    with pytest.raises(ValueError, match="teacher block 82 is a \\[yolo\\] head"):
        check_pairs(teacher, student, [(82, 27)], 96)
    assert parse_pairs("36:12, 61:21") == ((36, 12), (61, 21))
    assert parse_pairs(format_pairs([(79, 27)])) == ((79, 27),) and parse_pairs("") == ()
    with pytest.raises(ValueError, match="hint pair '36-12': expected TEACHER_BLOCK:STUDENT"):
        parse_pairs("36-12")


# ---------------------------------------------------------------------- GAN terms


def test_discriminator_and_adversarial_losses() -> None:
    raw = torch.rand(2, 3, 4, 4, 8)
    assert prediction_map(raw).shape == (2, 24, 4, 4)
    assert torch.equal(prediction_map(raw)[:, 8:16], raw[:, 1].permute(0, 3, 1, 2))
    d = Discriminator(24, 8, (3, 1))
    assert d(prediction_map(raw)).shape == (2, 1, 4, 4)
    sure = torch.full((1, 1, 2, 2), 20.0)
    assert float(discriminator_loss(sure, -sure)) < 1e-6  # D right on both: no loss
    fooled = torch.zeros(1, 1, 2, 2, requires_grad=True)
    generator_loss(fooled).backward()
    assert (fooled.grad < 0).all()  # the student pushes D's score on its map up


# ---------------------------------------------------------------------- in the engine


@pytest.fixture
def teacher_ckpt(demo_spec, tmp_path):
    names = list(load_spec(demo_spec).names)
    teacher = create_model("yolov3-tiny", num_classes=len(names), width=0.25)
    path = tmp_path / "teacher.pt"
    save_checkpoint(path, teacher, metadata={"names": names, "img_size": 64})
    return path


def _train(demo_spec, out, **kwargs) -> TrainConfig:
    settings = dict(model="yolo-nano-leaky", data=str(demo_spec), out=str(out), img_size=64,
                    epochs=1, batch_size=8, width=0.25, hyp=Hyp(warmup_epochs=0.0))  # fmt: skip
    settings.update(kwargs)
    return TrainConfig(**settings)


def test_kd_trains_the_student_with_every_term_and_exports_it_alone(
    demo_spec, teacher_ckpt, tmp_path
) -> None:
    config = KDConfig(hints=((8, 21), (13, 27)), cls_function="softmax", temperature=2.0)
    train = _train(demo_spec, tmp_path / "kd")
    config = dataclasses.replace(config, teacher=str(teacher_ckpt))
    (metrics,) = run_distill(train, config, progress=False, log=lambda _: None)
    for key in ("loss_kd_soft", "loss_kd_reg", "loss_kd_hint"):
        assert key in metrics and metrics[key] == metrics[key]
    assert metrics["loss_kd_hint"] > 0
    student = load_checkpoint(tmp_path / "kd" / "best.pt").model
    plain = create_model("yolo-nano-leaky", num_classes=student.num_classes, width=0.25)
    assert sum(p.numel() for p in student.parameters()) == sum(
        p.numel() for p in plain.parameters()
    )
    state = load_checkpoint(tmp_path / "kd" / "last.pt").extra["train_state"]
    adapters = state["callbacks"][0]["adapters"]
    assert set(adapters) == {
        f"convs.{k}.{p}" for k in ("8_21", "13_27") for p in ("weight", "bias")
    }


def test_kd_gan_checkpoints_and_restores_the_discriminators(
    demo_spec, teacher_ckpt, tmp_path
) -> None:
    config = GANKDConfig(d_kernel_size=(3, 1), second_stage=1)
    train = _train(demo_spec, tmp_path / "gan", epochs=2)
    callback = distill_callback(config, teacher_ckpt, train)
    trainer = Trainer(train, callbacks=[callback], progress=False, log=lambda _: None)
    before = copy.deepcopy(callback.discriminators.state_dict())
    first = trainer.run_epoch(0)
    assert first["gan_stage"] == 1.0 and "loss_d" in first and "loss_gan_adv" in first
    trained = callback.discriminators.state_dict()
    assert any(not torch.equal(before[k], trained[k]) for k in before)  # D learned
    resumed_callback = distill_callback(config, teacher_ckpt, train)
    resumed = Trainer.resume(tmp_path / "gan" / "last.pt", callbacks=[resumed_callback],
                             progress=False, log=lambda _: None)  # fmt: skip
    for key, value in resumed_callback.discriminators.state_dict().items():
        assert torch.equal(value, trained[key]), key
    assert resumed_callback.d_optimizer.state_dict()["state"]  # momentum restored too
    second = resumed.run_epoch(1)  # the second stage: detection only, D frozen
    assert second["gan_stage"] == 2.0 and second["loss_gan_adv"] == second["loss_d"] == 0.0
    for key, value in resumed_callback.discriminators.state_dict().items():
        assert torch.equal(value, trained[key]), key
    assert isinstance(resumed_callback, GANKDCallback)


def test_teacher_of_another_dataset_or_class_count_is_refused(demo_spec, tmp_path) -> None:
    names = list(load_spec(demo_spec).names)
    other = tmp_path / "other.pt"
    save_checkpoint(other, create_model("yolov3-tiny", num_classes=len(names), width=0.25),
                    metadata={"names": [f"x{i}" for i in range(len(names))]})  # fmt: skip
    train = _train(demo_spec, tmp_path / "x")
    with pytest.raises(ValueError, match=r"other\.pt was trained on classes"):
        distill_callback(KDConfig(), other, train)
    fewer = tmp_path / "fewer.pt"
    save_checkpoint(fewer, create_model("yolov3-tiny", num_classes=2, width=0.25))
    with pytest.raises(ValueError, match=r"teacher .*fewer\.pt predicts 2 classes but"):
        distill_callback(KDConfig(), fewer, train)
    with pytest.raises(FileNotFoundError, match="teacher checkpoint not found"):
        distill_callback(KDConfig(), tmp_path / "missing.pt", train)


# ---------------------------------------------------------------------- the command


def test_distill_command(demo_spec, teacher_ckpt, tmp_path, capsys) -> None:
    from yct.cli import main

    assert main(["distill", "pairs", "--teacher", "yolov3", "--student", "yolo-nano-leaky",
                 "--img-size", "96"]) == 0  # fmt: skip
    listing = capsys.readouterr().out
    assert "36:12   stride  8  backbone" in listing and "'79:27'" in listing
    common = ["--student", "yolo-nano-leaky", "--data", str(demo_spec), "--img-size", "64",
              "--epochs", "1", "--batch", "8", "--width", "0.25", "--quiet"]  # fmt: skip
    out = tmp_path / "kd"
    assert main(["distill", "kd", "--teacher", str(teacher_ckpt), *common, "--hints", "8:21",
                 "--mu", "0.5", "--out", str(out)]) == 0  # fmt: skip
    assert "weights (student only)" in capsys.readouterr().out
    assert load_checkpoint(out / "best.pt").model.num_classes == len(load_spec(demo_spec).names)
    # bad input: one line naming what and where, exit 2
    assert main(["distill", "kd", "--teacher", str(teacher_ckpt), *common, "--hints", "8:27",
                 "--out", str(tmp_path / "bad")]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "hint pair 8:27: teacher block 8 is" in err
    assert main(["distill", "kd_gan", "--teacher", str(tmp_path / "none.pt"), *common]) == 2
    assert "teacher checkpoint not found" in capsys.readouterr().err
    assert main(["distill", "kd_gan", "--teacher", str(teacher_ckpt), *common,
                 "--d-kernel-size", "2", "1"]) == 2  # fmt: skip
    assert "d_kernel_size must be two odd sizes" in capsys.readouterr().err
