"""The training loop end to end on a tiny real BERT (and once on the bundled MiniLM)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import pipeline

from bert_lab.config import RunConfig
from bert_lab.train import EvalRecord, Hooks, StepRecord, plan_steps, train

TINY = dict(model="tiny", dataset="sms_spam", train_size=160, eval_size=64, max_length=32, batch_size=16, lr=1e-3)


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
    result = train(RunConfig(**TINY, eval_every_steps=4), out_dir=tmp_path, hooks=rec.hooks())
    assert result.status == "finished" and result.steps == result.total_steps == 10
    assert [s.step for s in rec.steps] == list(range(1, 11))
    assert all(s.loss > 0 and s.grad_norm > 0 and s.samples_per_s > 0 for s in rec.steps)
    assert rec.steps[-1].epoch == pytest.approx(1.0)
    assert [e.step for e in rec.evals] == [4, 8, 10]
    final = rec.evals[-1]
    assert sum(map(sum, final.confusion)) == 64 and 0 <= final.f1 <= 1
    assert result.eval == final
    clf = pipeline("text-classification", model=result.model_dir)
    assert clf("WINNER!! claim your free prize now")[0]["label"] in ("ham", "spam")
    assert RunConfig.from_json((tmp_path / "run_config.json").read_text()) == RunConfig(**TINY, eval_every_steps=4)
    report = json.loads((tmp_path / "eval_report.json").read_text())
    assert report["label_names"] == ["ham", "spam"] and report["confusion"] == final.confusion


def test_lr_follows_the_schedule_step_by_step() -> None:
    rec = Recorder()
    train(RunConfig(**{**TINY, "lr": 1e-2}, schedule="step", step_size=3, gamma=0.5), hooks=rec.hooks())
    assert [s.lr for s in rec.steps][:7] == pytest.approx([1e-2] * 3 + [5e-3] * 3 + [2.5e-3])


def test_huge_learning_rate_diverges(tmp_path: Path) -> None:
    rec = Recorder()
    result = train(RunConfig(**{**TINY, "lr": 1e3}, optimizer="sgd", max_grad_norm=0.0), out_dir=tmp_path,
                   hooks=rec.hooks())
    assert result.status == "diverged"
    assert "lower learning rate" in result.reason
    assert result.steps == len(rec.steps) < result.total_steps
    assert not (tmp_path / "model").exists()


def test_should_stop_cancels_between_steps() -> None:
    rec = Recorder(stop_after=3)
    result = train(RunConfig(**TINY), hooks=rec.hooks())
    assert result.status == "cancelled" and result.steps == 3
    assert result.eval is not None and result.eval.step == 3  # what was trained is still evaluated


def test_early_stopping_when_the_metric_stops_improving() -> None:
    rec = Recorder()
    config = RunConfig(**{**TINY, "lr": 1e-12}, schedule="constant", eval_every_steps=1, early_stopping_patience=2,
                       early_stopping_metric="accuracy")
    result = train(config, hooks=rec.hooks())
    assert result.status == "finished" and result.steps == 3
    assert "early stopping" in result.reason


def test_resume_from_checkpoint_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    config = RunConfig(**TINY, eval_every_steps=2, num_epochs=2.0)
    straight = Recorder()
    train(config, hooks=straight.hooks())
    first = Recorder(stop_after=5)
    cut = train(config, hooks=first.hooks(), checkpoint_dir=tmp_path / "ckpt")
    assert cut.status == "cancelled" and (tmp_path / "ckpt" / "state.json").exists()
    second = Recorder()
    resumed = train(config, hooks=second.hooks(), checkpoint_dir=tmp_path / "ckpt", resume=True)
    assert resumed.status == "finished" and second.steps[0].step == 6
    assert [s.loss for s in second.steps] == pytest.approx([s.loss for s in straight.steps[5:]], rel=1e-4)
    assert second.steps[0].elapsed_s > first.steps[-1].elapsed_s  # the clock continues
    assert not (tmp_path / "ckpt").exists()  # a finished run drops its checkpoint


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


def test_penalties_and_weight_decay_train(tmp_path: Path) -> None:
    result = train(RunConfig(**TINY, l1=1e-5, l2=1e-3, weight_decay=0.01, optimizer="momentum", nesterov=True))
    assert result.status == "finished" and torch.isfinite(torch.tensor(result.eval.loss))


def test_real_minilm_beats_the_majority_class() -> None:
    config = RunConfig(dataset="rotten_tomatoes", train_size=256, eval_size=200, max_length=64, num_epochs=3,
                       lr=1e-4, batch_size=16, eval_every_steps=100)
    result = train(config)
    majority = max(sum(row) for row in result.eval.confusion) / 200
    assert result.eval.accuracy > majority + 0.05, (result.eval.accuracy, majority)
