"""Annotated curves: each detector on synthetic curves (it fires on its case and stays quiet on a healthy run), and
on real tiny-BERT runs that collapse, crawl or blow up (read back through `python -m bert_lab show --json`), memorise
a few examples, or stall at the majority class."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bert_lab.core.config import RunConfig
from bert_lab.engine.reports import Hooks, points
from bert_lab.engine.train import train
from bert_lab.processes.runner import run_job
from bert_lab.runs.records import Run, RunSummary
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.teaching.annotate import annotate, collapse, lr_too_low, overfitting, plateau, series, spikes

STEPS = np.arange(1, 101)
HEALTHY = 0.7 * np.exp(-STEPS / 40) + 0.2 + 0.01 * np.sin(STEPS)  # falls the whole run, a little noise


def run_record(status: Status = Status.FINISHED, summary: RunSummary | None = None) -> Run:
    return Run(
        1,
        "r",
        "",
        status,
        {"lr": 1e-4},
        0.0,
        0.0,
        1.0,
        "cpu",
        1.0,
        None,
        None,
        None,
        None,
        False,
        summary or RunSummary(),
        0,
    )


def frame(train: np.ndarray, eval_steps: list[int] | None = None, eval_loss: list[float] | None = None) -> pd.DataFrame:
    rows = [(1, int(s), 0.0, 0.0, "train_loss", float(v)) for s, v in zip(STEPS, train)]
    rows += [(1, s, 0.0, 0.0, "eval_loss", v) for s, v in zip(eval_steps or [], eval_loss or [])]
    return pd.DataFrame(rows, columns=["run_id", "step", "epoch", "elapsed_s", "name", "value"])


def test_a_healthy_run_has_nothing_to_say() -> None:
    assert annotate(run_record(), frame(HEALTHY, [20, 40, 60, 80, 100], [0.6, 0.45, 0.38, 0.35, 0.34])) == []


def test_a_spike_and_a_divergence() -> None:
    spiky = HEALTHY.copy()
    spiky[50] = 5.0
    [spike] = spikes(STEPS, spiky)
    assert (spike.kind, spike.step) == ("spike", 51) and "loss spike: 5 against about" in spike.hint
    blown = HEALTHY.copy()
    blown[70:] = np.nan
    [divergence] = spikes(STEPS, blown, diverged=True)
    assert (divergence.kind, divergence.step, divergence.lesson) == ("diverged", 71, "learning-rate")


def spike_steps(loss: list[float], *, diverged: bool = False) -> list[tuple[str, int]]:
    """(kind, step) of each spike in a loss curve whose steps are 1, 2, …"""
    return [
        (a.kind, a.step) for a in spikes(np.arange(1, len(loss) + 1), np.array(loss, dtype=float), diverged=diverged)
    ]


def test_a_spike_needs_five_points_before_it_and_three_times_their_median() -> None:
    rest = [1.0] * 30
    assert spike_steps([1, 1, 1, 1, 5, *rest]) == []  # the fifth point: too few before it to judge
    assert spike_steps([1, 1, 1, 2, 2, 4, *rest]) == [("spike", 6)]  # 4 > 3 × median(1, 1, 1, 2, 2) = 3
    assert spike_steps([1] * 8 + [5, *rest]) == [("spike", 9)]  # early on the window is every point before
    assert spike_steps([1] * 30 + [3.0, *rest]) == [] and spike_steps([1] * 30 + [3.01, *rest]) == [("spike", 31)]


def test_a_spike_is_judged_against_the_median_of_the_twenty_points_before_it() -> None:
    # Points 21-30 at 1 and 31-40 at 2: the median of the 20 before point 41 is 1.5, so 5 > 4.5 is a spike; a window of
    # 21 (one more 2) or 19 (one 1 fewer) has median 2, and 5 < 6 would not be.
    loss = [2.0] * 20 + [1.0] * 10 + [2.0] * 10 + [5.0] + [2.0] * 10
    assert spike_steps(loss) == [("spike", 41)]


def test_a_burst_of_spikes_is_marked_once_at_its_start() -> None:
    quiet = [1.0] * 30
    assert spike_steps([*quiet, 5, 1, 1, 1, 1, 5, *quiet]) == [("spike", 31)]  # five steps apart: one burst
    assert spike_steps([*quiet, 5, 1, 1, 1, 1, 1, 5, *quiet]) == [("spike", 31), ("spike", 37)]  # six: two
    chain = [*quiet, 5, 1, 1, 1, 5, 1, 1, 1, 5, *quiet]  # each within five of the last: still one burst
    assert spike_steps(chain) == [("spike", 31)]
    # A diverged run: its first blow-up is the divergence, later ones are spikes; a NaN tail is one burst.
    assert spike_steps([*quiet, 5, *quiet, *[np.nan] * 20], diverged=True) == [("diverged", 31), ("spike", 62)]


def test_a_learning_rate_too_low_and_a_plateau() -> None:
    flat = np.full(100, 0.69) + 0.005 * np.sin(STEPS)
    [low] = lr_too_low(STEPS, flat, lr=1e-7)
    assert (low.kind, low.step) == ("lr_too_low", 100) and "learning rate 1e-07 may be too low" in low.hint
    assert lr_too_low(STEPS, HEALTHY, lr=1e-4) == [] and plateau(STEPS, flat) == []  # flat all along: not a plateau
    stalled = np.concatenate([np.linspace(0.7, 0.3, 50), np.full(50, 0.3)])
    [stop] = plateau(STEPS, stalled)
    assert stop.kind == "plateau" and stop.step == 71 and plateau(STEPS, HEALTHY) == []


def test_overfitting_onset_at_the_eval_minimum() -> None:
    [onset] = overfitting(STEPS, HEALTHY, np.array([20, 40, 60, 80, 100]), np.array([0.6, 0.45, 0.5, 0.6, 0.7]))
    assert (onset.kind, onset.step, onset.metric) == ("overfitting", 40, "eval_loss")
    assert "eval loss was lowest here (0.450) and rose to 0.700" in onset.hint
    # Both losses rising together is a blow-up, not overfitting.
    assert overfitting(STEPS, HEALTHY[::-1], np.array([20, 40, 60]), np.array([0.5, 0.4, 0.6])) == []


def test_overfitting_needs_the_training_loss_to_keep_falling_by_a_tenth() -> None:
    # Training loss flat at 0.5 up to the eval minimum (step 40), then down to `final` by step 70 and flat after it.
    def falling_to(final: float) -> np.ndarray:
        return np.concatenate([np.full(40, 0.5), np.linspace(0.5, final, 31)[1:], np.full(30, final)])

    eval_steps, eval_loss = np.array([20, 40, 60, 80, 100]), np.array([0.6, 0.45, 0.5, 0.6, 0.7])
    [onset] = overfitting(STEPS, falling_to(0.44), eval_steps, eval_loss)  # fell 12%: overfitting
    assert (onset.kind, onset.step) == ("overfitting", 40)
    assert overfitting(STEPS, falling_to(0.46), eval_steps, eval_loss) == []  # fell 8%: it only wandered
    assert overfitting(STEPS, np.full(100, 0.5), eval_steps, eval_loss) == []  # flat: not overfitting either
    risen_only_a_little = np.array([0.6, 0.45, 0.5, 0.46])  # 2% above its minimum at the end: not yet
    assert overfitting(STEPS, HEALTHY, eval_steps[:4], risen_only_a_little) == []
    assert overfitting(STEPS, HEALTHY, eval_steps[:4], np.array([0.6, 0.45, 0.5, 0.47])) != []  # 4.4% above
    assert overfitting(STEPS, HEALTHY, eval_steps[:3], np.array([0.6, 0.5, 0.45])) == []  # still falling


def test_collapse_reads_the_last_confusion_matrix() -> None:
    one_class = run_record(summary=RunSummary(confusion=[[58, 0], [42, 0]], labels=["fresh", "rotten"], eval_step=63))
    [note] = collapse(one_class)
    assert (note.kind, note.step, note.metric) == ("collapse", 63, "f1") and "predicted 'fresh'" in note.hint
    assert collapse(run_record(summary=RunSummary(confusion=[[50, 8], [10, 32]]))) == []


def test_real_runs_read_back_through_show(lab: Lab) -> None:
    tiny = dict(model="tiny", dataset="sms_spam", train_size=320, eval_size=64, max_length=32, batch_size=16)
    cases = {
        "crawl": RunConfig(**tiny, lr=1e-7, schedule="constant"),
        "blow-up": RunConfig(**tiny, lr=50.0, optimizer="sgd", max_grad_norm=0.0, schedule="constant"),
    }
    ids = {}
    for name, config in cases.items():
        run_id = lab.store.create_run(config.to_dict(), name=name).id
        lab.store.claim_run(run_id, pid=1)
        run_job(lab, run_id)
        ids[name] = run_id
    shown = {}
    for name, run_id in ids.items():
        out = subprocess.run(
            [sys.executable, "-m", "bert_lab", "show", str(run_id), "--home", str(lab.data.path), "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        shown[name] = json.loads(out.stdout)
    crawl = {a["kind"] for a in shown["crawl"]["annotations"]}
    assert "lr_too_low" in crawl and "collapse" in crawl  # sms_spam is 87% ham: a model that learned nothing says ham
    assert shown["blow-up"]["status"] == "diverged"
    assert [a["kind"] for a in shown["blow-up"]["annotations"]][:1] == ["diverged"]
    assert set(shown["crawl"]) >= {"id", "status", "config", "metrics", "annotations"}


# === on real runs (the tiny BERT, fp32 so every kind of CPU computes the same curves) ================================
def real_run(**changes: Any) -> tuple[Run, pd.DataFrame]:
    """Train the tiny BERT on sms_spam with `changes`: the run record and its points frame, as the Runs page has."""
    config = RunConfig(
        **{"model": "tiny", "dataset": "sms_spam", "eval_size": 100, "max_length": 32, "dropout": 0.0, **changes},
        precision="fp32",
    )
    records: list[Any] = []
    result = train(config, hooks=Hooks(on_step=records.append, on_eval=records.append))
    rows = [(1, *point) for record in records for point in points(record)]
    summary = RunSummary(confusion=result.eval.confusion, labels=result.label_names, eval_step=result.eval.step)
    run = replace(run_record(summary=summary), config=config.to_dict())
    return run, pd.DataFrame(rows, columns=["run_id", "step", "epoch", "elapsed_s", "name", "value"])


def kinds(run: Run, frame: pd.DataFrame) -> list[str]:
    return [a.kind for a in annotate(run, frame)]


def test_a_real_run_that_memorises_a_few_examples_is_marked_overfitting() -> None:
    run, frame = real_run(
        train_size=64, batch_size=16, lr=1e-3, num_epochs=30, eval_every_steps=10, schedule="constant"
    )
    [note] = [a for a in annotate(run, frame) if a.kind == "overfitting"]
    _, eval_loss = series(frame, "eval_loss")
    _, train_loss = series(frame, "train_loss")
    assert eval_loss[-1] > 1.1 * eval_loss.min() and train_loss[-5:].mean() < 0.1  # memorised, and worse on new texts
    assert note.step < 120 and "collapse" not in kinds(run, frame)


def test_a_real_run_stuck_at_the_majority_class_is_marked_plateau_and_collapse() -> None:
    # Full batches (no batch noise), a rate too low to get past predicting the prior: the loss falls to the entropy of
    # 87% ham (about 0.39) and stays there.
    run, frame = real_run(train_size=64, batch_size=64, lr=1e-4, num_epochs=200, eval_every_steps=50, schedule="cosine")
    assert {"plateau", "collapse"} <= set(kinds(run, frame)) and "overfitting" not in kinds(run, frame)
    _, train_loss = series(frame, "train_loss")
    assert train_loss[-20:].mean() == pytest.approx(0.39, abs=0.03)
