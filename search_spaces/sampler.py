"""The Optuna sampler of a study, in a form Ray can send and save whatever Optuna adds to it.

Ray Tune pickles the searcher (and with it Optuna's study and sampler) when it builds the
``Tuner`` and at every searcher checkpoint. Optuna gives no promise that a sampler pickles:
5.1.0 added a ``threading.Lock`` to ``NSGAIISampler`` and ``yct tune`` died with ``cannot
pickle '_thread.lock' object``. :class:`RebuildableSampler` holds a picklable recipe (a
``functools.partial`` of the sampler class and its arguments) beside the live sampler. When
pickled it keeps every attribute of the live sampler that pickles on its own (its RNG state,
NSGA-II's generation caches: a resumed study goes on drawing where it stopped) and drops the
rest (locks, handles); unpickling rebuilds a fresh sampler from the recipe, which recreates
what was dropped, and lays the kept state over it.

Written here, not taken from a library: neither Optuna nor Ray ships such a wrapper (Ray's
``OptunaSearch`` pickles the sampler as it is).
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import optuna
from optuna.samplers import BaseSampler

from search_spaces.schema import SAMPLERS

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study import Study
    from optuna.trial import FrozenTrial, TrialState


class DelegatingSampler(BaseSampler):
    """Every call of Optuna's sampler interface passed on to :attr:`delegate` (which sampler
    that is, each subclass says)."""

    @property
    def delegate(self) -> BaseSampler:
        raise NotImplementedError

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.delegate.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.delegate.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self.delegate.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self.delegate.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.delegate.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.delegate.reseed_rng()


class RebuildableSampler(DelegatingSampler):
    """An Optuna sampler (every call delegated) that survives pickling; see the module doc.

    Args:
        recipe: a picklable zero-argument callable that builds the sampler, e.g.
            ``functools.partial(optuna.samplers.NSGAIISampler, seed=0)``.
    """

    def __init__(self, recipe: Callable[[], BaseSampler]) -> None:
        self.recipe = recipe
        self.sampler = recipe()
        self.dropped: tuple[str, ...] = ()  # attributes the last pickling had to leave out

    def __getstate__(self) -> dict[str, Any]:
        kept, dropped = {}, []
        for name, value in vars(self.sampler).items():
            try:
                pickle.dumps(value)
            except Exception:  # any failure to pickle means: rebuild it from the recipe
                dropped.append(name)
            else:
                kept[name] = value
        return {"recipe": self.recipe, "kept": kept, "dropped": tuple(dropped)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.recipe = state["recipe"]
        self.sampler = self.recipe()
        vars(self.sampler).update(state["kept"])
        self.dropped = state["dropped"]

    def __str__(self) -> str:
        return str(self.sampler)

    @property
    def delegate(self) -> BaseSampler:
        return self.sampler


OPTUNA_STARTUP_TRIALS = 10  # TPESampler's and GPSampler's own default
GP_TRIALS = 250  # finished trials after which ``gp`` hands over to TPE (as Optuna's AutoSampler)


def grouped_tpe(*, seed: int, startup_trials: int) -> optuna.samplers.TPESampler:
    """Multivariate, grouped TPE with the constant liar (see :func:`sampler_recipe`)."""
    return optuna.samplers.TPESampler(
        seed=seed,
        multivariate=True,
        group=True,
        constant_liar=True,
        n_startup_trials=startup_trials,
    )


class GaussianProcessThenTPE(DelegatingSampler):
    """Optuna's ``GPSampler`` until the study has ``gp_trials`` finished trials, then
    :func:`grouped_tpe` over the whole history.

    Why: a GP's fit grows with the cube of the trials it is fitted on: Optuna 5.1's
    ``GPSampler`` took 0.36 s a decision at 246 trials and 1.0 s at 500 on a 2-core CPU
    (``bench/search_efficiency.py``), so a long study would spend its driver deciding (the
    platform's budget: 50 ms at 500 trials). Optuna's own ``AutoSampler`` (OptunaHub)
    hands a multi-objective GP over after 250 trials for that reason; so does this. TPE
    reads every trial in the study, the GP's included, so nothing learnt is lost at the
    hand-over. Which of the two decides a trial is fixed in :meth:`before_trial` (Optuna
    calls it first), so one trial never mixes them.
    """

    def __init__(self, *, seed: int, startup_trials: int, gp_trials: int = GP_TRIALS) -> None:
        self.gp = optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False,
                                            n_startup_trials=startup_trials)  # fmt: skip
        self.tpe = grouped_tpe(seed=seed, startup_trials=startup_trials)
        self.gp_trials = gp_trials
        self.handed_over_at: int | None = None  # number of the first trial TPE decided

    def __str__(self) -> str:
        return f"GPSampler then TPESampler after {self.gp_trials} trials"

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        if self.handed_over_at is None:
            finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if len(finished) >= self.gp_trials:
                self.handed_over_at = trial.number
        self.delegate.before_trial(study, trial)

    @property
    def delegate(self) -> BaseSampler:
        return self.gp if self.handed_over_at is None else self.tpe

    def reseed_rng(self) -> None:
        self.gp.reseed_rng()
        self.tpe.reseed_rng()


def sampler_recipe(
    name: str,
    *,
    seed: int,
    population_size: int | None = None,
    startup_trials: int | None = None,
) -> Callable[[], BaseSampler]:
    """The picklable recipe of the sampler ``name`` (one of ``schema.SAMPLERS``), seeded.

    ``tpe`` is multivariate (the joint density of the parameters, not one per parameter)
    and grouped (a conditional space, a method's own parameters existing only when it is
    drawn, is split into the groups of parameters that occur together, each modelled
    jointly, instead of falling back to independent draws for every conditional one), with
    the constant liar (running trials count as poor, so parallel trials spread out); ``gp``
    is Optuna's Gaussian-process sampler (multi-objective via its log-EHVI acquisition) for
    the first ``GP_TRIALS`` finished trials, TPE after (:class:`GaussianProcessThenTPE`);
    ``nsga2`` optionally with its generation size. ``startup_trials``: how many random draws
    tpe and gp make before their model (Optuna's default, 10, is most of a short study's
    trials)."""
    samplers = optuna.samplers
    startup = startup_trials or OPTUNA_STARTUP_TRIALS
    if name == "nsga2":
        if population_size:
            return functools.partial(samplers.NSGAIISampler, seed=seed,
                                     population_size=population_size)  # fmt: skip
        return functools.partial(samplers.NSGAIISampler, seed=seed)
    if name == "tpe":
        return functools.partial(grouped_tpe, seed=seed, startup_trials=startup)
    if name == "gp":
        return functools.partial(GaussianProcessThenTPE, seed=seed, startup_trials=startup)
    if name == "random":
        return functools.partial(samplers.RandomSampler, seed=seed)
    raise ValueError(f"unknown sampler {name!r}; valid samplers: {', '.join(SAMPLERS)}")


def build_sampler(
    name: str,
    *,
    seed: int,
    population_size: int | None = None,
    startup_trials: int | None = None,
) -> RebuildableSampler:
    return RebuildableSampler(sampler_recipe(name, seed=seed, population_size=population_size,
                                             startup_trials=startup_trials))  # fmt: skip
