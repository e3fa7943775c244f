"""Metric points as series to draw: the long frame every chart starts from (one row per point: run_id, step, epoch,
elapsed_s, name, value; `points_frame`), smoothing (`ema`), downsampling for drawing only (min/max per bucket, so spikes
survive; the stored points are never changed), and each run's one colour in every figure (`run_color`). Shared by the
plotly figures (`run_charts`, `group_charts`) and the Vega-Lite ones (`launch_charts`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bert_lab.core.metrics import METRICS

PALETTE: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
POINT_COLUMNS = ["run_id", "step", "epoch", "elapsed_s", "name", "value"]
X_LABELS: dict[str, str] = {"step": "Optimizer step", "epoch": "Epoch", "elapsed_s": "Elapsed seconds"}
MAX_POINTS = 500


def flagged(metric: str, flag: str) -> bool:
    """A catalogue flag (smoothed, share, log_scale) of `metric`; False for names not in the catalogue."""
    return metric in METRICS and bool(getattr(METRICS[metric], flag))


def run_color(run_id: int) -> str:
    """The colour of run `run_id` in every figure."""
    return PALETTE[(run_id - 1) % len(PALETTE)]


def points_frame(points: Iterable[Any]) -> pd.DataFrame:
    """Long frame (run_id, step, epoch, elapsed_s, name, value) from MetricPoint records."""
    rows = [(p.run_id, p.step, p.epoch, p.elapsed_s, p.name, p.value) for p in points]
    return pd.DataFrame(rows, columns=POINT_COLUMNS)


# --- series helpers -------------------------------------------------------------------------------------------------
def ema(values: Sequence[float] | np.ndarray, weight: float) -> np.ndarray:
    """Exponential moving average with TensorBoard's `weight` (0: none, 0.99: heavy), bias-corrected at the start.
    NaN points are skipped (they stay NaN and do not poison what follows)."""
    y = np.asarray(values, dtype=float)
    if weight <= 0 or len(y) == 0:
        return y.copy()
    return pd.Series(y).ewm(alpha=1.0 - weight, adjust=True, ignore_na=True).mean().where(~np.isnan(y)).to_numpy()


def downsample(y: Sequence[float] | np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most `max_points` points to draw: always the first and last, and in each bucket between them
    the lowest and highest value (so spikes and dips stay visible)."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n <= max_points:
        return np.arange(n)
    buckets = max(1, (max_points - 2) // 2)
    inner = y[1:-1]
    width = math.ceil(len(inner) / buckets)
    padded = np.full(buckets * width, np.nan)
    padded[: len(inner)] = inner
    grid = padded.reshape(buckets, width)
    low = np.argmin(np.where(np.isnan(grid), np.inf, grid), axis=1)
    high = np.argmax(np.where(np.isnan(grid), -np.inf, grid), axis=1)
    offsets = np.arange(buckets) * width + 1
    picked = np.concatenate([[0, n - 1], offsets + low, offsets + high])
    return np.unique(picked[picked <= n - 1])


def split_runs(frame: pd.DataFrame, metric: str) -> dict[int, pd.DataFrame]:
    """Each run's points of one metric, sorted by step (one pass over the frame per figure)."""
    part = frame[frame["name"] == metric]
    return {int(run_id): g.sort_values("step", kind="stable") for run_id, g in part.groupby("run_id", sort=False)}


def series(
    part: pd.DataFrame | None, metric: str, *, x: str = "step", smoothing: float = 0.0, max_points: int = MAX_POINTS
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(x, raw y, smoothed y or None) of one run's points of `metric`, downsampled for drawing."""
    if part is None or part.empty:
        return np.array([]), np.array([]), None
    xs, ys = part[x].to_numpy(dtype=float), part["value"].to_numpy(dtype=float)
    smooth = ema(ys, smoothing) if smoothing > 0 and flagged(metric, "smoothed") else None
    keep = downsample(smooth if smooth is not None else ys, max_points)
    return xs[keep], ys[keep], None if smooth is None else smooth[keep]
