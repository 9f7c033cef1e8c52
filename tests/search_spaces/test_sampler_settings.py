"""The samplers get the settings the space gives them (Optuna's own attributes checked)."""

from __future__ import annotations

import optuna

from search_spaces.sampler import build_sampler


def test_startup_trials_reach_tpe_and_gp_and_tpe_models_conditional_groups() -> None:
    tpe = build_sampler("tpe", seed=0, startup_trials=3).sampler
    gp = build_sampler("gp", seed=0, startup_trials=5).sampler
    assert isinstance(tpe, optuna.samplers.TPESampler) and tpe._n_startup_trials == 3
    assert tpe._multivariate and tpe._group and tpe._constant_liar
    assert isinstance(gp, optuna.samplers.GPSampler) and gp._n_startup_trials == 5
    assert build_sampler("tpe", seed=0).sampler._n_startup_trials == 10  # Optuna's default


def test_grouped_tpe_learns_the_better_branch_of_a_conditional_space() -> None:
    """After its startup draws, TPE proposes mostly the branch whose trials were better (a
    conditional parameter each), where random draws stay near half and half."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        if trial.suggest_categorical("method", ["good", "bad"]) == "good":
            return trial.suggest_float("good.x", 0, 1) ** 2
        return 2 + trial.suggest_float("bad.y", 0, 1)

    study = optuna.create_study(sampler=build_sampler("tpe", seed=0, startup_trials=4).sampler)
    study.optimize(objective, n_trials=24)
    later = [t.params["method"] for t in study.trials[8:]]
    assert later.count("good") >= 0.75 * len(later)
