"""A search space as an Optuna define-by-run function (what Ray's OptunaSearch drives).

Single method: parameters keep their names. Several methods: ``method`` is a categorical and
each method's own parameters are suggested as ``<method>.<name>`` only when it is drawn, so
Optuna sees a consistent distribution per name and the fronts of all methods compete in one
study. The returned constants (model, data, fixed settings) complete every trial's config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from search_spaces.architecture import PREFIX
from search_spaces.param import Param
from search_spaces.schema import SearchSpace
from yolo.compress.registry import get_method
from yolo.compress.trial import trial_settings

METHOD_KEY = "method"


def _suggest(trial: Any, name: str, param: Param) -> Any:
    if param.kind == "categorical":
        return trial.suggest_categorical(name, list(param.choices))
    if param.kind == "int":
        return trial.suggest_int(name, int(param.low), int(param.high))
    return trial.suggest_float(name, param.low, param.high, log=param.kind == "loguniform")


class DefineByRun:
    """``f(trial) -> constants`` suggesting every parameter of ``space`` on ``trial``.

    A class, not a closure, so that Ray can pickle the searcher with it (study checkpoints).
    """

    def __init__(self, space: SearchSpace, data: str | None = None) -> None:
        self.space = space
        self.constants = {"model": space.model, "data": data or space.data, **space.fixed}
        if space.architecture is not None:  # fixed stage choices travel with every trial
            self.constants.update({PREFIX + k: v for k, v in space.architecture.fixed.items()})
        if self.constants["data"] is None:
            raise ValueError(f"{space.source}: data: no dataset spec (give 'data:' or --data)")

    def __call__(self, trial: Any) -> dict[str, Any]:
        space = self.space
        for param in space.shared:
            _suggest(trial, param.name, param)
        if space.multi_method:
            method = trial.suggest_categorical(METHOD_KEY, list(space.methods))
            for param in space.space[method]:
                _suggest(trial, f"{method}.{param.name}", param)
        else:
            for param in space.space[space.methods[0]]:
                _suggest(trial, param.name, param)
        if space.architecture is not None:
            space.architecture.suggest(trial, _suggest)
        return dict(self.constants)


def define_by_run(space: SearchSpace, data: str | None = None) -> Callable[[Any], dict[str, Any]]:
    return DefineByRun(space, data)


def method_config(
    config: Mapping[str, Any], methods: tuple[str, ...]
) -> tuple[str, dict[str, Any]]:
    """(method, its flat settings) from a trial config of a single- or multi-method study.

    Several methods: ``<method>.<key>`` keys of the drawn method lose their prefix, those of
    the others are dropped, and so is a fixed setting that only other methods take. A key
    no method takes is kept, so that the trial's own check names it."""
    if len(methods) == 1:
        return methods[0], dict(config)
    name = config.get(METHOD_KEY)
    if name not in methods:
        raise ValueError(f"trial config: method {name!r} is not one of {', '.join(methods)}")
    allowed = trial_settings(get_method(name))
    others = set().union(*(trial_settings(get_method(o)) for o in methods if o != name))
    own: dict[str, Any] = {}
    for key, value in config.items():
        prefix, dot, rest = key.partition(".")
        if key == METHOD_KEY or (dot and prefix != name):
            continue
        key = rest if dot else key
        if key in allowed or key not in others:
            own[key] = value
    return name, own
