"""A run's checkpoint and model against faults: a process killed while it writes its checkpoint resumes from the last
whole one; a full disk stops the run with a clear reason, resumable, its previous checkpoint intact and nothing
half-written left to read. Real training of the tiny model; only the outside world (torch's file writes, a rename,
the kernel's answer of "no space") is made to fail."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bert_lab.core.config import RunConfig
from bert_lab.core.layout import RunFolder, staged
from bert_lab.engine.reports import Hooks, Stop
from bert_lab.engine.train import train
from bert_lab.processes.runner import run_job
from bert_lab.runs import service
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status

ROOT = Path(__file__).resolve().parents[1]
# 10 steps, a checkpoint at every second one: the second checkpoint (step 4) replaces the first (step 2).
RUN = dict(model="tiny", dataset="sms_spam", train_size=160, eval_size=32, max_length=32, batch_size=16)
CONFIG = RunConfig(**RUN, eval_every_steps=2, precision="fp32")

KILLED_WHILE_CHECKPOINTING = """
import os, signal, sys
from pathlib import Path
import torch
from bert_lab.core.config import RunConfig
from bert_lab.core.layout import RunFolder
from bert_lab.engine.train import train

folder, moment = RunFolder(Path(sys.argv[1])), sys.argv[2]
config = RunConfig.from_dict(__import__("json").loads(sys.argv[3]))
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
if moment == "writing":  # half of a file of the second checkpoint written, then killed
    def save(obj, f, *args, **kwargs):
        if folder.checkpoint.exists():
            Path(f).write_bytes(b"half a tensor")
            die()
        return write(obj, f, *args, **kwargs)
    write, torch.save = torch.save, save
else:  # "swapping": the second checkpoint whole, the first moved aside, killed before the new one is moved in
    def rename(self, target):
        if self.name == "checkpoint.tmp" and Path(target).with_name("checkpoint.old").exists():
            die()
        return move(self, target)
    move, Path.rename = Path.rename, rename
train(config, folder=folder, checkpoint=True)
"""


def steps_of(config: RunConfig, folder: RunFolder) -> list[int]:
    """Train `config` on from `folder`'s checkpoint to the end; the steps it trained."""
    steps: list[int] = []
    result = train(
        config, folder=folder, checkpoint=True, resume=True, hooks=Hooks(on_step=lambda r: steps.append(r.step))
    )
    assert result.stop == Stop.COMPLETED and folder.has_model
    return steps


@pytest.mark.parametrize(("moment", "resumes_after"), [("writing", 2), ("swapping", 4)])
def test_a_run_killed_while_it_writes_a_checkpoint_resumes_from_the_last_whole_one(
    tmp_path: Path, moment: str, resumes_after: int
) -> None:
    """kill -9 half-way through the second checkpoint's files: the first is whole and used. Killed between moving
    the first aside and moving the second in (no `checkpoint/` at all): the second is whole, so it is used."""
    folder = RunFolder(tmp_path / "run")
    script = [sys.executable, "-c", KILLED_WHILE_CHECKPOINTING, str(folder.path), moment, json.dumps(CONFIG.to_dict())]
    done = subprocess.run(
        script, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert done.returncode == -9, done.stderr[-2000:]
    assert (moment == "swapping") != folder.checkpoint.exists()  # the state each kill leaves
    assert steps_of(CONFIG, folder) == list(range(resumes_after + 1, 11))
    assert not staged(folder.checkpoint).exists() and not folder.checkpoint.with_name("checkpoint.old").exists()


def no_space(path: object) -> None:
    """What a write into a full disk does: part of the file, then the kernel's ENOSPC."""
    Path(str(path)).write_bytes(b"half a tensor")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def test_a_full_disk_while_checkpointing_stops_the_run_resumably_with_its_last_checkpoint_whole(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = service.submit(lab, CONFIG, name="disk fills")
    assert lab.store.claim_run(run.id, pid=os.getpid(), device="cpu")
    folder = lab.data.run(run.id)
    real = torch.save

    def save(obj: object, f: object, *args: object, **kwargs: object) -> None:
        if folder.checkpoint.exists():  # room for the first checkpoint only
            no_space(f)
        real(obj, f, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch, "save", save)
    assert run_job(lab, run.id) == 1
    stopped = lab.store.get_run(run.id)
    assert stopped.status == Status.INTERRUPTED and stopped.error.startswith("the disk is full: free some space")
    assert "No space left on device" in stopped.error
    assert json.loads(folder.checkpoint_state.read_text())["step"] == 2  # the previous checkpoint, whole
    assert not staged(folder.checkpoint).exists() and not folder.model.exists()  # nothing half-written left

    monkeypatch.undo()  # space freed
    service.resume(lab, run.id)
    assert lab.store.claim_run(run.id, pid=os.getpid(), device="cpu")
    assert run_job(lab, run.id) == 0
    assert lab.store.get_run(run.id).status == Status.FINISHED and folder.has_model
    steps = [p.step for p in lab.store.read_metrics(run.id, names=["train_loss"])]
    assert steps == list(range(1, 11))  # each step's point once: those past the checkpoint dropped and trained again


def test_a_full_disk_while_saving_the_model_leaves_no_half_written_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers.modeling_utils

    monkeypatch.setattr(
        transformers.modeling_utils, "safe_save_file", lambda tensors, filename, **_: no_space(filename)
    )
    folder = RunFolder(tmp_path / "run")
    with pytest.raises(OSError, match="No space left"):
        train(CONFIG, folder=folder)
    assert not folder.model.exists() and not staged(folder.model).exists() and not folder.has_model
