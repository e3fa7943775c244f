"""What the store keeps: a run (`Run`, with what it reported about itself: `RunSummary`), its metric points and
events (`MetricPoint`, `RunEvent`), a group of runs (`Group`) and a worker's lease (`WorkerLease`). Frozen, torch-free.
What the training loop reports is `engine.reports`."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from bert_lab.engine.reports import TrainResult
from bert_lab.runs.status import Status


@dataclass(frozen=True)
class RunSummary:
    """What a run reported about itself, kept with it as JSON. While it trains: the steps planned and its last
    evaluation (step, confusion matrix); when its process ends: how it ended and how fast it went (`of`). Written by
    the run's process only; a run answered from the cache carries its source's. A field never reported is None."""

    total_steps: int | None = None  # optimizer steps planned
    eval_step: int | None = None  # the last evaluation's step
    confusion: list[list[int]] | None = None  # the last evaluation's counts[true][predicted]
    labels: list[str] | None = None  # class names, in the confusion matrix's order
    steps: int | None = None  # optimizer steps done when its process ended
    samples_per_s: float | None = None  # training throughput (evaluation time excluded)
    train_s: float | None = None  # time in training steps
    wall_s: float | None = None  # the whole run, data preparation included
    precision: str | None = None  # fp32, bf16 or fp16, as it ran
    reason: str | None = None  # how it ended, in plain words
    lr_find: dict[str, float] | None = None  # a finished LR range test's suggestions (suggested_lr, steep_lr, min_lr)

    @classmethod
    def of(cls, result: TrainResult, *, reason: str) -> RunSummary:
        """How a run went, from its training result; `reason` is how it ended (`runs.status.ending` may say more
        than the loop knew, such as a pruned trial)."""
        return cls(
            total_steps=result.total_steps,
            steps=result.steps,
            samples_per_s=result.samples_per_s,
            train_s=result.train_s,
            wall_s=result.wall_s,
            precision=result.precision,
            reason=reason,
            labels=result.label_names,
        )

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> RunSummary:
        """From the store's JSON (keys it does not know, from another version of the lab, are left out)."""
        return cls(**{f.name: stored[f.name] for f in fields(cls) if f.name in stored})

    def to_dict(self) -> dict[str, Any]:
        """The fields reported, as JSON-ready values."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def merged(self, newer: RunSummary) -> RunSummary:
        """This summary with every field `newer` reports replaced."""
        return replace(
            self, **{f.name: getattr(newer, f.name) for f in fields(newer) if getattr(newer, f.name) is not None}
        )


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
    summary: RunSummary  # what the run reported about itself: steps, its last evaluation, throughput, …
    resume_count: int
    cache_key: str | None = None  # same key, same result: config, data content and model (runs/cache.py)
    cached_from: int | None = None  # answered from this finished run: its curves and model are that run's
    host: str | None = None  # the machine its worker runs on (several machines can share one store)
    tags: tuple[str, ...] = ()  # words a person filters by ("baseline", "keep"), in the order given
    note: str = ""  # what a person wrote about it, free text

    @property
    def elapsed_s(self) -> float | None:
        """Seconds since the run started, up to its end (or now while it is not finished); None if never started."""
        if self.started_at is None:
            return None
        return (self.finished_at if self.finished_at is not None else time.time()) - self.started_at

    @property
    def is_active(self) -> bool:
        return self.status.is_active

    @property
    def is_range_test(self) -> bool:
        """An LR range test (teaching/lr_find.py): a throwaway run whose learning rate rises until the loss blows up.
        Its loss and scores say nothing about a config: it is never annotated, ranked or listed as a training run."""
        return self.config.get("schedule") == "range_test"


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
class Prediction:
    """What one person said a group would show before its result was in: the arm they expect to end best on the
    group's metric, and optionally the range they expect its score in. One per person and group; it can be changed
    until the group's first run finishes."""

    group_id: str
    owner: str  # who predicted ("" outside a workshop)
    arm: str  # the arm (a lesson's) or config label (a sweep's) expected to end best
    low: float | None  # the expected score's range on the group's metric, or None for no range
    high: float | None
    made_at: float


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
