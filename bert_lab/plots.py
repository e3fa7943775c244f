"""Plotly figure builders for the app: pure functions from DataFrames and lists to figures (no Streamlit here).

Curves come as a *long* frame with one row per metric point: run_id, step, epoch, elapsed_s, name, value (see
`points_frame`). Long runs are smoothed on their full data and then downsampled for drawing only (min/max per bucket,
so spikes survive); the stored points are never changed. Every run keeps one colour in every figure (`run_color`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from bert_lab.runs.metrics import METRICS, label

if TYPE_CHECKING:
    import altair as alt

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


def _is(metric: str, flag: str) -> bool:
    """A catalogue flag (smoothed, share, log_scale) of `metric`; False for names not in the catalogue."""
    return metric in METRICS and bool(getattr(METRICS[metric], flag))


def _is_eval(metric: str) -> bool:
    return metric in METRICS and METRICS[metric].per == "eval"


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
    smooth = ema(ys, smoothing) if smoothing > 0 and _is(metric, "smoothed") else None
    keep = downsample(smooth if smooth is not None else ys, max_points)
    return xs[keep], ys[keep], None if smooth is None else smooth[keep]


# --- curves ---------------------------------------------------------------------------------------------------------
def _layout(title: str, height: int, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 15}},
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


def _y_axis(metric: str, log_y: bool, data: list[dict] | None = None) -> dict[str, Any]:
    axis: dict[str, Any] = {"type": "log" if log_y else "linear"}
    values = np.concatenate([np.asarray(t["y"], dtype=float) for t in data or []] or [np.array([])])
    values = values[np.isfinite(values)]
    if _is(metric, "share") and len(values) and not log_y:  # zoom in on the data, never past 0 or 1
        low, high = float(values.min()), float(values.max())
        pad = max(0.02, 0.1 * (high - low))
        axis["range"] = [max(0.0, low - pad), min(1.0, high + pad)]
    if _is(metric, "log_scale"):
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
    layout = _layout(
        label(metric), height, xaxis={"title": {"text": X_LABELS.get(x, x)}}, yaxis=_y_axis(metric, log_y, data)
    )
    if not any(len(t["x"]) for t in data):
        _placeholder(layout, metric)
    return go.Figure(data=data, layout=layout)


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
                "font": {"color": run_color(run_id)},
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
    return go.Figure(data=data, layout=layout)


# --- launch preview -------------------------------------------------------------------------------------------------
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
    return fig


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
        title={"text": "Latest evaluation", "font": {"size": 15}},
        uirevision="keep",
        legend={"orientation": "h", "yanchor": "top", "y": -0.12, "xanchor": "left", "x": 0.0},
    )
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(autorange="reversed")
    return fig


def config_diff(configs: Mapping[str, Mapping[str, Any]], *, only_differences: bool = False) -> pd.DataFrame:
    """Hyperparameters as rows, runs as columns (values as text), and a `differs` column."""
    fields = list(dict.fromkeys(k for c in configs.values() for k in c))
    table = pd.DataFrame(
        {label: [_fmt_value(c.get(f, "—")) for f in fields] for label, c in configs.items()},
        index=pd.Index(fields, name="hyperparameter"),
    )
    table["differs"] = table.nunique(axis=1) > 1 if len(configs) > 1 else False
    return table[table["differs"]] if only_differences else table


def style_diff(table: pd.DataFrame, color: str = "rgba(255, 196, 0, 0.35)") -> Any:
    """A Styler that shades the rows whose values differ between runs (the `differs` column of `config_diff`)."""
    differs = table["differs"]

    def shade(row: pd.Series) -> list[str]:
        return [f"background-color: {color}; font-weight: 600" if differs[row.name] else ""] * len(row)

    return table.drop(columns="differs").style.apply(shade, axis=1)


def _fmt_value(value: Any) -> str:
    if value is None:
        return "model default"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


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
        title={"text": title, "font": {"size": 15}},
        height=height,
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
    )
    return fig


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
    return fig


def lr_schedule_chart(lrs: Sequence[float], *, warmup_steps: int = 0, height: int = 260) -> alt.LayerChart:
    """The learning rate at every optimizer step of the planned run (the same function training uses), the end of
    warmup marked. Vega-Lite (Altair), not plotly: the launch page's only chart, and plotly's script would cost every
    new tab ~0.9 s on a 2-core machine (bench/first_render.py)."""
    import altair as alt

    y = np.asarray(lrs, dtype=float)
    keep = downsample(y, 1000)
    frame = pd.DataFrame({"step": np.arange(len(y))[keep], "lr": y[keep]})
    x = alt.X("step:Q", title=X_LABELS["step"])
    lr = alt.Y("lr:Q", title="learning rate", axis=alt.Axis(format=".1e"))
    tooltip = [alt.Tooltip("step:Q"), alt.Tooltip("lr:Q", title="lr", format=".3g")]
    curve = alt.Chart(frame).mark_area(line={"strokeWidth": 3}, opacity=0.3).encode(x=x, y=lr, tooltip=tooltip)
    layers = [curve]
    if 0 < warmup_steps < len(y):
        rule = alt.Chart(pd.DataFrame({"step": [warmup_steps]})).mark_rule(strokeDash=[2, 3]).encode(x="step:Q")
        label = rule.mark_text(align="left", baseline="top", dx=4, text="end of warmup").encode(y=alt.value(4))
        layers += [rule, label]
    # A short title: the page's column is narrow, and the caption under the chart counts the steps.
    return alt.layer(*layers).properties(title="Learning rate at each optimizer step", height=height - 60)


def loss_chart(frame: pd.DataFrame, run_id: int, *, smoothing: float = 0.6, height: int = 240) -> alt.LayerChart:
    """One run's training loss as it trains, its EMA over the faint raw line: the launch page's view of the run it
    launched. Vega-Lite like the preview above it, so the launch page never loads plotly's script (which, loaded in
    the tab at the click, slowed the first point's drawing by ~2 s while the run started: bench/first_point.py)."""
    import altair as alt

    xs, raw, smooth = series(split_runs(frame, "train_loss").get(run_id), "train_loss", smoothing=smoothing)
    data = pd.DataFrame({"step": xs, "raw": raw, "smoothed": raw if smooth is None else smooth})
    color, y_title = run_color(run_id), label("train_loss")
    step = alt.X("step:Q", title=X_LABELS["step"], axis=alt.Axis(format=",d", tickMinStep=1))  # steps are whole
    base = alt.Chart(data).encode(x=step)
    faint = base.mark_line(color=color, opacity=0.25, strokeWidth=1).encode(y=alt.Y("raw:Q", title=y_title))
    tooltip = [alt.Tooltip("step:Q"), alt.Tooltip("smoothed:Q", title="loss (smoothed)", format=".4f")]
    line = base.mark_line(color=color, strokeWidth=2.5, point=len(data) == 1).encode(y="smoothed:Q", tooltip=tooltip)
    return alt.layer(faint, line).properties(title=y_title, height=height - 60)
