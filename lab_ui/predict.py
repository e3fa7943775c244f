"""Predict first, on a page (the Lessons and Groups pages, the Host view): the form that stores a person's guess while
the group's predictions are open, and once a result is in, the guess beside what happened and the class's guesses as
charts. The rules and the words are teaching/predictions.py's."""

from __future__ import annotations

import streamlit as st

from bert_lab.core.metrics import METRICS
from bert_lab.figures import group_charts
from bert_lab.runs.records import Prediction
from bert_lab.runs.store import StoreError
from bert_lab.runs.workshop import NotAllowedError
from bert_lab.sweeps.report import GroupReport
from bert_lab.teaching import predictions
from lab_ui import page, present

LOSS_RANGE = (0.0, 3.0)  # the slider's span for a loss (shares span 0–100%)


def mine(lab_predictions: list[Prediction]) -> Prediction | None:
    """This browser's person's prediction among a group's."""
    owner = page.owner()
    return next((p for p in lab_predictions if p.owner == owner), None)


def render_form(report: GroupReport, *, key: str) -> None:
    """While the group's predictions are open: which arm will end best, and optionally its score's range."""
    group = report.group
    if not predictions.predictable(group, report) or not predictions.is_open(report):
        return
    lab = page.open_lab()
    own = mine(lab.store.list_predictions(group.id))
    choices = predictions.arms(group, report)
    metric = METRICS[group.metric]
    share = metric.share
    with st.form(f"predict_{key}_{group.id}"):
        st.markdown(
            f"**:material/psychology_alt: Predict first.** Which will end best on {page.md(metric.label)}? "
            "Say it before the result is in: a guess you committed to is what makes the result teach."
        )
        arm = st.radio(
            "Ends best",
            choices,
            index=choices.index(own.arm) if own is not None and own.arm in choices else None,
            key=f"predict_arm_{key}_{group.id}",
        )
        ranged = st.checkbox(
            f"…and its {metric.label} will be in this range",
            value=own is not None and own.low is not None,
            key=f"predict_ranged_{key}_{group.id}",
        )
        span = (0, 100) if share else LOSS_RANGE
        start = (60, 80) if share else (0.4, 0.7)
        if own is not None and own.low is not None and own.high is not None:
            start = (round(own.low * 100), round(own.high * 100)) if share else (own.low, own.high)
        chosen = st.slider(
            f"{metric.label}{' (%)' if share else ''}",
            span[0],
            span[1],
            start,
            step=1 if share else 0.05,
            key=f"predict_range_{key}_{group.id}",
        )
        if st.form_submit_button("Save my prediction", icon=":material/how_to_vote:"):
            low, high = ((chosen[0] / 100, chosen[1] / 100) if share else chosen) if ranged else (None, None)
            try:
                if arm is None:
                    raise ValueError("arm: pick the one you expect to end best")
                own = predictions.predict(
                    lab, report, arm=arm, low=low, high=high, owner=page.owner(), actor=page.actor()
                )
            except (ValueError, StoreError, NotAllowedError) as exc:
                st.error(page.md(exc))
            else:
                st.toast("Prediction saved: it stays changeable until the first run has its result.")
    if own is not None:
        st.caption(
            f"Your prediction: {page.md(describe(own, group.metric))}. You can change it until a run has its result."
        )


def describe(prediction: Prediction, metric: str) -> str:
    """ "right (2e-4), F1 between 70% and 80%"."""
    if prediction.low is None or prediction.high is None:
        return prediction.arm
    share = METRICS[metric].share
    low, high = (f"{v:.0%}" if share else f"{v:.2f}" for v in (prediction.low, prediction.high))
    return f"{prediction.arm}, {METRICS[metric].label} between {low} and {high}"


def render_outcome(report: GroupReport, *, show_class: bool, key: str) -> None:
    """Once a result is in: this person's prediction beside it, and (show_class) everyone's as charts."""
    if not predictions.predictable(report.group, report) or not report.scored:
        return
    lab = page.open_lab()
    everyone = lab.store.list_predictions(report.group.id)
    own = mine(everyone)
    if own is not None:
        lines = predictions.outcome(own, report)
        st.info(
            "**Your prediction**\n\n" + "\n".join(f"- {page.md(line)}" for line in lines), icon=":material/how_to_vote:"
        )
    if show_class and everyone:
        render_class(report, everyone, key=key, revealed=True)


def render_class(report: GroupReport, everyone: list[Prediction], *, key: str, revealed: bool) -> None:
    """The class's predictions: counts per arm and the predicted scores (with the result, once revealed)."""
    group = report.group
    name_of = predictions.arm_of(group)
    best = name_of(report.best) if revealed and report.best is not None else None
    counts = predictions.tally(everyone, predictions.arms(group, report))
    own = mine(everyone)
    left, right = st.columns(2)
    figure = group_charts.predictions_figure(counts, chosen=own.arm if own else None, best=best)
    left.plotly_chart(present.projected(figure), key=f"class_arms_{key}")
    ranges = [(p.low, p.high) for p in everyone if p.low is not None and p.high is not None]
    if ranges:
        actual = None
        if best is not None and report.best is not None:
            actual = report.best.stats(group.metric).mean
        scores = group_charts.predicted_scores_figure(ranges, group.metric, actual=actual)
        right.plotly_chart(present.projected(scores), key=f"class_scores_{key}")
