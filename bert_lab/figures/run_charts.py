"""Plotly figures of runs for the Runs and Playground pages: pure functions from DataFrames and lists to figures (no
Streamlit here). Curves come as the long frame of `curves.points_frame`, smoothed and downsampled by `curves.series`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from bert_lab.core.metrics import METRICS, label
from bert_lab.figures.curves import MAX_POINTS, X_LABELS, flagged, run_color, series, split_runs

CLASS_PALETTE: tuple[str, ...] = (
    "#76b7b2",
    "#b07aa1",
    "#edc948",
    "#9c755f",
    "#ff9da7",
    "#bab0ac",
    "#86bcb6",
    "#d4a6c8",
)  # classes in the playground: neither the run colours nor good/bad hues


# Chart text: Streamlit's theme draws tick labels at 12 px (about 11 px as a browser renders them), hard to read on a
# laptop screen at 1280×720 and from a few steps away; every figure here sets these instead (the presenter view sets
# its own, larger, over them).
FONT_PX, TITLE_PX = 14, 16


def _is_eval(metric: str) -> bool:
    return metric in METRICS and METRICS[metric].per == "eval"


def readable(figure: go.Figure) -> go.Figure:
    """`figure` with its tick labels, axis titles, legend and hover text at FONT_PX, on every axis it has."""
    figure.update_xaxes(tickfont_size=FONT_PX, title_font_size=FONT_PX)
    figure.update_yaxes(tickfont_size=FONT_PX, title_font_size=FONT_PX)
    figure.update_layout(legend_font_size=FONT_PX, hoverlabel_font_size=FONT_PX)
    return figure


# --- curves ---------------------------------------------------------------------------------------------------------
def _layout(title: str, height: int, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": TITLE_PX}},
        "height": height,
        "uirevision": "keep",
        "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1.0},
        **extra,
    }


def _run_traces(
    part: pd.DataFrame | None,
    run_id: int,
    label: str,
    metric: str,
    *,
    x: str,
    smoothing: float,
    max_points: int,
    show_legend: bool = True,
    axes: tuple[str, str] = ("x", "y"),
) -> list[dict]:
    xs, ys, smooth = series(part, metric, x=x, smoothing=smoothing, max_points=max_points)
    color = run_color(run_id)
    common = {"type": "scatter", "x": xs, "xaxis": axes[0], "yaxis": axes[1], "legendgroup": str(run_id)}
    traces = []
    if smooth is not None:
        traces.append(
            {
                **common,
                "y": ys,
                "mode": "lines",
                "line": {"color": color, "width": 1},
                "opacity": 0.25,
                "name": f"{label} (raw)",
                "showlegend": False,
                "hoverinfo": "skip",
            }
        )
        ys = smooth
    mode = "lines+markers" if _is_eval(metric) or len(xs) == 1 else "lines"  # a lone first point shows too
    traces.append(
        {
            **common,
            "y": ys,
            "mode": mode,
            "line": {"color": color, "width": 2},
            "name": label,
            "showlegend": show_legend,
        }
    )
    return traces


def _x_axis(x: str) -> dict[str, Any]:
    """From 0 (the run's start): a lone evaluation point is drawn where it falls in the run, not at the middle of an
    axis with ticks a fraction of a step apart."""
    return {"title": {"text": X_LABELS.get(x, x)}, "rangemode": "tozero"}


def _y_axis(metric: str, log_y: bool, data: list[dict] | None = None) -> dict[str, Any]:
    axis: dict[str, Any] = {"type": "log" if log_y else "linear"}
    values = np.concatenate([np.asarray(t["y"], dtype=float) for t in data or []] or [np.array([])])
    values = values[np.isfinite(values)]
    if flagged(metric, "share") and len(values) and not log_y:  # zoom in on the data, never past 0 or 1
        low, high = float(values.min()), float(values.max())
        pad = max(0.02, 0.1 * (high - low))
        axis["range"] = [max(0.0, low - pad), min(1.0, high + pad)]
    if flagged(metric, "log_scale"):
        axis.update({"tickformat": ".2~e"} if log_y else {"exponentformat": "e"})
    return axis


def curve_figure(
    frame: pd.DataFrame,
    metric: str,
    labels: Mapping[int, str],
    *,
    x: str = "step",
    smoothing: float = 0.0,
    log_y: bool = False,
    max_points: int = MAX_POINTS,
    height: int = 320,
    marks: Sequence[tuple[int, int, str]] = (),
) -> go.Figure:
    """One metric, one line per run (overlaid); smoothed lines are drawn over their faint raw curve. `marks`:
    (run id, step, note) drawn as a marker on that run's curve, the note on hover."""
    parts = split_runs(frame, metric)
    data = [
        t
        for run_id, label in labels.items()
        for t in _run_traces(parts.get(run_id), run_id, label, metric, x=x, smoothing=smoothing, max_points=max_points)
    ]
    data += _mark_traces(parts, marks, x=x)
    layout = _layout(label(metric), height, xaxis=_x_axis(x), yaxis=_y_axis(metric, log_y, data))
    if not any(len(t["x"]) for t in data):
        _placeholder(layout, metric)
    return readable(go.Figure(data=data, layout=layout))


def _mark_traces(parts: Mapping[int, pd.DataFrame], marks: Sequence[tuple[int, int, str]], *, x: str) -> list[dict]:
    """Markers at the noted steps of each run's curve (on the point at or just before the step)."""
    traces = []
    for run_id, step, note in marks:
        part = parts.get(run_id)
        if part is None or part.empty:
            continue
        at = part[part["step"] <= step].tail(1)
        at = part.head(1) if at.empty else at
        traces.append(
            {
                "type": "scatter",
                "x": at[x].tolist(),
                "y": at["value"].tolist(),
                "mode": "markers",
                "marker": {"symbol": "star-diamond", "size": 14, "color": run_color(run_id), "line": {"width": 1}},
                "name": f"#{run_id} note",
                "showlegend": False,
                "hovertext": [note],
                "hoverinfo": "text",
            }
        )
    return traces


def _placeholder(layout: dict[str, Any], metric: str) -> None:
    """Say why a chart is empty instead of drawing meaningless axes."""
    text = (
        "No evaluation yet: runs evaluate about five times, the first after a fifth of their steps."
        if _is_eval(metric)
        else "No points yet: the first arrives a few seconds after a run starts."
    )
    layout["annotations"] = [
        *layout.get("annotations", []),
        {"text": text, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5},
    ]
    for axis in [k for k in layout if k.startswith(("xaxis", "yaxis"))]:
        layout[axis] = {**layout[axis], "visible": False}


def small_multiples_figure(
    frame: pd.DataFrame,
    metric: str,
    labels: Mapping[int, str],
    *,
    x: str = "step",
    smoothing: float = 0.0,
    log_y: bool = False,
    max_points: int = MAX_POINTS,
    columns: int = 4,
    panel_height: int = 200,
) -> go.Figure:
    """One metric, one small panel per run, side by side with shared axes (so panels compare at a glance)."""
    parts = split_runs(frame, metric)
    ids = list(labels)
    cols = max(1, min(columns, len(ids)))
    rows = max(1, math.ceil(len(ids) / cols))
    gap_x, gap_y = 0.03, 0.12 / rows if rows > 1 else 0.0
    width, tall = (1 - gap_x * (cols - 1)) / cols, (1 - gap_y * (rows - 1)) / rows
    layout = _layout(label(metric), panel_height * rows + 60, showlegend=False, annotations=[])
    data: list[dict] = []
    for k, run_id in enumerate(ids):
        row, col = divmod(k, cols)
        suffix = "" if k == 0 else str(k + 1)
        x0, y1 = col * (width + gap_x), 1 - row * (tall + gap_y)
        layout[f"xaxis{suffix}"] = {
            "domain": [max(0.0, x0), min(1.0, x0 + width)],
            "anchor": f"y{suffix}",
            "rangemode": "tozero",
            **({"matches": "x"} if k else {}),
        }
        layout[f"yaxis{suffix}"] = {
            "domain": [max(0.0, y1 - tall), min(1.0, y1)],
            "anchor": f"x{suffix}",
            **_y_axis(metric, log_y),
            **({"matches": "y", "showticklabels": col == 0} if k else {}),
        }
        layout["annotations"].append(
            {
                "text": labels[run_id],
                "x": x0 + width / 2,
                "y": y1,
                "xref": "paper",
                "yref": "paper",
                "xanchor": "center",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"color": run_color(run_id), "size": FONT_PX},
            }
        )
        data += _run_traces(
            parts.get(run_id),
            run_id,
            labels[run_id],
            metric,
            x=x,
            smoothing=smoothing,
            max_points=max_points,
            show_legend=False,
            axes=(f"x{suffix}", f"y{suffix}"),
        )
    if "range" in (y_range := _y_axis(metric, log_y, data)):
        layout["yaxis"]["range"] = y_range["range"]  # the other panels match the first
    if not any(len(t["x"]) for t in data):
        _placeholder(layout, metric)
    return readable(go.Figure(data=data, layout=layout))


# --- the LR range test -------------------------------------------------------------------------------------------
def lr_find_figure(
    lrs: Sequence[float], losses: Sequence[float], marks: Mapping[str, float], *, height: int = 300
) -> go.Figure:
    """The range test: smoothed training loss against the learning rate (log axis), each suggestion marked."""
    fig = go.Figure(
        go.Scatter(
            x=list(lrs),
            y=list(losses),
            mode="lines",
            line={"width": 3},
            name="smoothed loss",
            hovertemplate="lr %{x:.2e}: loss %{y:.4f}<extra></extra>",
        ),
        _layout(
            "LR range test: smoothed training loss as the learning rate rises",
            height,
            showlegend=True,
            hovermode="closest",
            xaxis={"title": {"text": "learning rate"}, "type": "log", "exponentformat": "e"},
            yaxis={"title": {"text": "smoothed loss"}},
        ),
    )
    x = np.log(np.asarray(lrs, dtype=float))
    for (name, lr), symbol in zip(marks.items(), ("star", "triangle-down", "circle-open")):
        y = float(np.interp(math.log(lr), x, losses)) if len(lrs) else 0.0
        fig.add_trace(
            go.Scatter(
                x=[lr],
                y=[y],
                mode="markers",
                marker={"size": 15 if symbol == "star" else 11, "symbol": symbol},
                name=f"{name}: {lr:.1e}",
                hovertemplate=f"{name}: lr %{{x:.2e}}<extra></extra>",
            )
        )
    return readable(fig)


# --- comparisons ----------------------------------------------------------------------------------------------------
def final_metrics_figure(
    table: pd.DataFrame, metrics: Sequence[str] = ("accuracy", "precision", "recall", "f1"), height_per_bar: int = 16
) -> go.Figure:
    """Each run's latest evaluation as grouped horizontal bars (values written beside them); `table` has run_id,
    label and one column per metric."""
    fig = go.Figure()
    names = [label(m) for m in metrics]
    for row in table.itertuples(index=False):
        values = [getattr(row, m, None) for m in metrics]
        fig.add_trace(
            go.Bar(
                y=names,
                x=values,
                name=row.label,
                orientation="h",
                marker_color=run_color(int(row.run_id)),
                textposition="outside",
                cliponaxis=False,
                text=[f"{v:.3f}" if v is not None and not pd.isna(v) else "" for v in values],
            )
        )
    height = 140 + height_per_bar * len(metrics) * max(1, len(table))
    fig.update_layout(
        barmode="group",
        height=height,
        margin={"l": 10, "r": 40, "t": 40, "b": 10},
        title={"text": "Latest evaluation", "font": {"size": TITLE_PX}},
        uirevision="keep",
        legend={"orientation": "h", "yanchor": "top", "y": -0.12, "xanchor": "left", "x": 0.0},
    )
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(autorange="reversed")
    return readable(fig)


# --- playground -----------------------------------------------------------------------------------------------------
def confusion_figure(
    confusion: Sequence[Sequence[int]], label_names: Sequence[str], *, title: str = "", height: int = 380
) -> go.Figure:
    """Counts of true (rows) vs predicted (columns) labels, with each cell's count written in it."""
    z = np.asarray(confusion, dtype=float)
    names = [str(n) for n in label_names]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=names,
            colorscale="Blues",
            showscale=False,
            text=z.astype(int),
            texttemplate="%{text}",
            hovertemplate="true %{y}, predicted %{x}: %{z:.0f}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="predicted label", side="bottom")
    fig.update_yaxes(title_text="true label", autorange="reversed")
    fig.update_layout(
        title={"text": title, "font": {"size": TITLE_PX}},
        height=height,
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
    )
    return readable(fig)


def probabilities_figure(probs: pd.DataFrame, label_names: Sequence[str], *, height_per_text: int = 34) -> go.Figure:
    """Stacked horizontal bars: each sentence's probability for each class (`probs` has a `text` column and one
    column per label)."""
    fig = go.Figure()
    texts = [t if len(t) <= 60 else t[:57] + "…" for t in probs["text"]]
    for k, name in enumerate(label_names):
        fig.add_trace(
            go.Bar(
                y=texts,
                x=probs[name],
                name=str(name),
                orientation="h",
                marker_color=CLASS_PALETTE[k % len(CLASS_PALETTE)],
                hovertemplate="%{x:.1%}",
            )
        )
    fig.update_layout(
        barmode="stack",
        height=80 + height_per_text * len(texts),
        xaxis={"range": [0, 1], "tickformat": ".0%"},
        yaxis={"autorange": "reversed"},
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "traceorder": "normal"},
    )
    return readable(fig)
