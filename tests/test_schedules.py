from __future__ import annotations

import math

import pytest

from bert_lab.core.config import RunConfig
from bert_lab.engine.schedules import count_steps, first_drop_step, lr_at, lr_curve, lr_factor


def test_constant_is_flat() -> None:
    c = RunConfig(schedule="constant", lr=3e-4)
    assert lr_curve(c, 50) == [3e-4] * 50


@pytest.mark.parametrize("step", [0, 1, 37, 100, 250, 999])
def test_exponential_matches_formula(step: int) -> None:
    c = RunConfig(schedule="exponential", lr=1e-3, decay_rate=0.8, decay_steps=50)
    assert lr_at(c, step, 1000) == pytest.approx(1e-3 * 0.8 ** (step / 50))


@pytest.mark.parametrize(("step", "drops"), [(0, 0), (29, 0), (30, 1), (59, 1), (60, 2), (95, 3)])
def test_step_is_a_staircase(step: int, drops: int) -> None:
    c = RunConfig(schedule="step", lr=1e-2, step_size=30, gamma=0.1)
    assert lr_at(c, step, 100) == pytest.approx(1e-2 * 0.1**drops)


def test_linear_warmup_then_decay_to_zero() -> None:
    c = RunConfig(schedule="linear", lr=1e-4, warmup_steps=10)
    assert lr_at(c, 0, 110) == 0.0
    assert lr_at(c, 5, 110) == pytest.approx(0.5e-4)
    assert lr_at(c, 10, 110) == pytest.approx(1e-4)
    assert lr_at(c, 60, 110) == pytest.approx(0.5e-4)
    assert lr_at(c, 110, 110) == 0.0


def test_cosine_with_warmup() -> None:
    c = RunConfig(schedule="cosine", lr=2e-4, warmup_steps=20)
    assert lr_at(c, 10, 220) == pytest.approx(1e-4)
    assert lr_at(c, 20, 220) == pytest.approx(2e-4)
    assert lr_at(c, 120, 220) == pytest.approx(1e-4)  # half way through the decay: cos(π/2)
    assert lr_at(c, 70, 220) == pytest.approx(2e-4 * 0.5 * (1 + math.cos(math.pi * 0.25)))
    assert lr_at(c, 220, 220) == pytest.approx(0.0)


@pytest.mark.parametrize("schedule", ["constant", "exponential", "step", "linear", "cosine"])
def test_warmup_works_with_every_schedule(schedule: str) -> None:
    c = RunConfig(schedule=schedule, lr=1.0, warmup_steps=4)
    assert [lr_at(c, s, 100) for s in range(5)] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])


def test_decay_counts_from_the_end_of_warmup() -> None:
    c = RunConfig(schedule="step", lr=1.0, warmup_steps=10, step_size=5, gamma=0.5)
    assert lr_at(c, 14, 100) == 1.0 and lr_at(c, 15, 100) == 0.5


def test_the_range_test_climbs_exponentially_from_its_start_to_lr_at_the_last_step() -> None:
    c = RunConfig(schedule="range_test", lr=1e-2, range_start_lr=1e-5)  # 1e-3 of lr at the first step
    assert lr_at(c, 0, 11) == pytest.approx(1e-5) and lr_at(c, 10, 11) == pytest.approx(1e-2)
    assert lr_at(c, 5, 11) == pytest.approx(1e-2 * 1e-3**0.5)  # half way up, in log terms
    assert lr_curve(c, 2) == pytest.approx([1e-5, 1e-2]) and lr_curve(c, 1) == pytest.approx([1e-5])


def test_by_default_no_warmup_and_a_halving_every_100_steps() -> None:
    assert lr_factor(0, schedule="linear", total_steps=10) == 1.0
    assert lr_factor(100, schedule="exponential", total_steps=1000) == pytest.approx(0.5)
    assert (
        lr_factor(99, schedule="step", total_steps=1000) == 1.0
        and lr_factor(100, schedule="step", total_steps=1000) == 0.5
    )


def test_unknown_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_factor(3, schedule="wobbly", total_steps=10)


@pytest.mark.parametrize(
    ("n_train", "batch_size", "grad_accum_steps", "num_epochs", "num_processes", "steps"),
    [
        (100, 8, 3, 1.5, 1, (5, 8)),  # 13 batches, 3 to a step: 5 a round (the last short); 1.5 × 5 = 7.5 → 8
        (64, 4, 1, 1.0, 2, (8, 8)),  # 16 batches shared by 2 processes: 8 each
        (300, 32, 2, 0.5, 2, (3, 2)),  # 10 batches, 5 each, 2 to a step: 3; half an epoch: 1.5 → 2
        (7, 16, 1, 3.0, 1, (1, 3)),  # one short batch an epoch
        (3, 4, 1, 1.0, 4, (1, 1)),  # fewer batches than processes: each still takes a step
        (5, 8, 1, 0.1, 1, (1, 1)),  # a tenth of a one-step epoch is still one step
    ],
)
def test_count_steps_by_hand(
    n_train: int, batch_size: int, grad_accum_steps: int, num_epochs: float, num_processes: int, steps: tuple
) -> None:
    assert count_steps(n_train, batch_size, grad_accum_steps, num_epochs, num_processes) == steps


def test_count_steps_is_for_one_process_unless_told() -> None:
    assert count_steps(2000, 32, 1, 1.0) == (63, 63)  # 62.5 batches: the last one short


def test_the_first_drop_of_step_decay_is_where_the_curve_first_falls() -> None:
    config = RunConfig(schedule="step", step_size=40, warmup_steps=10, gamma=0.5)
    curve = lr_curve(config, 120)
    first = first_drop_step(config)
    assert first == 50 and curve[first] < curve[first - 1] == config.lr  # the staircase's first step down
    default = RunConfig(schedule="step")
    assert len(set(lr_curve(default, 63))) == 1 and first_drop_step(default) == 100 > 63  # flat: the run ends first
    assert first_drop_step(RunConfig(schedule="exponential")) is None
