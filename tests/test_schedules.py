from __future__ import annotations

import math

import pytest

from bert_lab.core.config import RunConfig
from bert_lab.engine.schedules import lr_at, lr_curve, lr_factor


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


def test_unknown_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_factor(3, schedule="wobbly", total_steps=10)


def test_count_steps_matches_the_training_plan() -> None:
    from bert_lab.engine.schedules import count_steps
    from bert_lab.engine.train import plan_steps

    for n, batch, accum, epochs, procs in [
        (100, 8, 3, 1.5, 1),
        (64, 4, 1, 1.0, 2),
        (2000, 32, 1, 1.0, 1),
        (7, 16, 1, 3.0, 1),
        (300, 32, 2, 0.5, 2),
    ]:
        per_epoch, total = count_steps(n, batch, accum, epochs, procs)
        plan = plan_steps(RunConfig(batch_size=batch, grad_accum_steps=accum, num_epochs=epochs), [10] * n, procs)
        assert (plan.steps_per_epoch, len(plan)) == (per_epoch, total)
