"""The samplers get the settings the space gives them (Optuna's own attributes checked)."""

from __future__ import annotations

import pickle

import optuna

from search_spaces.sampler import GP_TRIALS, GaussianProcessThenTPE, build_sampler


def test_startup_trials_reach_tpe_and_gp_and_tpe_models_conditional_groups() -> None:
    tpe = build_sampler("tpe", seed=0, startup_trials=3).sampler
    gp = build_sampler("gp", seed=0, startup_trials=5).sampler
    assert isinstance(tpe, optuna.samplers.TPESampler) and tpe._n_startup_trials == 3
    assert tpe._multivariate and tpe._group and tpe._constant_liar
    assert isinstance(gp, GaussianProcessThenTPE) and gp.gp_trials == GP_TRIALS == 250
    assert isinstance(gp.gp, optuna.samplers.GPSampler) and gp.gp._n_startup_trials == 5
    assert gp.tpe._n_startup_trials == 5 and gp.tpe._group
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


def test_gp_hands_over_to_tpe_after_its_trials_and_keeps_deciding_one_trial_whole() -> None:
    """The GP decides (and fits its model) until the study has ``gp_trials`` finished trials;
    from the next trial on TPE decides, every parameter of it, and the GP is not fitted
    again."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x, y = trial.suggest_float("x", 0, 1), trial.suggest_float("y", 0, 1)
        return x, (1 - x) ** 2 + y

    sampler = GaussianProcessThenTPE(seed=0, startup_trials=2, gp_trials=6)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=6)
    assert sampler.handed_over_at is None and sampler.delegate is sampler.gp
    fitted = sampler.gp._gprs_cache_list
    assert fitted is not None  # the GP modelled trials 2..5
    study.optimize(objective, n_trials=4)
    assert sampler.handed_over_at == 6 and sampler.delegate is sampler.tpe
    assert sampler.gp._gprs_cache_list is fitted  # not fitted again after the hand-over
    assert str(sampler) == "GPSampler then TPESampler after 6 trials"


def test_a_restored_gp_study_stays_handed_over() -> None:
    """A study resumed from its searcher checkpoint goes on with TPE where it had handed
    over (the sampler travels pickled, :class:`RebuildableSampler`)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = build_sampler("gp", seed=0, startup_trials=2)
    sampler.sampler.gp_trials = 4
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), 6)
    restored = pickle.loads(pickle.dumps(sampler)).sampler
    assert restored.handed_over_at == 4 and restored.delegate is restored.tpe
