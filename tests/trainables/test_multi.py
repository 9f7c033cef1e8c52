"""The multi-method router runs the chosen method with only its own settings."""

from __future__ import annotations

import pytest

from trainables.multi import MultiMethodTrainable


def test_routes_to_the_chosen_method(demo_spec, tmp_path) -> None:
    router = MultiMethodTrainable(("lth", "cs"))
    config = {"method": "lth", "lth.rate": 0.5, "lth.rounds": 1, "cs.penalty": 1e-3,
              "retrain_epochs": 2, "rewind_epoch": 0, "model": "yolov3-tiny",
              "data": str(demo_spec), "width": 0.25, "img_size": 64, "epochs": 1,
              "batch_size": 8, "latency_runs": 0, "out": str(tmp_path)}  # fmt: skip
    router(config)  # outside Ray: trains and reports nowhere
    assert (tmp_path / "work" / "ticket.pt").is_file()
    assert (tmp_path / "work" / "round_01").is_dir()  # LTH ran, one prune round


def test_unknown_method_fails_before_any_trial() -> None:
    with pytest.raises(ValueError, match="unknown method 'nas'; valid methods: cs, kd, kd_gan, "
                                         "lth, train"):  # fmt: skip
        MultiMethodTrainable(("lth", "nas"))
