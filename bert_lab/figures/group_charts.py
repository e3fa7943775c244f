"""Plotly figures of a group: each config's mean curve over seeds with a band, parallel coordinates over its runs,
and knob importance. One colour per config, the same in every figure and in the group's table."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from bert_lab.core.metrics import METRICS, label
from bert_lab.figures.curves import PALETTE, X_LABELS, ema
from bert_lab.sweeps.report import ConfigResult, GroupReport, as_study
from bert_lab.sweeps.spec import LOG_KNOBS, format_value

Band = Literal["minmax", "std"]
BANDS: dict[str, str] = {"minmax": "min–max over seeds", "std": "mean ± 1 std"}
TRAIN_SMOOTHING = 0.9  # training loss is one batch per point: smooth each run before averaging seeds


def config_colors(report: GroupReport) -> dict[str, str]:
    """Each config's colour, by launch order (stable while the ranking changes as runs finish)."""
    launched = sorted(report.configs, key=lambda c: min(r.id for r in c.runs))
    return {c.label: PALETTE[i % len(PALETTE)] for i, c in enumerate(launched)}


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def band_figure(
    report: GroupReport,
    points: pd.DataFrame,
    metric: str,
    *,
    band: Band = "minmax",
    name_of: Callable[[ConfigResult], str] | None = None,
    x: str = "step",
) -> go.Figure:
    """`metric` against the optimizer step (or `x`: epoch, elapsed_s): per config, its seeds as faint lines, their mean
    as a line, and a band (min–max, or mean ± 1 std). `points` is a long frame of the group's points (run_id, step,
    epoch, elapsed_s, name, value); `name_of` names a config in the legend (default: its knob values). A score (a
    share: accuracy, F1, …) stays within 0 and 100%: its band is cut there (mean ± std of two seeds can reach past
    both), and its axis zooms on the data without passing either."""
    name_of = name_of or (lambda config: config.label)
    share = METRICS[metric].share
    fig = go.Figure()
    part = points[points["name"] == metric]
    colors = config_colors(report)
    for config in report.configs:
        color = colors[config.label]
        curves = {}
        for run in config.runs:
            mine = part[part["run_id"] == run.id].sort_values(x)
            if mine.empty:
                continue
            values = mine["value"].to_numpy(dtype=float)
            smoothed = ema(values, TRAIN_SMOOTHING) if METRICS[metric].smoothed else values
            curves[run.id] = pd.Series(smoothed, index=mine[x].to_numpy())
            fig.add_trace(
                go.Scatter(
                    x=curves[run.id].index,
                    y=curves[run.id].values,
                    mode="lines",
                    line={"color": _rgba(color, 0.35), "width": 1},
                    name=f"#{run.id} seed {run.config.get('seed')}",
                    legendgroup=config.label,
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
        if not curves:
            continue
        table = pd.DataFrame(curves).sort_index()
        mean = table.mean(axis=1)
        if band == "std":
            spread = table.std(axis=1, ddof=1).fillna(0.0)
            low, high = mean - spread, mean + spread
        else:
            low, high = table.min(axis=1), table.max(axis=1)
        if share:
            low, high = low.clip(0.0, 1.0), high.clip(0.0, 1.0)
        along = mean.index.to_numpy()
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([along, along[::-1]]),
                y=np.concatenate([high.to_numpy(), low.to_numpy()[::-1]]),
                mode="lines",
                fill="toself",
                fillcolor=_rgba(color, 0.18),
                line={"width": 0},
                legendgroup=config.label,
                showlegend=False,
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=along,
                y=mean.to_numpy(),
                mode="lines+markers" if METRICS[metric].per == "eval" else "lines",
                line={"color": color, "width": 2.5},
                name=f"{name_of(config)} (n={table.shape[1]})",
                legendgroup=config.label,
            )
        )
    seeded = any(len(config.runs) > 1 for config in report.configs)
    fig.update_layout(
        title={
            "text": f"{label(metric)}: mean over seeds, band {BANDS[band]}" if seeded else label(metric),
            "font": {"size": 15},
        },
        height=400,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        hovermode="x unified",
        legend={"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0.0},
        xaxis_title=X_LABELS[x],
        yaxis={"tickformat": ".0%" if share else None, "title": label(metric), **_share_range(fig, share)},
    )
    return fig


def _share_range(fig: go.Figure, share: bool) -> dict[str, Any]:
    """A score's y range: the data drawn with a little room, never below 0 or above 1 (nothing for other metrics)."""
    values = np.concatenate([np.asarray(t.y, dtype=float) for t in fig.data if t.y is not None] or [np.array([])])
    values = values[np.isfinite(values)]
    if not share or not len(values):
        return {}
    low, high = float(values.min()), float(values.max())
    pad = max(0.02, 0.1 * (high - low))
    return {"range": [max(0.0, low - pad), min(1.0, high + pad)]}


def parallel_figure(report: GroupReport) -> go.Figure:
    """One line per finished run through its knob values to its score, coloured by the score. Learning rates and
    penalties on a log axis; choices as labelled positions."""
    metric = report.metric
    rows = [(config.params, value) for config in report.configs for value in config.values.get(metric, [])]
    dimensions: list[dict[str, Any]] = []
    for knob in report.knobs:
        values = [params.get(knob) for params, _ in rows]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if numeric and knob in LOG_KNOBS and min(values, default=0) > 0:
            ticks = sorted(set(values))
            dimensions.append(
                {
                    "label": f"{knob} (log)",
                    "values": [math.log10(v) for v in values],
                    "tickvals": [math.log10(v) for v in ticks],
                    "ticktext": [format_value(float(v)) for v in ticks],
                }
            )
        elif numeric:
            dimensions.append({"label": knob, "values": values})
        else:
            names = sorted({format_value(v) for v in values})
            codes = [names.index(format_value(v)) for v in values]
            dimensions.append({"label": knob, "values": codes, "tickvals": list(range(len(names))), "ticktext": names})
    scores = [value for _, value in rows]
    dimensions.append({"label": label(metric), "values": scores})
    higher = METRICS[metric].higher_is_better
    fig = go.Figure(
        go.Parcoords(
            line={
                "color": scores,
                "colorscale": "Viridis",
                "reversescale": not higher,
                "showscale": True,
                "colorbar": {"title": {"text": label(metric)}},
            },
            dimensions=dimensions,
        )
    )
    fig.update_layout(
        title={"text": f"Each finished run, from its knobs to its {label(metric)}", "font": {"size": 15}},
        height=360,
        margin={"l": 60, "r": 40, "t": 80, "b": 20},
    )
    return fig


def importance_figure(method: str, shares: dict[str, float]) -> go.Figure:
    """Horizontal bars: each knob's share of how much the metric moved (and seed noise, for a grid)."""
    ordered = sorted(shares.items(), key=lambda kv: kv[1])
    fig = go.Figure(
        go.Bar(
            x=[v for _, v in ordered],
            y=[k for k, _ in ordered],
            orientation="h",
            marker_color=["#bab0ac" if k == "seed noise" else "#4c78a8" for k, _ in ordered],
            text=[f"{v:.0%}" for _, v in ordered],
            textposition="auto",
        )
    )
    fig.update_layout(
        title={"text": f"What moved the score ({method})", "font": {"size": 15}},
        height=80 + 40 * len(ordered),
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        xaxis={"tickformat": ".0%", "range": [0, 1]},
    )
    return fig


def search_figures(report: GroupReport, shares: dict[str, float]) -> dict[str, go.Figure]:
    """Optuna Dashboard's views of the group, drawn by `optuna.visualization` from the group as a study
    (`report.as_study`: one trial per config, its mean over seeds): the optimisation history (each trial and the best
    so far), a slice plot (the metric against each knob), and a contour plot of the two knobs that mattered most
    (`shares`, the knob importance; only with two knobs or more). Empty when the group is not yet a study."""
    import optuna.visualization as views

    study = as_study(report)
    if study is None:
        return {}
    name = label(report.metric)
    figures = {
        "history": views.plot_optimization_history(study, target_name=name),
        "slice": views.plot_slice(study, target_name=name),
    }
    knobs = sorted(study.best_trial.params, key=lambda k: -shares.get(k, 0.0))
    if len(knobs) >= 2:
        figures["contour"] = views.plot_contour(study, params=knobs[:2], target_name=name)
    for figure in figures.values():
        figure.update_layout(template="plotly_white", height=380, margin={"t": 50, "b": 40, "l": 50, "r": 20})
    return figures


def predictions_figure(counts: dict[str, int], *, chosen: str | None = None, best: str | None = None) -> go.Figure:
    """The class's predictions: how many expected each arm to end best (bars, in the arms' order); one's own choice
    outlined, and the arm that did end best in green once it is known."""
    arms = list(counts)
    colors = ["#54a24b" if arm == best else "#4c78a8" for arm in arms]
    fig = go.Figure(
        go.Bar(
            x=[counts[a] for a in arms],
            y=arms,
            orientation="h",
            marker={
                "color": colors,
                "line": {"color": ["#222" if a == chosen else colors[i] for i, a in enumerate(arms)], "width": 3},
            },
            text=[str(counts[a]) for a in arms],
            textposition="auto",
            hovertemplate="%{y}: %{x} predicted it<extra></extra>",
        )
    )
    fig.update_layout(
        title={"text": f"Which arm will end best? ({sum(counts.values())} predictions)", "font": {"size": 15}},
        height=90 + 44 * len(arms),
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        xaxis={"title": "people", "dtick": 1, "rangemode": "tozero"},
        yaxis={"autorange": "reversed"},
    )
    return fig


def predicted_scores_figure(
    ranges: list[tuple[float, float]], metric: str, *, actual: float | None = None
) -> go.Figure:
    """The class's predicted scores: a histogram of each range's middle, with the score that came (when known)."""
    share = METRICS[metric].share
    scale = 100.0 if share else 1.0
    fig = go.Figure(go.Histogram(x=[(low + high) / 2 * scale for low, high in ranges], marker_color="#4c78a8"))
    if actual is not None:
        fig.add_vline(x=actual * scale, line={"color": "#54a24b", "width": 3}, annotation_text="the result")
    fig.update_layout(
        title={"text": f"Predicted {label(metric)} of that arm ({len(ranges)} ranges)", "font": {"size": 15}},
        height=260,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        xaxis={"title": f"{label(metric)}{' (%)' if share else ''}", **({"range": [0, 100]} if share else {})},
        yaxis={"title": "people", "dtick": 1},
        bargap=0.05,
    )
    return fig
