"""`bert-lab export ID… --format tensorboard`: the event files, read back with TensorBoard's own reader (its event
accumulator and its HParams plugin's records), show each run's scalars and hyperparameters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from bert_lab.core.config import RunConfig
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status


def export(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bert_lab", "export", *args, "--home", str(home)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def finished_run(lab: Lab, lr: float, accuracy: float) -> int:
    run = lab.store.create_run(RunConfig(lr=lr, schedule="cosine", dropout=None).to_dict(), name=f"lr {lr}")
    lab.store.claim_run(run.id, pid=1)
    points = [(step, step / 10, step * 0.5, "train_loss", 1.0 / step) for step in range(1, 11)]
    points += [
        (10, 1.0, 5.0, "accuracy", accuracy),
        (10, 1.0, 5.0, "f1", accuracy - 0.1),
        (10, 1.0, 5.0, "eval_loss", 0.4),
    ]
    points += [(5, 0.5, 2.5, "accuracy", float("nan"))]  # a NaN point is left out, not written as NaN
    lab.store.add_metrics(run.id, points)
    lab.store.set_status(run.id, Status.FINISHED)
    return run.id


def test_exported_runs_show_their_scalars_and_hyperparameters_in_tensorboards_reader(lab: Lab, tmp_path: Path) -> None:
    ids = [finished_run(lab, 1e-4, 0.8), finished_run(lab, 3e-3, 0.55)]
    done = export(lab.data.path, *map(str, ids), "--format", "tensorboard", "--out", str(tmp_path / "tb"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote 2 run(s) under {tmp_path / 'tb'}: tensorboard --logdir {tmp_path / 'tb'}"
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == [f"run-{i}" for i in ids]
    for run_id, lr, accuracy in zip(ids, (1e-4, 3e-3), (0.8, 0.55)):
        events = EventAccumulator(str(tmp_path / "tb" / f"run-{run_id}"))
        events.Reload()
        assert {"train/train_loss", "eval/accuracy", "eval/f1", "eval/eval_loss"} <= set(events.Tags()["scalars"])
        losses = events.Scalars("train/train_loss")
        assert [e.step for e in losses] == list(range(1, 11)) and losses[-1].value == pytest.approx(0.1)
        assert [(e.step, e.value) for e in events.Scalars("eval/accuracy")] == [(10, pytest.approx(accuracy))]
        assert events.Scalars("hparam/accuracy")[0].value == pytest.approx(accuracy)
        [start] = [
            plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
            for content in events.PluginTagToContent("hparams").values()
            if plugin_data_pb2.HParamsPluginData.FromString(content).HasField("session_start_info")
        ]
        hparams = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
        assert hparams["lr"] == pytest.approx(lr) and hparams["schedule"] == "cosine"
        assert hparams["dropout"] == "default" and hparams["run"] == f"#{run_id} lr {lr}"


def test_tensorboard_export_needs_a_folder_and_real_runs(lab: Lab, tmp_path: Path) -> None:
    run_id = finished_run(lab, 1e-4, 0.8)
    nowhere = export(lab.data.path, str(run_id), "--format", "tensorboard")
    assert nowhere.returncode == 2 and "--out DIR names the folder for the logs" in nowhere.stderr
    missing = export(lab.data.path, str(run_id), "999", "--format", "tensorboard", "--out", str(tmp_path / "x"))
    assert missing.returncode == 2 and "no run with id 999" in missing.stderr and not (tmp_path / "x").exists()
