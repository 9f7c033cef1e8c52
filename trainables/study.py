"""Run a search space as a Ray Tune study driven by Optuna (the engine of ``yct tune``).

NSGA-II for several objectives, TPE for one; random, TPE, NSGA-II and GP on choice, all
seeded (:mod:`search_spaces.sampler`). FIFO or multi-objective successive halving
(``moasha``) with an optional budget in reports (:mod:`trainables.scheduling`); ASHA for
single-objective studies. Failures: each trial is retried
``max_failures`` times from its last checkpoint; a trial that still fails is recorded with
its error and the study goes on; ``resume`` restores an interrupted study. Ray itself is
only called through :mod:`trainables.ray_adapter`, MLflow through
:mod:`trainables.mlflow_adapter`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from search_spaces.architecture import ConstraintCheck
from search_spaces.optuna_space import define_by_run
from search_spaces.sampler import build_sampler
from search_spaces.schema import SearchSpace, SpaceError, check_files, check_fits
from trainables import ray_adapter
from trainables.mlflow_adapter import DEFAULT_TRACKING_URI, StudyTracker, dataset_record
from trainables.trainable import StudyTrainable
from yolo.compress.registry import get_method
from yolo.compress.start import reference_of, starting_point
from yolo.compress.trial import build_trial, trial_settings

Summary = TypeVar("Summary")


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
    report_dir: str | None = None  # front plot/table/CSV also written here (else only MLflow)
    verbose: bool = False  # Ray's trial table in the terminal instead of one progress line


@dataclass(frozen=True)
class StudyResult(Generic[Summary]):
    trials: list[ray_adapter.TrialOutcome]
    summary: Summary  # what ``finish`` made of the finished study (``yct tune``: its front)


def study_search(space: SearchSpace, options: StudyOptions) -> ray_adapter.Search:
    """How the study searches: what ``yct tune`` hands to Ray with the trainable."""
    return ray_adapter.Search(
        define_by_run=define_by_run(space, options.data),
        metrics=[o.metric for o in space.objectives],
        modes=[o.mode for o in space.objectives],
        sampler=build_sampler(
            space.search.sampler,
            seed=space.search.seed,
            population_size=space.search.population_size,
            startup_trials=space.search.startup_trials,
        ),
        num_samples=options.num_samples or space.search.num_samples,
        max_concurrent=options.max_concurrent or space.search.max_concurrent,
        max_failures=space.search.max_failures,
        scheduler=space.search.scheduler,
        budget=space.search.budget,
        rungs=space.search.rungs(),
        reduction_factor=space.search.reduction_factor,
        reject=constraint_check(space, options.data),
    )


def constraint_check(space: SearchSpace, data: str | None) -> ConstraintCheck | None:
    """What rejects a draw at sampling: the architecture's constraints, if it has any."""
    from yolo.data.spec import load_spec
    from yolo.zoo import ZOO_SIZE

    arch = space.architecture
    if arch is None or not arch.constraints:
        return None
    spec = data or space.data
    assert spec is not None  # check_files refused a space without one
    return ConstraintCheck(arch, classes=len(load_spec(spec).names),
                           img_size=int(space.fixed.get("img_size", ZOO_SIZE)),
                           width=float(space.fixed.get("width", 1.0)))  # fmt: skip


def start_of(space: SearchSpace, data: str | None) -> dict[str, float]:
    """The study's starting model measured once (:mod:`yolo.compress.start`): the fixed
    settings of its first method, at the fixed (or default) size."""
    method = get_method(space.methods[0])
    own = {k: v for k, v in space.fixed.items() if k in trial_settings(method)}
    trial = build_trial(method, {"model": space.model, "data": data or space.data, **own},
                        out="<start>", where=space.source)  # fmt: skip
    try:
        costs = trial.costs
        return starting_point(trial.train, latency_runs=costs.latency_runs,
                              latency_runtime=costs.latency_runtime,
                              latency_threads=costs.latency_threads)  # fmt: skip
    except ValueError as exc:  # e.g. a model too large for the machine: before Ray starts
        raise SpaceError(f"{space.source}: fixed: the starting model: {exc}") from None


def build_trainable(space: SearchSpace) -> Any:
    return ray_adapter.with_resources(StudyTrainable(space.methods), space.resources)


def _tracker(space: SearchSpace, options: StudyOptions) -> StudyTracker:
    return StudyTracker(
        options.mlflow_uri or DEFAULT_TRACKING_URI,
        options.name,
        tags={"method": "+".join(space.methods), "model": space.model,
              "dataset": str(options.data or space.data)},
        params={"objectives": [f"{o.metric}:{o.mode}" for o in space.objectives],
                **{f"search.{k}": v for k, v in space.search.__dict__.items()},
                **{f"fixed.{k}": v for k, v in space.fixed.items()}},
        space_text=Path(space.source).read_text() if Path(space.source).is_file() else "",
        keep=space.search.keep,
        dataset=dataset_record(str(options.data or space.data)),
        resume=options.resume,
    )  # fmt: skip


def run_study(
    space: SearchSpace, options: StudyOptions, finish: Callable[[StudyTracker], Summary]
) -> StudyResult[Summary]:
    """Run (or resume) the study, then ``finish(tracker)`` (``yct tune`` files the front).

    Whatever stops it on the way leaves the MLflow parent run FAILED with the error tagged
    (KILLED on Ctrl-C), never RUNNING."""
    check_files(space, options.data)
    start = None if options.resume else start_of(space, options.data)  # a resumed one has it
    check_fits(space, ray_adapter.start_ray(options.address))
    nodes = ray_adapter.alive_nodes()
    if "://" not in options.storage and nodes > 1:
        print(f"warning: --storage {options.storage} is a local folder but the cluster has "
              f"{nodes} nodes; trials on other nodes cannot checkpoint "
              "there: use s3://… or a folder every node mounts (NFS)",
              file=sys.stderr)  # fmt: skip
    trainable = build_trainable(space)
    if options.resume:
        ray_adapter.check_resumable(options.storage, options.name)
    tracker = _tracker(space, options)  # resumed: for the end; trials feed the saved one
    if start is not None:
        objectives = [(o.metric, o.mode) for o in space.objectives]
        tracker.record_start(start, reference_of(start, objectives))
    try:
        if options.resume:
            outcomes = ray_adapter.resume_tuner(trainable, name=options.name,
                                                storage=options.storage)  # fmt: skip
        else:
            outcomes = ray_adapter.run_tuner(trainable, study_search(space, options),
                                             name=options.name,
                                             storage=options.storage, events=tracker,
                                             verbose=options.verbose)  # fmt: skip
        return StudyResult(outcomes, finish(tracker))
    except KeyboardInterrupt:
        tracker.abort("interrupted (Ctrl-C)", interrupted=True)
        raise
    except BaseException as exc:
        tracker.abort(f"{type(exc).__name__}: {exc}")
        raise
