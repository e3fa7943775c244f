"""Vega-Lite (Altair) charts for the launch page: the planned learning rate and the launched run's loss. Not plotly:
plotly's 4.7 MB script would cost every new tab ~0.9 s on a 2-core machine (bench/first_render.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bert_lab.core.metrics import label
from bert_lab.figures.curves import X_LABELS, downsample, run_color, series, split_runs

if TYPE_CHECKING:
    import altair as alt


def lr_schedule_chart(lrs: Sequence[float], *, warmup_steps: int = 0, height: int = 260) -> alt.LayerChart:
    """The learning rate at every optimizer step of the planned run (the same function training uses), the end of
    warmup marked. Vega-Lite (Altair), not plotly: the launch page's only chart, and plotly's script would cost every
    new tab ~0.9 s on a 2-core machine (bench/first_render.py)."""
    import altair as alt

    y = np.asarray(lrs, dtype=float)
    keep = downsample(y, 1000)
    frame = pd.DataFrame({"step": np.arange(len(y))[keep], "lr": y[keep]})
    x = alt.X("step:Q", title=X_LABELS["step"], axis=alt.Axis(format=",d", tickMinStep=1))  # steps are whole
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
    # The axis spans the losses, not 0 to them: a loss falling from 0.70 to 0.55 would draw flat over a zero baseline.
    loss = alt.Y("raw:Q", title=y_title, scale=alt.Scale(zero=False))
    faint = base.mark_line(color=color, opacity=0.25, strokeWidth=1).encode(y=loss)
    tooltip = [alt.Tooltip("step:Q"), alt.Tooltip("smoothed:Q", title="loss (smoothed)", format=".4f")]
    smoothed = alt.Y("smoothed:Q", scale=alt.Scale(zero=False))
    line = base.mark_line(color=color, strokeWidth=2.5, point=len(data) == 1).encode(y=smoothed, tooltip=tooltip)
    return alt.layer(faint, line).properties(title=y_title, height=height - 60)
