"""Every trainable under real Ray Tune: setup -> report -> checkpoint -> crash -> restore ->
continue, with the metrics every trial must report."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
import ray
from ray import cloudpickle, tune

from trainables.trainable import StudyTrainable
from yct.cli import main
from yolo.compress.registry import get_method, method_names
from yolo.compress.trial import build_trial
from yolo.data.spec import load_spec
from yolo.io import save_checkpoint
from yolo.metrics import names as m
from yolo.zoo import create_model

pytestmark = pytest.mark.slow

METHOD_CONFIG = {
    "train": {},
    "lth": {"rate": 0.5, "rounds": 1, "rewind_epoch": 0},
    "cs": {"rounds": 1, "final_temperature": 20.0, "penalty": 1e-4, "rewind_epoch": 0},
    "structured": {"target_macs": 0.6, "round_to": 2, "steps": 1},
    "kd": {"hints": "8:8,13:13", "mu": 0.5, "cls_function": "softmax"},
    "kd_gan": {"second_stage": 1, "d_kernel_size": [3, 1], "adv_weight": 0.5},
}


@pytest.fixture(scope="module")
def teacher(demo_spec, tmp_path_factory):
    """An (untrained) yolov3-tiny teacher at twice the students' width, of the demo classes."""
    names = list(load_spec(demo_spec).names)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    model = create_model("yolov3-tiny", num_classes=len(names), width=0.5)
    save_checkpoint(path, model, metadata={"names": names, "img_size": 64})
    return path


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    # trainables defined in this test module travel to the workers by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.shutdown()


def crashing_once(base):
    """The method's trainable, but the first attempt dies when it is about to make its second
    report (an epoch after the first: dying right after a report raced Ray's processing of
    that report, which a loaded machine sometimes lost)."""

    class CrashOnce(base):
        def report(self, trainer, metrics):
            # the trainable's own count of the reports made so far (one: about to make the second)
            if not self.restored and self.tally.reports == 1:
                raise RuntimeError("injected crash after the first checkpoint")
            super().report(trainer, metrics)

    return CrashOnce


@pytest.mark.parametrize("name", sorted(METHOD_CONFIG))
def test_trainable_contract_under_real_ray(name, demo_spec, teacher, tmp_path, local_ray,
                                           capsys) -> None:  # fmt: skip
    assert sorted(METHOD_CONFIG) == method_names()
    config = {"model": "yolov3-tiny", "data": str(demo_spec), "width": 0.25, "img_size": 64,
              "epochs": 2, "batch_size": 8, "accumulate": 2, "warmup_epochs": 0.0,
              "latency_runs": 1, **METHOD_CONFIG[name]}  # fmt: skip
    if name.startswith("kd"):
        config["teacher"] = str(teacher)
    trainable = tune.with_resources(crashing_once(StudyTrainable)(name), {"cpu": 1})
    tuner = tune.Tuner(
        trainable,
        param_space=config,
        run_config=tune.RunConfig(
            name=f"contract_{name}",
            storage_path=str(tmp_path),
            failure_config=tune.FailureConfig(max_failures=1),
            verbose=0,
        ),
    )
    (result,) = list(tuner.fit())
    assert result.error is None, result.error
    history = result.metrics_dataframe
    # the first attempt reported once and died; the restart resumed after that report, not
    # from the start (whether Tune keeps the failed attempt's rows in the trial's history
    # varies between runs, so only the restored rows are relied on)
    resumed = history[history["restored"] == 1.0]
    assert len(resumed) and resumed["training_iteration"].min() == 2
    assert (history[history["restored"] == 0.0]["training_iteration"] == 1).all()
    if name in ("train", "kd", "kd_gan"):
        assert resumed[m.EPOCH].tolist() == [1.0]
    final = result.metrics
    for key in (m.MAP50, m.MACS, m.MACS_416, m.PARAMS, m.STORAGE_MB, m.SPARSITY, m.LATENCY_MS,
                m.EPOCH):  # fmt: skip
        assert key in final, key
    assert final[m.MACS] > 0 and result.checkpoint is not None
    # the final result is that of the model the trial delivers, as yct measures it
    trial = build_trial(get_method(name), config, out="-", where="test")
    delivered = Path(result.checkpoint.path) / trial.method.deliverable(trial.train, trial.config)
    assert main(["evaluate", str(delivered), "--data", str(demo_spec), "--split", "val",
                 "--img-size", "64", "--json"]) == 0  # fmt: skip
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert abs(evaluated["map50"] - final[m.MAP50]) < 1e-6
    assert main(["info", str(delivered), "--img-size", "64", "--latency-runs", "0",
                 "--json"]) == 0  # fmt: skip
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["effective_macs"] == final[m.MACS] and info["nonzero_params"] == final[m.PARAMS]
    if name == "cs":  # retrain_epochs 0: the last report is the rewound ticket's own
        assert final[m.EPOCH] == 2.0 and m.LOSS not in final
    else:
        assert m.LOSS in final
    if name == "kd":
        assert {"loss_kd_soft", "loss_kd_reg", "loss_kd_hint"} <= set(final)
    if name == "kd_gan":  # epoch 0 adversarial, epoch 1 the detection-only second stage
        # (the first attempt's row only where Tune kept it, as above)
        stages = history["gan_stage"].tolist()
        assert stages[-1] == 2.0 and stages[:-1] in ([], [1.0]), stages
    if name == "lth":
        assert final[m.ROUND] == 1.0 and final[m.SPARSITY] == pytest.approx(0.5, abs=0.01)


def killed_once(base):
    """The trainable, but the first attempt's process dies (SIGKILL, as when a spot node is
    lost) right after its first checkpoint."""

    class KillOnce(base):
        def report(self, trainer, metrics):
            super().report(trainer, metrics)
            if not self.restored:
                os.kill(os.getpid(), signal.SIGKILL)

    return KillOnce


def test_a_killed_trial_process_resumes_from_its_checkpoint(demo_spec, tmp_path,
                                                            local_ray) -> None:  # fmt: skip
    config = {"model": "yolov3-tiny", "data": str(demo_spec), "width": 0.25, "img_size": 64,
              "epochs": 3, "batch_size": 8, "warmup_epochs": 0.0, "latency_runs": 1}  # fmt: skip
    trainable = tune.with_resources(killed_once(StudyTrainable)("train"), {"cpu": 1})
    tuner = tune.Tuner(
        trainable,
        param_space=config,
        run_config=tune.RunConfig(name="killed", storage_path=str(tmp_path), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=2)),
    )  # fmt: skip
    (result,) = list(tuner.fit())
    assert result.error is None, result.error
    history = result.metrics_dataframe
    # epoch 0 from the killed process, epochs 1 and 2 from the restarted one, none repeated
    assert history[m.EPOCH].tolist() == [0.0, 1.0, 2.0]
    assert history["restored"].tolist() == [0.0, 1.0, 1.0]
