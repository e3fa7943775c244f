"""What the training loop reports, through `Hooks`: each step (`StepRecord`), each evaluation (`EvalRecord`), and how
the run went (`TrainResult`), with why the loop stopped (`Stop`). Frozen and torch-free: the runner turns them into
metric points for the store (`points`), the CLI into a progress bar and JSON."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from bert_lab.core.metrics import EVAL_METRICS, STEP_METRICS

Point = tuple[int, float, float, str, float]  # (step, epoch, elapsed_s, metric name, value)


class Stop(StrEnum):
    """Why the training loop stopped. Only the loop's own reasons: when it was asked to stop (`hooks.should_stop`), the
    one who asked knows why (a cancel, an interrupt, a pruned trial, a range test's rule: `runs.status.ending`)."""

    COMPLETED = "completed"  # every planned step
    EARLY_STOPPED = "early_stopped"  # the early-stopping metric stopped improving
    DIVERGED = "diverged"  # the loss became NaN or infinite, or blew up far past its first value
    ASKED = "asked"  # `hooks.should_stop()` said so

    @property
    def trained(self) -> bool:
        """Trained as far as it should: its model is final and its checkpoint spent."""
        return self in (Stop.COMPLETED, Stop.EARLY_STOPPED)


@dataclass(frozen=True)
class StepRecord:
    step: int  # optimizer steps done, 1-based
    total_steps: int
    epoch: float  # fractional epochs done
    elapsed_s: float  # since the run started (resumed runs continue their clock)
    loss: float  # training cross-entropy of this step's batch (without penalties), mean over processes
    lr: float  # learning rate used for this step
    grad_norm: float  # global gradient norm before clipping
    samples_per_s: float  # training throughput so far (all processes, evaluation time excluded)


@dataclass(frozen=True)
class EvalRecord:
    step: int
    epoch: float
    elapsed_s: float
    loss: float
    accuracy: float
    precision: float  # macro
    recall: float  # macro
    f1: float  # macro
    confusion: list[list[int]]  # counts[true][predicted]
    weight_norm: float  # L2 norm of the penalised weights (those weight decay, L1 and L2 act on)
    near_zero: float  # share of the penalised weights with |w| < metrics.NEAR_ZERO
    labels: tuple[str, ...] = ()  # the class names, in the confusion matrix's order (known from the first evaluation)


@dataclass(frozen=True)
class TrainResult:
    stop: Stop  # why the loop stopped
    reason: str  # the same in plain words
    steps: int
    total_steps: int
    epoch: float
    wall_s: float  # whole run, data preparation included
    train_s: float  # time in training steps only
    samples_per_s: float  # training samples per second of train_s
    eval: EvalRecord | None
    label_names: list[str]
    device: str
    precision: str
    model_dir: str | None


def _noop(*_: object) -> None:
    return None


@dataclass(frozen=True)
class Hooks:
    """How a run reports. Called on the main process only; `should_stop` is polled between steps."""

    on_step: Callable[[StepRecord], None] = _noop
    on_eval: Callable[[EvalRecord], None] = _noop
    on_log: Callable[[str], None] = _noop
    should_stop: Callable[[], bool] = field(default=lambda: False)


def points(record: StepRecord | EvalRecord) -> list[Point]:
    """The record as metric points, one per catalogue entry of its kind."""
    metrics = STEP_METRICS if isinstance(record, StepRecord) else EVAL_METRICS
    head = (record.step, record.epoch, record.elapsed_s)
    return [(*head, m.name, float(getattr(record, m.field))) for m in metrics]
