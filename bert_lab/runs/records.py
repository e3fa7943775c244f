"""The records that cross process boundaries: a run as the store keeps it (`Run`, `MetricPoint`, `RunEvent`), a
worker's lease (`WorkerLease`), and what the training loop reports (`StepRecord`, `EvalRecord`, `TrainResult`)
through `Hooks`. Frozen, torch-free."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bert_lab.core.metrics import EVAL_METRICS, STEP_METRICS
from bert_lab.runs.status import Status

Point = tuple[int, float, float, str, float]  # (step, epoch, elapsed_s, metric name, value)


# --- what the store keeps ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    id: int
    name: str
    owner: str
    status: Status
    config: dict[str, Any]
    created_at: float
    started_at: float | None
    finished_at: float | None
    device: str | None
    progress: float  # share of optimizer steps done, 0..1
    error: str | None  # why it stopped, for every ending but `finished`
    pid: int | None  # the run's process while it is running
    heartbeat_at: float | None  # last sign of life from the run's process
    group_id: str | None  # the sweep or lesson it belongs to
    cancel_requested: bool
    summary: dict[str, Any]  # what the run reported about itself: total steps, throughput, labels, …
    resume_count: int
    cache_key: str | None = None  # same key, same result: config, data content and model (runs/cache.py)
    cached_from: int | None = None  # answered from this finished run: its curves and model are that run's
    host: str | None = None  # the machine its worker runs on (several machines can share one store)

    @property
    def elapsed_s(self) -> float | None:
        """Seconds since the run started, up to its end (or now while it is not finished); None if never started."""
        if self.started_at is None:
            return None
        return (self.finished_at if self.finished_at is not None else time.time()) - self.started_at

    @property
    def is_active(self) -> bool:
        return self.status.is_active


@dataclass(frozen=True)
class WorkerLease:
    """A worker's sign of life in the store, renewed while it serves: how the app, on any machine, knows what is
    training the queue (a lock file or a process id would only say so on the worker's own machine)."""

    host: str
    pid: int  # on `host`
    slots: int  # runs it trains at once
    started_at: float
    renewed_at: float


@dataclass(frozen=True)
class Group:
    """Runs launched together and read together: a sweep, a lesson, seed replicates."""

    id: str
    name: str
    owner: str
    method: str  # grid, random, search (Optuna), or runs (configs given one by one: a lesson, seed replicates)
    metric: str  # the evaluation score the group is judged by (a catalogue name: f1, accuracy, eval_loss)
    spec: dict[str, Any]  # how its runs were made: knobs with their values or ranges, seeds, trials, base config
    created_at: float
    stopped: bool  # cancelled as a whole: a search asks for no more trials until it is resumed


@dataclass(frozen=True)
class MetricPoint:
    id: int  # increasing across the store: poll with the last id seen
    run_id: int
    step: int
    epoch: float
    elapsed_s: float
    name: str
    value: float


@dataclass(frozen=True)
class RunEvent:
    id: int
    run_id: int
    time: float
    level: str
    message: str


# --- what the training loop reports -----------------------------------------------------------------------------------
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


@dataclass(frozen=True)
class TrainResult:
    status: Status  # finished, diverged or cancelled
    reason: str  # why it stopped, in plain words
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
