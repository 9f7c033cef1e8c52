"""Does the search beat random at equal compute? Anytime hypervolume by sampler x scheduler.

Hundreds of real studies do not fit on 2 cores, so this replays studies against a table of
real trials of the demo space (``bench/record_trials.py`` made it: every report of every
trial, from the real trainables), as tabular HPO benchmarks do (NAS-Bench, HPOBench, Syne
Tune's simulator). Each replayed study is a real one: the study's own Ray Tune parts
(:func:`trainables.ray_adapter.tuner_parts`: Optuna sampler, the budgeted limiter, the FIFO or
MOASHA scheduler, the ledger) drive a lookup trainable that reports, one report per step,
the recorded reports of the **nearest recorded configuration**: same method, then the least
distance over the method's parameters, each scaled to [0, 1] over its domain (log scale for
a log-uniform one, 1 for a different categorical choice). Nearest, not interpolated: a
trial's reports are a whole trajectory (LTH's pruned rounds, CS's ticket), and a blend of
two trajectories is no model anyone trained.

Compute is counted in reports (trial-epochs), as the study's budget is. After each report,
the front is drawn over every trial's latest deliverable report (stopped trials count with
what they measured; a report before the method's first delivering one — a CS search epoch,
measured on the soft-gated model, not on any model the trial could deliver — is no point,
as in a real study) and its hypervolume taken against the fixed yardstick: mAP50 0 and the MACs of
the demo's dense start. Per combination and budget fraction: median and interquartile
range over seeds; ``budget_fraction_to_reach_random_final`` is the median over seeds of
the first fraction at which a study reaches random+fifo's median final hypervolume (null if
the median study never does). Separately: the time of one scheduler decision and one
sampler suggestion with 500 trials recorded.

``--confirm`` also runs real demo studies (random+fifo, tpe+moasha and the replay's best
combination, same budget and seed) and records whether each one's order against
random+fifo agrees with the replay's.

    python bench/search_efficiency.py [--seeds 10] [--budget 150] [--confirm]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from results_io import SMOKE_DIR, parse_with_smoke, write_results

from analysis.pareto import hypervolume

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "bench" / "tables" / "demo_trials.json"
RESULTS = ROOT / "bench" / "results" / "search_efficiency.json"
SAMPLERS = ("random", "tpe", "nsga2", "gp")
SCHEDULERS = ("fifo", "moasha")
FRACTIONS = tuple(round(0.05 * k, 2) for k in range(1, 21))


# ---------------------------------------------------------------------- the lookup


def _scaled(value: Any, domain: dict[str, Any]) -> float:
    if domain["kind"] == "categorical":
        return float(domain["choices"].index(value))
    low, high = float(domain["low"]), float(domain["high"])
    if domain["kind"] == "loguniform":
        value, low, high = math.log(value), math.log(low), math.log(high)
    return 0.0 if high == low else (float(value) - low) / (high - low)


def nearest_index(table: dict[str, Any], config: dict[str, Any]) -> int:
    """The index in the table of the recorded trial nearest to ``config`` (see the module
    doc)."""
    params = table["params"]
    best, best_distance = None, math.inf
    for index, trial in enumerate(table["trials"]):
        recorded = trial["config"]
        if recorded.get("method") != config.get("method"):
            continue
        distance = 0.0
        for key, domain in params.items():
            if key == "method" or key not in config or key not in recorded:
                continue
            if domain["kind"] == "categorical":
                distance += float(recorded[key] != config[key]) ** 2
            else:
                distance += (_scaled(recorded[key], domain) - _scaled(config[key], domain)) ** 2
        if distance < best_distance:
            best, best_distance = index, distance
    if best is None:
        raise ValueError(f"no recorded trial of method {config.get('method')!r}")
    return best


class Replay:
    """A Ray Tune function trainable reporting a recorded trial's reports, one per step,
    with the plumbing the real trainable adds: the planned reports, the first telling and
    delivering reports from the method's own definition (where MOASHA's rungs start
    counting, where its figures are of a model), and the marks of the cheaper runs it ends
    (an LTH round before the last: told to the sampler as that run's trial)."""

    def __init__(self, table: dict[str, Any]) -> None:
        self.table = table
        self.__name__ = "replay"

    def __call__(self, config: dict[str, Any]) -> None:
        from ray import tune

        from search_spaces.optuna_space import method_config
        from trainables.nested_runs import nested_run_marks
        from yolo.compress.registry import get_method
        from yolo.compress.trial import build_trial
        from yolo.metrics.names import NESTED_RUN

        methods = tuple(self.table["params"]["method"]["choices"])
        name, values = method_config(config, methods)
        values.pop("out", None)
        method = get_method(name)
        index = nearest_index(self.table, config)
        trial = self.table["trials"][index]
        planned = len(trial["reports"])
        # the reports are the recorded trial's, so what they tell, deliver and end comes from
        # its settings (its rounds, where the nearest one has other rounds than the draw) on
        # the study's fixed ones; the cheaper runs are told as settings of the draw
        _, recorded = method_config(trial["config"], methods)
        ran = build_trial(method, {**values, **recorded}, out="<replay>", where="replay")
        telling = float(method.first_telling_report(ran.train, ran.config))
        delivering = float(method.first_delivering_report(ran.train, ran.config))
        nested = nested_run_marks(ran, config)
        for number, report in enumerate(trial["reports"], start=1):
            metrics = {k: v for k, v in report.items() if k != "training_iteration"}
            if number in nested:
                metrics[NESTED_RUN] = nested[number]
            tune.report({**metrics, "planned_reports": float(planned), "recorded": index,
                         "first_telling_report": telling, "first_delivering_report": delivering,
                         "clock": time.time()})  # fmt: skip


class NoEvents:
    """Trial events go nowhere: the replay measures the search, not MLflow."""

    def trial_started(self, trial_id: str, config: Any) -> None: ...
    def trial_result(self, trial_id: str, metrics: Any, step: int) -> None: ...
    def trial_ended(self, trial_id: str, **info: Any) -> None: ...
    def draws_rejected(self, counts: Any, **info: Any) -> None: ...


# ---------------------------------------------------------------------- one study


def replay_space(table: dict[str, Any], sampler: str, scheduler: str, seed: int,
                 budget: int, rungs: dict[str, Any]) -> Any:  # fmt: skip
    """The demo space as loaded, with this search (validated by the real loader)."""
    import yaml

    from search_spaces import shipped_path
    from search_spaces.schema import space_from_mapping

    source = shipped_path("demo")
    data = yaml.safe_load(source.read_text())
    data["data"] = str(ROOT / "demo_data" / "data.yaml")
    # the lookup trains nothing, so the start is never opened; LTH without its dense round
    # needs one named
    data["fixed"]["weights"] = str(ROOT / "runs" / "demo" / "dense" / "best.pt")
    search = {
        "sampler": sampler,
        "scheduler": scheduler,
        "seed": seed,
        "budget": budget,
        "max_concurrent": data["search"].get("max_concurrent", 2),
        "max_failures": 0,
    }
    if scheduler == "moasha":
        search.update({k: v for k, v in rungs.items() if v is not None and k != "startup"})
    if sampler in ("tpe", "gp") and rungs.get("startup"):
        search["startup_trials"] = rungs["startup"]
    if sampler == "nsga2" and rungs.get("startup"):
        search["population_size"] = max(2, rungs["startup"])
    data["search"] = search
    return space_from_mapping(data, str(source), source.parent)


def run_replay(table: dict[str, Any], sampler: str, scheduler: str, seed: int, budget: int,
               storage: Path, reference: list[float],
               rungs: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """One replayed study: its anytime hypervolume by reports spent."""
    from ray import tune

    from trainables import ray_adapter
    from trainables.scheduling import delivers
    from trainables.study import StudyOptions, study_search

    space = replay_space(table, sampler, scheduler, seed, budget, rungs)
    search = study_search(space, StudyOptions(name="replay", storage=str(storage)))
    name = f"{sampler}-{scheduler}-{seed}"
    parts = ray_adapter.tuner_parts(tune.with_resources(Replay(table), {"cpu": 1}), search,
                                    name=name, storage=str(storage), events=NoEvents())  # fmt: skip
    ledger = parts.tune_config.search_alg.ledger  # Tune appends its own callbacks to the list
    searcher = parts.tune_config.search_alg.searcher
    # hundreds of studies: no progress tables, no progress lines
    from trainables.progress import ProgressLine

    parts.run_config.callbacks = [c for c in parts.run_config.callbacks
                                  if not isinstance(c, ProgressLine)]  # fmt: skip
    started = time.perf_counter()
    grid = tune.Tuner(parts.trainable, tune_config=parts.tune_config,
                      run_config=parts.run_config).fit()  # fmt: skip
    wall = time.perf_counter() - started
    events = []  # (clock, step, trial, map50, macs, deliverable) of each report, in order
    recorded = set()  # the table's trials this study drew (several draws can share one)
    for result in grid:
        history = result.metrics_dataframe
        if history is None:
            continue
        recorded.update(int(r) for r in history["recorded"])
        for row in history.itertuples():
            deliverable = delivers(row.training_iteration, row.first_delivering_report)
            events.append((row.clock, row.training_iteration, result.path,
                           float(row.map50), float(row.macs), deliverable))  # fmt: skip
    events.sort(key=lambda e: (e[0], e[1]))
    latest: dict[str, tuple[float, float]] = {}
    curve = []  # (reports spent, hypervolume)
    for spent, (_, _, trial, map50, macs, deliverable) in enumerate(events, start=1):
        if deliverable:  # a CS trial's search reports are of its soft-gated model: no point
            latest[trial] = (map50, macs)
        points = np.array(list(latest.values()))
        volume = hypervolume(points, reference, ["max", "min"]) if latest else 0.0
        curve.append((spent, volume))
    shutil.rmtree(storage / name, ignore_errors=True)
    return {"sampler": sampler, "scheduler": scheduler, "seed": seed, "wall_s": round(wall, 1),
            "rungs": list(space.search.rungs()),
            "trials": len({e[2] for e in events}), "recorded_trials": len(recorded),
            "reports": len(events), "stopped": len(ledger.stopped),
            "nested_runs_told": len(searcher.nested_told), "curve": curve}  # fmt: skip


def at_fraction(curve: list[tuple[int, float]], budget: int, fraction: float) -> float:
    """The hypervolume once ``fraction`` of the budget is spent (0 before any report)."""
    volume = 0.0
    for spent, value in curve:
        if spent > fraction * budget + 1e-9:
            break
        volume = value
    return volume


def first_fraction(curve: list[tuple[int, float]], budget: int, target: float) -> float:
    """The first budget fraction at which the study's hypervolume reaches ``target``."""
    for spent, value in curve:
        if value >= target:
            return spent / budget
    return math.inf


# ---------------------------------------------------------------------- overhead


def decision_overhead(trials: int = 500) -> dict[str, float]:
    """Milliseconds of one MOASHA decision with ``trials`` recorded at the rung, and of one
    suggestion of each sampler after ``trials`` completed two-objective trials (``gp``'s past
    its hand-over to TPE; its GP's own just before it, ``gp_before_hand_over``)."""
    import optuna

    from search_spaces.sampler import GP_TRIALS, build_sampler
    from trainables.moasha import Rungs

    rng = np.random.default_rng(0)
    rungs = Rungs((1, 3, 9), 3.0, ("max", "min"))
    for i in range(trials):
        rungs.on_result(f"t{i}", 1, [float(rng.random()), float(rng.random() * 1e8)])
    started = time.perf_counter()
    for i in range(20):
        rungs.on_result(f"new{i}", 1, [float(rng.random()), float(rng.random() * 1e8)])
    figures = {"moasha_decision_ms": round((time.perf_counter() - started) / 20 * 1e3, 2)}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {
        "x": optuna.distributions.FloatDistribution(0, 1),
        "y": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True),
    }
    runs = 3
    # gp hands over to TPE at GP_TRIALS finished trials: its own GP's cost is taken just
    # before that (every one of the timed decisions still the GP's)
    counts = [(name, name, trials) for name in SAMPLERS]
    before = min(trials, GP_TRIALS) - runs - 1  # (--smoke: fewer)
    counts.append(("gp_before_hand_over", "gp", before))
    for label, name, count in counts:
        study = optuna.create_study(directions=["maximize", "minimize"],
                                    sampler=build_sampler(name, seed=0))  # fmt: skip
        for _ in range(count):
            params = {"x": float(rng.random()), "y": float(10 ** rng.uniform(-3, -1))}
            study.add_trial(optuna.trial.create_trial(
                params=params, distributions=distributions,
                values=[params["x"] * rng.random(), params["y"]]))  # fmt: skip
        started = time.perf_counter()
        for _ in range(runs):
            trial = study.ask(distributions)
            study.tell(trial, [0.5, 0.01])
        figures[f"{label}_suggest_ms"] = round((time.perf_counter() - started) / runs * 1e3, 1)
    figures["gp_before_hand_over_trials"] = before
    return figures


# ---------------------------------------------------------------------- the bench


def summarise(studies: list[dict[str, Any]], budget: int) -> dict[str, Any]:
    by_combo: dict[str, list[dict[str, Any]]] = {}
    for study in studies:
        by_combo.setdefault(f"{study['sampler']}+{study['scheduler']}", []).append(study)
    baseline = by_combo.get("random+fifo", [])
    random_final = float(np.median([at_fraction(s["curve"], budget, 1.0) for s in baseline]))
    summary: dict[str, Any] = {}
    for combo, members in sorted(by_combo.items()):
        grid = np.array([[at_fraction(s["curve"], budget, f) for f in FRACTIONS]
                         for s in members])  # fmt: skip
        final = grid[:, -1]
        reach = [first_fraction(s["curve"], budget, random_final) for s in members]
        median_reach = float(np.median(reach))
        summary[combo] = {
            "seeds": len(members),
            "budget_fraction_to_reach_random_final": None if math.isinf(median_reach)
            else round(median_reach, 3),
            "final_hypervolume_median": float(np.median(final)),
            "final_hypervolume_iqr": [float(np.percentile(final, 25)),
                                      float(np.percentile(final, 75))],
            "hypervolume_median_by_fraction": [float(v) for v in np.median(grid, 0)],
            "hypervolume_q25_by_fraction": [float(v) for v in np.percentile(grid, 25, 0)],
            "hypervolume_q75_by_fraction": [float(v) for v in np.percentile(grid, 75, 0)],
            "trials_mean": float(np.mean([s["trials"] for s in members])),
            "recorded_trials_mean": float(np.mean([s["recorded_trials"] for s in members])),
            "stopped_mean": float(np.mean([s["stopped"] for s in members])),
            "nested_runs_told_mean": float(np.mean([s["nested_runs_told"] for s in members])),
            "wall_s_mean": float(np.mean([s["wall_s"] for s in members])),
        }  # fmt: skip
    base = summary.get("random+fifo")
    for figures in summary.values():
        if base is None:
            break
        above = [low > high for low, high in zip(figures["hypervolume_q25_by_fraction"],
                                                 base["hypervolume_q75_by_fraction"])]  # fmt: skip
        figures["iqr_above_random_fifo"] = above[-1]
        figures["iqr_above_random_fifo_by_fraction"] = above
        # from which share of the budget on the lower quartile stays above random+fifo's
        # upper quartile at every later point (null: not at the end)
        trailing = next((k for k, a in enumerate(reversed(above)) if not a), len(above))
        stays = len(above) - trailing
        figures["budget_fraction_iqr_stays_above_random_fifo"] = (
            FRACTIONS[stays] if stays < len(above) else None
        )
    return summary


def plot(summary: dict[str, Any], path: Path, budget: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    colours = plt.get_cmap("tab10")
    x = [f * budget for f in FRACTIONS]
    for combo, figures in summary.items():
        style = "-" if combo.endswith("moasha") else "--"
        colour = colours(SAMPLERS.index(combo.split("+")[0]) % 10)
        axes.plot(x, figures["hypervolume_median_by_fraction"], style, color=colour,
                  label=f"{combo} ({figures['seeds']} seeds)")  # fmt: skip
        axes.fill_between(
            x,
            figures["hypervolume_q25_by_fraction"],
            figures["hypervolume_q75_by_fraction"],
            color=colour,
            alpha=0.08,
        )
    axes.set_xlabel("compute spent (reports = trial-epochs)")
    axes.set_ylabel("hypervolume (mAP50 x MACs below the dense start)")
    axes.set_title("Anytime hypervolume, median and IQR over seeds (replayed demo space)")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def dense_reference(table: dict[str, Any]) -> list[float]:
    """mAP 0 and the MACs of the demo's dense start (the model the table's trials prune)."""
    from yolo.metrics.profile import count_macs
    from yolo.zoo import create_model

    fixed = table["provenance"]["fixed"]
    model = create_model(table["provenance"]["model"], num_classes=10, width=fixed["width"])
    return [0.0, float(count_macs(model, int(fixed["img_size"])).effective)]


def confirm(budget: int, seed: int, out: Path, startup: int | None,
            combos: list[tuple[str, str]]) -> dict[str, Any]:  # fmt: skip
    """Real demo studies of ``combos`` ((sampler, scheduler): random+fifo, tpe+moasha and the
    replay's best) at the same budget and seed."""
    import yaml

    from search_spaces import shipped_path
    from search_spaces.schema import load_space
    from trainables.mlflow_adapter import load_trial_runs
    from trainables.study import StudyOptions, run_study
    from yct.tune import file_front

    pair = {}
    source = shipped_path("demo")
    for sampler, scheduler in combos:
        data = yaml.safe_load(source.read_text())
        data["data"] = str((source.parent / data["data"]).resolve())
        data["fixed"]["weights"] = str((source.parent / data["fixed"]["weights"]).resolve())
        data["search"] = {
            "sampler": sampler,
            "scheduler": scheduler,
            "seed": seed,
            "budget": budget,
            "max_concurrent": 2,
            "max_failures": 1,
        }
        if startup and sampler in ("tpe", "gp"):
            data["search"]["startup_trials"] = startup
        name = f"confirm-{sampler}-{scheduler}-{seed}"
        path = out / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        space = load_space(path)
        uri = f"sqlite:///{(out / 'mlruns.db').resolve()}"
        options = StudyOptions(name=name, storage=str((out / "tune").resolve()), mlflow_uri=uri,
                               report_dir=str(out / "pareto" / name))  # fmt: skip
        started = time.perf_counter()
        result = run_study(space, options, functools.partial(file_front, space,
                                                             options.report_dir))  # fmt: skip
        front, _ = result.summary
        runs = load_trial_runs(uri, name)
        pair[f"{sampler}+{scheduler}"] = {
            "hypervolume": front.hypervolume if front else 0.0,
            "reference": front.reference if front else None,
            "trials": len(result.trials),
            "stopped": sum(r["tags"].get("trial_status") == "stopped" for r in runs),
            "reports": int(sum(t.metrics.get("training_iteration", 0) for t in result.trials)),
            "wall_s": round(time.perf_counter() - started, 1),
        }  # fmt: skip
        print(f"{name}: hypervolume {pair[f'{sampler}+{scheduler}']['hypervolume']:.5g}",
              flush=True)  # fmt: skip
    return pair


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=150, help="reports per study")
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS))
    parser.add_argument("--schedulers", nargs="+", default=list(SCHEDULERS))
    parser.add_argument("--confirm", action="store_true",
                        help="also run one real demo study pair (minutes)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--overhead-trials", type=int, default=500)
    parser.add_argument(
        "--min-resource",
        type=int,
        default=None,
        help="moasha's first rung (default: the space's, from its methods)",
    )
    parser.add_argument(
        "--reduction-factor", type=float, default=None, help="moasha's η (default: the space's)"
    )
    parser.add_argument(
        "--startup-trials",
        type=int,
        default=None,
        help="tpe/gp startup trials, nsga2 population (default: Optuna's)",
    )
    args = parse_with_smoke(parser, {"seeds": 2, "budget": 24, "samplers": ["random", "tpe"],
                                     "overhead_trials": 50}, "search_efficiency")  # fmt: skip
    table = json.loads(args.table.read_text())
    if args.smoke:  # the tiny table: the first trials of each method
        kept = {}
        for trial in table["trials"]:
            kept.setdefault(trial["config"]["method"], []).append(trial)
        table["trials"] = [t for trials in kept.values() for t in trials[:4]]
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    reference = dense_reference(table)
    storage = (SMOKE_DIR if args.smoke else ROOT / "runs") / "bench_search_efficiency"
    storage = storage.resolve()
    studies = []
    for seed in range(args.seeds):
        for scheduler in args.schedulers:
            for sampler in args.samplers:
                rungs = {
                    "min_resource": args.min_resource,
                    "reduction_factor": args.reduction_factor,
                    "startup": args.startup_trials,
                }
                study = run_replay(table, sampler, scheduler, seed, args.budget, storage,
                                   reference, rungs)  # fmt: skip
                studies.append(study)
                final = study["curve"][-1][1] if study["curve"] else 0.0
                print(f"{sampler}+{scheduler} seed {seed} (rungs {study['rungs']}): "
                      f"{study['trials']} trials, "
                      f"{study['stopped']} stopped, {study['reports']} reports, hypervolume "
                      f"{final:.5g} ({study['wall_s']} s)", flush=True)  # fmt: skip
    summary = summarise(studies, args.budget)
    overhead = decision_overhead(args.overhead_trials) if args.overhead_trials else {}
    ray.shutdown()
    plot_path = args.out.with_suffix(".png")  # beside its figures
    plot(summary, plot_path, args.budget)
    confirmed = None
    if args.confirm:
        folder = ROOT / "runs" / "bench_search_confirm"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        best = max(summary, key=lambda c: summary[c]["final_hypervolume_median"])
        combos = list(dict.fromkeys(["random+fifo", "tpe+moasha", best]))
        runs = [(c.split("+")[0], c.split("+")[1]) for c in combos]
        pair = confirm(args.budget, 0, folder, args.startup_trials, runs)
        base_real = pair["random+fifo"]["hypervolume"]
        base_replay = summary["random+fifo"]["final_hypervolume_median"]
        orders = {}
        for combo in combos[1:]:  # does each beat random+fifo, really and in the replay?
            orders[f"{combo}_beats_random_fifo"] = {
                "real": pair[combo]["hypervolume"] > base_real,
                "replay": summary[combo]["final_hypervolume_median"] > base_replay,
            }
        agrees = all(o["real"] == o["replay"] for o in orders.values())
        confirmed = {"budget": args.budget, "seed": 0, "studies": pair, "best_replayed": best,
                     **orders, "agrees": agrees}  # fmt: skip
    for combo, figures in summary.items():
        print(f"{combo}: final hypervolume median {figures['final_hypervolume_median']:.5g} "
              f"IQR {figures['final_hypervolume_iqr'][0]:.5g}-"
              f"{figures['final_hypervolume_iqr'][1]:.5g}; reaches random+fifo's final at "
              f"{figures['budget_fraction_to_reach_random_final']} of the budget")  # fmt: skip
    print("overhead (ms):", overhead)
    write_results(
        args.out,
        "python bench/search_efficiency.py " + " ".join(sys.argv[1:]),
        {"table": str(args.table.relative_to(ROOT)) if args.table.is_relative_to(ROOT)
         else str(args.table), "table_provenance": table["provenance"],
         "lookup": "nearest recorded configuration of the same method (scaled parameters)",
         "budget_reports": args.budget, "seeds": args.seeds, "fractions": list(FRACTIONS),
         "reference": {"map50": reference[0], "macs": reference[1]},
         "summary": summary, "overhead_ms_at_trials": args.overhead_trials,
         "overhead_ms": overhead, "confirm": confirmed,
         "studies": [{k: v for k, v in s.items() if k != "curve"} | {
             "final_hypervolume": s["curve"][-1][1] if s["curve"] else 0.0} for s in studies]},
    )  # fmt: skip


if __name__ == "__main__":
    main()
