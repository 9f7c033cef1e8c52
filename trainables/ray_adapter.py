"""Every Ray call of the project, in one module (Ray has moved its Tune API three times).

Checked against the installed Ray (2.60). Trial side: the function-trainable API
``tune.report(metrics, checkpoint=Checkpoint.from_directory(...))``, ``tune.get_checkpoint()``
and the trial's context. Driver side: ``ray.init`` (local or a cluster), ``tune.Tuner`` with
``OptunaSearch`` behind a ``ConcurrencyLimiter``, ``FailureConfig``, ``Tuner.restore``; the
Ray classes the study subclasses (scheduler, limiter, callbacks) are in
:mod:`trainables.scheduling`.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainables.records import TrialEvents
from yolo.errors import DependencyError, root_cause, versions

STUDY_LIBRARIES = ("ray", "optuna", "mlflow", "torch")  # named when Ray's machinery fails

# ---------------------------------------------------------------------- trial side


def in_session() -> bool:
    """True inside a Tune trial (a trainable can also run as a plain function)."""
    from ray import tune

    with warnings.catch_warnings():  # outside a trial Ray warns, then answers None
        warnings.simplefilter("ignore")
        try:
            return tune.get_context().get_trial_id() is not None
        except Exception:  # no session: Ray raises different types across versions
            return False


def report(metrics: dict[str, Any], checkpoint_dir: Path | None = None) -> None:
    """Report one result (and register ``checkpoint_dir`` as the trial's checkpoint)."""
    from ray import tune

    checkpoint = tune.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
    tune.report(metrics, checkpoint=checkpoint)


@contextmanager
def restored_checkpoint() -> Iterator[Path | None]:
    """The directory of the checkpoint this trial restarts from, or None on a fresh start."""
    from ray import tune

    checkpoint = tune.get_checkpoint() if in_session() else None
    if checkpoint is None:
        yield None
        return
    with checkpoint.as_directory() as directory:
        yield Path(directory)


def scratch_dir() -> Path | None:
    """A node-local folder for this trial's working files, if in a session.

    Not the trial's own directory: Tune copies that whole folder to storage with every
    experiment-state sync, so working files there were uploaded again and again (and copied
    while being replaced, which Tune logged as errors). What a restart needs reaches storage
    as the checkpoint; a resumed trial finds, wipes and removes the same folder."""
    from ray import tune

    if not in_session():
        return None
    context = tune.get_context()  # name and id stay the same when a study is resumed
    unique = hashlib.sha1(context.get_trial_name().encode()).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / "yct-trials" / f"{context.get_trial_id()}-{unique}"


# ---------------------------------------------------------------------- driver side


def start_ray(address: str | None) -> dict[str, float]:
    """Local Ray with this machine's CPUs, or the cluster at ``address`` (or RAY_ADDRESS);
    returns the cluster's resources."""
    import ray

    if not ray.is_initialized():
        target = address or os.environ.get("RAY_ADDRESS")
        if target:
            ray.init(address=target, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    return autoscaler_capacity(dict(ray.cluster_resources()))


AUTOSCALER_CONFIG = Path("~/ray_bootstrap_config.yaml")  # `ray up` puts it on the head


def autoscaler_capacity(resources: dict[str, float],
                        config: Path = AUTOSCALER_CONFIG) -> dict[str, float]:  # fmt: skip
    """The cluster's resources, raised to what one node the autoscaler may still add has
    (node types declared with ``resources`` in cluster.yaml): on a cluster whose GPU workers
    are all down, a GPU trial is not refused."""
    path = config.expanduser()
    if not path.is_file():
        return resources
    import yaml

    declared = yaml.safe_load(path.read_text()) or {}
    capacity = dict(resources)
    for node_type in (declared.get("available_node_types") or {}).values():
        if int(node_type.get("max_workers", 0)) < 1:
            continue
        for key, value in (node_type.get("resources") or {}).items():
            capacity[key] = max(capacity.get(key, 0.0), float(value))
    return capacity


def alive_nodes() -> int:
    import ray

    return sum(1 for node in ray.nodes() if node.get("Alive"))


def with_resources(trainable: Any, resources: Mapping[str, float]) -> Any:
    from ray import tune

    return tune.with_resources(trainable, {"cpu": resources["cpu"], "gpu": resources["gpu"]})


@dataclass(frozen=True)
class Search:
    """How a study searches: the Optuna define-by-run, objectives, sampler, limits."""

    define_by_run: Any
    metrics: list[str]
    modes: list[str]
    sampler: Any
    num_samples: int | None  # None: until the budget is spent
    max_concurrent: int
    max_failures: int
    scheduler: str = "fifo"  # fifo, moasha (trainables.scheduling) or asha (one objective)
    budget: int | None = None  # in reports (trial-epochs)
    rungs: tuple[int, ...] = ()  # moasha's rungs, in reports
    reduction_factor: float | None = None
    # reason a drawn config must not be trained (``reject(config) -> str | None``), or None:
    # the architecture space's constraints (trainables.constrained_search)
    reject: Any = None

    def ledger(self) -> Any:
        """The study's compute account and rung records (:class:`trainables.scheduling.Ledger`)."""
        from trainables.moasha import Rungs
        from trainables.scheduling import Ledger

        rungs = None
        if self.scheduler == "moasha":
            assert self.reduction_factor and self.rungs
            rungs = Rungs(self.rungs, self.reduction_factor, tuple(self.modes))
        return Ledger(rungs, self.budget)


@dataclass(frozen=True)
class TrialOutcome:
    """A trial as the driver sees it at the end: id, last metrics, error (or None)."""

    trial_id: str
    metrics: dict[str, Any]
    error: str | None


def prune_checkpoints(grid: Any) -> None:
    """Once the study has ended, each trial keeps only the checkpoint Tune's final state names
    (what an errored trial resumes from); the rest are deleted, on any storage.

    Not while the study runs: Tune's own ``CheckpointConfig(num_to_keep)`` deletes a
    checkpoint as soon as a newer one is registered but saves the study's state a moment
    later, so a driver killed in between leaves a state naming a deleted checkpoint and that
    trial cannot resume (seen in the killed-driver test). So a study holds every epoch's
    checkpoint until it ends."""
    from pyarrow import fs as pafs

    for result in grid:
        if result.checkpoint is None:
            continue
        keep = result.checkpoint.path.rstrip("/")
        selector = pafs.FileSelector(result.path.rstrip("/"), allow_not_found=True)
        for info in result.filesystem.get_file_info(selector):
            name = info.path.rstrip("/").rsplit("/", 1)[-1]
            is_checkpoint = info.type == pafs.FileType.Directory and name.startswith("checkpoint_")
            if is_checkpoint and info.path.rstrip("/") != keep:
                result.filesystem.delete_dir(info.path)


def error_line(error: BaseException | str) -> str:
    """The line of a trial's error that says what went wrong: Ray wraps the trial's own
    exception in a failure header and a traceback, whose last line is the exception."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    line = lines[-1] if lines else type(error).__name__
    # a trial's scratch folder is gone once it failed, and would make equal errors distinct
    return re.sub(r"\S*yct-trials/[^/\s]+", "<trial folder>", line)[:300]


def _outcomes(grid: Any) -> list[TrialOutcome]:
    return [
        TrialOutcome(str((r.metrics or {}).get("trial_id", "")), dict(r.metrics or {}),
                     None if r.error is None else error_line(r.error))
        for r in grid
    ]  # fmt: skip


def study_path(storage: str, name: str) -> str:
    """Where Tune keeps the study (a local folder is made absolute, URIs are kept)."""
    root = str(Path(storage).resolve()) if "://" not in storage else storage
    return f"{root.rstrip('/')}/{name}"


@dataclass(frozen=True)
class TunerParts:
    """Exactly what a fresh study hands to ``tune.Tuner`` (Ray pickles all of it)."""

    trainable: Any
    tune_config: Any
    run_config: Any

    def components(self) -> list[tuple[str, Any, tuple[str, ...]]]:
        """(what, object, the libraries it comes from), in the order worth blaming."""
        limiter = self.tune_config.search_alg
        searcher = limiter.searcher
        return [
            # Ray keeps the sampler privately; if a release renames it, the searcher's own
            # check below still names the failure
            ("the Optuna sampler", getattr(searcher, "_sampler", None), ("optuna", "ray")),
            ("the Optuna searcher", limiter, ("optuna", "ray")),
            ("the scheduler", self.tune_config.scheduler, ("ray",)),
            ("the trainable", self.trainable, ("ray", "torch")),
            ("the study callbacks", self.run_config.callbacks, ("ray", "mlflow")),
        ]


def tuner_parts(trainable: Any, search: Search, *, name: str, storage: str,
                events: TrialEvents, verbose: bool = False) -> TunerParts:  # fmt: skip
    """OptunaSearch behind a concurrency limit that keeps the budget, the study's scheduler
    (FIFO or MOASHA with the budget stop, :mod:`trainables.scheduling`; or single-objective
    ASHA), the MLflow-feeding callback and the ledger they share; the terminal shows one
    progress line per event (:mod:`trainables.progress`), or Ray's table if ``verbose``."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from trainables.constrained_search import ConstrainedOptunaSearch
    from trainables.progress import ProgressLine
    from trainables.scheduling import BudgetedLimiter, ForwardTrialEvents, StudyScheduler
    from trainables.study_searcher import StudyOptunaSearch

    single = len(search.metrics) == 1  # Ray's OptunaSearch wants scalars for one objective
    ledger = search.ledger()
    options: dict[str, Any] = dict(
        space=search.define_by_run,
        metric=search.metrics[0] if single else search.metrics,
        mode=search.modes[0] if single else search.modes,
        sampler=search.sampler,
    )
    if search.reject is None:
        searcher: Any = StudyOptunaSearch(**options)
    else:
        searcher = ConstrainedOptunaSearch(**options, reject=search.reject, ledger=ledger)
    scheduler: Any = StudyScheduler(ledger, search.metrics)
    if search.scheduler == "asha":  # single-objective only (the loader refuses it otherwise)
        scheduler = ASHAScheduler(time_attr="training_iteration", metric=search.metrics[0],
                                  mode=search.modes[0])  # fmt: skip
    root, _, _ = study_path(storage, name).rpartition("/")
    return TunerParts(
        trainable,
        tune.TuneConfig(
            search_alg=BudgetedLimiter(searcher, search.max_concurrent, ledger),
            scheduler=scheduler,
            num_samples=-1 if search.num_samples is None else search.num_samples,
            reuse_actors=True),  # a trial's worker process stays for the next: no re-import
        tune.RunConfig(
            name=name, storage_path=root, verbose=1 if verbose else 0,
            callbacks=[ForwardTrialEvents(events, ledger, search.metrics), ledger,
                       *([] if verbose else [ProgressLine(name, ledger, search.metrics,
                                                          search.modes)])],
            failure_config=tune.FailureConfig(max_failures=search.max_failures)),
    )  # fmt: skip


def check_sendable(parts: TunerParts) -> None:
    """Pickle each part as Ray will, and name the first that cannot be sent (with the
    versions of the libraries it comes from) instead of Ray's bare pickling error."""
    from ray import cloudpickle

    for what, component, libraries in parts.components():
        try:
            cloudpickle.loads(cloudpickle.dumps(component))
        except Exception as exc:
            raise DependencyError(f"{what} ({versions(*libraries)}) cannot be sent to Ray: "
                                  f"{root_cause(exc)}") from exc  # fmt: skip


def _fit(tuner_factory: Any) -> Any:
    """Build the Tuner and run it; a failure inside Ray's own machinery (not a trial's: those
    are recorded per trial) becomes one DependencyError line naming the versions."""
    try:
        grid = tuner_factory().fit()
    except (KeyboardInterrupt, DependencyError):
        raise
    except Exception as exc:
        raise DependencyError(f"Ray Tune stopped the study ({versions(*STUDY_LIBRARIES)}): "
                              f"{root_cause(exc)}") from exc  # fmt: skip
    prune_checkpoints(grid)
    return grid


def run_tuner(trainable: Any, search: Search, *, name: str, storage: str,
              events: TrialEvents, verbose: bool = False) -> list[TrialOutcome]:  # fmt: skip
    """A fresh study (see :func:`tuner_parts`); its parts are checked to pickle first."""
    from ray import tune

    parts = tuner_parts(trainable, search, name=name, storage=storage, events=events,
                        verbose=verbose)  # fmt: skip
    check_sendable(parts)
    return _outcomes(_fit(lambda: tune.Tuner(parts.trainable, tune_config=parts.tune_config,
                                             run_config=parts.run_config)))  # fmt: skip


def check_resumable(storage: str, name: str) -> None:
    from ray import tune

    path = study_path(storage, name)
    if not tune.Tuner.can_restore(path):
        raise FileNotFoundError(f"no study to resume at {path}")


def resume_tuner(trainable: Any, *, name: str, storage: str) -> list[TrialOutcome]:
    """Continue an interrupted study: unfinished and errored trials resume from their last
    checkpoints, the searcher from its saved state (no trial lost or duplicated). The
    driver's callbacks come back from the study's saved state (Ray pickles the run config),
    so the trial-event receiver given to :func:`run_tuner` must be picklable."""
    from ray import tune

    check_resumable(storage, name)
    path = study_path(storage, name)
    return _outcomes(_fit(lambda: tune.Tuner.restore(path, trainable, resume_unfinished=True,
                                                     resume_errored=True)))  # fmt: skip
