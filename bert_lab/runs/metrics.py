"""The metric catalogue: every curve a run records, in one place.

The runner turns the training loop's records into points by this list, and the plots, the pages, the CLI, the
export and early stopping read names, labels and directions from it: a new metric is one entry here (plus the loop
computing the record field it names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Metric:
    name: str  # the name in the store and exports
    label: str  # chart and table title
    caption: str  # one line on what it shows and what to look for
    per: Literal["step", "eval"]  # recorded every optimizer step, or at each evaluation
    field: str  # the StepRecord / EvalRecord attribute it comes from
    higher_is_better: bool | None = None  # None: neither (a knob's trace, not a score)
    share: bool = False  # a share in [0, 1]: charts keep the y axis there
    smoothed: bool = False  # noisy per-step values: charts draw an EMA over the faint raw line
    log_scale: bool = False  # spans decades: charts use a log axis
    charted: bool = True  # drawn on the Runs page (in catalogue order, two per row); the rest are in its tables


# In the order the Runs page draws them.
CATALOGUE: tuple[Metric, ...] = (
    Metric(
        "train_loss",
        "Training loss",
        "Cross-entropy on each training batch. Noisy, hence the smoothing; falling means learning.",
        "step",
        "loss",
        higher_is_better=False,
        smoothed=True,
    ),
    Metric(
        "eval_loss",
        "Eval loss",
        "Cross-entropy on the held-out evaluation set. Rising while training loss falls: overfitting.",
        "eval",
        "loss",
        higher_is_better=False,
    ),
    Metric(
        "accuracy",
        "Accuracy",
        "Share of evaluation examples classified correctly.",
        "eval",
        "accuracy",
        higher_is_better=True,
        share=True,
    ),
    Metric(
        "f1",
        "F1 (macro)",
        "Macro F1: precision and recall averaged over classes. Honest where accuracy flatters imbalanced data.",
        "eval",
        "f1",
        higher_is_better=True,
        share=True,
    ),
    Metric(
        "lr",
        "Learning rate",
        "The learning rate used at each step: warmup, then the schedule.",
        "step",
        "lr",
        log_scale=True,
    ),
    Metric(
        "grad_norm",
        "Gradient norm",
        "Size of the whole gradient before clipping. Spikes often come before a divergence.",
        "step",
        "grad_norm",
        smoothed=True,
    ),
    Metric(
        "samples_per_s",
        "Throughput (samples/s)",
        "Training examples per second so far (evaluation time excluded).",
        "step",
        "samples_per_s",
        higher_is_better=True,
        smoothed=True,
        charted=False,
    ),
    Metric(
        "precision",
        "Precision (macro)",
        "Of the examples predicted as a class, the share that are that class, averaged over classes.",
        "eval",
        "precision",
        higher_is_better=True,
        share=True,
        charted=False,
    ),
    Metric(
        "recall",
        "Recall (macro)",
        "Of the examples of a class, the share found, averaged over classes.",
        "eval",
        "recall",
        higher_is_better=True,
        share=True,
        charted=False,
    ),
)
METRICS: dict[str, Metric] = {m.name: m for m in CATALOGUE}
STEP_METRICS: tuple[Metric, ...] = tuple(m for m in CATALOGUE if m.per == "step")
EVAL_METRICS: tuple[Metric, ...] = tuple(m for m in CATALOGUE if m.per == "eval")
SCORES: tuple[str, ...] = tuple(m.name for m in EVAL_METRICS if m.higher_is_better is not None)  # early stopping


def label(name: str) -> str:
    """The display label of metric `name` (the name itself for one not in the catalogue)."""
    return METRICS[name].label if name in METRICS else name


def improved(name: str, value: float, best: float | None) -> bool:
    """Whether `value` of score `name` beats `best` in the metric's direction (anything beats no value)."""
    if best is None:
        return True
    return value > best if METRICS[name].higher_is_better else value < best
