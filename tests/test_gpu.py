"""The GPU path: placement, bf16, fp16 with loss scaling, no host synchronisation per step, and two runs sharing one
GPU through the worker. Skipped where no CUDA device is present; `bench/gpu_check.sh` runs them on a GPU machine. The
GPU benchmark's smoke run is tested everywhere, so its CPU-side parts stay working without a GPU."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from bert_lab.core.config import RunConfig
from bert_lab.engine.reports import Hooks, Stop
from bert_lab.engine.train import train
from bert_lab.processes.worker import Worker
from bert_lab.runs.service import Lab, submit
from bert_lab.runs.status import Status

ROOT = Path(__file__).resolve().parents[1]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
# rotten_tomatoes: the one data package the GPU machine is given (bench/gpu_prepare.sh).
TINY = dict(
    model="tiny", dataset="rotten_tomatoes", train_size=320, eval_size=64, max_length=32, batch_size=16, lr=1e-3
)


class RecordingAccelerator(Accelerator):
    """The training loop's Accelerator, kept for the test to inspect (its model and its loss scaler)."""

    made: list[RecordingAccelerator] = []

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        RecordingAccelerator.made.append(self)

    def prepare(self, *args: object, **kwargs: object) -> object:
        self.prepared = super().prepare(*args, **kwargs)
        return self.prepared


@pytest.fixture(autouse=True)
def fresh_accelerate_state() -> None:
    """accelerate keeps its state (precision included) per process; these tests train in several precisions."""
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture
def accelerators(monkeypatch: pytest.MonkeyPatch) -> list[RecordingAccelerator]:
    RecordingAccelerator.made = []
    monkeypatch.setattr("bert_lab.engine.train.Accelerator", RecordingAccelerator)
    return RecordingAccelerator.made


@needs_cuda
def test_a_run_trains_on_the_gpu(accelerators: list[RecordingAccelerator]) -> None:
    result = train(RunConfig(**TINY, precision="fp32"))
    assert result.stop == Stop.COMPLETED and result.device == "cuda:0" and result.precision == "fp32"
    model = accelerators[0].prepared[0]
    assert {p.device.type for p in model.parameters()} == {"cuda"}


@needs_cuda
def test_bf16_run_finishes_with_finite_losses() -> None:
    losses: list[float] = []
    result = train(RunConfig(**TINY, precision="bf16"), hooks=Hooks(on_step=lambda r: losses.append(r.loss)))
    assert result.stop == Stop.COMPLETED and result.precision == "bf16"
    assert len(losses) == result.steps and all(map(math.isfinite, losses))
    assert math.isfinite(result.eval.loss)


@needs_cuda
def test_fp16_run_scales_its_loss(accelerators: list[RecordingAccelerator]) -> None:
    result = train(RunConfig(**TINY, precision="fp16"))
    assert result.stop == Stop.COMPLETED and result.precision == "fp16"
    scaler = accelerators[0].scaler  # a GradScaler: fp16 gradients would underflow without loss scaling
    assert scaler is not None and scaler.is_enabled() and scaler.get_scale() > 0
    assert math.isfinite(result.eval.loss)


@needs_cuda
def test_training_steps_do_not_wait_for_the_gpu() -> None:
    """With CUDA's sync debug mode on, every host synchronisation raises a warning. None may come from the steps
    (between the first step record and the last; only the final evaluation follows), apart from the model's own
    check whether a batch has padding (transformers' masking_utils), reported here."""
    marks: list[int] = []  # how many warnings had been raised at each step record
    config = RunConfig(**{**TINY, "train_size": 640}, precision="bf16", eval_every_steps=10**6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            result = train(config, hooks=Hooks(on_step=lambda _: marks.append(len(caught))))
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert result.stop == Stop.COMPLETED and len(marks) == result.steps == 40
    in_steps = [w for w in caught[marks[0] : marks[-1]] if "synchroniz" in str(w.message)]
    ours = [f"{w.filename}:{w.lineno}" for w in in_steps if "masking_utils" not in w.filename]
    assert not ours, f"{len(ours)} host synchronisations in {len(marks) - 1} steps: {sorted(set(ours))}"
    print(f"{len(in_steps)} synchronisations in {len(marks) - 1} steps, all in transformers' padding check")


@needs_cuda
@pytest.mark.timeout(400)
def test_two_runs_share_one_gpu_through_the_worker(lab: Lab) -> None:
    config = RunConfig(**{**TINY, "train_size": 4000}, num_epochs=3.0)  # 750 steps each: long enough to overlap
    ids = [submit(lab, replace(config, seed=i), name=f"gpu-{i}").id for i in range(2)]  # two runs, not one cached
    Worker(lab, max_concurrent=2, poll_interval_s=0.1).run(exit_when_idle=True)
    runs = [lab.store.get_run(i) for i in ids]
    assert [r.status for r in runs] == [Status.FINISHED] * 2, [r.error for r in runs]
    assert [r.device for r in runs] == ["cuda:0", "cuda:0"]
    # Overlapping in time: each run wrote training points before the other's last one (point ids increase
    # store-wide in the order they were written, every half second from each run).
    a, b = ([p.id for p in lab.store.read_metrics(i, names=["train_loss"])] for i in ids)
    assert min(a) < max(b) and min(b) < max(a), "the two runs did not train at the same time"


def test_gpu_benchmark_smoke_run(tmp_path: Path) -> None:
    """Every part of bench/gpu_bench.py (peak, model folders, both contenders in child processes, the report) at toy
    sizes, on whatever device this machine has."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_bench.py"), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "| toy |" in proc.stdout and "bert_lab / Trainer bf16 =" in proc.stdout
    report = json.loads(out.read_text())
    runs = report["runs"]["toy"]
    assert set(runs) == {"bert_lab", "trainer_bf16"}
    assert all(r["samples_per_s"] > 0 and r["mfu"] > 0 and r["steps"] == 2 for r in runs.values())
    assert report["peak"]["tflops"] > 0
