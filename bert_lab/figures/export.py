"""Metric points as tables: one row per (run, step), one column per metric, for CSV/JSON export; and CSV that a
spreadsheet opens as data, never as formulas."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from bert_lab.runs.records import MetricPoint

INDEX = ["run_id", "step"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what Excel, LibreOffice and Sheets read as the start of a formula


def metrics_frame(points: Iterable[MetricPoint], names: Mapping[int, str] | None = None) -> pd.DataFrame:
    """Wide table: run_id (then run_name, when `names` gives each run's), step, epoch, elapsed_s, then one column per
    metric name (NaN where not measured)."""
    rows = [(p.run_id, p.step, p.epoch, p.elapsed_s, p.name, p.value) for p in points]
    long = pd.DataFrame(rows, columns=["run_id", "step", "epoch", "elapsed_s", "name", "value"])
    if long.empty:
        frame = pd.DataFrame(columns=[*INDEX, "epoch", "elapsed_s"])
    else:
        wide = long.pivot_table(index=INDEX, columns="name", values="value", aggfunc="last", dropna=False)
        clocks = long.groupby(INDEX)[["epoch", "elapsed_s"]].max()
        frame = clocks.join(wide).reset_index()
        frame.columns.name = None
    if names is not None:
        frame.insert(1, "run_name", [names.get(run_id, "") for run_id in frame["run_id"]])
    return frame


def spreadsheet_csv(frame: pd.DataFrame) -> str:
    """`frame` as CSV in which no text cell starts a formula: a cell that begins with =, +, -, @, a tab or a carriage
    return gets a leading apostrophe (OWASP's advice against CSV injection), so a run named `=HYPERLINK(…)` stays text.
    Numbers, negative ones included, are written as numbers."""
    safe = frame.copy()
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):
            safe[column] = [f"'{v}" if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v for v in safe[column]]
    return safe.to_csv(index=False)
