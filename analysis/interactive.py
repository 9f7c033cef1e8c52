"""The front as an interactive page (``front.html``): hover a point for its trial.

Plotly, a maintained plotting package whose HTML is self-contained (plotly.js inlined, so
the page renders in the MLflow UI's artifact view and offline): one trace per method,
front members solid and joined, dominated trials faded, the starting model as a black
star. Hovering shows the run name, the method, the parameters that vary across the study
and the objectives; clicking a point opens its MLflow run (a link relative to the UI that
serves the page).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from analysis.table import trial_label, varying_params

if TYPE_CHECKING:
    from trainables.records import TrialRecord

_CLICK_TO_RUN = """
var plot = document.getElementsByClassName('plotly-graph-div')[0];
plot.on('plotly_click', function (event) {
  var link = event.points[0].customdata && event.points[0].customdata[0];
  // served by the MLflow UI (also inside its artifact view's blob: frame) the origin is the
  // UI's; a file opened from disk has none, and no UI to link to
  var origin = window.location.origin;
  if (link && origin && origin !== 'null') { window.open(origin + link, '_blank'); }
});
"""


def run_link(trial: TrialRecord) -> str:
    """The trial's page in the MLflow UI, relative to the UI's root."""
    experiment = trial.get("experiment_id")
    return f"/#/experiments/{experiment}/runs/{trial['run_id']}" if experiment else ""


def _hover(trial: TrialRecord, shown: Sequence[str], x: str, y: str) -> str:
    name = trial["tags"].get("mlflow.runName") or trial_label(trial)
    method = html.escape(trial["tags"].get("method", "?"))
    lines = [f"<b>{html.escape(name)}</b>", f"method: {method}",
             f"{y}: {trial['metrics'][y]:.4g}", f"{x}: {trial['metrics'][x]:,.0f}"]  # fmt: skip
    lines += [f"{html.escape(k)}: {html.escape(_short(trial['params'][k]))}"
              for k in shown if k in trial["params"] and k != "method"]  # fmt: skip
    return "<br>".join(lines)


def _short(value: str) -> str:
    try:
        return f"{float(value):.4g}"
    except ValueError:
        return value


def front_html(trials: Sequence[TrialRecord], on_front: np.ndarray, path: Path, *, x: str,
               y: str, by: str, log_x: bool = True,
               start: Mapping[str, float] | None = None) -> None:  # fmt: skip
    """Write the page for ``trials`` grouped by ``by`` (see the module doc)."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    shown = sorted(varying_params(trials))
    figure = go.Figure()
    group_of = [t["tags"].get(by, t["params"].get(by, "?")) for t in trials]
    for k, group in enumerate(sorted(set(group_of))):
        colour = qualitative.Plotly[k % len(qualitative.Plotly)]
        for front in (True, False):
            members = [
                i for i, g in enumerate(group_of) if g == group and bool(on_front[i]) == front
            ]
            if not members:
                continue
            members.sort(key=lambda i: trials[i]["metrics"][x])
            figure.add_trace(go.Scatter(
                x=[trials[i]["metrics"][x] for i in members],
                y=[trials[i]["metrics"][y] for i in members],
                mode="lines+markers+text" if front else "markers",
                line={"shape": "hv", "width": 1, "color": colour},
                marker={"size": 10 if front else 7, "color": colour,
                        "opacity": 1 if front else 0.3},
                text=[trial_label(trials[i]) if front else "" for i in members],
                textposition="top right", textfont={"size": 9},
                hovertext=[_hover(trials[i], shown, x, y) for i in members], hoverinfo="text",
                customdata=[[run_link(trials[i])] for i in members],
                name=f"{by}={group}" + ("" if front else " (dominated)"),
            ))  # fmt: skip
    if start and x in start and y in start:
        about = f"<b>starting model</b><br>{y}: {start[y]:.4g}<br>{x}: {start[x]:,.0f}"
        figure.add_trace(go.Scatter(x=[start[x]], y=[start[y]], mode="markers",
                                    name="start (dense)", hovertext=[about], hoverinfo="text",
                                    marker={"symbol": "star", "size": 16,
                                            "color": "black"}))  # fmt: skip
    figure.update_layout(
        title=f"Pareto front: {y} vs {x} (hover a point for its trial, click to open its run)",
        xaxis={"title": x + (" (log)" if log_x else ""), "type": "log" if log_x else "linear"},
        yaxis={"title": y}, template="plotly_white", height=560,
    )  # fmt: skip
    figure.write_html(str(path), include_plotlyjs=True, full_html=True, post_script=_CLICK_TO_RUN)
