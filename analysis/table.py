"""The seed's results table from trials: model, method, mAP, params, MACs, storage, and the
measured latency where the trials report one (a study that optimises latency shows it).

Trials that share a configuration (every parameter but the seed) are one row with
mean ± std, as the seed reported repeated runs.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from yolo.metrics import names as m

COLUMNS = ((m.MAP50, "mAP50", "{:.3f}"), (m.PARAMS, "params", "{:,.0f}"),
           (m.MACS, "MACs", "{:,.0f}"), (m.STORAGE_MB, "storage MB", "{:.2f}"))  # fmt: skip
# shown where any trial measured it
OPTIONAL_COLUMNS = ((m.LATENCY_MS, "latency ms", "{:.2f}"),)


def _columns(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    shown = [c for c in OPTIONAL_COLUMNS if any(r.get(c[0]) is not None for r in rows)]
    return [*COLUMNS, *shown]


if TYPE_CHECKING:
    from trainables.records import TrialRecord


_NOT_CONFIG = ("model", "data", "seed", "out")


def trial_label(trial: TrialRecord) -> str:
    """The one id a trial goes by everywhere: its Tune trial id (the stem of its MLflow run
    name, the label on the plot, the ``trials`` column); runs from before that tag, the
    first characters of the MLflow run id."""
    return str(trial["tags"].get("trial_id") or trial["run_id"][:8])


def varying_params(trials: Sequence[TrialRecord]) -> set[str]:
    """Parameters that differ between trials: the searched ones, worth a column."""
    keys = {k for t in trials for k in t["params"]} - set(_NOT_CONFIG)
    return {k for k in keys if len({t["params"].get(k) for t in trials}) > 1}


def _short(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    return value if number.is_integer() and "e" not in value else f"{number:.4g}"


def group_rows(trials: Sequence[TrialRecord], *, on_front: Iterable[bool] | None = None,
               shown: set[str] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """One row per configuration (seeds averaged). ``on_front`` marks front members (else
    the runs' ``pareto`` tags); ``shown`` limits the configuration column to those params."""
    flags = list(on_front) if on_front is not None else [
        t["tags"].get("pareto") == "true" for t in trials]  # fmt: skip
    groups: dict[tuple, list[tuple[TrialRecord, bool]]] = {}
    for trial, flag in zip(trials, flags):
        key = tuple(sorted((k, v) for k, v in trial["params"].items() if k != "seed"))
        groups.setdefault(key, []).append((trial, flag))
    rows = []
    for pairs in groups.values():
        members = [t for t, _ in pairs]
        first = members[0]
        params = sorted((k, v) for k, v in first["params"].items() if k not in _NOT_CONFIG
                        and (shown is None or k in shown))  # fmt: skip
        row: dict[str, Any] = {
            "model": first["tags"].get("model", first["params"].get("model", "")),
            "method": first["tags"].get("method", ""),
            "runs": len(members),
            "trials": ", ".join(trial_label(t) for t in members),
            "pareto": any(flag for _, flag in pairs),
            "config": ", ".join(f"{k}={_short(str(v))}" for k, v in params),
        }
        for column, _, _ in (*COLUMNS, *OPTIONAL_COLUMNS):
            values = [t["metrics"][column] for t in members if column in t["metrics"]]
            row[column] = (float(np.mean(values)), float(np.std(values))) if values else None
        rows.append(row)
    return sorted(rows, key=lambda r: -(r[m.MAP50] or (0.0, 0.0))[0])


def _cell(value: tuple[float, float] | None, fmt: str, runs: int) -> str:
    if value is None:
        return "-"
    mean, std = value
    return fmt.format(mean) + (f" ± {fmt.format(std)}" if runs > 1 else "")


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    columns = _columns(rows)
    head = [
        "model",
        "method",
        *[title for _, title, _ in columns],
        "runs",
        "front",
        "configuration",
        "trials",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], r["method"], *[_cell(r[k], f, r["runs"]) for k, _, f in columns],
                 str(r["runs"]), "✓" if r["pareto"] else "", r["config"], r["trials"]]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    columns = _columns(rows)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        metric_columns = [f"{k}{suffix}" for k, _, _ in columns for suffix in ("", "_std")]
        writer.writerow(["model", "method", *metric_columns, "runs", "pareto", "configuration",
                         "trials"])  # fmt: skip
        for r in rows:
            values = [v for k, _, _ in columns for v in (r[k] or (None, None))]
            writer.writerow([r["model"], r["method"], *values, r["runs"], r["pareto"], r["config"],
                             r["trials"]])  # fmt: skip
