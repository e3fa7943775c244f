"""The metric catalogue: every curve a run records, in one place.

The runner turns the training loop's records into points by this list, and the plots, the pages, the CLI, the
export and early stopping read names, labels and directions from it: a new metric is one entry here (plus the loop
computing the record field it names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


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
    charted_for: tuple[str, ...] = ()  # if given, drawn only when a run shown sets one of these knobs (non-zero)


NEAR_ZERO = 1e-3  # |w| below this counts as a near-zero weight
PENALTY_KNOBS = ("weight_decay", "l1", "l2")

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
        "weight_norm",
        "Weight norm",
        "L2 norm of the weights that weight decay and the L1/L2 penalties act on (not biases or LayerNorm). "
        "Shrinks under weight decay and L2.",
        "eval",
        "weight_norm",
        charted_for=PENALTY_KNOBS,
    ),
    Metric(
        "near_zero",
        "Near-zero weights",
        f"Share of those weights with |w| < {NEAR_ZERO:g}. L1 pushes weights to exactly zero; L2 and weight decay "
        "only shrink them.",
        "eval",
        "near_zero",
        share=True,
        charted_for=PENALTY_KNOBS,
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
HEADLINE: tuple[str, ...] = ("accuracy", "f1", "eval_loss")  # what a group is judged by and every summary reports
IN_TABLES: tuple[str, ...] = ("train_loss", "accuracy", "f1")  # the latest values a table of runs shows


def charted(configs: list[dict[str, Any]]) -> list[str]:
    """The metrics the Runs page draws for runs of these configs, in catalogue order: the charted ones, less those
    about knobs that none of the runs sets (weight norm only matters once a run decays or penalises weights)."""
    return [
        m.name
        for m in CATALOGUE
        if m.charted and (not m.charted_for or any(c.get(k) for c in configs for k in m.charted_for))
    ]


def label(name: str) -> str:
    """The display label of metric `name` (the name itself for one not in the catalogue)."""
    return METRICS[name].label if name in METRICS else name


def improved(name: str, value: float, best: float | None) -> bool:
    """Whether `value` of score `name` beats `best` in the metric's direction (anything beats no value)."""
    if best is None:
        return True
    return value > best if METRICS[name].higher_is_better else value < best
