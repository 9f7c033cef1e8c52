"""What a compression method is, in one place: its settings, how it runs, what it delivers.

A method module in :mod:`yolo.compress` ends with ``METHODS = (Method(...),)``;
:mod:`yolo.compress.registry` lists the modules. Everything else is derived from the
definition: the keys a search space may name and their domains (the config dataclass's
:func:`~yolo.settings.option` fields), the ``yct prune`` / ``yct distill`` flags, the trial
a study runs (``trainables``), the parameters MLflow shows, and the contract test's list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yolo.settings import Setting, build, settings_of

if TYPE_CHECKING:
    from yolo.train_config import TrainConfig


# run(train, config, *, callbacks=(), progress=True, log=print) -> reports
RunMethod = Callable[..., list[dict[str, float]]]


@dataclass(frozen=True)
class Method:
    """One compression method.

    ``run(train, config, callbacks=…)`` runs or resumes it in ``train.out``; its last
    ``on_report`` is always measured on the model it delivers: ``deliverable(train,
    config)``, a checkpoint relative to ``train.out`` written before that report.
    ``resume_files(out)`` are the files (relative to ``out``) that let an interrupted run
    continue. ``fidelity`` says what one report is;
    ``reports(train, config)`` how many a full run makes (the budget a scheduler sees);
    ``first_telling_report(train, config)`` the first report whose figures say something
    about the trial's outcome (LTH's round 0 only retrains the dense start, so its reports
    cannot tell one pruning schedule from another; CS's search reports are of the
    soft-gated model, not of its ticket): where early stopping's rungs start counting, so
    trials of different methods are compared after as many telling reports.
    ``first_delivering_report(train, config)`` the first report measured on a model the
    trial could deliver if it stopped there (CS's search reports measure the soft-gated
    model, which no file holds; LTH's round 0 measures the dense model it saves): a trial
    stopped before it shows no model figures and has nothing on the front.
    ``nested_runs(train, config)`` the reports at which a run has made, exactly, the whole
    run of a cheaper setting of the same method: report number -> the method settings of
    that run (LTH with ``rounds: 3``: round 1's last report is where a ``rounds: 1`` run
    ends, on the same ticket ``round_01/last.pt``, since a round prunes and trains the same
    way whatever rounds follow). A search is told them as trials of those settings: free
    measurements for a model-based sampler. Only where the prefix is exact: structured
    pruning's step targets and CS's round lengths depend on the total, so they have none.
    """

    name: str
    summary: str
    command: str  # the yct command that runs it alone: train, prune, distill
    config: type | None  # its settings dataclass (None: training settings only)
    run: RunMethod
    deliverable: Callable[[TrainConfig, Any], str]
    resume_files: Callable[[Path], list[Path]]
    fidelity: str
    reports: Callable[[TrainConfig, Any], int]
    check: Callable[[TrainConfig, Any], None] | None = None  # rules across settings
    first_telling_report: Callable[[TrainConfig, Any], int] = lambda train, config: 1
    first_delivering_report: Callable[[TrainConfig, Any], int] = lambda train, config: 1
    nested_runs: Callable[[TrainConfig, Any], dict[int, dict[str, Any]]] = lambda train, config: {}

    @property
    def settings(self) -> tuple[Setting, ...]:
        return settings_of(self.config) if self.config is not None else ()

    def make_config(self, values: dict[str, Any], where: str) -> Any:
        """The config dataclass from ``values`` (names, types and domains checked)."""
        if self.config is None:
            if values:
                raise ValueError(f"{where}: unknown key '{next(iter(values))}'; method "
                                 f"'{self.name}' takes training settings only")  # fmt: skip
            return None
        return build(self.config, values, where)

    def validate(self, train: TrainConfig, config: Any) -> None:
        """The rules that tie the method's settings to the training run (e.g. a rewind epoch
        before the last epoch): ``ValueError`` naming them."""
        if self.check is not None:
            self.check(train, config)
