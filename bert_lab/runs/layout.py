"""Where files live. A data folder holds the lab's files; each run has a folder of its own inside it.

    <data folder>/               this machine's (`--home`, `$BERT_LAB_HOME`)
        runs.sqlite              the default store (SQLite; another store, such as PostgreSQL, lives elsewhere)
        worker.lock  worker.log  standby.log  worker.warm
    <artifact root>/             what every machine reads: the data folder itself, unless `--artifacts`
                                 (`$BERT_LAB_ARTIFACTS`) names a folder they share (several machines, one store)
        workshop.json
        uploads/<name>-<hash>.csv
        runs/<id>/
            output.log           the run process's stdout and stderr
            checkpoint/          the latest checkpoint (removed when the run finishes)
            model/               the fine-tuned model, ready for `pipeline`
            run_config.json  eval_report.json

Every path is decided here; the store keeps rows, never files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bert_lab.runs.records import Run

HOME_ENV = "BERT_LAB_HOME"
ARTIFACTS_ENV = "BERT_LAB_ARTIFACTS"
DEFAULT_HOME = "lab_data"
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

    def folder_of(self, run: Run) -> RunFolder:
        """Where `run`'s model and evaluation report are: a run answered from the cache shares its source's."""
        return self.run(run.cached_from or run.id)

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def models(self) -> Path:
        """Models trained by `python -m bert_lab train` without `--out`."""
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
    def worker_log(self) -> Path:
        return self.path / "worker.log"

    @property
    def standby_log(self) -> Path:
        return self.path / "standby.log"

    @property
    def worker_warm(self) -> Path:
        """Present once a newly started worker can start a run without import delays (its warm spare imported)."""
        return self.path / "worker.warm"
