"""The training loop: one function, `train`, that reads top to bottom.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import set_seed

from bert_lab.core.config import RunConfig
from bert_lab.core.layout import CHECKPOINT_ACCELERATE, CHECKPOINT_STATE, RunFolder, staged, swap_in
from bert_lab.core.metrics import METRICS, improved
from bert_lab.engine import data as data_lib
from bert_lab.engine.evaluate import Predictions, predict, write_eval_report
from bert_lab.engine.model import load_model, load_tokenizer, save_model, use_cpu_dropout
from bert_lab.engine.optim import build_optimizer, penalty, split_decay_params, weight_stats
from bert_lab.engine.schedules import count_steps, factor_of
from bert_lab.runs.records import EvalRecord, Hooks, StepRecord, TrainResult
from bert_lab.runs.status import Status


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
    # A process may train several times (notebooks, tests), each with its own precision: accelerate keeps its state
    # per process, so forget the last run's (the distributed set-up, PartialState, is kept). Only then: a reset in a
    # fresh process costs ~0.2 s of a run's start.
    if AcceleratorState._shared_state:
        AcceleratorState._reset_state()
    # cpu=True on a machine without CUDA also lets a multi-process launch pick the gloo backend.
    accelerator = Accelerator(mixed_precision=resolve_precision(config.precision), cpu=not torch.cuda.is_available())
    main = accelerator.is_main_process
    log = hooks.on_log if main else (lambda _: None)
    set_seed(config.seed)

    # --- data: load, split (stratified, seeded), tokenize (cached on disk) ---------------------------------------
    tokenizer = load_tokenizer(config.model)
    dataset = data_lib.load_dataset(config.dataset, text_column=config.text_column, label_column=config.label_column)
    train_set, eval_set = data_lib.split_dataset(
        dataset, train_size=config.train_size, eval_size=config.eval_size, seed=config.seed
    )
    cache_dir = data_lib.default_cache_dir()
    train_ids = data_lib.tokenize(train_set.texts, tokenizer, max_length=config.max_length, cache_dir=cache_dir)
    eval_ids = data_lib.tokenize(eval_set.texts, tokenizer, max_length=config.max_length, cache_dir=cache_dir)
    label_names = list(dataset.label_names)
    pad_id = tokenizer.pad_token_id or 0
    pad_to = config.max_length if config.padding == "max_length" else None
    log(f"data: {len(train_set)} train / {len(eval_set)} eval examples, {len(label_names)} classes")

    # --- model and optimizer --------------------------------------------------------------------------------------
    model = load_model(config, label_names)
    if accelerator.device.type == "cpu":
        use_cpu_dropout(model)  # cheaper dropout masks: ~5% faster steps on the CPU
    optimizer = build_optimizer(model, config)
    penalised = split_decay_params(model)[0]
    plan = plan_steps(config, [len(ids) for ids in train_ids], accelerator.num_processes, accelerator.process_index)
    total_steps = len(plan)
    # The schedule is a pure function of the optimizer step (the same one the app's preview plots); stepped once
    # per optimizer step, so it is not handed to accelerate (which would step it once per process).
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor_of(config, total_steps))
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    on_gpu = accelerator.device.type == "cuda"
    device = f"cuda:{torch.cuda.current_device()}" if on_gpu else accelerator.device.type
    precision = {"no": "fp32"}.get(accelerator.mixed_precision, accelerator.mixed_precision)
    log(f"model {config.model} on {device} ({precision}), {accelerator.num_processes} process(es), {total_steps} steps")

    # --- resume ---------------------------------------------------------------------------------------------------
    state = {"step": 0, "first_loss": None, "best": None, "bad_evals": 0, "elapsed_s": 0.0, "train_s": 0.0}
    checkpoint_dir = folder.checkpoint if folder is not None and checkpoint else None
    if resume and folder is not None and folder.complete_checkpoint() is not None:
        accelerator.load_state(str(folder.checkpoint / CHECKPOINT_ACCELERATE))
        state.update(json.loads(folder.checkpoint_state.read_text()))
        log(f"resumed from step {state['step']}")
    prior_elapsed_s = state["elapsed_s"]  # a resumed run's clock continues from its checkpoint

    def elapsed() -> float:
        return prior_elapsed_s + time.perf_counter() - started

    eval_every = config.eval_every_steps or max(1, math.ceil(total_steps / 5))
    samples_per_step = config.batch_size * config.grad_accum_steps * accelerator.num_processes

    def evaluate_and_checkpoint(step: int) -> tuple[Predictions, EvalRecord, bool]:
        result = predict(
            accelerator,
            model,
            eval_ids,
            eval_set.labels,
            len(label_names),
            pad_id=pad_id,
            pad_to=pad_to,
            batch_size=4 * config.batch_size,
        )  # no gradients: bigger batches are cheap
        m = result.metrics
        record = EvalRecord(
            step,
            plan.epoch_at(step),
            elapsed(),
            result.loss,
            m["accuracy"],
            m["precision"],
            m["recall"],
            m["f1"],
            m["confusion"],
            *weight_stats(penalised),
        )
        if main:
            hooks.on_eval(record)
        metric = config.early_stopping_metric
        value, best = getattr(record, METRICS[metric].field), state["best"]
        better = improved(metric, value, best)
        state["best"], state["bad_evals"] = (value, 0) if better else (best, state["bad_evals"] + 1)
        state.update(step=step, elapsed_s=elapsed())
        if checkpoint_dir is not None and step < total_steps:
            save_checkpoint(accelerator, checkpoint_dir, state)
        patience = config.early_stopping_patience
        return result, record, bool(patience and state["bad_evals"] >= patience)

    # --- train ----------------------------------------------------------------------------------------------------
    # No step waits for the GPU: reading a number off it (`.item()`, `float(t)`) would block the host until all queued
    # work is done, and the GPU would idle while the host prepares the next batch. So on a GPU each step's loss and
    # gradient norm travel to pinned host memory without waiting and are read one step late, once the next step's work
    # is queued; before an evaluation and at a stop every step is read, so records keep their order. A cancel or a
    # divergence thus takes effect one step later on a GPU. On the CPU the numbers are ready when a step returns, and
    # each step is read at once.
    model.train()
    status = Status.FINISHED
    reason = f"completed {total_steps} steps"
    last_eval: EvalRecord | None = None
    last_predictions: Predictions | None = None
    step = state["step"]
    # Steps whose numbers are on their way to the host: (step, lr, [loss, grad norm], the event of the copy).
    in_flight: list[tuple[int, float, torch.Tensor, torch.cuda.Event | None]] = []

    def read_steps(keep: int = 0) -> str | None:
        """Report the steps in flight, oldest first, leaving the newest `keep` (all of them once one diverged);
        returns why the run diverged, if it did."""
        why = None
        while len(in_flight) > (0 if why else keep):
            done, done_lr, numbers, copied = in_flight.pop(0)
            if copied is not None:
                copied.synchronize()  # waits for that step only; the GPU goes on with the next
            loss_value, grad_norm = numbers.tolist()
            state["first_loss"] = state["first_loss"] or loss_value
            if main:
                throughput = done * samples_per_step / max(state["train_s"] + time.perf_counter() - step_started, 1e-9)
                hooks.on_step(
                    StepRecord(
                        done, total_steps, plan.epoch_at(done), elapsed(), loss_value, done_lr, grad_norm, throughput
                    )
                )
            # Divergence: NaN/inf, or a loss that blew up far past where it started.
            first = state["first_loss"]
            if not why and (not math.isfinite(loss_value) or loss_value > config.divergence_factor * first):
                why = (
                    f"loss became {loss_value:.4g} at step {done} (first loss {first:.4g}); "
                    "try a lower learning rate or gradient clipping"
                )
        return why

    while step < total_steps:
        step_started = time.perf_counter()
        if _any_process(accelerator, hooks.should_stop() if main else False):
            diverged = read_steps()  # the step still in flight, on a GPU
            state["train_s"] += time.perf_counter() - step_started
            status, reason = Status.CANCELLED, f"cancelled at step {step}"
            if diverged:
                status, reason = Status.DIVERGED, diverged
            break
        lr = scheduler.get_last_lr()[0]
        micro_batches = plan.steps[step]
        loss_sum = torch.zeros((), device=accelerator.device)
        for i, indices in enumerate(micro_batches):
            batch = data_lib.collate(
                [train_ids[j] for j in indices], [train_set.labels[j] for j in indices], pad_id, pad_to=pad_to
            )
            # From pageable memory a host-to-GPU copy waits; from pinned (page-locked) memory it does not.
            batch = {
                k: (v.pin_memory() if on_gpu else v).to(accelerator.device, non_blocking=True) for k, v in batch.items()
            }
            # Only the last micro-batch of an accumulated step synchronises gradients across processes.
            sync = accelerator.no_sync(model) if i < len(micro_batches) - 1 else nullcontext()
            with sync:
                loss = model(**batch).loss.float() / len(micro_batches)
                extra = penalty(penalised, l1=config.l1, l2=config.l2)
                accelerator.backward(loss if extra is None else loss + extra / len(micro_batches))
            loss_sum += loss.detach()
        grad_norm = accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm or math.inf)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        numbers = torch.stack(
            [
                accelerator.reduce(loss_sum, reduction="mean"),
                torch.as_tensor(grad_norm, dtype=torch.float32, device=accelerator.device),
            ]
        )
        copied = None
        if on_gpu:  # start the copy to the host; `read_steps` waits for it, one step later
            numbers = torch.empty(2, pin_memory=True).copy_(numbers, non_blocking=True)
            copied = torch.cuda.Event()
            copied.record()
        in_flight.append((step, lr, numbers, copied))
        evaluate_now = step % eval_every == 0 or step == total_steps
        diverged = read_steps(keep=1 if on_gpu and not evaluate_now else 0)
        state["train_s"] += time.perf_counter() - step_started
        if diverged:
            status, reason = Status.DIVERGED, diverged
            break
        if evaluate_now:
            last_predictions, last_eval, stop_early = evaluate_and_checkpoint(step)
            if stop_early:
                reason = (
                    f"early stopping at step {step}: {config.early_stopping_metric} did not improve for "
                    f"{config.early_stopping_patience} evaluations"
                )
                break
    if status != Status.DIVERGED and (last_eval is None or last_eval.step != step) and step > 0:
        # Stopped part-way: evaluate what was trained (which also checkpoints it, so a cancel can be resumed).
        last_predictions, last_eval, _ = evaluate_and_checkpoint(step)
    log(reason)

    # --- save -----------------------------------------------------------------------------------------------------
    model_dir = None
    accelerator.wait_for_everyone()
    if folder is not None and main and status != Status.DIVERGED:
        model_dir = save_model(accelerator.unwrap_model(model), tokenizer, folder.create().model)
        folder.run_config.write_text(json.dumps(config.to_dict(), indent=1))
        if last_predictions is not None:
            write_eval_report(folder.eval_report, last_predictions, eval_set, step=step)
    if status == Status.FINISHED and checkpoint_dir is not None and main:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)  # a finished run has its model; the checkpoint is spent
    train_s = state["train_s"]
    return TrainResult(
        status=status,
        reason=reason,
        steps=step,
        total_steps=total_steps,
        epoch=plan.epoch_at(step),
        wall_s=time.perf_counter() - started,
        train_s=train_s,
        samples_per_s=step * samples_per_step / train_s if train_s else 0.0,
        eval=last_eval,
        label_names=label_names,
        device=device,
        precision=precision,
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
