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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search_spaces.architecture import ArchitectureError, ArchitectureSpace, load_architecture
from search_spaces.param import Param, parse_param
from yolo.compress.method import Method
from yolo.compress.registry import get_method, method_names
from yolo.compress.trial import build_trial, trial_settings
from yolo.metrics import names as m
from yolo.metrics.names import HIGHER_IS_BETTER
from yolo.safe_yaml import read_yaml
from yolo.settings import Setting
from yolo.zoo import ZOO_SIZE

SAMPLERS = ("random", "tpe", "nsga2", "gp")
SCHEDULERS = ("fifo", "moasha", "asha")  # 'none' is read as 'fifo'

MODES = ("min", "max")
_CHECK_DATA = "<data>"  # stands in for the dataset spec while settings are checked
_TOP_KEYS = {"method", "model", "data", "objectives", "fixed", "space", "search", "resources",
             "architecture"}  # fmt: skip
_SEARCH_DEFAULTS: dict[str, Any] = {"sampler": None, "num_samples": None, "budget": None,
                                    "max_concurrent": 2, "scheduler": "fifo", "seed": 0,
                                    "max_failures": 1, "population_size": None,
                                    "min_resource": None, "max_resource": None,
                                    "reduction_factor": None,
                                    "startup_trials": None, "keep": "front"}  # fmt: skip
KEEP = ("front", "all", "none")  # whose models the MLflow store keeps once the study ends
DEFAULT_NUM_SAMPLES = 8  # without a budget
# min_resource: the methods' first telling report; max_resource: the longest trial
MOASHA_DEFAULTS = {"reduction_factor": 3.0}


class SpaceError(ValueError):
    """A search space that cannot run; names the file, the key and what is allowed."""


@dataclass(frozen=True)
class Objective:
    metric: str
    mode: str


def milestones(min_resource: int, max_resource: int, reduction_factor: float) -> tuple[int, ...]:
    """The rungs: ``min_resource · η^k`` (rounded down, distinct) below ``max_resource``."""
    rungs: list[int] = []
    value = float(min_resource)
    while value < max_resource:
        if not rungs or int(value) > rungs[-1]:
            rungs.append(int(value))
        value *= reduction_factor
    return tuple(rungs)


@dataclass(frozen=True)
class SearchSettings:
    """The ``search:`` section. A study ends after ``num_samples`` trials or once ``budget``
    reports (trial-epochs, in each method's fidelity unit) are spent, whichever is first;
    ``num_samples`` None: the budget alone. The ``*_resource`` and ``reduction_factor``
    keys are MOASHA's rungs, in telling reports (a trial's reports from its method's first
    telling report on, so trials of different methods meet at a rung after as many reports
    that say something about their outcome); ``reports`` is the fewest and most reports a
    trial of the space makes (from the loader's trial builds)."""

    sampler: str
    num_samples: int | None
    max_concurrent: int
    scheduler: str
    seed: int
    max_failures: int
    population_size: int | None = None  # NSGA-II generation size (Optuna's default: 50)
    budget: int | None = None
    min_resource: int | None = None
    max_resource: int | None = None
    reduction_factor: float | None = None
    startup_trials: int | None = None  # tpe and gp: random draws before the model (Optuna: 10)
    keep: str = "front"  # logged models kept: the front's, every trial's, or none
    reports: tuple[int, int] = (1, 1)

    def rungs(self) -> tuple[int, ...]:
        """MOASHA's rungs in reports (none without the moasha scheduler)."""
        if self.scheduler != "moasha":
            return ()
        assert self.min_resource and self.max_resource and self.reduction_factor
        return milestones(self.min_resource, self.max_resource, self.reduction_factor)


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
    architecture: ArchitectureSpace | None = None  # the model's stage choices (NAS)

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
    try:
        return parse_param(key, name, spec)
    except ValueError as exc:
        raise SpaceError(f"{ctx.source}: {exc}") from None


_KIND_FITS = {int: ("int", "categorical"), float: ("float", "loguniform", "int", "categorical"),
              bool: ("categorical",), str: ("categorical",), tuple: ()}  # fmt: skip
_KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
               tuple: "a fixed list"}  # fmt: skip


def _params(
    ctx: _Ctx, prefix: str, mapping: Any, allowed: Mapping[str, Setting], methods: str
) -> tuple[Param, ...]:
    if not isinstance(mapping, Mapping):
        raise ctx.fail(prefix, f"expected a mapping of parameters, got {mapping!r}")
    params = []
    for name, spec in mapping.items():
        if name not in allowed:
            raise ctx.fail(f"{prefix}.{name}", f"method {methods} does not take it; "
                           f"allowed: {', '.join(sorted(allowed))}")  # fmt: skip
        param = _param(ctx, f"{prefix}.{name}", name, spec)
        setting = allowed[name]
        if param.kind not in _KIND_FITS.get(setting.kind, ("categorical",)):
            raise ctx.fail(f"{prefix}.{name}.type", f"{name} takes {_KIND_NAMES[setting.kind]}; "
                           f"a {param.kind} parameter cannot draw it")  # fmt: skip
        params.append(param)
    return tuple(params)


def file_keys(methods: Sequence[str]) -> list[str]:
    """The settings of these methods that name a file (declared ``file`` in their fields)."""
    keys: set[str] = set()
    for method in methods:
        keys |= {name for name, s in trial_settings(get_method(method)).items() if s.file}
    return sorted(keys)


def _check_settings(
    ctx: _Ctx,
    method: Method,
    constants: Mapping[str, Any],
    fixed: Mapping[str, Any],
    params: Sequence[tuple[str, Param]],
) -> tuple[int, int, int]:
    """Build the method's trial at its fixed values, then at both bounds (every choice) of
    each parameter: the domains are checked by the dataclasses themselves, once, here.

    Returns the fewest and most reports a trial makes (its fidelity range, for the
    budget), over the trials built here and the ones with every numeric parameter at its
    low and at its high end (where those build), and the most telling reports among them
    (from its first telling report on: MOASHA's rungs count those, the default last rung)."""
    where = "trial"
    reports: list[int] = []
    telling: list[int] = []

    def attempt(values: Mapping[str, Any], *, complete: bool = False) -> str | None:
        """The build's problem, or None; a ``complete`` draw's fidelity is recorded."""
        try:
            trial = build_trial(method, {**constants, **values}, out="<check>", where=where)
        except ValueError as exc:
            return str(exc).removeprefix(where).lstrip(".: ")
        if complete:
            made = method.reports(trial.train, trial.config)
            reports.append(made)
            telling.append(made - method.first_telling_report(trial.train, trial.config) + 1)
        return None

    problem = attempt(fixed)
    if problem is not None:  # the fixed key the rule names first, else one without which
        named = sorted((problem.find(k), k) for k in fixed if problem.find(k) >= 0)  # it builds
        culprit = (
            named[0][1]
            if named
            else next(
                (k for k in fixed if attempt({x: v for x, v in fixed.items() if x != k}) is None),
                None,
            )
        )
        raise ctx.fail(f"fixed.{culprit}" if culprit else "fixed",
                       problem.removeprefix(f"{culprit}: "))  # fmt: skip
    for key, param in params:
        for bound, value in param.values():
            problem = attempt({**fixed, param.name: value})
            if problem is not None:
                raise ctx.fail(f"{key}.{bound}", problem.removeprefix(f"{param.name}: "))
    # the fidelity range from trials that draw every parameter: every numeric one at its
    # low end, then at its high end, each with every choice of each categorical
    numeric = [p for _, p in params if p.kind != "categorical"]
    choices = [p for _, p in params if p.kind == "categorical"]
    for end in (0, 1):
        ends = {p.name: p.values()[end][1] for p in numeric}
        firsts = {p.name: p.choices[0] for p in choices}
        draws = [{**firsts, p.name: c} for p in choices for c in p.choices] or [firsts]
        for drawn in draws:
            attempt({**fixed, **ends, **drawn}, complete=True)
    if not reports:  # no complete draw builds (a rule across parameters): the fixed trial
        attempt(fixed, complete=True)
    return min(reports), max(reports), max(telling)


def space_from_mapping(data: Any, source: str, base: Path | None = None) -> SearchSpace:
    """Validate a parsed search-space mapping: structure, the methods' keys and types, and
    every fixed value, bound and choice in its domain (built as the trial would be)."""
    ctx = _Ctx(source)
    if not isinstance(data, Mapping):
        raise SpaceError(f"{source}: expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ctx.fail(unknown[0], f"unknown key; allowed: {', '.join(sorted(_TOP_KEYS))}")
    raw_methods = data.get("method")
    methods = tuple(raw_methods) if isinstance(raw_methods, list) else (raw_methods,)
    valid = method_names()
    for method in methods:
        if not isinstance(method, str) or method not in valid:
            raise ctx.fail(
                "method", f"unknown method {method!r}; valid methods: {', '.join(valid)}"
            )
    if len(set(methods)) != len(methods):
        raise ctx.fail("method", f"listed twice: {list(methods)}")
    allowed = {name: trial_settings(get_method(name)) for name in methods}
    if not isinstance(data.get("model"), str):
        raise ctx.fail("model", "required: a zoo name or cfg path")
    model = _model(ctx, data["model"], base)
    architecture = None
    if "architecture" in data:
        from yolo.zoo import resolve_cfg

        if methods != ("train",):
            raise ctx.fail("architecture", f"the architecture is the model a trial trains: "
                           f"method must be train, got {list(methods)}")  # fmt: skip
        try:
            architecture = load_architecture(data["architecture"], resolve_cfg(model), source)
        except ArchitectureError as exc:
            raise SpaceError(str(exc)) from None
    objectives = _objectives(ctx, data.get("objectives"))
    fixed = data.get("fixed") or {}
    if not isinstance(fixed, Mapping):
        raise ctx.fail("fixed", f"expected a mapping, got {fixed!r}")
    for key in fixed:
        if key in ("model", "data"):
            raise ctx.fail(f"fixed.{key}", f"give '{key}' at the top of the file")
        if not any(key in a for a in allowed.values()):
            raise ctx.fail(f"fixed.{key}", f"no method of this study takes it; allowed: "
                           f"{', '.join(sorted(set().union(*allowed.values())))}")  # fmt: skip
    raw_space = dict(data.get("space") or {})
    per_method = {m: raw_space.pop(m) for m in methods if isinstance(raw_space.get(m), Mapping)
                  and "type" not in raw_space[m]}  # fmt: skip
    common = set.intersection(*(set(a) for a in allowed.values()))
    shared_allowed = {k: v for k, v in allowed[methods[0]].items() if k in common}
    shared = _params(ctx, "space", raw_space, shared_allowed, "/".join(methods))
    space = {m: _params(ctx, f"space.{m}", per_method.get(m, {}), allowed[m], m) for m in methods}
    data_path = data.get("data")
    if data_path is not None and not isinstance(data_path, str):
        raise ctx.fail("data", f"expected a dataset spec path, got {data_path!r}")
    if data_path is not None and base is not None and not Path(data_path).is_absolute():
        data_path = str((base / data_path).resolve())
    fixed = dict(fixed)
    for key in file_keys(methods):  # checkpoints (start, teacher), relative to this file too
        if isinstance(fixed.get(key), str) and fixed[key]:
            path = Path(fixed[key])
            if base is not None and not path.is_absolute():
                path = (base / path).resolve()
            fixed[key] = str(path)
    constants = {"model": model, "data": data_path or _CHECK_DATA}
    ranges = []
    for name in methods:
        own_fixed = {k: v for k, v in fixed.items() if k in allowed[name]}
        prefix = f"space.{name}" if name in per_method else "space"
        params = [(f"space.{p.name}", p) for p in shared]
        params += [(f"{prefix}.{p.name}", p) for p in space[name]]
        ranges.append(_check_settings(ctx, get_method(name), constants, own_fixed, params))
    reports = (min(r[0] for r in ranges), max(r[1] for r in ranges))
    telling = max(r[2] for r in ranges)
    result = SearchSpace(
        methods=methods,
        model=model,
        data=data_path,
        objectives=objectives,
        fixed=fixed,
        shared=shared,
        space=space,
        search=_search(ctx, data.get("search") or {}, len(objectives), reports, telling),
        resources=_resources(ctx, data.get("resources") or {}),
        source=source,
        architecture=architecture,
    )
    _check_reportable(ctx, result)
    return result


def _model(ctx: _Ctx, model: str, base: Path | None) -> str:
    """A zoo name as it is; a cfg path resolved beside this file and parsed."""
    from yolo.zoo import ZOO, resolve_cfg

    if model in ZOO:
        return model
    path = Path(model)
    if base is not None and not path.is_absolute():
        path = (base / path).resolve()
    if path.suffix != ".cfg":
        raise ctx.fail("model", f"unknown model {model!r}; valid models: {', '.join(ZOO)}, "
                       "or a path to a .cfg file")  # fmt: skip
    if not path.is_file():
        raise ctx.fail("model", f"cfg file not found: {path}")
    try:
        resolve_cfg(path)
    except ValueError as exc:
        raise ctx.fail("model", str(exc)) from None
    return str(path)


# metric -> (the setting it depends on, when that leaves it unreported, why)
_CONDITIONAL_METRICS: dict[str, tuple[str, Any, str]] = {
    m.LATENCY_MS: ("latency_runs", lambda v: v == 0, "latency is not measured"),
    m.MAP50_95: ("metric", lambda v: v != "coco", "mAP@[.5:.95] is computed with metric coco only"),
}


def _check_reportable(ctx: _Ctx, space: SearchSpace) -> None:
    """Every objective is a figure every trial reports (an absent one is never 0.0)."""
    for i, objective in enumerate(space.objectives):
        rule = _CONDITIONAL_METRICS.get(objective.metric)
        if rule is None:
            continue
        key, unreported, why = rule
        default = trial_settings(get_method(space.methods[0]))[key].default
        drawn = [(p, f"space.{p.name}") for p in space.shared]
        drawn += [(p, f"space.{name}.{p.name}") for name, ps in space.space.items() for p in ps]
        candidates = [(f"{where}.{b}", v) for p, where in drawn if p.name == key
                      for b, v in p.values()]  # fmt: skip
        if not candidates:
            candidates = [(f"fixed.{key}", space.fixed.get(key, default))]
        for where, value in candidates:
            if unreported(value):
                raise ctx.fail(f"objectives[{i}].metric", f"{objective.metric} cannot be an "
                               f"objective: {why} ({where} is {value!r})")  # fmt: skip


def _objectives(ctx: _Ctx, raw: Any) -> tuple[Objective, ...]:
    if not isinstance(raw, list) or not raw:
        raise ctx.fail("objectives", "expected a non-empty list of {metric, mode}")
    result = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or set(item) != {"metric", "mode"}:
            raise ctx.fail(f"objectives[{i}]", f"expected {{metric, mode}}, got {item!r}")
        if not isinstance(item["metric"], str) or item["metric"] not in HIGHER_IS_BETTER:
            raise ctx.fail(f"objectives[{i}].metric", f"unknown metric {item['metric']!r}; "
                           f"allowed: {', '.join(sorted(HIGHER_IS_BETTER))}")  # fmt: skip
        if item["mode"] not in MODES:
            raise ctx.fail(f"objectives[{i}].mode", f"must be min or max, got {item['mode']!r}")
        result.append(Objective(item["metric"], item["mode"]))
    if len({o.metric for o in result}) != len(result):
        raise ctx.fail("objectives", "a metric is listed twice")
    return tuple(result)


def _integer(ctx: _Ctx, key: str, value: Any, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ctx.fail(f"search.{key}", f"must be an integer >= {least}, got {value!r}")
    return value


def _search(ctx: _Ctx, raw: Any, objectives: int, reports: tuple[int, int],
            telling: int | None = None) -> SearchSettings:  # fmt: skip
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
    if values["scheduler"] in ("none", None):
        values["scheduler"] = "fifo"
    if values["scheduler"] not in SCHEDULERS:
        raise ctx.fail(
            "search.scheduler",
            f"must be one of {', '.join(SCHEDULERS)} ('none' is fifo), got {values['scheduler']!r}",
        )
    _integer(ctx, "max_concurrent", values["max_concurrent"], 1)
    if values["keep"] not in KEEP:
        raise ctx.fail("search.keep", f"must be one of {', '.join(KEEP)} (whose logged models "
                       f"the MLflow store keeps), got {values['keep']!r}")  # fmt: skip
    if values["num_samples"] is not None:
        _integer(ctx, "num_samples", values["num_samples"], 1)
    elif values["budget"] is None:
        values["num_samples"] = DEFAULT_NUM_SAMPLES
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
    if values["scheduler"] == "asha" and objectives > 1:
        raise ctx.fail(
            "search.scheduler",
            "asha ranks trials by one metric and would stop "
            "the small models a front needs; with several objectives use moasha",
        )
    if values["scheduler"] == "asha" and values["budget"] is not None:
        raise ctx.fail(
            "search.budget",
            "the asha scheduler does not count a budget; use fifo or moasha, or num_samples",
        )
    if values["startup_trials"] is not None:
        _integer(ctx, "startup_trials", values["startup_trials"], 1)
        if values["sampler"] not in ("tpe", "gp"):
            raise ctx.fail(
                "search.startup_trials",
                "only the tpe and gp samplers have startup "
                f"trials (nsga2: population_size), not {values['sampler']}",
            )
    fewest, most = reports
    rung_keys = ("min_resource", "max_resource", "reduction_factor")
    if values["scheduler"] != "moasha":
        given = [k for k in rung_keys if values[k] is not None]
        if given:
            raise ctx.fail(f"search.{given[0]}", "only the moasha scheduler has rungs; "
                           f"scheduler is {values['scheduler']}")  # fmt: skip
    else:
        longest = telling or most  # the most telling reports a trial makes
        values["min_resource"] = _integer(ctx, "min_resource", values["min_resource"] or 1, 1)
        values["max_resource"] = _integer(ctx, "max_resource", values["max_resource"] or longest,
                                          1)  # fmt: skip
        factor = values["reduction_factor"] or MOASHA_DEFAULTS["reduction_factor"]
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 1 \
                or not math.isfinite(factor):  # fmt: skip
            raise ctx.fail("search.reduction_factor",
                           f"must be a number > 1, got {values['reduction_factor']!r}")  # fmt: skip
        values["reduction_factor"] = float(factor)
        if values["min_resource"] >= values["max_resource"]:
            raise ctx.fail("search.min_resource", f"must be below max_resource "
                           f"({values['max_resource']} reports), got {values['min_resource']}: "
                           "no rung to stop a trial at")  # fmt: skip
        if values["min_resource"] >= longest:
            raise ctx.fail("search.min_resource", f"no trial of this space makes more than "
                           f"{longest} telling reports (each method's fidelity, from its first "
                           f"telling report), so a rung at {values['min_resource']} stops "
                           "none")  # fmt: skip
    if values["budget"] is not None:
        least = values["min_resource"] if values["scheduler"] == "moasha" else fewest
        budget = values["budget"]
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < least:
            raise ctx.fail("search.budget", f"must be an integer of at least one trial's "
                           f"minimum ({least} reports"
                           f"{', the first rung' if values['scheduler'] == 'moasha' else ''}), "
                           f"got {budget!r}")  # fmt: skip
    return SearchSettings(**values, reports=reports)


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


def check_files(space: SearchSpace, data: str | None = None) -> None:
    """Files the trials will open exist and load: the dataset spec (``data`` overrides the
    space's), the checkpoints, and distillation hint pairs fit the teacher and the student.
    Checked by ``yct tune`` before Ray starts; not at load, so that a space can be validated
    before its data and checkpoints exist."""
    from yolo.data.spec import load_spec

    spec = data or space.data
    if spec is None:
        raise SpaceError(f"{space.source}: data: no dataset spec (give 'data:' or --data)")
    try:
        load_spec(spec)
    except (ValueError, OSError) as exc:
        where = "--data" if data else "data"
        raise SpaceError(f"{space.source}: {where}: {' '.join(str(exc).split())}") from None
    for key in file_keys(space.methods):
        path = space.fixed.get(key)
        if isinstance(path, str) and not Path(path).is_file():
            raise SpaceError(f"{space.source}: fixed.{key}: checkpoint not found: {path}")
    if isinstance(space.fixed.get("teacher"), str):
        _check_hints(space)
    if space.architecture is not None:
        _check_architecture(space, len(load_spec(spec).names))


def _check_architecture(space: SearchSpace, classes: int) -> None:
    """The space's constraints leave some architecture, and the parent in ``inherit`` is of
    the family: its smallest and largest draws inherit from it."""
    from search_spaces.architecture import check_constraints_reachable, extreme_draws
    from yolo.architecture import generate
    from yolo.inherit import InheritError, inherit_weights
    from yolo.io import load_checkpoint
    from yolo.resources import meta_model
    from yolo.zoo import with_classes, with_width

    arch = space.architecture
    assert arch is not None
    size, width = int(space.fixed.get("img_size", ZOO_SIZE)), float(space.fixed.get("width", 1.0))
    try:
        check_constraints_reachable(arch, space.source, img_size=size, classes=classes, width=width)
    except ValueError as exc:
        raise SpaceError(str(exc)) from None
    parent_path = space.fixed.get("inherit")
    if not isinstance(parent_path, str):
        return
    try:
        parent = load_checkpoint(parent_path).model
    except ValueError as exc:
        raise SpaceError(f"{space.source}: fixed.inherit: {' '.join(str(exc).split())}") from None
    draws = extreme_draws(arch)
    for drawn in (draws[0], draws[1]):
        cfg = with_width(with_classes(generate(arch.parent, arch.architecture(drawn)).cfg,
                                      classes), width)  # fmt: skip
        try:
            inherit_weights(meta_model(cfg).to_empty(device="cpu"), parent)
        except InheritError as exc:
            raise SpaceError(f"{space.source}: fixed.inherit: {parent_path} cannot be the "
                             f"parent of this space's architectures: {exc}") from None  # fmt: skip


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
    size = int(space.fixed.get("img_size", ZOO_SIZE))
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
        data = read_yaml(path)
    except ValueError as exc:
        raise SpaceError(str(exc)) from None
    return space_from_mapping(data, str(path), path.parent)
