"""Annotated curves: each detector on synthetic curves (it fires on its case and stays quiet on a healthy run), and
on real tiny-BERT runs that collapse, crawl or blow up (read back through `python -m bert_lab show --json`), memorise
a few examples, or stall at the majority class."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import FrozenInstanceError, replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bert_lab.core.config import RunConfig
from bert_lab.engine.reports import Hooks, points
from bert_lab.engine.train import train
from bert_lab.figures.curves import ema
from bert_lab.processes.runner import run_job
from bert_lab.runs.records import Run, RunSummary
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.teaching.annotate import (
    Annotation,
    annotate,
    collapse,
    lr_too_low,
    overfitting,
    plateau,
    series,
    spikes,
    still_falling,
)

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


def test_a_nan_from_the_second_point_on_is_a_divergence_there() -> None:
    assert spike_steps([1.0, *[np.nan] * 29], diverged=True) == [("diverged", 2)]


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


SLOW = np.linspace(0.70, 0.69, 100) + 0.002 * np.sin(STEPS)  # fell 1.4%, and still falling at the end


def test_a_learning_rate_too_low_and_a_plateau() -> None:
    flat = np.full(100, 0.69) + 0.005 * np.sin(STEPS)
    [low] = lr_too_low(STEPS, SLOW, lr=1e-7)
    assert (low.kind, low.step) == ("lr_too_low", 100) and "learning rate 1e-07 may be too low" in low.hint
    assert "(0.700 → 0.691) and is still falling slowly" in low.hint
    assert lr_too_low(STEPS, HEALTHY, lr=1e-4) == [] and plateau(STEPS, flat) == []  # flat all along: not a plateau
    stalled = np.concatenate([np.linspace(0.7, 0.3, 50), np.full(50, 0.3)])
    [stop] = plateau(STEPS, stalled)
    assert stop.kind == "plateau" and stop.step == 71 and plateau(STEPS, HEALTHY) == []


def test_a_learning_rate_too_low_needs_twenty_steps_and_compares_the_first_tenth_with_the_end() -> None:
    # One high first point (1.04), then 1.0. The smoothed loss (EMA 0.9, bias-corrected) is 1 + 0.04 · 0.9^k / Σ0.9^j:
    # 1.04, 1.0189, 1.0120, 1.0085, … The start is the mean of the first max(3, n // 10) smoothed points: 1.024 over 3
    # (n = 20 and 36), 1.020 over 4 (n = 40); a fall of about 2% either way, under 3%. A flat 1.0 after it is no
    # evidence of slow learning (a collapsed run is flat too); a tail that still falls by 0.005 is.
    def hint(n: int, tail_drop: float = 0.005) -> list[str]:
        loss = np.array([1.04, *np.linspace(1.0, 1.0 - tail_drop, n - 1)])
        return [a.hint.split(")")[0] for a in lr_too_low(np.arange(1, n + 1), loss, lr=1e-5)]

    assert hint(19) == []  # too short to say anything
    assert hint(20) == ["the training loss hardly fell (1.024 → 0.997"]
    assert hint(36) == ["the training loss hardly fell (1.024 → 0.996"]
    assert hint(40) == ["the training loss hardly fell (1.020 → 0.996"]
    assert hint(40, tail_drop=0.0) == []  # flat: nothing says the learning rate is too low
    assert lr_too_low(STEPS, np.zeros(100), lr=1e-5) == []  # a loss of zero fell as far as it can
    # 2.0 then a last point of 1.65: one low point is no trend. A steady 2.0 → 1.95: the end is the last smoothed
    # point, a fall of about 2% of the start (as a share: 0.04 × 2.0 would be 8%).
    assert lr_too_low(np.arange(1, 21), np.array([2.0] * 19 + [1.65]), lr=1e-5) == []
    loss = np.linspace(2.0, 1.95, 20)
    [crawl] = lr_too_low(np.arange(1, 21), loss, lr=1e-5)
    assert f"(1.999 → {ema(loss, 0.9)[-1]:.3f})" in crawl.hint and 1.96 < ema(loss, 0.9)[-1] < 1.97
    assert lr_too_low(STEPS, np.where(STEPS == 50, np.nan, SLOW), lr=1e-5) == []  # a NaN: the divergence speaks


def test_still_falling_needs_a_significant_downward_trend() -> None:
    rng = np.random.default_rng(7)
    noise = 0.05 * rng.standard_normal(50)
    assert still_falling(np.linspace(0.7, 0.69, 50))  # no noise: any fall is a trend
    assert not still_falling(np.full(50, 0.69)) and not still_falling(np.linspace(0.69, 0.7, 50))  # flat, rising
    assert not still_falling(0.69 + noise)  # batch noise alone
    assert still_falling(np.linspace(0.74, 0.64, 50) + noise)  # 0.1 down under noise of 0.05: a trend
    assert not still_falling(np.array([0.7, 0.6]))  # too few points to tell


def test_a_collapse_is_never_called_a_learning_rate_too_low() -> None:
    # lr 1e-3 collapsed onto the majority class: the loss sits at ~0.69, flat. Even if its batch noise happened to
    # trend down, a run predicting one class gets the collapse note, not "too low" (its rate was too high).
    collapsed = RunSummary(confusion=[[58, 0], [42, 0]], labels=["fresh", "rotten"], eval_step=100)
    run = replace(run_record(summary=collapsed), config={"lr": 1e-3, "schedule": "constant"})
    assert kinds(run, frame(np.full(100, 0.69) + 0.005 * np.sin(STEPS))) == ["collapse"]
    assert kinds(run, frame(SLOW)) == ["collapse"]
    assert kinds(replace(run, summary=RunSummary()), frame(SLOW)) == ["lr_too_low"]  # not collapsed: slow it is
    # Flat without a collapse (before the first evaluation) is not "too low" either: nothing says which way to go.
    assert kinds(replace(run, summary=RunSummary()), frame(np.full(100, 0.69) + 0.005 * np.sin(STEPS))) == []


def test_an_lr_range_test_gets_no_training_notes() -> None:
    # The range test's loss rises from 0.69 to 7.5 as its learning rate reaches 1: the test working, not a problem.
    test_config = {"lr": 1.0, "schedule": "range_test", "range_start_lr": 1e-7}
    rising = np.concatenate([np.full(60, 0.69), np.geomspace(0.69, 7.5, 40)])
    run = replace(run_record(), config=test_config)
    assert run.is_range_test and annotate(run, frame(rising)) == [] and annotate(run, frame(SLOW)) == []
    assert kinds(replace(run, config={"lr": 1.0, "schedule": "constant"}), frame(SLOW)) == ["lr_too_low"]


def plateau_at(loss: list[float], schedule: str = "constant") -> list[tuple[int, str]]:
    return [(a.step, a.hint) for a in plateau(np.arange(1, len(loss) + 1), np.array(loss), schedule=schedule)]


def test_a_plateau_needs_a_fall_of_six_percent_from_the_first_tenth_and_a_hundred_steps() -> None:
    # 100 steps: the first tenth (steps 1-10) against steps 71-85; flat after step 70, so nothing moved.
    fell_6 = [1.0] * 10 + [0.97] * 60 + [0.94] * 30
    assert plateau_at(fell_6) == [
        (
            71,
            "plateau: the training loss stopped improving after step 71 (about 0.940); a decaying schedule or a lower "
            "learning rate can get it moving",
        )
    ]
    assert plateau_at([1.0] * 10 + [0.97] * 60 + [0.95] * 30) == []  # fell 5%: under 2 × 3%
    assert plateau_at([2.0] * 10 + [1.95] * 60 + [1.90] * 30) == []  # 5% of a loss of 2: a share, not 0.1 × 2
    stalled_with_a_nan = [*np.linspace(0.7, 0.3, 50), *[0.3] * 50]
    stalled_with_a_nan[20] = np.nan
    assert plateau_at(stalled_with_a_nan) == []  # a NaN: the run diverged, not stalled
    assert plateau_at([1.0] * 10 + [0.5] * 60 + [0.94] * 30) != []  # step 11 is not in the first tenth
    assert plateau_at([1.0] * 9 + [0.4] + [0.97] * 60 + [0.94] * 30) == []  # step 10 is: the first tenth is 0.94
    assert (
        plateau_at([1.0] * 10 + [0.7] * 60 + [0.5] * 30) != []
        and plateau_at([1.0] * 10 + [0.7] * 59 + [0.5] * 30) == []
    )


def test_a_plateau_compares_the_two_halves_of_the_last_thirty_percent() -> None:
    # Steps 71-85 at 0.5 and 86-100 at `late`: a 0.4% move is a plateau (about the later half's mean), 2% is not.
    [(step, hint)] = plateau_at([1.0] * 10 + [0.7] * 60 + [0.5] * 15 + [0.502] * 15, schedule="cosine")
    assert step == 71 and "(about 0.502); the schedule already decays: more (or cleaner) data helps" in hint
    assert plateau_at([1.0] * 10 + [0.7] * 60 + [0.5] * 15 + [0.51] * 15) == []


def test_a_collapse_names_the_class_or_its_number_and_needs_one_class_used() -> None:
    onto_rotten = RunSummary(confusion=[[0, 58], [0, 42]], labels=["fresh", "rotten"], eval_step=63)
    [note] = collapse(run_record(summary=onto_rotten))
    assert note.step == 63 and "predicted 'rotten'" in note.hint and note.lesson == "accuracy-vs-f1"
    [unnamed] = collapse(run_record(summary=RunSummary(confusion=[[0, 0, 5], [0, 0, 7], [0, 0, 9]])))
    assert "predicted 'class 2'" in unnamed.hint and unnamed.step == 0  # no labels, no eval step recorded
    assert collapse(run_record(summary=RunSummary(confusion=[[5, 0, 1], [7, 0, 0], [9, 0, 0]]))) == []  # two used
    assert collapse(run_record()) == []  # no evaluation yet


def test_annotate_reads_its_own_runs_points_in_step_order_and_marks_a_silent_divergence() -> None:
    # A healthy curve with a spike at step 31, and a collapse at step 20: in step order, whatever order they are found.
    spiky = HEALTHY.copy()
    spiky[30] = 5.0
    collapsed = RunSummary(confusion=[[58, 0], [42, 0]], labels=["fresh", "rotten"], eval_step=20)
    other = frame(np.full(100, 9.0)).assign(run_id=2)  # another run's points in the same frame: not read
    run = replace(run_record(summary=collapsed), config={"lr": 1e-4, "schedule": "cosine"})
    found = annotate(run, pd.concat([frame(spiky), other]))
    assert [(a.kind, a.step) for a in found] == [("collapse", 20), ("spike", 31)]
    # The run's own learning rate and schedule reach the hints.
    stalled = np.concatenate([np.linspace(0.7, 0.3, 50), np.full(50, 0.3)])
    slow = replace(run_record(), config={"lr": 3e-6, "schedule": "cosine"})
    hints = {a.kind: a.hint for a in annotate(slow, frame(stalled)) + annotate(slow, frame(SLOW))}
    assert (
        "the schedule already decays" in hints["plateau"]
        and "learning rate 3e-06 may be too low" in hints["lr_too_low"]
    )
    # Overfitting is not claimed for a run that collapsed: its eval loss can rise while it learns nothing.
    eval_steps, rising = [20, 40, 60, 80, 100], [0.6, 0.45, 0.5, 0.6, 0.7]
    assert "overfitting" not in [a.kind for a in annotate(run, frame(HEALTHY, eval_steps, rising))]
    assert "overfitting" in [a.kind for a in annotate(run_record(), frame(HEALTHY, eval_steps, rising))]
    # Diverged with no blow-up in its points (it stopped first): marked at its last step, with the reason stored.
    quiet = replace(run_record(status=Status.DIVERGED), error="loss became nan")
    [diverged] = annotate(quiet, frame(HEALTHY))
    assert (diverged.kind, diverged.step) == ("diverged", 100) and diverged.hint.endswith("loss became nan")
    [default] = annotate(run_record(status=Status.DIVERGED), frame(HEALTHY))
    assert default.hint == "the run diverged: the loss became NaN or huge"
    assert annotate(run_record(status=Status.DIVERGED), frame(np.array([]))) == []  # no points: nowhere to mark it
    crawled = [(a.kind, a.step) for a in annotate(quiet, frame(SLOW))]
    assert crawled == [("lr_too_low", 100), ("diverged", 100)]  # another note is no divergence mark
    blown = HEALTHY.copy()
    blown[70:] = np.nan
    assert [(a.kind, a.step) for a in annotate(quiet, frame(blown))] == [("diverged", 71)]  # marked once, where it blew


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


def test_overfitting_needs_three_evaluations_and_measures_the_fall_from_the_eval_minimum() -> None:
    eval_steps, eval_loss = np.array([20, 40, 60, 80, 100]), np.array([0.6, 0.45, 0.5, 0.6, 0.7])

    def train_loss(first: float, final: float, *, at_40: float = 0.5, last: float | None = None) -> np.ndarray:
        """`first` for steps 1-10, 0.5 to step 39, `at_40` at step 40 (the eval minimum), down to `final` by step 70,
        flat after it (`last` at step 100)."""
        loss = [first] * 10 + [0.5] * 29 + [at_40] + [*np.linspace(0.5, final, 31)[1:]] + [final] * 30
        return np.array(loss[:-1] + [final if last is None else last])

    assert overfitting(STEPS, train_loss(0.5, 0.44), eval_steps[[1, 3]], eval_loss[[1, 3]]) == []  # two: too few
    [onset] = overfitting(STEPS, train_loss(0.5, 0.44), eval_steps[[0, 1, 3]], eval_loss[[0, 1, 3]])
    assert onset.step == 40 and "rose to 0.600" in onset.hint
    # The training loss at the eval minimum, not at the start, is what must have fallen by a tenth: 0.8 → 0.46 is 42%,
    # 0.5 → 0.46 only 8%.
    assert overfitting(STEPS, train_loss(0.8, 0.46), eval_steps, eval_loss) == []
    # … to its smoothed value at the last step: a last point of 0.3 takes the smoothed 0.46 to 0.444, 11% below 0.5.
    assert overfitting(STEPS, train_loss(0.5, 0.46, last=0.3), eval_steps, eval_loss) != []
    # … from its smoothed value at the eval minimum's step: 0.3 at step 40 makes it 0.48, and 0.44 is only 8% below.
    assert overfitting(STEPS, train_loss(0.5, 0.44, at_40=0.3), eval_steps, eval_loss) == []


def test_annotations_are_frozen_and_read_as_plain_dicts() -> None:
    note = Annotation("spike", 31, "loss spike", "learning-rate")
    assert note.to_dict() == {"kind": "spike", "step": 31, "hint": "loss spike", "lesson": "learning-rate"}
    with pytest.raises(FrozenInstanceError):
        note.step = 1  # type: ignore[misc]


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
    # sms_spam is 87% ham: a model that learned nothing says ham. The tiny BERT's loss at lr 1e-7 is flat, as a
    # collapsed run's is: the collapse is what the curves can show, not which way the learning rate is off.
    assert "collapse" in crawl and "lr_too_low" not in crawl
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
