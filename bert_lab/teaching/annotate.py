"""Annotated curves: pure detectors over a run's stored points that mark what a teacher would point at, each with the
step and a one-line hint — a loss spike or divergence, a learning rate too low, the onset of overfitting, a collapse
to one class, a plateau. The Runs page draws them as markers; `bert-lab show RUN_ID` lists them.

Every detector reads only the points (and, for a collapse, the last evaluation's confusion matrix): torch-free, and
the same on a live run as on a finished one. An LR range test's run gets no notes: its loss is meant to blow up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from bert_lab.figures.curves import ema
from bert_lab.runs.records import Run
from bert_lab.runs.status import Status

SMOOTHING = 0.9  # training loss is one batch per point: detectors look at its EMA
SPIKE_FACTOR = 3.0  # a training loss this many times the median of the steps before it is a spike
MIN_STEPS = 20  # fewer steps than this say nothing about the trend
TOO_LOW_DROP = 0.03  # the smoothed loss fell by less than 3% over the whole run
STILL_FALLING_P = 0.01  # … yet still falling: a downward trend over the second half of the run, one-sided p below this
PLATEAU_SHARE, PLATEAU_CHANGE = 0.3, 0.01  # the last 30% of the run moved the loss by under 1%
PLATEAU_MIN_STEPS = 100  # shorter runs are too noisy to call a plateau
OVERFIT_RISE = 0.03  # eval loss 3% above its minimum, after the minimum, while training loss kept falling
OVERFIT_TRAIN_DROP = 0.1  # … by at least 10% after the eval minimum


@dataclass(frozen=True)
class Annotation:
    kind: str  # spike, diverged, lr_too_low, overfitting, collapse, plateau
    step: int
    hint: str  # one line, plain words
    lesson: str  # the lesson that teaches it

    @property
    def metric(self) -> str:
        """The curve it is drawn on."""
        return {"overfitting": "eval_loss", "collapse": "f1"}.get(self.kind, "train_loss")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def series(points: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one metric from a points frame (`curves.points_frame`), in step order."""
    part = points[points["name"] == name].sort_values("step", kind="stable")
    return part["step"].to_numpy(dtype=int), part["value"].to_numpy(dtype=float)


def annotate(run: Run, points: pd.DataFrame) -> list[Annotation]:
    """Every annotation of a run, in step order, from its points frame (`curves.points_frame`); none for an LR range
    test (its rising learning rate is meant to blow the loss up: no note on training applies)."""
    if run.is_range_test:
        return []
    points = points[points["run_id"] == run.id]
    steps, loss = series(points, "train_loss")
    eval_steps, eval_loss = series(points, "eval_loss")
    diverged = run.status == Status.DIVERGED
    collapsed = collapse(run)
    found = [
        *spikes(steps, loss, diverged=diverged),
        # A flat loss at one class is a collapse (a learning rate too high, most often), not a slow learner.
        *([] if collapsed else lr_too_low(steps, loss, lr=float(run.config.get("lr", 0.0)))),
        *([] if collapsed else overfitting(steps, loss, eval_steps, eval_loss)),  # a collapse is not overfitting
        *collapsed,
        *plateau(steps, loss, schedule=str(run.config.get("schedule", "constant"))),
    ]
    if diverged and not any(a.kind == "diverged" for a in found) and len(steps):
        hint = f"the run diverged: {run.error or 'the loss became NaN or huge'}"
        found.append(Annotation("diverged", int(steps[-1]), hint, "learning-rate"))
    return sorted(found, key=lambda a: a.step)


def spikes(steps: np.ndarray, loss: np.ndarray, *, diverged: bool = False) -> list[Annotation]:
    """Steps whose training loss jumps far above the median before them (the first of each burst); a diverged run's
    first non-finite or huge loss is marked as the divergence."""
    out: list[Annotation] = []
    last = -10
    for i in range(1, len(loss)):
        before = np.median(loss[max(0, i - 20) : i])
        blown = not np.isfinite(loss[i]) or (i >= 5 and loss[i] > SPIKE_FACTOR * before)
        if blown and i > last + 5:
            if diverged and not out:
                hint = f"the loss blew up ({loss[i]:.3g}, from about {before:.3g}): the learning rate is too high"
                out.append(Annotation("diverged", int(steps[i]), hint, "learning-rate"))
            else:
                hint = f"loss spike: {loss[i]:.3g} against about {before:.3g} before it; spikes often precede a blow-up"
                out.append(Annotation("spike", int(steps[i]), hint, "learning-rate"))
        if blown:
            last = i
    return out


def lr_too_low(steps: np.ndarray, loss: np.ndarray, *, lr: float) -> list[Annotation]:
    """The smoothed training loss hardly fell over the whole run, and it is still falling: slow learning. A flat loss
    is no evidence: a model collapsed to one class by a learning rate too high is flat too."""
    if len(loss) < MIN_STEPS or not np.isfinite(loss).all():
        return []
    smooth = ema(loss, SMOOTHING)
    start, end = float(np.mean(smooth[: max(3, len(smooth) // 10)])), float(smooth[-1])
    if start <= 0 or (start - end) / start >= TOO_LOW_DROP or not still_falling(loss[len(loss) // 2 :]):
        return []
    hint = (
        f"the training loss hardly fell ({start:.3f} → {end:.3f}) and is still falling slowly: learning rate "
        f"{lr:.2g} may be too low (or the run too short)"
    )
    return [Annotation("lr_too_low", int(steps[-1]), hint, "learning-rate")]


def still_falling(loss: np.ndarray) -> bool:
    """The raw training loss trends down: the least-squares slope over the steps is below zero, one-sided p under
    `STILL_FALLING_P` (each point is one batch: the raw points are close to independent, the smoothed ones are not)."""
    from scipy import stats

    if len(loss) < 3 or np.ptp(loss) == 0:
        return False
    fit = stats.linregress(np.arange(len(loss)), loss, alternative="less")
    return bool(fit.pvalue < STILL_FALLING_P)


def overfitting(steps: np.ndarray, loss: np.ndarray, eval_steps: np.ndarray, eval_loss: np.ndarray) -> list[Annotation]:
    """Eval loss at its minimum, then rising, while the training loss kept falling: the onset of overfitting."""
    if len(eval_loss) < 3:
        return []
    best = int(np.argmin(eval_loss))
    if best >= len(eval_loss) - 1 or eval_loss[-1] < (1 + OVERFIT_RISE) * eval_loss[best]:
        return []
    smooth = ema(loss, SMOOTHING) if len(loss) else loss
    at_best = smooth[steps <= eval_steps[best]]
    if not len(at_best) or smooth[-1] > (1 - OVERFIT_TRAIN_DROP) * at_best[-1]:
        return []  # the training loss must have kept falling clearly, not just wandered
    hint = (
        f"overfitting starts: eval loss was lowest here ({eval_loss[best]:.3f}) and rose to {eval_loss[-1]:.3f} "
        "while the training loss kept falling; more dropout or weight decay, fewer epochs or early stopping help"
    )
    return [Annotation("overfitting", int(eval_steps[best]), hint, "dropout")]


def collapse(run: Run) -> list[Annotation]:
    """At its last evaluation the model predicted one class for every example."""
    confusion = run.summary.confusion
    if not confusion:
        return []
    used = [j for j in range(len(confusion[0])) if any(row[j] for row in confusion)]
    if len(used) != 1:
        return []
    labels = run.summary.labels or []
    name = labels[used[0]] if used[0] < len(labels) else f"class {used[0]}"
    hint = (
        f"collapse: every evaluation example was predicted '{name}'; the model learned nothing beyond the most "
        "common answer (try another learning rate or seed; accuracy flatters this, F1 does not)"
    )
    return [Annotation("collapse", run.summary.eval_step or 0, hint, "accuracy-vs-f1")]


def plateau(steps: np.ndarray, loss: np.ndarray, *, schedule: str = "constant") -> list[Annotation]:
    """After falling, the training loss stopped moving for the last part of the run: the mean of the first and of
    the second half of the run's last 30% differ by under 1%."""
    n = len(loss)
    if n < PLATEAU_MIN_STEPS or not np.isfinite(loss).all():
        return []
    tail = int(n * (1 - PLATEAU_SHARE))
    middle = (tail + n) // 2
    head, early, late = (
        float(np.mean(loss[: max(3, n // 10)])),
        float(np.mean(loss[tail:middle])),
        float(np.mean(loss[middle:])),
    )
    fell = (head - early) / max(abs(head), 1e-12)
    moved = abs(early - late) / max(abs(early), 1e-12)
    if fell < 2 * TOO_LOW_DROP or moved >= PLATEAU_CHANGE:
        return []
    advice = (
        "a decaying schedule or a lower learning rate can get it moving"
        if schedule == "constant"
        else "the schedule already decays: more (or cleaner) data helps more than more steps"
    )
    hint = f"plateau: the training loss stopped improving after step {int(steps[tail])} (about {late:.3f}); {advice}"
    return [Annotation("plateau", int(steps[tail]), hint, "schedules")]
