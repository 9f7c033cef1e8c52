"""The seed's results table from trials: model, method, mAP, params, MACs, storage.

Trials that share a configuration (every parameter but the seed) are one row with
mean ± std, as the seed reported repeated runs.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

COLUMNS = (("map50", "mAP50", "{:.3f}"), ("params", "params", "{:,.0f}"),
           ("macs", "MACs", "{:,.0f}"), ("storage_mb", "storage MB", "{:.2f}"))  # fmt: skip


def group_rows(trials: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for trial in trials:
        key = tuple(sorted((k, v) for k, v in trial["params"].items() if k != "seed"))
        groups.setdefault(key, []).append(trial)
    rows = []
    for members in groups.values():
        first = members[0]
        row: dict[str, Any] = {
            "model": first["tags"].get("model", first["params"].get("model", "")),
            "method": first["tags"].get("method", ""),
            "runs": len(members),
            "pareto": any(m["tags"].get("pareto") == "true" for m in members),
            "config": ", ".join(f"{k}={v}" for k, v in sorted(first["params"].items())
                                if k not in ("model", "data", "seed", "out")),
        }  # fmt: skip
        for key, _, _ in COLUMNS:
            values = [m["metrics"][key] for m in members if key in m["metrics"]]
            row[key] = (float(np.mean(values)), float(np.std(values))) if values else None
        rows.append(row)
    return sorted(rows, key=lambda r: -(r["map50"] or (0.0, 0.0))[0])


def _cell(value: tuple[float, float] | None, fmt: str, runs: int) -> str:
    if value is None:
        return "-"
    mean, std = value
    return fmt.format(mean) + (f" ± {fmt.format(std)}" if runs > 1 else "")


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    head = [
        "model",
        "method",
        *[title for _, title, _ in COLUMNS],
        "runs",
        "front",
        "configuration",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], r["method"], *[_cell(r[k], f, r["runs"]) for k, _, f in COLUMNS],
                 str(r["runs"]), "✓" if r["pareto"] else "", r["config"]]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        metric_columns = [f"{k}{suffix}" for k, _, _ in COLUMNS for suffix in ("", "_std")]
        writer.writerow(["model", "method", *metric_columns, "runs", "pareto", "configuration"])
        for r in rows:
            values = [v for k, _, _ in COLUMNS for v in (r[k] or (None, None))]
            writer.writerow([r["model"], r["method"], *values, r["runs"], r["pareto"], r["config"]])
