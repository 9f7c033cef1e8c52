"""Run a search space as a Ray Tune study driven by Optuna (the engine of ``yct tune``).

NSGA-II for several objectives, TPE for one, random as an option, all seeded; ASHA on the
first objective with the reported iteration (an epoch) as time — ASHA is single-objective,
so with several objectives it prunes by the first one only. Failures: each trial is retried
``max_failures`` times from its last checkpoint; a trial that still fails is recorded with
its error and the study goes on; ``resume`` restores an interrupted study.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search_spaces.optuna_space import define_by_run
from search_spaces.schema import SearchSpace, check_fits
from trainables.multi import MultiMethodTrainable
from trainables.registry import get_trainable


@dataclass(frozen=True)
class StudyOptions:
    name: str
    storage: str  # local folder or a URI (s3://, gs://) Ray can write to
    data: str | None = None
    num_samples: int | None = None
    max_concurrent: int | None = None
    address: str | None = None
    resume: bool = False


def _sampler(space: SearchSpace) -> Any:
    import optuna

    seed = space.search.seed
    return {
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
    }[space.search.sampler]()


def build_trainable(space: SearchSpace) -> Any:
    from ray import tune

    if space.multi_method:
        trainable: Any = MultiMethodTrainable(space.methods)
    else:
        trainable = get_trainable(space.methods[0])()
    return tune.with_resources(
        trainable, {"cpu": space.resources["cpu"], "gpu": space.resources["gpu"]}
    )


def start_ray(address: str | None) -> dict[str, float]:
    """Local Ray with this machine's CPUs, or the cluster at ``address`` (or RAY_ADDRESS)."""
    import ray

    if not ray.is_initialized():
        target = address or os.environ.get("RAY_ADDRESS")
        if target:
            ray.init(address=target, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    return dict(ray.cluster_resources())


def run_study(space: SearchSpace, options: StudyOptions) -> Any:
    """Run (or resume) the study; returns Ray's ResultGrid."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    check_fits(space, start_ray(options.address))
    trainable = build_trainable(space)
    storage = (
        str(Path(options.storage).resolve()) if "://" not in options.storage else options.storage
    )
    if options.resume:
        path = f"{storage.rstrip('/')}/{options.name}"
        if not tune.Tuner.can_restore(path):
            raise FileNotFoundError(f"no study to resume at {path}")
        return tune.Tuner.restore(path, trainable, resume_unfinished=True,
                                  resume_errored=True).fit()  # fmt: skip
    metrics = [o.metric for o in space.objectives]
    modes = [o.mode for o in space.objectives]
    single = len(metrics) == 1  # Ray's OptunaSearch wants scalars for one objective
    searcher = OptunaSearch(
        space=define_by_run(space, options.data),
        metric=metrics[0] if single else metrics,
        mode=modes[0] if single else modes,
        sampler=_sampler(space),
    )
    limited = ConcurrencyLimiter(
        searcher, max_concurrent=options.max_concurrent or space.search.max_concurrent
    )
    scheduler = None
    if space.search.scheduler == "asha":
        first = space.objectives[0]
        scheduler = ASHAScheduler(
            time_attr="training_iteration", metric=first.metric, mode=first.mode
        )
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=limited, scheduler=scheduler,
                                    num_samples=options.num_samples or space.search.num_samples),
        run_config=tune.RunConfig(name=options.name, storage_path=storage, verbose=1,
                                  failure_config=tune.FailureConfig(max_failures=space.search.max_failures)),
    )  # fmt: skip
    return tuner.fit()
