"""Predict first: a person's guess at what a group will show, stored before its result is in, and read beside the
result once it is (peer instruction's predict → observe → explain: committing to a guess is what makes the result
teach). A guess names the arm expected to end best on the group's metric (a lesson's arm, or a sweep's config) and
optionally a range for that arm's score. It can be changed until a run of the group has its result (the store
refuses after that); then `outcome` says whether it held, and whether the gap it missed by is real or seed noise
(the group's own verdict, Welch's t).

A search (Optuna) has no arms to predict: its configs are chosen as it goes.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence

from bert_lab.core.metrics import METRICS
from bert_lab.runs import workshop
from bert_lab.runs.records import Group, Prediction
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.runs.workshop import Actor
from bert_lab.sweeps.report import ConfigResult, GroupReport, compare
from bert_lab.teaching.lessons import LESSONS

HAS_RESULT = (Status.FINISHED, Status.DIVERGED)  # a run in one of these has its result: predictions close


def lesson_of(group: Group) -> str | None:
    """The lesson a group runs (its slug), if it is a lesson's."""
    slug = group.spec.get("lesson")
    return slug if slug in LESSONS else None


def arm_of(group: Group) -> Callable[[ConfigResult], str]:
    """What a person calls one of the group's configs: a lesson's arm, else the config's knob values."""
    slug = lesson_of(group)
    return LESSONS[slug].arm_of if slug else (lambda config: config.label)


def arms(group: Group, report: GroupReport) -> list[str]:
    """The arms one may predict (a lesson's, even before its runs are queued; a sweep's configs)."""
    slug = lesson_of(group)
    if slug:
        return [label for label, _ in LESSONS[slug].arms]
    return [config.label for config in report.configs]


def predictable(group: Group, report: GroupReport) -> bool:
    """Whether the group has arms to predict between: two or more known in advance (not a search's)."""
    return group.method != "search" and len(arms(group, report)) >= 2


def is_open(report: GroupReport) -> bool:
    """Predictions stay open until a run of the group has its result."""
    return not any(run.status in HAS_RESULT for run in report.runs)


def predict(
    lab: Lab,
    report: GroupReport,
    *,
    arm: str,
    low: float | None = None,
    high: float | None = None,
    owner: str = "",
    actor: Actor | None = None,
) -> Prediction:
    """Store `owner`'s prediction for the group (replacing theirs). One ValueError names every bad field; in a
    workshop a participant predicts as themselves, on their own groups and the class lesson's; the store refuses
    (StoreError) once a run has its result."""
    group = report.group
    if actor is not None:
        owner = actor.name
        if group.id != workshop.Settings.read(lab.data).class_group:
            actor.check(group.owner, f"group {group.name!r}", "predict on")
    problems = []
    if group.method == "search":
        problems.append("group: a search chooses its configs as it goes, there is nothing to predict between")
    choices = arms(group, report)
    if arm not in choices:
        problems.append(f"arm: {arm!r} is not one of this group's: {', '.join(choices)}")
    if (low is None) != (high is None):
        problems.append("range: give both ends, or neither")
    elif low is not None and high is not None:
        floor, ceiling = (0.0, 1.0) if METRICS[group.metric].share else (0.0, math.inf)
        for name, value in (("low", low), ("high", high)):
            if not floor <= value <= ceiling or not math.isfinite(value):
                within = "between 0 and 1" if ceiling == 1.0 else "0 or more"
                problems.append(f"{name}: {METRICS[group.metric].label} {value} is not {within}")
        if low > high:
            problems.append(f"range: low {low} is above high {high}")
    if problems:
        raise ValueError("; ".join(problems))
    return lab.store.predict(Prediction(group.id, owner, arm, low, high, time.time()))


def tally(predictions: Sequence[Prediction], choices: Sequence[str]) -> dict[str, int]:
    """How many predicted each arm, in the arms' order (arms nobody chose included, at 0)."""
    counts = Counter(p.arm for p in predictions)
    return {arm: counts.get(arm, 0) for arm in choices}


def outcome(prediction: Prediction, report: GroupReport) -> list[str]:
    """The prediction beside what happened, in plain words: whether the predicted arm ended best, and if not, whether
    the gap to the best is real or seed noise; whether its score fell in the predicted range. Empty until a config
    has a result."""
    scored = report.scored
    if not scored:
        return []
    name_of, metric = arm_of(report.group), report.metric
    label = METRICS[metric].label
    best = scored[0]
    top = [c for c in scored if c.stats(metric).mean == best.stats(metric).mean]
    mine = next((c for c in scored if name_of(c) == prediction.arm), None)
    lines = [f"You predicted {prediction.arm} would end best on {label}."]
    if mine is None:
        lines.append(f"{prediction.arm} has no result (its runs did not finish); {_scored(name_of, best, metric)}.")
        return lines
    if mine in top and len(top) > 1:
        lines.append(f"It tied for best: {', '.join(_scored(name_of, c, metric) for c in top)}.")
    elif mine is best:
        runner = next(iter(scored[1:]), None)
        lines.append(
            f"It did: {_scored(name_of, best, metric)}" + (_gap(best, runner, metric, name_of) if runner else ".")
        )
    else:
        lines.append(
            f"It did not: {_scored(name_of, best, metric)}, {_scored(name_of, mine, metric)}"
            + _gap(best, mine, metric, name_of)
        )
    if prediction.low is not None and prediction.high is not None:
        value = mine.stats(metric).mean
        held = prediction.low <= value <= prediction.high
        lines.append(
            f"Your range for its {label}, {_fmt(metric, prediction.low)} to {_fmt(metric, prediction.high)}, "
            + ("held it" if held else "missed it")
            + f": it ended at {_fmt(metric, value)}."
        )
    return lines


def _scored(name_of: Callable[[ConfigResult], str], config: ConfigResult, metric: str) -> str:
    return f"{name_of(config)} ended at {_fmt(metric, config.stats(metric).mean)}"


def _gap(a: ConfigResult, b: ConfigResult, metric: str, name_of: Callable[[ConfigResult], str]) -> str:
    """ "; the gap of … to … is real / within seed noise / cannot be told from one run each"."""
    verdict = compare(a, b, metric)
    size = f"{abs(verdict.diff):.1f} points" if verdict.unit == "points" else f"{abs(verdict.diff):.3f}"
    gap = f"; the gap of {size} to {name_of(b)}"
    if math.isnan(verdict.ci95[0]):
        return f"{gap} rests on one run each: it may be seed noise (the seed-noise lesson measures how much)."
    if verdict.real:
        return f"{gap} is real at 95%."
    return f"{gap} is within seed noise: on other seeds it could have gone the other way."


def _fmt(metric: str, value: float) -> str:
    return f"{value:.1%}" if METRICS[metric].share else f"{value:,.3f}"
