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

import numpy as np

from analysis.pareto import hypervolume, non_dominated
from search_spaces.optuna_space import define_by_run
from search_spaces.schema import SearchSpace, check_fits
from trainables.mlflow_adapter import DEFAULT_TRACKING_URI, StudyTracker
from trainables.multi import MultiMethodTrainable
from trainables.registry import get_trainable


@dataclass(frozen=True)
class StudyOptions:
    name: str
    storage: str  # local folder or a URI (s3://, gs://) Ray can write to
    mlflow_uri: str | None = None  # default: sqlite:///mlruns.db in the working directory
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


def reference_point(values: np.ndarray, modes: list[str]) -> list[float]:
    """A point worse than every trial: 0 for maximised metrics that are >= 0 (mAP), else
    10% beyond the worst value seen."""
    reference = []
    for column, mode in zip(values.T, modes):
        finite = column[np.isfinite(column)]
        worst = (finite.min() if mode == "max" else finite.max()) if len(finite) else 0.0
        if mode == "max":
            reference.append(0.0 if worst >= 0 else worst * 1.1)
        else:
            reference.append(worst * 1.1 if worst > 0 else worst + 1.0)
    return reference


def study_front(
    results: list[tuple[str, dict[str, Any]]], space: SearchSpace
) -> tuple[list[str], float, dict[str, float]]:
    """(trial ids on the Pareto front, hypervolume, reference point) of finished trials."""
    metrics = [o.metric for o in space.objectives]
    modes = [o.mode for o in space.objectives]
    done = [(tid, r) for tid, r in results if all(k in r for k in metrics)]
    if not done:
        return [], 0.0, {}
    values = np.array([[float(r[k]) for k in metrics] for _, r in done])
    front = non_dominated(values, modes)
    reference = reference_point(values, modes)
    volume = hypervolume(values[front], reference, modes)
    return [tid for (tid, _), on in zip(done, front) if on], volume, dict(zip(metrics, reference))


class MlflowTracking:
    """A Tune callback (driver side) feeding the study's MLflow runs."""

    def __init__(self, tracker: StudyTracker) -> None:
        from ray import tune

        class _Callback(tune.Callback):
            def on_trial_start(self, iteration, trials, trial, **info):
                tracker.trial_started(trial.trial_id, trial.config)

            def on_trial_result(self, iteration, trials, trial, result, **info):
                tracker.trial_started(trial.trial_id, trial.config)
                tracker.trial_result(
                    trial.trial_id, result, int(result.get("training_iteration", 0))
                )

            def on_trial_complete(self, iteration, trials, trial, **info):
                checkpoint = trial.checkpoint.path if trial.checkpoint else None
                tracker.trial_ended(
                    trial.trial_id, checkpoint=Path(checkpoint) if checkpoint else None
                )

            def on_trial_error(self, iteration, trials, trial, **info):
                tracker.trial_ended(trial.trial_id, error=str(trial.error_file or "error"))

        self.callback = _Callback()


def run_study(space: SearchSpace, options: StudyOptions) -> Any:
    """Run (or resume) the study; returns Ray's ResultGrid."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    check_fits(space, start_ray(options.address))
    trainable = build_trainable(space)
    tracker = StudyTracker(
        options.mlflow_uri or DEFAULT_TRACKING_URI,
        options.name,
        tags={"method": "+".join(space.methods), "model": space.model,
              "dataset": str(options.data or space.data)},
        params={"objectives": [f"{o.metric}:{o.mode}" for o in space.objectives],
                **{f"search.{k}": v for k, v in space.search.__dict__.items()},
                **{f"fixed.{k}": v for k, v in space.fixed.items()}},
        space_text=Path(space.source).read_text() if Path(space.source).is_file() else "",
    )  # fmt: skip
    callbacks = [MlflowTracking(tracker).callback]
    storage = (
        str(Path(options.storage).resolve()) if "://" not in options.storage else options.storage
    )
    if options.resume:
        path = f"{storage.rstrip('/')}/{options.name}"
        if not tune.Tuner.can_restore(path):
            raise FileNotFoundError(f"no study to resume at {path}")
        results = tune.Tuner.restore(path, trainable, resume_unfinished=True,
                                     resume_errored=True).fit()  # fmt: skip
        _finish(results, space, tracker)
        return results
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
                                  callbacks=callbacks,
                                  failure_config=tune.FailureConfig(max_failures=space.search.max_failures)),
    )  # fmt: skip
    results = tuner.fit()
    _finish(results, space, tracker)
    return results


def _finish(results: Any, space: SearchSpace, tracker: StudyTracker) -> None:
    finished = [
        (r.metrics.get("trial_id", ""), r.metrics) for r in results if r.error is None and r.metrics
    ]
    front, volume, reference = study_front(finished, space)
    tracker.finish(front, hypervolume=volume, reference=reference)
