"""The training loop end to end on a tiny real BERT (and once on the bundled MiniLM)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from transformers import pipeline

from bert_lab.core.config import RunConfig
from bert_lab.core.layout import RunFolder
from bert_lab.core.metrics import NEAR_ZERO
from bert_lab.engine.data import pad_multiple
from bert_lab.engine.model import load_tokenizer
from bert_lab.engine.optim import split_decay_params
from bert_lab.engine.reports import EvalRecord, Hooks, StepRecord, Stop
from bert_lab.engine.train import load_data, plan_steps, train
from bert_lab.processes.executor import launch_command

TINY = dict(model="tiny", dataset="sms_spam", train_size=160, eval_size=64, max_length=32, batch_size=16, lr=1e-3)
# Tests that compare numbers name the precision they mean (`auto` is bf16 on one machine, fp32 on another) and run
# under both: fp32, and bf16 autocast (native on AVX512-BF16/AMX CPUs, emulated on AVX2-only ones).
PRECISIONS = pytest.mark.parametrize("precision", ["fp32", "bf16"])


class Recorder:
    def __init__(self, stop_after: int | None = None) -> None:
        self.steps: list[StepRecord] = []
        self.evals: list[EvalRecord] = []
        self.stop_after = stop_after

    def hooks(self) -> Hooks:
        return Hooks(on_step=self.steps.append, on_eval=self.evals.append, should_stop=self.should_stop)

    def should_stop(self) -> bool:
        return self.stop_after is not None and len(self.steps) >= self.stop_after


def test_tiny_run_reports_and_saves_a_pipeline_model(tmp_path: Path) -> None:
    rec = Recorder()
    folder = RunFolder(tmp_path / "run")
    result = train(RunConfig(**TINY, eval_every_steps=4), folder=folder, hooks=rec.hooks())
    assert result.stop == Stop.COMPLETED and result.steps == result.total_steps == 10
    assert [s.step for s in rec.steps] == list(range(1, 11))
    assert all(s.loss > 0 and s.grad_norm > 0 and s.samples_per_s > 0 for s in rec.steps)
    assert rec.steps[-1].epoch == pytest.approx(1.0)
    assert [e.step for e in rec.evals] == [4, 8, 10]
    final = rec.evals[-1]
    assert sum(map(sum, final.confusion)) == 64 and 0 <= final.f1 <= 1
    assert result.eval == final
    assert result.model_dir == str(folder.model)
    clf = pipeline("text-classification", model=result.model_dir)
    assert clf("WINNER!! claim your free prize now")[0]["label"] in ("ham", "spam")
    assert RunConfig.from_dict(json.loads(folder.run_config.read_text())) == RunConfig(**TINY, eval_every_steps=4)
    assert not folder.checkpoint.exists()  # no checkpoint unless asked for
    report = json.loads(folder.eval_report.read_text())
    assert report["label_names"] == ["ham", "spam"] and report["confusion"] == final.confusion


def test_lr_follows_the_schedule_step_by_step() -> None:
    rec = Recorder()
    train(RunConfig(**{**TINY, "lr": 1e-2}, schedule="step", step_size=3, gamma=0.5), hooks=rec.hooks())
    assert [s.lr for s in rec.steps][:7] == pytest.approx([1e-2] * 3 + [5e-3] * 3 + [2.5e-3])


def test_huge_learning_rate_diverges(tmp_path: Path) -> None:
    rec = Recorder()
    folder = RunFolder(tmp_path / "run")
    result = train(
        RunConfig(**{**TINY, "lr": 1e3}, optimizer="sgd", max_grad_norm=0.0), folder=folder, hooks=rec.hooks()
    )
    assert result.stop == Stop.DIVERGED
    assert "lower learning rate" in result.reason
    assert result.steps == len(rec.steps) < result.total_steps
    assert not folder.model.exists() and result.model_dir is None


def test_should_stop_cancels_between_steps() -> None:
    rec = Recorder(stop_after=3)
    result = train(RunConfig(**TINY), hooks=rec.hooks())
    assert result.stop == Stop.ASKED and result.steps == 3
    assert result.eval is not None and result.eval.step == 3  # what was trained is still evaluated


def test_early_stopping_when_the_metric_stops_improving() -> None:
    rec = Recorder()
    config = RunConfig(
        **{**TINY, "lr": 1e-12},
        schedule="constant",
        eval_every_steps=1,
        early_stopping_patience=2,
        early_stopping_metric="accuracy",
    )
    result = train(config, hooks=rec.hooks())
    assert result.stop == Stop.EARLY_STOPPED and result.steps == 3
    assert "early stopping" in result.reason


@PRECISIONS
def test_resume_from_checkpoint_matches_an_uninterrupted_run(tmp_path: Path, precision: str) -> None:
    config = RunConfig(**TINY, eval_every_steps=2, num_epochs=2.0, precision=precision)
    straight = Recorder()
    train(config, hooks=straight.hooks())
    folder = RunFolder(tmp_path / "run")
    first = Recorder(stop_after=5)
    cut = train(config, hooks=first.hooks(), folder=folder, checkpoint=True)
    assert cut.stop == Stop.ASKED and folder.checkpoint_state.exists()
    second = Recorder()
    resumed = train(config, hooks=second.hooks(), folder=folder, checkpoint=True, resume=True)
    assert resumed.stop == Stop.COMPLETED and second.steps[0].step == 6
    assert [s.loss for s in second.steps] == pytest.approx([s.loss for s in straight.steps[5:]], rel=1e-4)
    assert second.steps[0].elapsed_s > first.steps[-1].elapsed_s  # the clock continues
    assert not folder.checkpoint.exists()  # a finished run drops its checkpoint


def test_gradient_accumulation_and_fractional_epochs() -> None:
    lengths = [10] * 100
    plan = plan_steps(RunConfig(batch_size=8, grad_accum_steps=3, num_epochs=1.5), lengths)
    assert plan.steps_per_epoch == 5  # 13 micro-batches → 5 steps (the last has one)
    assert len(plan) == 8 and plan.epoch_at(5) == 1.0
    first_epoch = [i for step in plan.steps[:5] for batch in step for i in batch]
    assert sorted(first_epoch) == list(range(100))


def test_two_processes_share_batches_evenly() -> None:
    lengths = list(range(5, 69))
    config = RunConfig(batch_size=4)
    a, b = plan_steps(config, lengths, 2, 0), plan_steps(config, lengths, 2, 1)
    assert len(a) == len(b) == 8
    seen = [i for plan in (a, b) for step in plan.steps for batch in step for i in batch]
    assert sorted(seen) == list(range(64))


# Plain SGD at a constant rate without clipping, so each knob's update rule shows in the weights: with the same seed
# and batches, a run differs from the baseline only by its penalty's own term.
PENALTY_RUN = dict(
    model="tiny",
    dataset="sms_spam",
    train_size=64,
    eval_size=32,
    max_length=32,
    batch_size=16,
    optimizer="sgd",
    lr=0.05,
    schedule="constant",
    max_grad_norm=0.0,
)
PENALTY_STEPS = 4


# How close two runs whose updates are equal in exact arithmetic end up: fp32 rounding (measured 1.5e-8), bf16
# autocast's rounding of the data gradient (measured 1.2e-5 on weights of ~0.02).
SAME_UPDATE_ATOL = {"fp32": 1e-6, "bf16": 1e-4}


def trained_weights(tmp_path: Path, precision: str, **knob: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(penalised, not penalised) weights of a tiny run trained with `knob`, flattened; checks that its last
    evaluation's weight norm and near-zero share describe the penalised weights the run saved."""
    from transformers import AutoModelForSequenceClassification

    folder = RunFolder(tmp_path / precision / ("_".join(knob) or "baseline"))
    rec = Recorder()
    result = train(RunConfig(**PENALTY_RUN, **knob, precision=precision), folder=folder, hooks=rec.hooks())
    assert result.stop == Stop.COMPLETED and result.steps == PENALTY_STEPS
    model = AutoModelForSequenceClassification.from_pretrained(folder.model)
    decay, no_decay = split_decay_params(model)
    penalised = torch.cat([p.detach().flatten() for p in decay])
    assert rec.evals[-1].weight_norm == pytest.approx(float(penalised.double().norm()), rel=1e-6)
    assert rec.evals[-1].near_zero == pytest.approx(float((penalised.abs() < NEAR_ZERO).float().mean()), abs=1e-6)
    return penalised, torch.cat([p.detach().flatten() for p in no_decay])


@PRECISIONS
def test_weight_decay_l2_and_l1_each_shrink_the_penalised_weights_by_their_formula(
    tmp_path: Path, precision: str
) -> None:
    lr, steps = PENALTY_RUN["lr"], PENALTY_STEPS
    base, base_free = trained_weights(tmp_path, precision)
    # Decoupled weight decay: θ ← θ·(1 − lr·wd) every step, so the L2 norm shrinks by (1 − lr·wd)^steps.
    decayed, decayed_free = trained_weights(tmp_path, precision, weight_decay=2.0)
    shrink = (1 - lr * 2.0) ** steps
    assert decayed.norm() / base.norm() == pytest.approx(shrink, rel=0.01)
    # L2 penalty λ/2·‖θ‖²: its gradient λθ makes a plain SGD step θ ← θ·(1 − lr·λ) − lr·g, the same as decay.
    l2, l2_free = trained_weights(tmp_path, precision, l2=2.0)
    assert l2.norm() / base.norm() == pytest.approx(shrink, rel=0.01)
    assert torch.allclose(l2, decayed, atol=SAME_UPDATE_ATOL[precision])
    # L1 penalty λ‖θ‖₁: its gradient λ·sign(θ) pulls every weight towards 0 by lr·λ a step (weights closer than
    # that hop around 0), so the L1 norm falls by at most lr·λ·steps per weight and many weights end near 0.
    l1, l1_free = trained_weights(tmp_path, precision, l1=0.05)
    most = lr * 0.05 * steps * base.numel()
    assert 0.5 * most < (base.abs().sum() - l1.abs().sum()) <= 1.01 * most
    near_zero = lr * 0.05
    assert (l1.abs() < near_zero).float().mean() > 2 * (base.abs() < near_zero).float().mean()
    # Biases and LayerNorm weights get neither decay nor penalty: they move only with the (nearly equal) data gradient.
    for free in (decayed_free, l2_free, l1_free):
        assert free.norm() / base_free.norm() == pytest.approx(1.0, abs=1e-3)


def test_real_minilm_beats_the_majority_class() -> None:
    config = RunConfig(
        dataset="rotten_tomatoes",
        train_size=256,
        eval_size=200,
        max_length=64,
        num_epochs=3,
        lr=1e-4,
        batch_size=16,
        eval_every_steps=100,
    )
    result = train(config)
    majority = max(sum(row) for row in result.eval.confusion) / 200
    assert result.eval.accuracy > majority + 0.05, (result.eval.accuracy, majority)


def test_padding_to_max_length_costs_time_but_changes_no_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """Padding tokens are masked out of attention and never reach the head: padding every batch to max length
    computes the same losses as padding each batch to its longest text (in fp32, up to rounding; without dropout,
    whose random masks depend on the batch's shape). The model really was given batches that wide (or not)."""
    from transformers import BertForSequenceClassification

    widths: list[int] = []  # the token width of every batch the model is given
    forward = BertForSequenceClassification.forward

    def seen(self: object, *args: object, **kwargs: torch.Tensor) -> object:
        widths.append(int(kwargs["input_ids"].shape[1]))
        return forward(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(BertForSequenceClassification, "forward", seen)
    runs, shapes = {}, {}
    for padding in ("dynamic", "max_length"):
        rec = Recorder()
        config = RunConfig(
            **{**TINY, "max_length": 128}, padding=padding, precision="fp32", eval_every_steps=5, dropout=0.0
        )
        widths.clear()
        train(config, hooks=rec.hooks())
        runs[padding], shapes[padding] = rec, set(widths)
    assert shapes["max_length"] == {128} and min(shapes["dynamic"]) < 128 and len(shapes["dynamic"]) > 1
    dynamic, padded = runs["dynamic"], runs["max_length"]
    assert [s.loss for s in padded.steps] == pytest.approx([s.loss for s in dynamic.steps], rel=1e-3)
    assert [e.loss for e in padded.evals] == pytest.approx([e.loss for e in dynamic.evals], rel=1e-3)


SLOW_SECOND_PROCESS = """
import sys, time
from pathlib import Path
import torch
import accelerate.accelerator
from accelerate import Accelerator
from bert_lab.engine.train import save_checkpoint

accelerator = Accelerator(cpu=True)
if accelerator.process_index == 1:  # the outside world, slowed: process 1 writes its RNG state a second late
    write = accelerate.accelerator.save_accelerator_state
    accelerate.accelerator.save_accelerator_state = lambda *a, **k: (time.sleep(1.0), write(*a, **k))[1]
model = torch.nn.Linear(4, 2)
model, optimizer = accelerator.prepare(model, torch.optim.SGD(model.parameters(), lr=0.1))
save_checkpoint(accelerator, Path(sys.argv[1]), {"step": 3})
"""


def test_a_data_parallel_checkpoint_waits_for_every_process_before_it_is_moved_in_place(tmp_path: Path) -> None:
    """Every process writes its own RNG state into the checkpoint; the main process moves the finished folder into
    place only once all have written (a slow second process once crashed a two-process run in CI)."""
    script = tmp_path / "save.py"
    script.write_text(SLOW_SECOND_PROCESS)
    folder = tmp_path / "checkpoint"
    command = launch_command(2)[:-1] + [str(script), str(folder)]  # a script, not `-m module`
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    written = sorted(p.name for p in (folder / "accelerate").iterdir())
    assert "random_states_0.pkl" in written and "random_states_1.pkl" in written
    assert json.loads((folder / "state.json").read_text()) == {"step": 3}
    assert not folder.with_name("checkpoint.tmp").exists()


def test_fp32_on_the_cpu_pads_a_batch_to_its_longest_text_and_mixed_precision_to_a_multiple_of_8() -> None:
    assert pad_multiple("cpu", "no") == 1  # fp32 products: padding is only work
    assert pad_multiple("cpu", "bf16") == 8 and pad_multiple("cuda", "no") == 8 and pad_multiple("cuda", "bf16") == 8
    config = RunConfig(model="tiny", train_size=40, eval_size=10)
    for multiple in (1, 8):
        data = load_data(config, load_tokenizer("tiny"), multiple=multiple)
        longest = max(len(data.train_ids[i]) for i in range(5))
        assert data.batch(list(range(5)))["input_ids"].shape[1] == -(-longest // multiple) * multiple
