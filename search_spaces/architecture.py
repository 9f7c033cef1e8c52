"""The ``architecture:`` section of a search space: which stage choices a study draws.

::

    method: train
    model: yolov3-mobile              # the family's parent cfg
    fixed: {inherit: ../runs/nas/parent-mobile/best.pt, img_size: 96, epochs: 2}
    architecture:
      all:                            # every stage that has the choice
        kernel: {type: categorical, choices: [3, 5, 7]}
        se: {type: categorical, choices: [0, 1]}
      s3: {depth: {type: int, low: 2, high: 8}, expansion: {type: categorical, choices: [3, 6]}}
      s4: {depth: {type: int, low: 2, high: 8}, per_unit: [kernel]}
      s5: {activation: hswish}        # a plain value: fixed, not drawn
      constraints: {max_macs: 4.0e7}  # and/or max_params, max_latency_ms

A stage's keys are those of :mod:`yolo.architecture` (``depth``, and ``expansion``,
``kernel``, ``se``, ``activation`` for ``[mobile]`` units, ``x_ratio`` and ``activation``
for ``[PEP]`` ones). ``per_unit: [key, …]`` draws those keys once per unit kept instead of
once per stage: unit 3's choices exist only in trials whose stage depth is at least 3
(Optuna's define-by-run space). A trial's drawn values are ``arch.<key>``,
``arch.<stage>.<key>`` and ``arch.<stage>.u<N>.<key>``; the trainable turns them into the
cfg the trial trains (:func:`trial_cfg`), written beside its checkpoints.

The loader refuses, before Ray starts: a model without residual stages, a choice a stage
does not have or a value outside its rule (with the stage, key and allowed values), an
architecture among the space's extremes that does not build, and constraints that even the
smallest architecture breaks. Constraints are then enforced at sampling
(:meth:`ArchitectureSpace.violation`): a draw that breaks one is told to Optuna as failed,
counted by reason, and drawn again, never trained.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from search_spaces.param import Param, parse_param
from yolo.architecture import (
    UNIT_KEYS,
    Architecture,
    Stage,
    architecture_from_flat,
    check_value,
    find_stages,
    generate,
)
from yolo.config import Cfg, format_cfg

PREFIX = "arch."
SHARED = "all"
CONSTRAINTS = ("max_macs", "max_params", "max_latency_ms")
LATENCY_RUNS_AT_SAMPLING = 5


class ArchitectureError(ValueError):
    """An architecture section that cannot run; names the file, key and rule."""


@dataclass(frozen=True)
class ArchitectureSpace:
    """What a study draws: ``params`` (named without :data:`PREFIX`), ``fixed`` choices,
    ``per_unit`` (stage -> (unit count, params drawn per unit)) and the constraints."""

    parent: Cfg
    stages: tuple[Stage, ...]
    params: tuple[Param, ...]
    fixed: Mapping[str, Any]
    per_unit: tuple[tuple[str, tuple[Param, ...]], ...]
    constraints: Mapping[str, float]

    def suggest(self, trial: Any, suggest: Any) -> None:
        """Draw every parameter on the Optuna ``trial`` (``suggest(trial, name, param)``);
        a stage's per-unit ones for the units its drawn depth keeps."""
        for param in self.params:
            suggest(trial, PREFIX + param.name, param)
        by_name = {s.name: s for s in self.stages}
        for stage, params in self.per_unit:
            depth_key = f"{PREFIX}{stage}.depth"
            depth = trial.params.get(depth_key, self.fixed.get(f"{stage}.depth"))
            depth = by_name[stage].depth if depth is None else int(depth)
            for number in range(1, depth + 1):
                for param in params:
                    suggest(trial, f"{PREFIX}{stage}.u{number}.{param.name}", param)

    def architecture(self, drawn: Mapping[str, Any]) -> Architecture:
        """The architecture of a trial's ``arch.*`` values and the fixed choices."""
        values = {**self.fixed, **{k.removeprefix(PREFIX): v for k, v in drawn.items()}}
        return architecture_from_flat(values, self.stages)

    def violation(self, drawn: Mapping[str, Any], *, img_size: int, classes: int,
                  width: float) -> str | None:  # fmt: skip
        """The first constraint the drawn architecture breaks (``'max_macs: 5.1e+07 >
        4e+07'``), or None. MACs and params are counted on the candidate's shapes (the meta
        device: half a second, no weights), dense as the trained model the trial delivers
        is; a latency cap times a built model."""
        if not self.constraints:
            return None
        from yolo.metrics import names as m
        from yolo.metrics.profile import count_macs, count_params, model_costs
        from yolo.resources import meta_model
        from yolo.zoo import model_from_cfg, with_classes, with_width

        cfg = with_width(with_classes(generate(self.parent, self.architecture(drawn)).cfg,
                                      classes), width)  # fmt: skip
        shapes = meta_model(cfg)
        costs = {"max_macs": float(count_macs(shapes, img_size, channels=cfg.net.channels).dense),
                 "max_params": float(count_params(shapes))}  # fmt: skip
        if "max_latency_ms" in self.constraints:
            timed = model_costs(model_from_cfg(cfg).eval(), img_size,
                                latency_runs=LATENCY_RUNS_AT_SAMPLING)  # fmt: skip
            costs["max_latency_ms"] = timed[m.LATENCY_MS]
        for key, limit in self.constraints.items():
            if costs[key] > limit:
                return f"{key}: {costs[key]:.4g} > {limit:.4g}"
        return None


@dataclass(frozen=True)
class ConstraintCheck:
    """``check(config) -> reason | None`` for a trial config the searcher drew: the first
    constraint of ``space`` its architecture breaks at the config's size and width (the
    study's fixed ones if the space does not draw them). Picklable: the searcher holding it
    is saved with the study."""

    space: ArchitectureSpace
    classes: int
    img_size: int
    width: float

    def __call__(self, config: Mapping[str, Any]) -> str | None:
        drawn = {k: v for k, v in config.items() if k.startswith(PREFIX)}
        return self.space.violation(drawn, img_size=int(config.get("img_size", self.img_size)),
                                    classes=self.classes,
                                    width=float(config.get("width", self.width)))  # fmt: skip


def trial_cfg(parent: Cfg, space: ArchitectureSpace | None, drawn: Mapping[str, Any]) -> str:
    """The cfg text a trial with ``drawn`` ``arch.*`` values trains."""
    if space is None:
        architecture = architecture_from_flat(
            {k.removeprefix(PREFIX): v for k, v in drawn.items()}, find_stages(parent)
        )
    else:
        architecture = space.architecture(drawn)
    return format_cfg(generate(parent, architecture, source="architecture.cfg").cfg)


def split_drawn(values: dict[str, Any]) -> dict[str, Any]:
    """Remove and return a trial config's ``arch.*`` values."""
    drawn = {k: v for k, v in values.items() if k.startswith(PREFIX)}
    for key in drawn:
        del values[key]
    return drawn


# --------------------------------------------------------------------------- loading


def _fail(source: str, key: str, what: str) -> ArchitectureError:
    return ArchitectureError(f"{source}: architecture.{key}: {what}")


def _extremes(param: Param) -> tuple[Any, Any]:
    values = [v for _, v in param.values()]
    if param.kind == "categorical":
        try:
            return min(values), max(values)
        except TypeError:  # activations: no order, every one is an extreme
            return values[0], values[-1]
    return values[0], values[-1]


def load_architecture(raw: Any, parent: Cfg, source: str) -> ArchitectureSpace:
    """The checked ``architecture:`` section of ``source`` over the ``parent`` cfg."""
    if not isinstance(raw, Mapping) or not raw:
        raise ArchitectureError(f"{source}: architecture: expected a mapping of stages "
                                f"(s1, s2, …, '{SHARED}') and constraints, "
                                f"got {raw!r}")  # fmt: skip
    stages = find_stages(parent)
    if not stages:
        raise ArchitectureError(f"{source}: architecture: {parent.source} has no residual "
                                "stages ([mobile] units closed by a shortcut, or [PEP] "
                                "blocks with a residual): architecture search covers the "
                                "yolov3-mobile and yolo-nano families")  # fmt: skip
    by_name = {s.name: s for s in stages}
    params: list[Param] = []
    fixed: dict[str, Any] = {}
    per_unit: list[tuple[str, tuple[Param, ...]]] = []
    constraints: dict[str, float] = {}
    shared_params: dict[str, Param] = {}
    for section, body in raw.items():
        if section == "constraints":
            constraints = _constraints(source, body)
            continue
        if section != SHARED and section not in by_name:
            raise _fail(source, str(section), f"no such stage; {parent.source} has "
                        f"{', '.join(by_name)} (or '{SHARED}', 'constraints')")  # fmt: skip
        if not isinstance(body, Mapping):
            raise _fail(source, section, f"expected a mapping of choices, got {body!r}")
        targets = list(stages) if section == SHARED else [by_name[section]]
        wanted = body.get("per_unit", [])
        if section == SHARED and wanted:
            raise _fail(source, f"{SHARED}.per_unit", "per_unit is a stage's (s1, s2, …)")
        if not isinstance(wanted, list) or not all(isinstance(k, str) for k in wanted):
            raise _fail(source, f"{section}.per_unit",
                        f"expected a list of choices, got {wanted!r}")  # fmt: skip
        stage_unit_params: list[Param] = []
        for key, spec in body.items():
            if key == "per_unit":
                continue
            where = f"{section}.{key}"
            having = [s for s in targets if key in s.keys()]
            if not having:
                allowed = sorted({k for s in targets for k in s.keys()})
                raise _fail(source, where, f"no choice '{key}' in {section}; allowed: "
                            f"{', '.join(allowed)}, per_unit")  # fmt: skip
            name = key if section == SHARED else f"{section}.{key}"
            if isinstance(spec, Mapping):
                try:
                    param = parse_param(f"architecture.{where}", name, spec)
                except ValueError as exc:
                    raise ArchitectureError(f"{source}: {exc}") from None
                for bound, value in param.values():
                    for stage in having:
                        try:
                            check_value(stage, key, value)
                        except ValueError as exc:
                            raise _fail(source, f"{where}.{bound}", f"stage {stage.name}: {exc}"
                                        ) from None  # fmt: skip
                if key in wanted:
                    stage_unit_params.append(Param(key, param.kind, param.low, param.high,
                                                   param.choices))  # fmt: skip
                else:
                    params.append(param)
                    if section == SHARED:
                        shared_params[key] = param
            else:
                for stage in having:
                    try:
                        check_value(stage, key, spec)
                    except ValueError as exc:
                        raise _fail(source, where, f"stage {stage.name}: {exc}") from None
                if key in wanted:
                    raise _fail(source, f"{section}.per_unit", f"'{key}' is fixed in "
                                f"{section}; per_unit draws a choice per unit")  # fmt: skip
                fixed[name] = spec
        for key in wanted:
            if key == "depth" or key not in by_name[section].keys():
                unit_keys = ", ".join(UNIT_KEYS[by_name[section].kind])
                raise _fail(source, f"{section}.per_unit", f"'{key}' is not a unit's choice "
                            f"here; allowed: {unit_keys}")  # fmt: skip
            if not any(p.name == key for p in stage_unit_params):
                shared = shared_params.get(key) or _shared_param(raw, key, source)
                if shared is None:
                    raise _fail(source, f"{section}.per_unit", f"'{key}' has no domain: give "
                                f"{section}.{key} or {SHARED}.{key}")  # fmt: skip
                stage_unit_params.append(shared)
        if stage_unit_params:
            per_unit.append((section, tuple(stage_unit_params)))
    result = ArchitectureSpace(parent, stages, tuple(params), fixed, tuple(per_unit), constraints)
    _check_extremes(result, source)
    return result


def _shared_param(raw: Mapping[str, Any], key: str, source: str) -> Param | None:
    spec = (raw.get(SHARED) or {}).get(key)
    if not isinstance(spec, Mapping):
        return None
    return parse_param(f"architecture.{SHARED}.{key}", key, spec)


def _constraints(source: str, body: Any) -> dict[str, float]:
    if not isinstance(body, Mapping) or not body:
        raise _fail(source, "constraints", f"expected {{{', '.join(CONSTRAINTS)}}}, got {body!r}")
    result = {}
    for key, value in body.items():
        if key not in CONSTRAINTS:
            raise _fail(source, f"constraints.{key}", f"unknown; allowed: {', '.join(CONSTRAINTS)}")
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value <= 0:
            raise _fail(source, f"constraints.{key}", f"must be a finite number > 0, got {value!r}")
        result[key] = float(value)
    return result


def extreme_draws(space: ArchitectureSpace) -> list[dict[str, Any]]:
    """The draws the loader builds: every parameter at its smallest (first), at its largest
    (second), and, stage by stage, every combination of its own parameters' extremes (the
    rest at the smallest, then at the largest); per-unit parameters take one extreme in
    every unit the stage's drawn depth keeps, both extremes with the other draws."""

    def own(param: Param) -> str:
        return param.name.split(".")[0] if "." in param.name else SHARED

    low = {p.name: _extremes(p)[0] for p in space.params}
    high = {p.name: _extremes(p)[1] for p in space.params}
    draws = [low, high]
    for stage in {own(p) for p in space.params} - {SHARED}:
        mine = [p for p in space.params if own(p) == stage]
        for ends in itertools.product((0, 1), repeat=len(mine)):
            picked = {p.name: _extremes(p)[e] for p, e in zip(mine, ends)}
            draws += [{**low, **picked}, {**high, **picked}]
    # the smallest draw first and the largest second (the loader's checks rely on it)
    order: list[tuple[dict[str, Any], int]] = [(low, 0), (high, 1)]
    if space.per_unit:
        order += [(low, 1), (high, 0)] + [(d, e) for d in draws[2:] for e in (0, 1)]
    else:
        order += [(d, 0) for d in draws[2:]]
    result = []
    for draw, end in order:
        values = {PREFIX + k: v for k, v in draw.items()}
        for stage, params in space.per_unit:
            depth = draw.get(f"{stage}.depth", space.fixed.get(f"{stage}.depth"))
            depth = next(s.depth for s in space.stages if s.name == stage) if depth is None \
                else int(depth)  # fmt: skip
            for number in range(1, depth + 1):
                for param in params:
                    values[f"{PREFIX}{stage}.u{number}.{param.name}"] = _extremes(param)[end]
        result.append(values)
    return result


def _check_extremes(space: ArchitectureSpace, source: str) -> None:
    from yolo.resources import check_params_fit

    largest = None
    for drawn in extreme_draws(space):
        try:
            generated = generate(space.parent, space.architecture(drawn))
        except ValueError as exc:
            shown = ", ".join(f"{k.removeprefix(PREFIX)}={v}" for k, v in drawn.items())
            raise ArchitectureError(f"{source}: architecture: the draw {shown} does not build: "
                                    f"{' '.join(str(exc).split())}") from None  # fmt: skip
        size = len(generated.cfg.blocks)
        if largest is None or size > len(largest.blocks):
            largest = generated.cfg
    if largest is not None:
        try:
            check_params_fit(largest)
        except ValueError as exc:
            raise ArchitectureError(f"{source}: architecture: {exc}") from None


def check_constraints_reachable(space: ArchitectureSpace, source: str, *, img_size: int,
                                classes: int, width: float) -> None:  # fmt: skip
    """Refuse constraints that the smallest draw of the space already breaks."""
    if not space.constraints:
        return
    smallest = extreme_draws(space)[0]
    problem = space.violation(smallest, img_size=img_size, classes=classes, width=width)
    if problem is not None:
        raise ArchitectureError(f"{source}: architecture.constraints.{problem.split(':')[0]}: "
                                f"even the smallest architecture of the space breaks it "
                                f"({problem}); loosen it or shrink the space")  # fmt: skip
