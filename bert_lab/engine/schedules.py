"""Learning-rate schedules as pure functions of the optimizer step.

The same functions drive training (through `torch.optim.lr_scheduler.LambdaLR`) and the app's preview plot, so what
the user sees before launch is exactly what the run will use. `step` counts optimizer steps taken so far (0-based);
warmup ramps linearly from 0 over `warmup_steps` (as in BERT and HF), then the schedule runs on the steps after it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

from bert_lab.core.config import RunConfig


def count_steps(
    n_train: int, batch_size: int, grad_accum_steps: int, num_epochs: float, num_processes: int = 1
) -> tuple[int, int]:
    """(optimizer steps per epoch, optimizer steps in the run): batches are shared evenly between processes and
    `grad_accum_steps` of them make one step; a fractional epoch count stops part-way through the last epoch."""
    batches = math.ceil(n_train / batch_size)
    per_epoch = math.ceil(max(1, batches // num_processes) / grad_accum_steps)
    return per_epoch, max(1, round(num_epochs * per_epoch))


def lr_factor(
    step: int,
    *,
    schedule: str,
    total_steps: int,
    warmup_steps: int = 0,
    decay_rate: float = 0.5,
    decay_steps: int = 100,
    step_size: int = 100,
    gamma: float = 0.5,
    start_factor: float = 1.0,
) -> float:
    """Multiplier of the peak LR at `step`. `start_factor`: the range test's first multiplier."""
    if step < warmup_steps:
        return step / warmup_steps
    s = step - warmup_steps  # steps since warmup ended
    remaining = max(1, total_steps - warmup_steps)
    if schedule == "constant":
        return 1.0
    if schedule == "exponential":
        return decay_rate ** (s / decay_steps)
    if schedule == "step":
        return gamma ** (s // step_size)
    if schedule == "linear":
        return max(0.0, 1.0 - s / remaining)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, s / remaining)))
    if schedule == "range_test":  # exponential from start_factor at the first step to 1 at the last
        return start_factor ** max(0.0, 1.0 - s / max(1, remaining - 1))
    raise ValueError(f"unknown schedule {schedule!r}")


def factor_of(config: RunConfig, total_steps: int) -> Callable[[int], float]:
    """The multiplier of `config.lr` at each optimizer step of a run of `total_steps` steps (what training steps its
    scheduler with)."""
    return partial(
        lr_factor,
        schedule=config.schedule,
        total_steps=total_steps,
        warmup_steps=config.warmup_steps,
        decay_rate=config.decay_rate,
        decay_steps=config.decay_steps,
        step_size=config.step_size,
        gamma=config.gamma,
        start_factor=config.range_start_lr / config.lr,
    )


def lr_at(config: RunConfig, step: int, total_steps: int) -> float:
    """The learning rate `config` gives at `step` of a run of `total_steps` optimizer steps."""
    return config.lr * factor_of(config, total_steps)(step)


def first_drop_step(config: RunConfig) -> int | None:
    """The optimizer step at which a step-decay schedule first lowers the learning rate (`warmup_steps + step_size`);
    None for the other schedules. A run of no more steps than this trains at a constant rate after its warmup."""
    return config.warmup_steps + config.step_size if config.schedule == "step" else None


def lr_curve(config: RunConfig, total_steps: int) -> list[float]:
    """The learning rate at every step 0..total_steps-1 (for the preview plot)."""
    return [lr_at(config, step, total_steps) for step in range(total_steps)]
