"""The search-space YAML: loaded once into frozen dataclasses and checked before Ray starts.

::

    method: lth                     # a registered trainable, or a list for a multi-method study
    model: yolov3-tiny
    data: demo_data/data.yaml       # relative to this file; --data overrides
    objectives:                     # one or several
      - {metric: map50, mode: max}
      - {metric: macs, mode: min}
    fixed: {width: 0.25, img_size: 128, epochs: 3}
    space:                          # inclusive bounds
      rate: {type: float, low: 0.1, high: 0.6}
      lr0: {type: loguniform, low: 1.0e-4, high: 1.0e-2}
      rounds: {type: int, low: 1, high: 3}
      scope: {type: categorical, choices: [local, global]}
    search: {sampler: nsga2, num_samples: 8, max_concurrent: 2, scheduler: none, seed: 0,
             max_failures: 1}
    resources: {cpu: 1, gpu: 0}

With ``method: [lth, cs]`` the ``space`` may hold a section per method (``lth: {…}``) beside
the shared parameters: the method becomes a categorical and each method's parameters are
drawn only when it is chosen.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from yolo.metrics.names import HIGHER_IS_BETTER

KINDS = ("float", "int", "loguniform", "categorical")
SAMPLERS = ("nsga2", "tpe", "random")
SCHEDULERS = ("none", "asha")
MODES = ("min", "max")
FILE_KEYS = ("weights", "teacher")  # fixed settings that name a checkpoint
_TOP_KEYS = {"method", "model", "data", "objectives", "fixed", "space", "search", "resources"}
_SEARCH_DEFAULTS: dict[str, Any] = {"sampler": None, "num_samples": 8, "max_concurrent": 2,
                                    "scheduler": "none", "seed": 0, "max_failures": 1,
                                    "population_size": None}  # fmt: skip


class SpaceError(ValueError):
    """A search space that cannot run; names the file, the key and what is allowed."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def is_numeric(self) -> bool:
        return self.kind != "categorical"


@dataclass(frozen=True)
class Objective:
    metric: str
    mode: str


@dataclass(frozen=True)
class SearchSettings:
    sampler: str
    num_samples: int
    max_concurrent: int
    scheduler: str
    seed: int
    max_failures: int
    population_size: int | None = None  # NSGA-II generation size (Optuna's default: 50)


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space. ``space[method]`` holds that method's own parameters."""

    methods: tuple[str, ...]
    model: str
    data: str | None
    objectives: tuple[Objective, ...]
    fixed: Mapping[str, Any]
    shared: tuple[Param, ...]
    space: Mapping[str, tuple[Param, ...]]
    search: SearchSettings
    resources: Mapping[str, float]
    source: str = "<space>"

    @property
    def multi_method(self) -> bool:
        return len(self.methods) > 1


@dataclass
class _Ctx:
    source: str

    def fail(self, key: str, what: str) -> SpaceError:
        return SpaceError(f"{self.source}: {key}: {what}")


def _number(ctx: _Ctx, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ctx.fail(key, f"expected a finite number but got {value!r}")
    return float(value)


def _param(ctx: _Ctx, key: str, name: str, spec: Any) -> Param:
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ctx.fail(key, f"expected {{type: {'|'.join(KINDS)}, …}} but got {spec!r}")
    kind = spec["type"]
    if kind not in KINDS:
        raise ctx.fail(f"{key}.type", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    allowed = {"type", "choices"} if kind == "categorical" else {"type", "low", "high"}
    extra = sorted(set(spec) - allowed)
    if extra:
        raise ctx.fail(
            f"{key}.{extra[0]}", f"unknown key for a {kind}; allowed: {', '.join(sorted(allowed))}"
        )
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ctx.fail(f"{key}.choices", "expected a non-empty list")
        for choice in choices:  # what Optuna can store and compare
            if choice is not None and not isinstance(choice, (bool, int, float, str)):
                raise ctx.fail(f"{key}.choices", f"{choice!r}: a choice must be a number, string, "
                               "boolean or null (e.g. hint pairs as '36:12,61:21')")  # fmt: skip
        return Param(name, kind, choices=tuple(choices))
    for bound in ("low", "high"):
        if bound not in spec:
            raise ctx.fail(f"{key}.{bound}", "missing")
    low, high = _number(ctx, f"{key}.low", spec["low"]), _number(ctx, f"{key}.high", spec["high"])
    if low > high:
        raise ctx.fail(key, f"low must be <= high, got low={spec['low']} > high={spec['high']}")
    if kind == "loguniform" and low <= 0:
        raise ctx.fail(f"{key}.low", f"loguniform needs low > 0, got {spec['low']}")
    if kind == "int" and (low != int(low) or high != int(high)):
        raise ctx.fail(key, f"int bounds must be integers, got {spec['low']}, {spec['high']}")
    return Param(name, kind, low, high)


def _params(
    ctx: _Ctx, prefix: str, mapping: Any, allowed: Mapping[str, type], method: str
) -> tuple[Param, ...]:
    if not isinstance(mapping, Mapping):
        raise ctx.fail(prefix, f"expected a mapping of parameters, got {mapping!r}")
    params = []
    for name, spec in mapping.items():
        if name not in allowed:
            raise ctx.fail(f"{prefix}.{name}", f"trainable '{method}' does not accept it; "
                           f"allowed: {', '.join(sorted(allowed))}")  # fmt: skip
        params.append(_param(ctx, f"{prefix}.{name}", name, spec))
    return tuple(params)


def space_from_mapping(data: Any, source: str, base: Path | None = None) -> SearchSpace:
    """Validate a parsed search-space mapping (trainables checked against the registry)."""
    from trainables.registry import get_trainable, trainable_names

    ctx = _Ctx(source)
    if not isinstance(data, Mapping):
        raise SpaceError(f"{source}: expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ctx.fail(unknown[0], f"unknown key; allowed: {', '.join(sorted(_TOP_KEYS))}")
    raw_methods = data.get("method")
    methods = tuple(raw_methods) if isinstance(raw_methods, list) else (raw_methods,)
    valid = trainable_names()
    for method in methods:
        if method not in valid:
            raise ctx.fail(
                "method", f"unknown method {method!r}; valid methods: {', '.join(valid)}"
            )
    if len(set(methods)) != len(methods):
        raise ctx.fail("method", f"listed twice: {list(methods)}")
    allowed = {m: get_trainable(m).allowed_keys() for m in methods}
    if not isinstance(data.get("model"), str):
        raise ctx.fail("model", "required: a zoo name or cfg path")
    objectives = _objectives(ctx, data.get("objectives"))
    fixed = data.get("fixed") or {}
    if not isinstance(fixed, Mapping):
        raise ctx.fail("fixed", f"expected a mapping, got {fixed!r}")
    for key in fixed:
        if not any(key in a for a in allowed.values()):
            raise ctx.fail(f"fixed.{key}", f"no trainable of this study accepts it; allowed: "
                           f"{', '.join(sorted(set().union(*allowed.values())))}")  # fmt: skip
    raw_space = dict(data.get("space") or {})
    per_method = {m: raw_space.pop(m) for m in methods if isinstance(raw_space.get(m), Mapping)
                  and "type" not in raw_space[m]}  # fmt: skip
    common = set.intersection(*(set(a) for a in allowed.values()))
    shared = _params(ctx, "space", raw_space, {k: object for k in common}, "/".join(methods))
    space = {m: _params(ctx, f"space.{m}", per_method.get(m, {}), allowed[m], m) for m in methods}
    data_path = data.get("data")
    if data_path is not None and base is not None and not Path(data_path).is_absolute():
        data_path = str((base / data_path).resolve())
    fixed = dict(fixed)
    for key in FILE_KEYS:  # checkpoints (start, teacher), relative to this file too
        if isinstance(fixed.get(key), str):
            path = Path(fixed[key])
            if base is not None and not path.is_absolute():
                path = (base / path).resolve()
            fixed[key] = str(path)
    return SearchSpace(
        methods=methods,
        model=data["model"],
        data=data_path,
        objectives=objectives,
        fixed=fixed,
        shared=shared,
        space=space,
        search=_search(ctx, data.get("search") or {}, len(objectives)),
        resources=_resources(ctx, data.get("resources") or {}),
        source=source,
    )


def _objectives(ctx: _Ctx, raw: Any) -> tuple[Objective, ...]:
    if not isinstance(raw, list) or not raw:
        raise ctx.fail("objectives", "expected a non-empty list of {metric, mode}")
    result = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or set(item) != {"metric", "mode"}:
            raise ctx.fail(f"objectives[{i}]", f"expected {{metric, mode}}, got {item!r}")
        if item["metric"] not in HIGHER_IS_BETTER:
            raise ctx.fail(f"objectives[{i}].metric", f"unknown metric {item['metric']!r}; "
                           f"allowed: {', '.join(sorted(HIGHER_IS_BETTER))}")  # fmt: skip
        if item["mode"] not in MODES:
            raise ctx.fail(f"objectives[{i}].mode", f"must be min or max, got {item['mode']!r}")
        result.append(Objective(item["metric"], item["mode"]))
    if len({o.metric for o in result}) != len(result):
        raise ctx.fail("objectives", "a metric is listed twice")
    return tuple(result)


def _search(ctx: _Ctx, raw: Any, objectives: int) -> SearchSettings:
    if not isinstance(raw, Mapping):
        raise ctx.fail("search", f"expected a mapping, got {raw!r}")
    unknown = sorted(set(raw) - set(_SEARCH_DEFAULTS))
    if unknown:
        raise ctx.fail(
            f"search.{unknown[0]}", f"unknown key; allowed: {', '.join(_SEARCH_DEFAULTS)}"
        )
    values = {**_SEARCH_DEFAULTS, **raw}
    values["sampler"] = values["sampler"] or ("nsga2" if objectives > 1 else "tpe")
    if values["sampler"] not in SAMPLERS:
        raise ctx.fail(
            "search.sampler", f"must be one of {', '.join(SAMPLERS)}, got {values['sampler']!r}"
        )
    if values["scheduler"] not in SCHEDULERS:
        raise ctx.fail(
            "search.scheduler",
            f"must be one of {', '.join(SCHEDULERS)}, got {values['scheduler']!r}",
        )
    for key in ("num_samples", "max_concurrent"):
        if isinstance(values[key], bool) or not isinstance(values[key], int) or values[key] < 1:
            raise ctx.fail(f"search.{key}", f"must be an integer >= 1, got {values[key]!r}")
    if isinstance(values["max_failures"], bool) or not isinstance(values["max_failures"], int):
        raise ctx.fail("search.max_failures", f"must be an integer, got {values['max_failures']!r}")
    population = values["population_size"]
    if population is not None:
        if isinstance(population, bool) or not isinstance(population, int) or population < 2:
            raise ctx.fail("search.population_size", f"must be an integer >= 2, got {population!r}")
        if values["sampler"] != "nsga2":
            sampler = values["sampler"]
            raise ctx.fail("search.population_size", f"only the nsga2 sampler has generations, "
                           f"not {sampler}")  # fmt: skip
    return SearchSettings(**values)


def _resources(ctx: _Ctx, raw: Any) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        raise ctx.fail("resources", f"expected {{cpu, gpu}}, got {raw!r}")
    unknown = sorted(set(raw) - {"cpu", "gpu"})
    if unknown:
        raise ctx.fail(f"resources.{unknown[0]}", "unknown key; allowed: cpu, gpu")
    cpu = _number(ctx, "resources.cpu", raw.get("cpu", 1))
    gpu = _number(ctx, "resources.gpu", raw.get("gpu", 0))
    if cpu <= 0 or gpu < 0:
        raise ctx.fail("resources", f"cpu must be > 0 and gpu >= 0, got cpu={cpu} gpu={gpu}")
    return {"cpu": cpu, "gpu": gpu}


def check_files(space: SearchSpace) -> None:
    """Files the trials will open exist, and distillation hint pairs fit the teacher and the
    student (checked by ``yct tune`` before Ray starts; not at load, so a space can be
    validated before its checkpoints are trained)."""
    for key in FILE_KEYS:
        path = space.fixed.get(key)
        if isinstance(path, str) and not Path(path).is_file():
            raise SpaceError(f"{space.source}: fixed.{key}: checkpoint not found: {path}")
    if isinstance(space.fixed.get("teacher"), str):
        _check_hints(space)


def _check_hints(space: SearchSpace) -> None:
    from yolo.compress.teacher import check_pairs, parse_pairs
    from yolo.io import load_checkpoint
    from yolo.zoo import create_model

    choices = [("fixed.hints", space.fixed["hints"])] if "hints" in space.fixed else []
    for method, params in [("", space.shared), *space.space.items()]:
        prefix = f"space.{method}." if method else "space."
        choices += [(prefix + p.name, c) for p in params if p.name == "hints" for c in p.choices]
    if not choices:
        return
    teacher = load_checkpoint(space.fixed["teacher"]).model
    start = space.fixed.get("weights")
    if isinstance(start, str) and start.endswith(".pt"):  # the student starts from a checkpoint
        student = load_checkpoint(start).model
    else:
        student = create_model(space.model, num_classes=teacher.num_classes,
                               width=float(space.fixed.get("width", 1.0)))  # fmt: skip
    size = int(space.fixed.get("img_size", 416))
    for where, value in choices:
        try:
            check_pairs(teacher, student, parse_pairs(value), size)
        except ValueError as error:
            raise SpaceError(f"{space.source}: {where}: {error}") from None


def check_fits(space: SearchSpace, available: Mapping[str, float]) -> None:
    """A trial asking for more than the whole cluster has is an error before any trial runs."""
    for key in ("cpu", "gpu"):
        want, have = space.resources[key], float(available.get(key.upper(), 0.0))
        if want > have:
            raise SpaceError(f"{space.source}: resources.{key}: a trial asks for {want:g} but the "
                             f"cluster has {have:g}")  # fmt: skip


def load_space(path: str | Path) -> SearchSpace:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"search space not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise SpaceError(
            f"{where}: malformed YAML ({getattr(exc, 'problem', None) or exc})"
        ) from None
    return space_from_mapping(data, str(path), path.parent)
