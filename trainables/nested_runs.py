"""A report that ends a cheaper run inside a trial: what it is called in the trial's config.

An LTH trial with ``rounds: 3`` has, at round 1's last report, made exactly the whole run a
``rounds: 1`` trial would (:attr:`yolo.compress.method.Method.nested_runs`). The trainable
marks that report with the settings of the nested run, named as the study's config names
them (``lth.rounds`` in a multi-method study, ``rounds`` in a one-method one), under
:data:`NESTED_RUN`; the study's searcher (:mod:`trainables.study_searcher`) tells the
sampler a trial of those settings with the report's objectives. Kept apart from the searcher
so that a trial's worker imports no sampler.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from yolo.compress.trial import Trial
from yolo.metrics.names import NESTED_RUN

PREFIX = NESTED_RUN + "/"  # how Tune's flattened result names its entries


def nested_run_marks(trial: Trial, config: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    """Report number -> the config keys and values of the run that report ends, for the
    trial built from ``config``. None where the trial's last report measures something its
    earlier ones do not (an INT8 delivery replaces the float model's figures), and none for
    a setting the config does not carry (a nested run is only told as a point of the space)."""
    if trial.export.export == "int8":
        return {}
    name = trial.method.name
    marks = {}
    for report, settings in trial.method.nested_runs(trial.train, trial.config).items():
        keys = {}
        for key, value in settings.items():
            flat = next((k for k in (f"{name}.{key}", key) if k in config), None)
            if flat is None:
                break
            keys[flat] = value
        else:
            marks[int(report)] = keys
    return marks


def nested_run(result: Mapping[str, Any]) -> dict[str, Any]:
    """The nested run a (flattened or not) Tune result ends: its config keys and values, or
    ``{}`` when it ends none."""
    inner = result.get(NESTED_RUN)
    if isinstance(inner, Mapping):
        return dict(inner)
    return {k[len(PREFIX) :]: v for k, v in result.items() if k.startswith(PREFIX)}
