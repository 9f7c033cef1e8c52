"""The front table: the seed's columns, and the measured latency where trials report it."""

from __future__ import annotations

from analysis.table import group_rows, markdown, write_csv


def _trial(run: str, metrics: dict[str, float], **params: str) -> dict:
    return {"run_id": run, "study": "s", "params": {"lr0": "0.01", **params}, "metrics": metrics,
            "tags": {"model": "yolov3-tiny", "method": "lth", "trial_id": run}, "start_time": 0,
            "experiment_id": "1"}  # fmt: skip


def test_latency_is_a_column_only_where_measured(tmp_path) -> None:
    costs = {"map50": 0.5, "params": 1000.0, "macs": 2e6, "storage_mb": 1.5}
    plain = [_trial("a", costs), _trial("b", {**costs, "map50": 0.4}, lr0="0.02")]
    assert "latency" not in markdown(group_rows(plain))
    timed = [_trial("a", {**costs, "latency_ms": 4.25}),
             _trial("b", {**costs, "map50": 0.4}, lr0="0.02")]  # fmt: skip
    table = markdown(group_rows(timed))
    head, _, first, second = table.splitlines()
    assert head.endswith("| storage MB | latency ms | runs | front | configuration | trials |")
    assert "| 1.50 | 4.25 | 1 |" in first and "| 1.50 | - | 1 |" in second
    write_csv(group_rows(timed), tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().splitlines()[0].startswith(
        "model,method,map50,map50_std,params,params_std,macs,macs_std,storage_mb,storage_mb_std,"
        "latency_ms,latency_ms_std,runs")  # fmt: skip
