"""The LR range test: the debiased EMA and the stop rule, the valley/steep/minimum suggestions on hand-made curves,
the range-test schedule, and real runs (in-process through the CLI, and through a run's process) on the tiny BERT."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from bert_lab.core.config import RunConfig
from bert_lab.engine.schedules import lr_curve
from bert_lab.processes.runner import run_job
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.teaching.lr_find import BETA, RangeTest, changed_since, range_test_config, suggest, valley

TINY = RunConfig(model="tiny", dataset="sms_spam", train_size=200, eval_size=50, max_length=32, batch_size=16)


def test_the_smoothed_loss_is_a_debiased_ema() -> None:
    test = RangeTest()
    for lr, loss in [(1e-7, 2.0), (1e-6, 1.0), (1e-5, 3.0)]:
        test.add(lr, loss)
    # By hand: a1 = 0.02·2 = 0.04 → 0.04/0.02 = 2; a2 = 0.98·0.04 + 0.02·1 = 0.0592 → 0.0592/(1 − 0.98²) = 1.49495
    a1 = (1 - BETA) * 2.0
    a2 = BETA * a1 + (1 - BETA) * 1.0
    a3 = BETA * a2 + (1 - BETA) * 3.0
    assert test.losses == pytest.approx([2.0, a2 / (1 - BETA**2), a3 / (1 - BETA**3)])
    assert test.losses[1] == pytest.approx(1.49495, abs=1e-5) and test.stopped is None


def test_it_stops_once_the_smoothed_loss_passes_four_times_its_best() -> None:
    test = RangeTest()
    steps = 0
    for steps, loss in enumerate([1.0] * 20 + [50.0] * 50, start=1):
        if test.add(1e-3 * steps, loss):
            break
    assert test.stopped is not None and "passed 4× its best" in test.stopped
    assert max(test.losses[:-1]) <= 4.0 and test.losses[-1] > 4.0 and steps < 70
    nan = RangeTest()
    nan.add(1e-5, 1.0)
    assert nan.add(1e-4, math.nan) and "the loss became nan" in (nan.stopped or "")


def test_valley_steep_and_minimum_on_a_hand_made_curve() -> None:
    # Flat, then a fall over indices 20..59 to the bottom at 59, then a blow-up. The longest decreasing subsequence is
    # one flat point and 20..59: 41 points ending at 59; fastai's start = 59 − 41 = 18, sections = 41/3, so the valley
    # is at 18 + int(41/3) + int(41/6) = 18 + 13 + 6 = 37.
    losses = np.concatenate([np.full(20, 1.0), np.linspace(1.0, 0.2, 41)[1:], np.linspace(0.25, 3.0, 40)])
    assert valley(losses) == 37
    lrs = np.logspace(-7, 0, len(losses))
    found = suggest(lrs.tolist(), losses.tolist())
    kept = lrs[10 : len(lrs) - 5]  # trimmed as fastai: the first tenth and the last five points
    assert found.lrs == pytest.approx(kept.tolist())
    assert found.min_lr == pytest.approx(lrs[59] / 10)
    assert found.steep_lr == pytest.approx(lrs[20])  # the sharpest drop per decade starts at the first fall
    assert lrs[20] < found.suggested_lr < lrs[59]
    with pytest.raises(ValueError, match="at least 3 usable steps"):
        suggest([1e-5, 1e-4], [1.0, 0.5])


def test_the_range_test_schedule_rises_exponentially_to_the_end_lr() -> None:
    config = range_test_config(RunConfig(), start_lr=1e-6, end_lr=1e-2, steps=50)
    lrs = lr_curve(config, 50)
    assert lrs[0] == pytest.approx(1e-6) and lrs[-1] == pytest.approx(1e-2)
    assert np.allclose(np.diff(np.log(lrs)), math.log(1e4) / 49)
    assert (config.train_size, config.batch_size, config.max_length, config.warmup_steps) == (400, 8, 64, 0)


def test_lr_find_on_the_command_line(tmp_path: object) -> None:
    flags = ["--model", "tiny", "--dataset", "sms_spam", "--max-length", "32", "--steps", "40", "--json"]
    result = subprocess.run(
        [sys.executable, "-m", "bert_lab", "lr-find", *flags], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(found) >= {"lrs", "losses", "suggested_lr", "steep_lr", "min_lr", "wall_s"}
    assert len(found["lrs"]) == len(found["losses"]) >= 3 and found["lrs"] == sorted(found["lrs"])
    assert 1e-7 <= found["suggested_lr"] <= 1.0 and found["wall_s"] > 0
    bad = subprocess.run(
        [sys.executable, "-m", "bert_lab", "lr-find", "--start-lr", "1", "--end-lr", "1e-3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "--start-lr: must be below lr" in bad.stderr


def test_a_range_test_run_finishes_with_its_suggestion_and_no_model(lab: Lab) -> None:
    config = range_test_config(TINY, start_lr=1e-5, end_lr=10.0, steps=60)
    run_id = lab.store.create_run(config.to_dict(), name="LR range test").id
    lab.store.claim_run(run_id, pid=1)
    assert run_job(lab, run_id) == 0
    run = lab.store.get_run(run_id)
    assert run.status == Status.FINISHED, run.error
    assert set(run.summary.lr_find) == {"suggested_lr", "steep_lr", "min_lr"}
    assert 1e-5 <= run.summary.lr_find["suggested_lr"] <= 10.0
    assert len(lab.store.read_metrics(run_id, names=["lr"])) == run.summary.steps
    assert not lab.data.run(run_id).model.exists() and not lab.data.run(run_id).checkpoint.exists()


def test_a_suggestion_holds_only_for_the_settings_it_was_measured_with() -> None:
    base = RunConfig(optimizer="adamw", batch_size=32)
    assert changed_since(base.to_dict(), base.to_dict()) == {}
    tuned = RunConfig(optimizer="adamw", batch_size=32, lr=3e-5, schedule="step", num_epochs=3, seed=4)
    assert changed_since(base.to_dict(), tuned.to_dict()) == {}  # the test's own knobs, and the seed, don't count
    other = RunConfig(optimizer="sgd", batch_size=16, model="tiny", dataset="sms_spam")
    assert changed_since(base.to_dict(), other.to_dict()) == {
        "dataset": ("rotten_tomatoes", "sms_spam"),
        "model": (base.model, "tiny"),
        "optimizer": ("adamw", "sgd"),
        "batch_size": (32, 16),
    }
