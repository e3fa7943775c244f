"""The training loop: `train` reads top to bottom, over small named pieces (`load_data`, `Loop`, `plan_steps`).

seed → data → model → optimizer → schedule → `accelerator.prepare` → steps (train, evaluate, checkpoint) → save.
It never prints and never touches the run store: it reports through `Hooks` (per step, per evaluation, log lines)
and asks `hooks.should_stop()` between steps, so the CLI draws a progress bar and the runner writes to the store.
Runs on a CUDA GPU when there is one, else the CPU; data-parallel when started by `accelerate launch`.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import set_seed

from bert_lab.core.config import RunConfig
from bert_lab.core.layout import CHECKPOINT_ACCELERATE, CHECKPOINT_STATE, RunFolder, staged, swap_in
from bert_lab.core.metrics import METRICS, improved
from bert_lab.engine import data as data_lib
from bert_lab.engine.evaluate import Predictions, predict, write_eval_report
from bert_lab.engine.model import (
    as_built,
    first_token_only,
    load_model,
    load_tokenizer,
    save_model,
    train_used_rows_only,
    untrained_rows,
    use_cpu_kernels,
)
from bert_lab.engine.optim import build_optimizer, penalty, split_decay_params, weight_stats
from bert_lab.engine.reports import EvalRecord, Hooks, StepRecord, Stop, TrainResult
from bert_lab.engine.schedules import count_steps, factor_of


def resolve_precision(precision: str) -> Literal["no", "bf16", "fp16"]:
    """`auto`: bf16 where the hardware computes it natively (CPU AVX512-BF16/AMX, CUDA ≥ Ampere), fp16 on older
    GPUs, else fp32. An explicit choice is kept, but fp16 needs a GPU."""
    if precision == "fp32":
        return "no"
    if precision == "fp16" and not torch.cuda.is_available():
        raise ValueError("precision: fp16 needs a CUDA GPU; use bf16 or fp32 on the CPU")
    if precision in ("bf16", "fp16"):
        return precision  # type: ignore[return-value]
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "no"


def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def train(
    config: RunConfig,
    *,
    folder: RunFolder | None = None,
    hooks: Hooks = Hooks(),
    checkpoint: bool = False,
    resume: bool = False,
) -> TrainResult:
    """Fine-tune `config.model` on `config.dataset`. Saves the model, its config and the last evaluation's report
    into `folder` when given; with `checkpoint`, also checkpoints there at every evaluation (only the latest is kept)
    and, with `resume`, continues from that checkpoint."""
    started = time.perf_counter()
    accelerator = new_accelerator(config)
    log = hooks.on_log if accelerator.is_main_process else (lambda _: None)
    set_seed(config.seed)

    tokenizer = load_tokenizer(config.model)
    data = load_data(
        config, tokenizer, multiple=data_lib.pad_multiple(accelerator.device.type, accelerator.mixed_precision)
    )
    log(f"data: {len(data.train_set)} train / {len(data.eval_set)} eval examples, {len(data.label_names)} classes")

    model = load_model(config, data.label_names)
    if accelerator.num_processes == 1:  # data-parallel would broadcast its whole-matrix buffer every step
        train_used_rows_only(model, config, data.train_ids)  # the rows of tokens no batch holds are left out (exactly)
    if accelerator.device.type == "cpu":
        use_cpu_kernels(model)
    first_token_only(model)  # the last layer computes only the token the classifier reads (exactly)
    optimizer = build_optimizer(model, config)
    lengths = [len(ids) for ids in data.train_ids]
    plan = plan_steps(config, lengths, accelerator.num_processes, accelerator.process_index)
    # The schedule is a pure function of the optimizer step (the same one the app's preview plots); stepped once
    # per optimizer step, so it is not handed to accelerate (which would step it once per process).
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor_of(config, len(plan)))
    penalised = split_decay_params(model)[0]
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)

    loop = Loop(config, accelerator, model, optimizer, scheduler, penalised, plan, data, hooks, started=started)
    processes = accelerator.num_processes
    log(f"model {config.model} on {loop.device} ({loop.precision}), {processes} process(es), {len(plan)} steps")
    if checkpoint and folder is not None:
        loop.checkpoint_dir = folder.checkpoint
    if resume and folder is not None and folder.complete_checkpoint() is not None:
        loop.resume(folder)
        log(f"resumed from step {loop.progress.step}")

    stop, reason = loop.run()
    log(reason)

    model_dir = None
    accelerator.wait_for_everyone()
    if folder is not None and accelerator.is_main_process and stop is not Stop.DIVERGED:
        as_built(accelerator.unwrap_model(model))
        model_dir = save_model(accelerator.unwrap_model(model), tokenizer, folder.create().model)
        folder.run_config.write_text(json.dumps(config.to_dict(), indent=1))
        if loop.last_predictions is not None:
            write_eval_report(folder.eval_report, loop.last_predictions, data.eval_set, step=loop.progress.step)
    if stop.trained and loop.checkpoint_dir is not None and accelerator.is_main_process:
        shutil.rmtree(loop.checkpoint_dir, ignore_errors=True)  # a trained run has its model; the checkpoint is spent
    return loop.result(stop, reason, wall_s=time.perf_counter() - started, model_dir=model_dir)


def new_accelerator(config: RunConfig) -> Accelerator:
    """An accelerator with the run's precision, on a CUDA GPU when there is one, else the CPU."""
    # A process may train several times (notebooks, tests), each with its own precision: accelerate keeps its state
    # per process, so forget the last run's (the distributed set-up, PartialState, is kept). Only then: a reset in a
    # fresh process costs ~0.2 s of a run's start.
    if AcceleratorState._shared_state:
        AcceleratorState._reset_state()
    # cpu=True on a machine without CUDA also lets a multi-process launch pick the gloo backend.
    return Accelerator(mixed_precision=resolve_precision(config.precision), cpu=not torch.cuda.is_available())


# --- the run's data ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Data:
    """The run's examples, split (stratified, seeded) and tokenized (cached on disk), and how batches are padded."""

    train_set: data_lib.TextDataset
    eval_set: data_lib.TextDataset
    train_ids: list[list[int]]
    eval_ids: list[list[int]]
    label_names: list[str]
    pad_id: int
    pad_to: int | None  # every batch padded to max length, or None: to its longest example, rounded up to
    multiple: int  # a multiple of this (`data.pad_multiple`)

    def batch(self, indices: list[int]) -> dict[str, torch.Tensor]:
        return data_lib.collate(
            [self.train_ids[j] for j in indices],
            [self.train_set.labels[j] for j in indices],
            self.pad_id,
            pad_to=self.pad_to,
            multiple=self.multiple,
        )


def load_data(config: RunConfig, tokenizer: Any, *, multiple: int = data_lib.PAD_MULTIPLE) -> Data:
    dataset = data_lib.load_dataset(config.dataset, text_column=config.text_column, label_column=config.label_column)
    train_set, eval_set = data_lib.split_dataset(
        dataset, train_size=config.train_size, eval_size=config.eval_size, seed=config.seed
    )
    cache_dir = data_lib.default_cache_dir()
    return Data(
        train_set,
        eval_set,
        data_lib.tokenize(train_set.texts, tokenizer, max_length=config.max_length, cache_dir=cache_dir),
        data_lib.tokenize(eval_set.texts, tokenizer, max_length=config.max_length, cache_dir=cache_dir),
        list(dataset.label_names),
        tokenizer.pad_token_id or 0,
        config.max_length if config.padding == "max_length" else None,
        multiple,
    )


# --- the loop ---------------------------------------------------------------------------------------------------------
@dataclass
class Progress:
    """How far a run has got: saved with every checkpoint (as JSON), so a resumed run continues its counts and its
    clock."""

    step: int = 0  # optimizer steps done
    first_loss: float | None = None  # divergence is judged against it
    best: float | None = None  # the early-stopping metric's best value so far
    bad_evals: int = 0  # evaluations since it last improved
    elapsed_s: float = 0.0  # wall time since the run started, up to the last checkpoint
    train_s: float = 0.0  # time in training steps


@dataclass(frozen=True)
class InFlight:
    """A step whose numbers are on their way to the host (see `Loop.run`)."""

    step: int
    lr: float
    numbers: torch.Tensor  # [loss, gradient norm]
    copied: torch.cuda.Event | None  # on a GPU: the copy to pinned host memory


class Loop:
    """A run's steps: train, report each step, evaluate and checkpoint, until the plan is done or a reason to stop
    comes. Its state is `progress`, the steps in flight, and the last evaluation."""

    def __init__(
        self,
        config: RunConfig,
        accelerator: Accelerator,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LambdaLR,
        penalised: list[torch.nn.Parameter],
        plan: Plan,
        data: Data,
        hooks: Hooks,
        *,
        started: float,
    ) -> None:
        self.config, self.accelerator, self.model, self.optimizer = config, accelerator, model, optimizer
        self.scheduler, self.penalised, self.plan, self.data, self.hooks = scheduler, penalised, plan, data, hooks
        self.main = accelerator.is_main_process
        self.on_gpu = accelerator.device.type == "cuda"
        self.device = f"cuda:{torch.cuda.current_device()}" if self.on_gpu else accelerator.device.type
        self.precision = {"no": "fp32"}.get(accelerator.mixed_precision, accelerator.mixed_precision)
        self.eval_every = config.eval_every_steps or max(1, math.ceil(len(plan) / 5))
        self.samples_per_step = config.batch_size * config.grad_accum_steps * accelerator.num_processes
        self.checkpoint_dir: Path | None = None
        self.progress = Progress()
        self.started, self.prior_elapsed_s = started, 0.0
        self.in_flight: list[InFlight] = []
        self.last_eval: EvalRecord | None = None
        self.last_predictions: Predictions | None = None

    def resume(self, folder: RunFolder) -> None:
        self.accelerator.load_state(str(folder.checkpoint / CHECKPOINT_ACCELERATE))
        self.progress = Progress(**json.loads(folder.checkpoint_state.read_text()))
        self.prior_elapsed_s = self.progress.elapsed_s  # a resumed run's clock continues from its checkpoint

    def elapsed(self) -> float:
        return self.prior_elapsed_s + time.perf_counter() - self.started

    def run(self) -> tuple[Stop, str]:
        """Train to the end of the plan or a stop; returns why it stopped, in a cause and in words. A run stopped
        part-way is evaluated where it stopped (which also checkpoints it, so it can be resumed), unless it diverged.

        No step waits for the GPU: reading a number off it (`.item()`, `float(t)`) would block the host until all
        queued work is done, and the GPU would idle while the host prepares the next batch. So on a GPU each step's
        loss and gradient norm travel to pinned host memory without waiting and are read one step late, once the next
        step's work is queued; before an evaluation and at a stop every step is read, so records keep their order. A
        cancel or a divergence thus takes effect one step later on a GPU. On the CPU the numbers are ready when a step
        returns, and each step is read at once."""
        self.model.train()
        stop, reason = self._steps()
        step = self.progress.step
        if stop is not Stop.DIVERGED and (self.last_eval is None or self.last_eval.step != step) and step > 0:
            self.evaluate_and_checkpoint()
        return stop, reason

    def _steps(self) -> tuple[Stop, str]:
        total = len(self.plan)
        while self.progress.step < total:
            step_started = time.perf_counter()
            if _any_process(self.accelerator, self.hooks.should_stop() if self.main else False):
                diverged = self.read_steps(step_started)  # the step still in flight, on a GPU
                self.progress.train_s += time.perf_counter() - step_started
                return (Stop.DIVERGED, diverged) if diverged else (Stop.ASKED, f"stopped at step {self.progress.step}")
            self.train_step()
            evaluate_now = self.progress.step % self.eval_every == 0 or self.progress.step == total
            diverged = self.read_steps(step_started, keep=1 if self.on_gpu and not evaluate_now else 0)
            self.progress.train_s += time.perf_counter() - step_started
            if diverged:
                return Stop.DIVERGED, diverged
            if evaluate_now and self.evaluate_and_checkpoint():
                config = self.config
                return Stop.EARLY_STOPPED, (
                    f"early stopping at step {self.progress.step}: {config.early_stopping_metric} did not improve "
                    f"for {config.early_stopping_patience} evaluations"
                )
        return Stop.COMPLETED, f"completed {total} steps"

    def train_step(self) -> None:
        """One optimizer step over its micro-batches; its numbers join the steps in flight."""
        accelerator, model, config = self.accelerator, self.model, self.config
        lr = self.scheduler.get_last_lr()[0]
        micro_batches = self.plan.steps[self.progress.step]
        loss_sum = torch.zeros((), device=accelerator.device)
        for i, indices in enumerate(micro_batches):
            # From pageable memory a host-to-GPU copy waits; from pinned (page-locked) memory it does not.
            batch = {
                k: (v.pin_memory() if self.on_gpu else v).to(accelerator.device, non_blocking=True)
                for k, v in self.data.batch(indices).items()
            }
            # Only the last micro-batch of an accumulated step synchronises gradients across processes.
            sync = accelerator.no_sync(model) if i < len(micro_batches) - 1 else nullcontext()
            with sync:
                loss = model(**batch).loss.float() / len(micro_batches)
                extra = penalty(self.penalised, l1=config.l1, l2=config.l2)
                accelerator.backward(loss if extra is None else loss + extra / len(micro_batches))
            loss_sum += loss.detach()
        grad_norm = accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm or math.inf)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.progress.step += 1
        numbers = torch.stack(
            [
                accelerator.reduce(loss_sum, reduction="mean"),
                torch.as_tensor(grad_norm, dtype=torch.float32, device=accelerator.device),
            ]
        )
        copied = None
        if self.on_gpu:  # start the copy to the host; `read_steps` waits for it, one step later
            numbers = torch.empty(2, pin_memory=True).copy_(numbers, non_blocking=True)
            copied = torch.cuda.Event()
            copied.record()
        self.in_flight.append(InFlight(self.progress.step, lr, numbers, copied))

    def read_steps(self, step_started: float, keep: int = 0) -> str | None:
        """Report the steps in flight, oldest first, leaving the newest `keep` (all of them once one diverged);
        returns why the run diverged, if it did. `step_started`: when the step under way began (for throughput)."""
        why = None
        progress = self.progress
        while len(self.in_flight) > (0 if why else keep):
            done = self.in_flight.pop(0)
            if done.copied is not None:
                done.copied.synchronize()  # waits for that step only; the GPU goes on with the next
            loss_value, grad_norm = done.numbers.tolist()
            progress.first_loss = progress.first_loss or loss_value
            if self.main:
                seconds = max(progress.train_s + time.perf_counter() - step_started, 1e-9)
                record = StepRecord(
                    done.step,
                    len(self.plan),
                    self.plan.epoch_at(done.step),
                    self.elapsed(),
                    loss_value,
                    done.lr,
                    grad_norm,
                    done.step * self.samples_per_step / seconds,
                )
                self.hooks.on_step(record)
            # Divergence: NaN/inf, or a loss that blew up far past where it started.
            first = progress.first_loss
            if not why and (not math.isfinite(loss_value) or loss_value > self.config.divergence_factor * first):
                why = (
                    f"loss became {loss_value:.4g} at step {done.step} (first loss {first:.4g}); "
                    "try a lower learning rate or gradient clipping"
                )
        return why

    def evaluate_and_checkpoint(self) -> bool:
        """Evaluate the model as it is, report it, checkpoint (not after the last step: the model is saved then);
        returns whether early stopping says stop."""
        config, progress, data = self.config, self.progress, self.data
        result = predict(
            self.accelerator,
            self.model,
            data.eval_ids,
            data.eval_set.labels,
            len(data.label_names),
            pad_id=data.pad_id,
            pad_to=data.pad_to,
            multiple=data.multiple,
            batch_size=4 * config.batch_size,
        )  # no gradients: bigger batches are cheap
        m = result.metrics
        step = progress.step
        record = EvalRecord(
            step,
            self.plan.epoch_at(step),
            self.elapsed(),
            result.loss,
            m["accuracy"],
            m["precision"],
            m["recall"],
            m["f1"],
            m["confusion"],
            *weight_stats(self.penalised + untrained_rows(self.accelerator.unwrap_model(self.model))),
            labels=tuple(data.label_names),
        )
        if self.main:
            self.hooks.on_eval(record)
        self.last_eval, self.last_predictions = record, result
        metric = config.early_stopping_metric
        value = getattr(record, METRICS[metric].field)
        if improved(metric, value, progress.best):
            progress.best, progress.bad_evals = value, 0
        else:
            progress.bad_evals += 1
        progress.elapsed_s = self.elapsed()
        if self.checkpoint_dir is not None and step < len(self.plan):
            save_checkpoint(self.accelerator, self.checkpoint_dir, asdict(progress))
        patience = config.early_stopping_patience
        return bool(patience and progress.bad_evals >= patience)

    def result(self, stop: Stop, reason: str, *, wall_s: float, model_dir: Path | None) -> TrainResult:
        step, train_s = self.progress.step, self.progress.train_s
        return TrainResult(
            stop=stop,
            reason=reason,
            steps=step,
            total_steps=len(self.plan),
            epoch=self.plan.epoch_at(step),
            wall_s=wall_s,
            train_s=train_s,
            samples_per_s=step * self.samples_per_step / train_s if train_s else 0.0,
            eval=self.last_eval,
            label_names=self.data.label_names,
            device=self.device,
            precision=self.precision,
            model_dir=str(model_dir) if model_dir else None,
        )


# --- planning: which micro-batches make up each optimizer step ----------------------------------------------------
@dataclass(frozen=True)
class Plan:
    steps: list[list[list[int]]]  # steps[i] = micro-batches (lists of example indices) of optimizer step i
    steps_per_epoch: int

    def __len__(self) -> int:
        return len(self.steps)

    def epoch_at(self, step: int) -> float:
        return step / self.steps_per_epoch


def plan_steps(config: RunConfig, lengths: list[int], num_processes: int = 1, rank: int = 0) -> Plan:
    """The whole run's batches, deterministic from the seed: each epoch is reshuffled (grouped by length if asked),
    shared round-robin between processes (each gets the same count), and cut into steps of `grad_accum_steps`
    micro-batches. Fractional `num_epochs` stops part-way through the last epoch."""
    steps_per_epoch, total = count_steps(
        len(lengths), config.batch_size, config.grad_accum_steps, config.num_epochs, num_processes
    )
    steps: list[list[list[int]]] = []
    epoch = 0
    while len(steps) < total:
        batches = data_lib.length_grouped_batches(
            lengths, config.batch_size, seed=config.seed, epoch=epoch, group_by_length=config.group_by_length
        )
        per_process = max(1, len(batches) // num_processes)
        mine = [batches[(rank + num_processes * i) % len(batches)] for i in range(per_process)]
        k = config.grad_accum_steps
        steps.extend(mine[i : i + k] for i in range(0, len(mine), k))
        epoch += 1
    return Plan(steps[:total], steps_per_epoch)


def _any_process(accelerator: Accelerator, flag: bool) -> bool:
    """True on every process when `flag` is true on any (the stop request arrives on the main process only)."""
    if accelerator.num_processes == 1:
        return flag
    return bool(accelerator.reduce(torch.tensor([float(flag)], device=accelerator.device), reduction="sum").item())


def save_checkpoint(accelerator: Accelerator, folder: Path, state: dict) -> None:
    """Model, optimizer, scheduler and RNG states plus our counters; replaces the previous checkpoint whole. Written
    beside it first, our counters last (what marks it whole); a write that fails (a full disk) leaves the previous
    one as it was and nothing half-written behind."""
    tmp = staged(folder)
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)  # what a process killed mid-write left
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(tmp / CHECKPOINT_ACCELERATE))
        # Every process writes its own RNG state into `tmp` (accelerate does not wait for them): move it only when
        # all have.
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            (tmp / CHECKPOINT_STATE).write_text(json.dumps(state))
            swap_in(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    accelerator.wait_for_everyone()
