"""The learning-rate range test (Smith 2015), with the semantics of fastai's `lr_find`: a throwaway run whose learning
rate rises exponentially from 1e-7 to 1 over about 100 steps (no warmup, no decay), the loss smoothed by a debiased
EMA (β = 0.98), stopped once the smoothed loss passes 4× its best; then a learning rate is suggested by the "valley"
rule, with the steepest-slope point and the minimum ÷ 10 beside it, on the curve trimmed as fastai trims it (the first
tenth and the last five points). Torch-free: the run itself is an ordinary run with the `range_test` schedule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from bert_lab.core.config import RunConfig
from bert_lab.engine.reports import Hooks, StepRecord

START_LR, END_LR, NUM_STEPS = 1e-7, 1.0, 100
BETA = 0.98  # EMA weight of the smoothed loss
STOP_FACTOR = 4.0  # stop once the smoothed loss is this many times its best
TRIM_END = 5  # points dropped at the end (fastai: the loss is already blowing up there)
FIND_BATCH_SIZE, FIND_MAX_LENGTH = 8, 64  # quick: ~100 steps of MiniLM in 14 s (bf16 CPU), about 35 s on AVX2 only


def range_test_config(
    base: RunConfig, *, start_lr: float = START_LR, end_lr: float = END_LR, steps: int = NUM_STEPS
) -> RunConfig:
    """`base` as a range test: `steps` optimizer steps with the LR rising from `start_lr` to `end_lr`, a small batch
    and max length (the loss curve's shape, not the model, is what is wanted), evaluated once on a few examples."""
    batch = min(base.batch_size, FIND_BATCH_SIZE)
    return replace(
        base,
        schedule="range_test",
        lr=end_lr,
        range_start_lr=start_lr,
        warmup_steps=0,
        batch_size=batch,
        grad_accum_steps=1,
        max_length=min(base.max_length, FIND_MAX_LENGTH),
        train_size=steps * batch,
        num_epochs=1.0,
        eval_size=32,
        eval_every_steps=steps,
        early_stopping_patience=0,
        divergence_factor=1e12,  # the range test's own stop rule decides
    )


# The knobs a suggestion was measured with: the data, the model, the optimizer and what it steps on. Change one and the
# curve (and the rate that suits the run) moves; the schedule, lengths and sizes are the range test's own.
MEASURED_WITH = (
    "dataset",
    "text_column",
    "label_column",
    "model",
    "optimizer",
    "momentum",
    "nesterov",
    "beta1",
    "beta2",
    "batch_size",
    "grad_accum_steps",
    "weight_decay",
    "l2",
    "l1",
    "dropout",
    "max_grad_norm",
)


def changed_since(measured: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Each knob of MEASURED_WITH on which the `current` settings differ from those a range test was `measured` with
    (its base config, before `range_test_config`): (then, now). Its suggestion holds only while this is empty."""
    return {k: (measured.get(k), current.get(k)) for k in MEASURED_WITH if measured.get(k) != current.get(k)}


@dataclass
class RangeTest:
    """Follows a range test step by step: the debiased EMA of the loss and the stop rule."""

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # smoothed
    average: float = 0.0  # the EMA before debiasing
    best: float = math.inf
    stopped: str | None = None  # why it stopped early

    def add(self, lr: float, loss: float) -> bool:
        """Record one step; True once the test should stop."""
        if self.stopped:
            return True
        self.average = BETA * self.average + (1 - BETA) * loss
        smooth = self.average / (1 - BETA ** (len(self.losses) + 1))
        self.lrs.append(lr)
        self.losses.append(smooth)
        if not math.isfinite(smooth):
            self.stopped = f"the loss became {loss:g} at learning rate {lr:.3g}"
        elif smooth > STOP_FACTOR * self.best:
            self.stopped = f"the smoothed loss passed {STOP_FACTOR:g}× its best at learning rate {lr:.3g}"
        self.best = min(self.best, smooth)
        return self.stopped is not None

    def hooks(self, inner: Hooks | None = None) -> Hooks:
        """`inner` hooks that also follow the test and stop the run by its rule."""
        inner = inner or Hooks()

        def on_step(record: StepRecord) -> None:
            inner.on_step(record)
            self.add(record.lr, record.loss)

        return replace(inner, on_step=on_step, should_stop=lambda: inner.should_stop() or self.stopped is not None)

    def suggest(self) -> Suggestion:
        return suggest(self.lrs, self.losses)


@dataclass(frozen=True)
class Suggestion:
    lrs: list[float]  # the trimmed curve
    losses: list[float]
    suggested_lr: float  # the valley rule: what to use
    steep_lr: float  # where the loss falls fastest
    min_lr: float  # the minimum's learning rate ÷ 10

    def to_dict(self) -> dict[str, object]:
        return {
            "lrs": self.lrs,
            "losses": self.losses,
            "suggested_lr": self.suggested_lr,
            "steep_lr": self.steep_lr,
            "min_lr": self.min_lr,
        }


def suggest(lrs: Sequence[float], losses: Sequence[float]) -> Suggestion:
    """Suggestions from a range test's learning rates and smoothed losses (fastai's valley, steep and minimum)."""
    n_all = len(lrs)
    keep = slice(n_all // 10, max(n_all // 10 + 2, n_all - TRIM_END))
    x, y = np.asarray(lrs[keep], dtype=float), np.asarray(losses[keep], dtype=float)
    finite = np.isfinite(y)
    x, y = x[finite], y[finite]
    if len(x) < 3:
        raise ValueError(f"a range test needs at least 3 usable steps, got {len(x)}: run more steps")
    return Suggestion(
        lrs=x.tolist(),
        losses=y.tolist(),
        suggested_lr=float(x[valley(y)]),
        steep_lr=float(x[int(np.argmin(np.diff(y) / np.diff(np.log(x))))]),
        min_lr=float(x[int(np.argmin(y))] / 10),
    )


def valley(losses: np.ndarray) -> int:
    """fastai's valley rule: find the longest stretch over which the loss keeps falling (the longest decreasing
    subsequence), and take the point 1/3 + 1/6 of the way along it: well down the slope, before the bottom."""
    n = len(losses)
    run = [1] * n  # run[i]: the longest decreasing subsequence ending at i
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and run[i] < run[j] + 1:
                run[i] = run[j] + 1
        if run[end] < run[i]:
            end, start = i, i - run[i]
    sections = (end - start) / 3
    return min(n - 1, start + int(sections) + int(sections / 2))
