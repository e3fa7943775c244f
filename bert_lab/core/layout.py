"""Where files live. A data folder holds the lab's files; each run has a folder of its own inside it.

    <data folder>/               this machine's (`--home`, `$BERT_LAB_HOME`)
        runs.sqlite              the default store (SQLite; another store, such as PostgreSQL, lives elsewhere)
        worker.lock  worker.log  standby.log  worker.warm
    <artifact root>/             what every machine reads: the data folder itself, unless `--artifacts`
                                 (`$BERT_LAB_ARTIFACTS`) names a folder they share (several machines, one store)
        workshop.json  names.json  workshop.secret   the host's settings; claimed names; what signs tokens
        uploads/<name>-<hash>.csv  uploads/<owner hash>/<name>-<hash>.csv   a workshop participant's own
        runs/<id>/
            output.log           the run process's stdout and stderr
            checkpoint/          the latest checkpoint (removed when the run finishes); .tmp and .old beside it
                                 only while it is replaced (`swap_in`), as model.tmp/ while the model is saved
            model/               the fine-tuned model, ready for `pipeline`
            run_config.json  eval_report.json

Every path is decided here; the store keeps rows, never files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class StoredRun(Protocol):
    """What `DataFolder.folder_of` needs of a run (`runs.records.Run`, a floor above)."""

    id: int
    cached_from: int | None


HOME_ENV = "BERT_LAB_HOME"
ARTIFACTS_ENV = "BERT_LAB_ARTIFACTS"
DEFAULT_HOME = "lab_data"
DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson")  # the files a dataset is read from (engine/data.py)
CHECKPOINT_ACCELERATE, CHECKPOINT_STATE = "accelerate", "state.json"  # inside a checkpoint folder


@dataclass(frozen=True)
class RunFolder:
    """The files of one run (or of one `train` call from the command line)."""

    path: Path

    @property
    def model(self) -> Path:
        return self.path / "model"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint"

    @property
    def checkpoint_state(self) -> Path:
        return self.checkpoint / CHECKPOINT_STATE

    def complete_checkpoint(self) -> Path | None:
        """The latest whole checkpoint, or None. A process killed while it replaced its checkpoint (`swap_in`) may
        leave the folder missing: the staged one is whole once its state file is in it (written last), else the
        one it was replacing still is; whichever it is goes back in place."""
        for candidate in (self.checkpoint, staged(self.checkpoint), replaced(self.checkpoint)):
            if (candidate / CHECKPOINT_STATE).exists():
                if candidate != self.checkpoint:
                    swap_in(candidate, self.checkpoint)
                return self.checkpoint
        return None

    @property
    def has_model(self) -> bool:
        """Whether the run saved a fine-tuned model (a finished or stopped run; not a diverged one)."""
        return (self.model / "config.json").exists()

    @property
    def run_config(self) -> Path:
        return self.path / "run_config.json"

    @property
    def eval_report(self) -> Path:
        return self.path / "eval_report.json"

    @property
    def log(self) -> Path:
        return self.path / "output.log"

    def create(self) -> RunFolder:
        self.path.mkdir(parents=True, exist_ok=True)
        return self


def staged(folder: Path) -> Path:
    """Where `folder`'s next version is written before `swap_in` puts it in place (`checkpoint.tmp`)."""
    return folder.with_name(folder.name + ".tmp")


def replaced(folder: Path) -> Path:
    """Where `folder`'s previous version waits while `swap_in` puts the new one in place (`checkpoint.old`)."""
    return folder.with_name(folder.name + ".old")


def swap_in(new: Path, folder: Path) -> None:
    """Put the whole folder `new` where `folder` is (two renames, so `folder` is always the old or the new whole;
    between them, `RunFolder.complete_checkpoint` finds either), then drop the old one."""
    old = replaced(folder)
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    new.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


@dataclass(frozen=True)
class DataFolder:
    """This machine's lab folder (the worker's lock and logs, the default SQLite store) and the artifact root (run
    folders, uploads, the workshop settings): the same folder unless `artifacts` names one that machines share."""

    path: Path
    artifacts: Path | None = None

    @classmethod
    def default(cls, path: Path | str | None = None, artifacts: Path | str | None = None) -> DataFolder:
        """`path`, else `$BERT_LAB_HOME`, else `./lab_data`; artifacts in `artifacts`, else `$BERT_LAB_ARTIFACTS`,
        else the same folder."""
        shared = artifacts or os.environ.get(ARTIFACTS_ENV)
        return cls(Path(path or os.environ.get(HOME_ENV) or DEFAULT_HOME), Path(shared) if shared else None)

    @property
    def root(self) -> Path:
        """The artifact root: where every machine finds run folders and uploads."""
        return self.artifacts or self.path

    def run(self, run_id: int) -> RunFolder:
        return RunFolder(self.root / "runs" / str(run_id))

    def folder_of(self, run: StoredRun) -> RunFolder:
        """Where `run`'s model and evaluation report are: a run answered from the cache shares its source's."""
        return self.run(run.cached_from or run.id)

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    def uploads_of(self, owner: str) -> Path:
        """Where `owner`'s uploads are kept (a folder named by a hash of the name; the uploads folder itself for no
        owner): in a workshop a participant may train on these and on no other file."""
        if not owner:
            return self.uploads
        return self.uploads / hashlib.sha256(owner.encode()).hexdigest()[:16]

    @property
    def models(self) -> Path:
        """Models trained by `bert-lab train` without `--out`."""
        return self.root / "models"

    @property
    def sqlite(self) -> Path:
        return self.path / "runs.sqlite"

    @property
    def worker_lock(self) -> Path:
        return self.path / "worker.lock"

    @property
    def workshop(self) -> Path:
        """The host's workshop settings (JSON: queue cap per participant, queue paused)."""
        return self.root / "workshop.json"

    @property
    def names(self) -> Path:
        """The workshop's claimed names (JSON: a name's look-alike key → its claim; see `runs/names.py`)."""
        return self.root / "names.json"

    @property
    def workshop_secret(self) -> Path:
        """The random secret that, with the passcodes, signs workshop sign-in tokens (only its owner may read it)."""
        return self.root / "workshop.secret"

    @property
    def worker_log(self) -> Path:
        return self.path / "worker.log"

    @property
    def standby_log(self) -> Path:
        return self.path / "standby.log"

    @property
    def worker_warm(self) -> Path:
        """Present once a newly started worker can start a run without import delays (its warm spare imported)."""
        return self.path / "worker.warm"
