"""A multi-method study's trial runs the chosen method with only its own settings."""

from __future__ import annotations

import pytest

from search_spaces.optuna_space import method_config
from trainables.trainable import StudyTrainable


def test_routes_to_the_chosen_method(demo_spec, tmp_path) -> None:
    router = StudyTrainable(("lth", "cs"))
    config = {"method": "lth", "lth.rate": 0.5, "lth.rounds": 1, "cs.penalty": 1e-3,
              "retrain_epochs": 2, "rewind_epoch": 0, "model": "yolov3-tiny",
              "data": str(demo_spec), "width": 0.25, "img_size": 64, "epochs": 1,
              "batch_size": 8, "latency_runs": 0, "out": str(tmp_path)}  # fmt: skip
    router(config)  # outside Ray: trains and reports nowhere
    assert (tmp_path / "work" / "ticket.pt").is_file()
    assert (tmp_path / "work" / "round_01").is_dir()  # LTH ran, one prune round


def test_a_fixed_setting_only_another_method_takes_is_left_out() -> None:
    config = {"method": "lth", "lth.rate": 0.5, "cs.penalty": 1e-3, "retrain_epochs": 2,
              "rewind_epoch": 0, "epochs": 3}  # fmt: skip
    assert method_config(config, ("lth", "cs")) == (
        "lth",
        {"rate": 0.5, "rewind_epoch": 0, "epochs": 3},
    )


def test_a_key_no_method_takes_reaches_the_trial_check(demo_spec, tmp_path) -> None:
    assert method_config({"method": "cs", "bogus": 1}, ("lth", "cs"))[1] == {"bogus": 1}
    config = {"method": "cs", "bogus": 1, "model": "yolov3-tiny", "data": str(demo_spec)}
    with pytest.raises(ValueError, match="method 'cs' takes no setting 'bogus'"):
        StudyTrainable(("lth", "cs"))(config)


def test_unknown_method_fails_before_any_trial() -> None:
    with pytest.raises(ValueError, match="unknown method 'nas'; valid methods: cs, kd, kd_gan, "
                                         "lth, structured, train"):  # fmt: skip
        StudyTrainable(("lth", "nas"))
