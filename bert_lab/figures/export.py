"""Metric points as tables: one row per (run, step), one column per metric, for CSV/JSON export."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from bert_lab.runs.records import MetricPoint

INDEX = ["run_id", "step"]


def metrics_frame(points: Iterable[MetricPoint]) -> pd.DataFrame:
    """Wide table: run_id, step, epoch, elapsed_s, then one column per metric name (NaN where not measured)."""
    rows = [(p.run_id, p.step, p.epoch, p.elapsed_s, p.name, p.value) for p in points]
    long = pd.DataFrame(rows, columns=["run_id", "step", "epoch", "elapsed_s", "name", "value"])
    if long.empty:
        return pd.DataFrame(columns=[*INDEX, "epoch", "elapsed_s"])
    wide = long.pivot_table(index=INDEX, columns="name", values="value", aggfunc="last", dropna=False)
    clocks = long.groupby(INDEX)[["epoch", "elapsed_s"]].max()
    frame = clocks.join(wide).reset_index()
    frame.columns.name = None
    return frame
