"""Runs sharing a GPU: the memory estimate against real models, slots per GPU, placement by hand-worked examples,
and the worker's slots on a machine whose `nvidia-smi` reports two GPUs (the outside world, patched)."""

from __future__ import annotations

import pytest

from bert_lab.core.config import RunConfig
from bert_lab.engine.model import load_model
from bert_lab.processes import executor as executor_module
from bert_lab.processes.executor import LocalExecutor
from bert_lab.processes.placement import (
    CONTEXT_MB,
    FRACTION_ENV,
    MAX_SLOTS_PER_GPU,
    USABLE,
    model_shape,
    parameters,
    place,
    run_memory_mb,
    slots_per_gpu,
)
from bert_lab.processes.worker import FULL, Worker
from bert_lab.runs.service import Lab


@pytest.mark.parametrize("model", ["minilm", "tiny"])
def test_the_parameter_count_from_the_shape_matches_the_real_model(model: str) -> None:
    real = sum(p.numel() for p in load_model(RunConfig(model=model), ["a", "b"]).parameters())
    assert parameters(model_shape(model)) == pytest.approx(real, rel=1e-4)  # all but the 2-class head


def test_a_minilm_run_needs_about_1_8_gb_and_grows_with_batch_and_length() -> None:
    base = run_memory_mb(RunConfig().to_dict())  # batch 32, max length 128
    assert base == pytest.approx(347 + 486 + CONTEXT_MB, abs=2)
    assert run_memory_mb(RunConfig(batch_size=64).to_dict()) - CONTEXT_MB > 1.5 * (base - CONTEXT_MB)
    assert run_memory_mb(RunConfig(model="tiny").to_dict()) < CONTEXT_MB + 100  # the CUDA context, mostly
    assert slots_per_gpu(24 * 1024, base) == MAX_SLOTS_PER_GPU == slots_per_gpu(80 * 1024, base)
    assert slots_per_gpu(8 * 1024, base) == 4 and slots_per_gpu(1024, base) == 1  # at least one, always


def test_place_picks_the_emptiest_gpu_with_a_slot_and_room() -> None:
    gpus = [24_000.0, 24_000.0]
    assert place([[], []], 2000, gpus, slots=2) == 0
    assert place([[2000], []], 2000, gpus, slots=2) == 1  # the emptier one
    assert place([[2000, 2000], [2000]], 2000, gpus, slots=2) == 1
    assert place([[2000, 2000], [2000, 2000]], 2000, gpus, slots=2) is None  # every slot taken
    assert place([[20_000], []], 2000, gpus, slots=4) == 1 and place([[20_000], [20_000]], 2000, gpus, slots=4) is None
    assert place([[20_000]], 1500, [24_000.0], slots=4) == 0  # 21,500 of 21,600 usable: fits
    assert place([[1, 1, 1]], 1e9, [0.0], slots=4) == 0  # memory unknown: slots alone decide


def test_the_worker_shares_each_gpu_between_runs(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executor_module, "count_gpus", lambda: 2)  # what nvidia-smi would report
    monkeypatch.setattr(executor_module, "gpu_memory_mb", lambda: [8192.0, 8192.0])
    worker = Worker(lab, executor=LocalExecutor(lab, warm_spare=False))
    minilm = run_memory_mb(RunConfig().to_dict())
    assert (worker.slots_per_gpu, worker.max_concurrent) == (4, 8)  # 0.9 × 8 GB holds four 1.8 GB runs
    worker.gpu_of = {1: (0, minilm), 2: (1, minilm), 3: (0, minilm)}
    assert worker._free_gpu(minilm) == 1
    worker.gpu_of |= {4: (1, minilm), 5: (0, minilm), 6: (1, minilm), 7: (0, minilm)}
    assert worker._free_gpu(minilm) == 1 and worker._free_gpu(3 * minilm) == FULL  # a big run waits for room
    monkeypatch.setenv(FRACTION_ENV, "0.9")  # a stale value the worker itself inherited must not win
    env = worker.executor._env(2, 1, USABLE / 4)
    assert (env["CUDA_VISIBLE_DEVICES"], env[FRACTION_ENV]) == ("1", "0.2250")
    cpu_only = Worker(lab, executor=LocalExecutor(lab, warm_spare=False), slots_per_gpu=2)
    assert cpu_only.max_concurrent == 4  # the override wins over the estimate
