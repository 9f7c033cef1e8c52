"""The resolved study as text: what ``yct tune --dry-run`` prints before anything runs."""

from __future__ import annotations

from search_spaces.architecture import PREFIX, ArchitectureSpace, extreme_draws
from search_spaces.param import Param
from search_spaces.schema import SearchSpace
from yolo.compress.registry import get_method
from yolo.compress.trial import build_trial, trial_settings
from yolo.zoo import ZOO_SIZE


def _param(param: Param) -> str:
    if param.kind == "categorical":
        return "one of " + ", ".join(repr(c) for c in param.choices)
    return f"{param.kind} [{param.low:g}, {param.high:g}]"


def describe_space(space: SearchSpace, data: str | None = None, *,
                   num_samples: int | None = None,
                   max_concurrent: int | None = None) -> str:  # fmt: skip
    """Methods with their parameters (range and help), fixed values, the defaults a trial
    gets for its method's own settings, objectives, budget and resources."""
    lines = [f"study {space.source}", f"  model: {space.model}", f"  data: {data or space.data}"]
    objectives = ", ".join(f"{o.metric} ({o.mode})" for o in space.objectives)
    lines.append(f"  objectives: {objectives}")
    search = space.search
    samples = num_samples or search.num_samples
    limits = [f"{samples} trials"] if samples else []
    if search.budget is not None:
        limits.append(f"a budget of {search.budget} reports (trial-epochs)")
    lines.append(f"  search: {search.sampler} sampler, seed {search.seed}, "
                 f"{' or '.join(limits)}, {max_concurrent or search.max_concurrent} at a "
                 f"time, scheduler {search.scheduler}, {search.max_failures} retries per "
                 "trial")  # fmt: skip
    if search.scheduler == "moasha":
        rungs = ", ".join(str(r) for r in search.rungs())
        lines.append(
            f"  moasha: rungs at {rungs} reports (max {search.max_resource}), keeps the "
            f"top 1/{search.reduction_factor:g} at each by non-dominated sorting"
        )

    lines.append(f"  resources per trial: {space.resources['cpu']:g} CPU, "
                 f"{space.resources['gpu']:g} GPU")  # fmt: skip
    if space.shared:
        lines.append("  shared parameters:")
        lines += [f"    {p.name}: {_param(p)}" for p in space.shared]
    if space.fixed:
        lines.append("  fixed: " + ", ".join(f"{k}={v!r}" for k, v in space.fixed.items()))
    for name in space.methods:
        method = get_method(name)
        base = {
            "model": space.model,
            "data": data or space.data or "-",
            **{k: v for k, v in space.fixed.items() if k in trial_settings(method)},
        }
        params = [*space.shared, *space.space[name]]
        counts = []
        for end in (0, -1):  # every drawn parameter at its low end, then at its high end
            drawn_values = {p.name: p.values()[end][1] for p in params}
            trial = build_trial(method, {**base, **drawn_values}, out="-", where=space.source)
            counts.append(method.reports(trial.train, trial.config))
        reports = f"{min(counts)}" if min(counts) == max(counts) else (
            f"{min(counts)} to {max(counts)}")  # fmt: skip
        lines.append(f"  method {name}: {method.summary}")
        lines.append(f"    one report: {method.fidelity}; a full trial makes {reports}")
        drawn = {p.name: p for p in space.space[name]}
        for setting in method.settings:
            if setting.name in drawn:
                shown = _param(drawn[setting.name])
            elif setting.name in space.fixed:
                shown = f"fixed {space.fixed[setting.name]!r}"
            else:
                shown = f"default {setting.default!r}"
            lines.append(f"    {setting.name}: {shown}  ({setting.help})")
    if space.architecture is not None:
        lines += _architecture(space.architecture, int(space.fixed.get("img_size", ZOO_SIZE)),
                               float(space.fixed.get("width", 1.0)))  # fmt: skip
    return "\n".join(lines)


def _architecture(arch: ArchitectureSpace, img_size: int, width: float) -> list[str]:
    """The stages, what is drawn, fixed and per unit, the constraints, and the MACs of the
    smallest and largest draw (the parent's classes: the data's may differ by a few)."""
    from yolo.architecture import generate
    from yolo.metrics.profile import count_macs
    from yolo.resources import meta_model
    from yolo.zoo import with_width

    stages = ", ".join(f"{s.name} ({s.kind}, {s.depth} unit{'s' * (s.depth > 1)})" if s.removable
                       else f"{s.name} ({s.kind}, no depth)" for s in arch.stages)  # fmt: skip
    lines = [f"  architecture of {arch.parent.source}: stages {stages}"]
    lines += [f"    {PREFIX}{p.name}: {_param(p)}" for p in arch.params]
    for stage, params in arch.per_unit:
        for p in params:
            lines.append(f"    {PREFIX}{stage}.u<N>.{p.name}: {_param(p)}, for each unit kept")
    if arch.fixed:
        lines.append("    fixed: " + ", ".join(f"{k}={v!r}" for k, v in arch.fixed.items()))
    for key, limit in arch.constraints.items():
        lines.append(f"    constraint {key} <= {limit:g} (a draw over it is redrawn, not trained)")
    draws = extreme_draws(arch)
    cfgs = [with_width(generate(arch.parent, arch.architecture(d)).cfg, width) for d in draws[:2]]
    macs = [count_macs(meta_model(cfg), img_size).dense for cfg in cfgs]
    lines.append(f"    MACs at {img_size} px: {macs[0]:.4g} (smallest draw) to {macs[1]:.4g} "
                 "(largest)")  # fmt: skip
    return lines
