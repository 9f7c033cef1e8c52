"""The trainer: hooks, checkpoints, exact resume, non-finite loss, and the train commands."""

from __future__ import annotations

import json

import pytest
import torch

from yct.cli import main
from yolo.callbacks import Callback
from yolo.engine import NonFiniteLossError, Trainer, lr_factor
from yolo.io import load_checkpoint
from yolo.train_config import Hyp, TrainConfig, load_hyp


def _config(demo_spec, out, **kwargs) -> TrainConfig:
    settings = dict(model="yolov3-tiny", data=str(demo_spec), out=str(out), img_size=64,
                    epochs=2, batch_size=8, accumulate=2, width=0.25,
                    hyp=Hyp(warmup_min_iters=3))  # fmt: skip
    settings.update(kwargs)
    return TrainConfig(**settings)


class Crash(Callback):
    """Stops the run right after epoch ``at`` has been checkpointed."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_report(self, trainer, metrics) -> None:
        if metrics["epoch"] == self.at:
            raise KeyboardInterrupt


class Recorder(Callback):
    taps = (8,)

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.steps = 0

    def on_epoch_start(self, trainer, epoch) -> None:
        self.calls.append(f"start{epoch}")

    def before_forward(self, trainer, step) -> None:
        step.context["seen"] = True

    def loss_terms(self, trainer, step):
        assert step.context["seen"] and 8 in step.features and step.raw is not None
        return {"extra": step.features[8].float().mean() * 0.0 + 0.25}

    def after_step(self, trainer) -> None:
        self.steps += 1

    def on_epoch_end(self, trainer, epoch, metrics) -> None:
        metrics["custom"] = 1.5

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state) -> None:
        self.steps = state["steps"]


def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(demo_spec, tmp_path) -> None:
    whole = Trainer(_config(demo_spec, tmp_path / "whole"), progress=False, log=lambda _: None)
    whole.fit()
    broken = Trainer(_config(demo_spec, tmp_path / "broken"), callbacks=[Crash(0)],
                     progress=False, log=lambda _: None)  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        broken.fit()
    resumed = Trainer.resume(tmp_path / "broken" / "last.pt", progress=False, log=lambda _: None)
    assert resumed.start_epoch == 1
    resumed.fit()
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    for a, b in zip(whole.ema.model.state_dict().values(), resumed.ema.model.state_dict().values()):
        assert torch.equal(a, b)
    assert (
        whole.optimizer.state_dict()["param_groups"][0]["lr"]
        == resumed.optimizer.state_dict()["param_groups"][0]["lr"]
    )


def test_hooks_are_called_and_their_state_is_checkpointed(demo_spec, tmp_path) -> None:
    recorder = Recorder()
    trainer = Trainer(_config(demo_spec, tmp_path, epochs=1), callbacks=[recorder],
                      progress=False, log=lambda _: None)  # fmt: skip
    metrics = trainer.fit()
    assert recorder.calls == ["start0"] and recorder.steps == 3  # 6 batches / accumulate 2
    assert metrics["loss_extra"] == pytest.approx(0.25) and metrics["custom"] == 1.5
    checkpoint = load_checkpoint(tmp_path / "last.pt")
    assert checkpoint.extra["train_state"]["callbacks"] == [{"steps": 3}]
    assert checkpoint.metadata["names"][0] == "zero" and checkpoint.metadata["img_size"] == 64
    best = load_checkpoint(tmp_path / "best.pt")
    assert "train_state" not in best.extra


class NaNAt(Callback):
    def loss_terms(self, trainer, step):
        if (step.epoch, step.index) == (1, 2):
            return {"boom": torch.tensor(float("nan"))}
        return {}


def test_non_finite_loss_stops_with_epoch_and_batch_and_keeps_the_checkpoint(
    demo_spec, tmp_path
) -> None:
    trainer = Trainer(_config(demo_spec, tmp_path), callbacks=[NaNAt()], progress=False,
                      log=lambda _: None)  # fmt: skip
    with pytest.raises(
        NonFiniteLossError, match=r"non-finite loss at epoch 2 batch 2 \(.*boom=nan"
    ):
        trainer.fit()
    assert load_checkpoint(tmp_path / "last.pt").metadata["epoch"] == 0


class PoisonAfterStep(Callback):
    """A step whose own loss was finite but which leaves a NaN weight (as a huge lr does)."""

    armed = False

    def on_epoch_end(self, trainer, epoch, metrics):
        self.armed = True  # from the second epoch on

    def after_step(self, trainer):
        if self.armed:
            with torch.no_grad():
                next(trainer.model.parameters()).view(-1)[0] = float("nan")


def test_weights_turned_non_finite_by_a_step_stop_the_run_at_that_step(demo_spec, tmp_path) -> None:
    trainer = Trainer(_config(demo_spec, tmp_path), callbacks=[PoisonAfterStep()],
                      progress=False, log=lambda _: None)  # fmt: skip
    with pytest.raises(NonFiniteLossError, match=r"weights became non-finite \(blocks\.0\..*"
                       r"after the optimiser step at epoch 2 batch"):  # fmt: skip
        trainer.fit()
    assert load_checkpoint(tmp_path / "last.pt").metadata["epoch"] == 0


def test_schedules_and_hyp_files(tmp_path) -> None:
    lam = lr_factor(Hyp(), 100)
    assert lam(0) == 1.0 and lam(100) == pytest.approx(1e-4) and lam(50) == pytest.approx(1e-2)
    cos = lr_factor(Hyp(schedule="cosine", lrf=-2), 10)
    assert cos(0) == pytest.approx(1.0) and cos(10) == pytest.approx(0.01)
    path = tmp_path / "hyp.yaml"
    path.write_text("lr0: 0.002\nloss: {obj: 10}\naugment: {mosaic: 0.5}\n")
    hyp = load_hyp(path)
    assert (hyp.lr0, hyp.loss.obj, hyp.loss.giou, hyp.augment.mosaic) == (0.002, 10.0, 3.54, 0.5)
    path.write_text("lr: 0.1\n")
    with pytest.raises(ValueError, match=r"hyp\.yaml: unknown key 'lr'; allowed: lr0"):
        load_hyp(path)
    path.write_text("momentum: fast\n")
    with pytest.raises(ValueError, match="momentum: expected float but got 'fast'"):
        load_hyp(path)


def test_early_stop(demo_spec, tmp_path) -> None:
    logs: list[str] = []
    trainer = Trainer(_config(demo_spec, tmp_path, epochs=5, patience=2, eval_interval=5),
                      progress=False, log=logs.append)  # fmt: skip
    trainer.fit()  # no evaluation before epoch 5, so no gain in the first two epochs
    assert len(trainer.history) == 2 and "early stop" in logs[-1]


def _train_args(demo_spec, out, *extra: str) -> list[str]:
    """A one-epoch tiny training run on the demo set."""
    return ["train", "yolov3-tiny", "--data", str(demo_spec), "--img-size", "64", "--epochs", "1",
            "--width", "0.25", "--out", str(out), "--quiet", *extra]  # fmt: skip


def test_train_evaluate_detect_commands(demo_spec, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    args = _train_args(demo_spec, out, "--batch", "8", "--accumulate", "1")
    assert main(args) == 0
    assert "best map50" in capsys.readouterr().out
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0
    assert "already finished" in capsys.readouterr().out
    assert main(["evaluate", str(out / "best.pt"), "--data", str(demo_spec), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert 0 <= data["map50"] <= 1 and set(data["per_class"]) >= {"zero", "nine"}
    image = next((demo_spec.parent / "VOCdemo" / "JPEGImages").glob("*.jpg"))
    assert main(["detect", str(out / "best.pt"), str(image), "--out", str(tmp_path / "det"),
                 "--conf", "0.001"]) == 0  # fmt: skip
    report = json.loads((tmp_path / "det" / "detections.json").read_text())
    assert report[0]["image"] == str(image) and (tmp_path / "det" / image.name).is_file()
    assert all(0 <= d["box"][0] <= d["box"][2] <= 64 for d in report[0]["detections"])


def test_train_command_bad_input(demo_spec, tmp_path, capsys) -> None:
    assert main(["train", "yolov3-tiny", "--data", str(demo_spec), "--img-size", "100"]) == 2
    assert "img_size must be a multiple of 32" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "none.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    other = tmp_path / "other.yaml"
    other.write_text(
        demo_spec.read_text()
        .replace("- zero", "- nil")
        .replace("root: .", f"root: {demo_spec.parent}")
    )
    out = tmp_path / "r"
    main(_train_args(demo_spec, out))
    capsys.readouterr()
    assert main(["evaluate", str(out / "best.pt"), "--data", str(other)]) == 2
    assert "was trained on classes" in capsys.readouterr().err


def test_a_user_cfg_for_another_class_count_is_said_not_silently_rebuilt(demo_spec, tmp_path,
                                                                         write_cfg) -> None:  # fmt: skip
    from yolo.zoo import zoo_cfg_text

    cfg = write_cfg(zoo_cfg_text("yolov3-tiny"), "coco80.cfg")  # written for 20 classes
    lines: list[str] = []
    Trainer(_config(demo_spec, tmp_path, model=str(cfg), epochs=1), progress=False,
            log=lines.append)  # fmt: skip
    assert any(line.startswith(f"note: {cfg}: [yolo] classes=20 but ") and
               "has 10; the heads and prediction convs are rebuilt for 10 classes" in line
               for line in lines), lines  # fmt: skip
    quiet: list[str] = []
    Trainer(_config(demo_spec, tmp_path / "zoo", epochs=1), progress=False, log=quiet.append)
    assert not any(line.startswith("note:") for line in quiet)  # a zoo name is made to measure
