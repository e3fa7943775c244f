"""What a person can do to runs: submit one or a group, resume, cancel, delete, clone (a run or a whole group).

The pages and the CLI call these verbs and nothing else that changes a run: they never set a status and never touch
a process (the worker alone does). A `Lab` is the store plus the data folder the verbs work in.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bert_lab.core.config import RunConfig
from bert_lab.core.layout import ARTIFACTS_ENV, DATA_SUFFIXES, HOME_ENV, DataFolder
from bert_lab.core.text import MAX_NAME_CHARS, checked_name, clean_name, shorten
from bert_lab.runs import workshop
from bert_lab.runs.backends import open_store, store_url
from bert_lab.runs.cache import cache_key
from bert_lab.runs.records import Group, Run
from bert_lab.runs.status import ACTIVE, RESUMABLE, Status
from bert_lab.runs.store import PATIENCE_S, STORE_ENV, RunStore, StoreError, WaitCallback
from bert_lab.runs.workshop import Actor


@dataclass(frozen=True)
class Lab:
    store: RunStore
    data: DataFolder

    @classmethod
    def open(
        cls,
        home: Path | str | None = None,
        store: str | None = None,
        artifacts: Path | str | None = None,
        *,
        patience_s: float = PATIENCE_S,
        on_wait: WaitCallback | None = None,
    ) -> Lab:
        """The lab in data folder `home` (else `$BERT_LAB_HOME`, else `./lab_data`) with the store at URL `store`
        (else `$BERT_LAB_STORE`, else `runs.sqlite` in the data folder) and run folders under `artifacts` (else
        `$BERT_LAB_ARTIFACTS`, else the data folder). Each store call rides through an outage of up to `patience_s`
        seconds (`open_store`)."""
        data = DataFolder.default(home, artifacts)
        data.path.mkdir(parents=True, exist_ok=True)
        data.root.mkdir(parents=True, exist_ok=True)
        return cls(open_store(store or store_url(data), patience_s=patience_s, on_wait=on_wait), data)

    def command(self, *args: str, module: str = "bert_lab") -> tuple[list[str], dict[str, str]]:
        """`python -m MODULE ARGS` (the CLI, or a run's own process) for another process of this same lab, and the
        environment to start it in. The data folder is on its command line (`ps` shows which lab a process serves);
        the store's URL travels only in its environment (`ps` shows command lines to every user of the machine, and
        the URL may hold a password)."""
        argv = [
            sys.executable,
            "-m",
            module,
            *args,
            "--home",
            str(self.data.path),
            "--artifacts",
            str(self.data.root),
        ]
        return argv, {**os.environ, **self.environment()}

    def environment(self) -> dict[str, str]:
        """The environment variables that open this same lab in another process: data folder, store, artifacts."""
        return {HOME_ENV: str(self.data.path), STORE_ENV: self.store.url, ARTIFACTS_ENV: str(self.data.root)}

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def submit(
    lab: Lab,
    config: RunConfig,
    *,
    name: str = "",
    owner: str = "",
    group_id: str | None = None,
    actor: Actor | None = None,
) -> Run:
    """Queue a run after checking its dataset loads (a bad CSV raises DataError and nothing is stored). A CSV file is
    staged into the data folder first, so the run does not depend on the original staying where it was. A run that
    computes what a finished run computed (same cache key) is answered from it at once (`Run.cached_from`). In a
    workshop a participant `actor` may name no file or folder of the server (workshop.ServerPathError). The name and
    owner are cleaned of direction controls (`clean_name`); a longer one than MAX_NAME_CHARS is refused
    (TextTooLongError naming the field)."""
    name, owner = checked_name(name, "name"), checked_name(owner, "owner")
    workshop.check_config(config.to_dict(), lab.data, actor)
    _check_dataset(config)
    _check_queue_cap(lab, owner, 1)
    staged = _staged(lab, config).to_dict()
    return lab.store.create_run(staged, name=name, owner=owner, group_id=group_id, cache_key=cache_key(staged))


def submit_group(
    lab: Lab,
    configs: Sequence[RunConfig],
    *,
    name: str = "",
    owner: str = "",
    method: str = "runs",
    metric: str = "f1",
    spec: dict[str, Any] | None = None,
    run_names: Sequence[str] | None = None,
    actor: Actor | None = None,
) -> Group:
    """Queue runs launched together (a sweep, a lesson, seed replicates) as one new group, judged by `metric`. Every
    config is checked before anything is stored (in a workshop, for the server's files first, as `submit` does), and
    the group and its runs are stored in one transaction: one bad config queues nothing."""
    if not configs:
        raise ValueError("a group needs at least one run")
    if run_names is not None and len(run_names) != len(configs):
        raise ValueError(f"{len(run_names)} run names for {len(configs)} configs")
    name, owner = checked_name(name, "name"), checked_name(owner, "owner")
    for config in configs:
        workshop.check_config(config.to_dict(), lab.data, actor)
    for config in configs:
        _check_dataset(config)
    _check_queue_cap(lab, owner, len(configs))
    staged = [_staged(lab, config).to_dict() for config in configs]
    prefix = name or "group"
    names = [fitted(n) for n in run_names or [f"{prefix} {i + 1}/{len(staged)}" for i in range(len(staged))]]
    runs = [(config, run_name, cache_key(config)) for config, run_name in zip(staged, names)]
    return lab.store.create_group(name=prefix, method=method, metric=metric, spec=spec or {}, owner=owner, runs=runs)


def add_to_group(lab: Lab, group: Group, configs: Sequence[RunConfig], names: Sequence[str]) -> list[Run]:
    """Queue more runs in an existing group (a search's next trial, drawn by the worker from the spec that `launch`
    checked, every range's ends and choices included, for the participant who launched it)."""
    staged = [_staged(lab, c).to_dict() for c in configs]
    return [
        lab.store.create_run(c, name=fitted(n), owner=group.owner, group_id=group.id, cache_key=cache_key(c))
        for c, n in zip(staged, names)
    ]


def cancel_group(lab: Lab, group_id: str, *, actor: Actor | None = None) -> list[Run]:
    """Stop a whole group: no more search trials; queued runs cancelled, running ones asked to stop."""
    _group_allowed(lab, group_id, actor, "cancel")
    lab.store.set_group_stopped(group_id, True)
    return [cancel(lab, r.id) for r in lab.store.list_runs(group_id=group_id, statuses=ACTIVE)]


def resume_group(lab: Lab, group_id: str, *, actor: Actor | None = None) -> list[Run]:
    """Go on with a stopped group: its cancelled and interrupted runs are queued again, a search asks again."""
    _group_allowed(lab, group_id, actor, "resume")
    lab.store.set_group_stopped(group_id, False)
    return [resume(lab, r.id) for r in lab.store.list_runs(group_id=group_id, statuses=RESUMABLE)]


def delete_group(lab: Lab, group_id: str, *, actor: Actor | None = None) -> None:
    """Delete a group with its runs and their folders; refused while one of its runs is running."""
    _group_allowed(lab, group_id, actor, "delete")
    runs = sorted(lab.store.list_runs(group_id=group_id), key=lambda r: r.id)
    heirs = lab.store.delete_group(group_id)
    for run in runs:
        _remove_folder(lab, run.id, heirs.get(run.id))


def stage_upload(lab: Lab, data: bytes, filename: str, *, owner: str = "") -> Path:
    """Keep an uploaded data file's bytes (CSV, TSV, JSON Lines: its suffix kept) under the data folder's uploads
    (`owner`'s own folder there, in a workshop the only files a participant may train on), named by content so the same
    file is kept once."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(filename).stem)[:40] or "data"
    suffix = Path(filename).suffix.lower()
    path = lab.data.uploads_of(owner) / f"{stem}-{digest}{suffix if suffix in DATA_SUFFIXES else '.csv'}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def resume(lab: Lab, run_id: int, *, actor: Actor | None = None) -> Run:
    """Queue an interrupted or cancelled run again; it continues from its last checkpoint."""
    run = _allowed(lab, run_id, actor, "resume")
    if not run.status.is_resumable:
        raise StoreError(f"run {run_id} is {run.status}; only interrupted or cancelled runs can be resumed")
    return lab.store.set_status(run_id, Status.QUEUED)


def cancel(lab: Lab, run_id: int, *, actor: Actor | None = None) -> Run:
    """Cancel a queued run now; ask a running one to stop at its current step (it saves a checkpoint)."""
    _allowed(lab, run_id, actor, "cancel")
    return lab.store.request_cancel(run_id)


def delete(lab: Lab, run_id: int, *, actor: Actor | None = None) -> None:
    """Delete a run that is not running: its rows, then its folder (which goes to the run that inherits its points
    when runs were answered from it)."""
    _allowed(lab, run_id, actor, "delete")
    _remove_folder(lab, run_id, lab.store.delete_run(run_id))


def _remove_folder(lab: Lab, run_id: int, heir: int | None) -> None:
    """Remove a deleted run's folder, or hand it to the run that inherited its points."""
    folder = lab.data.run(run_id).path
    if heir is not None and folder.exists():
        folder.rename(lab.data.run(heir).path)
    shutil.rmtree(folder, ignore_errors=True)


def run_again(lab: Lab, run_id: int, *, actor: Actor | None = None) -> Run:
    """Train a run's config again with a new seed (a cached run's own result, or another sample of seed noise): the
    seed after the highest this config has been run with."""
    old = lab.store.get_run(run_id)
    same = [r for r in lab.store.list_runs() if {**r.config, "seed": 0} == {**old.config, "seed": 0}]
    seed = max(int(r.config.get("seed", 0)) for r in same) + 1
    owner = old.owner if actor is None else actor.name
    name = fitted(f"{old.name} (seed {seed})")
    return clone(lab, run_id, changes={"seed": seed}, name=name, owner=owner, actor=actor)


def clone(
    lab: Lab,
    run_id: int,
    *,
    changes: dict[str, Any] | None = None,
    name: str = "",
    owner: str | None = None,
    actor: Actor | None = None,
) -> Run:
    """Queue a copy of a run, its config updated with `changes` (validated like any new run), owned by `owner`
    (default: the run's owner), submitted by `actor` (in a workshop a participant cannot copy a server path)."""
    old = lab.store.get_run(run_id)
    config = RunConfig.from_dict({**old.config, **(changes or {})})
    owner = old.owner if owner is None else owner
    return submit(lab, config, name=name or fitted(f"{old.name} (clone)"), owner=owner, actor=actor)


def fitted(name: str) -> str:
    """A name the lab made from another (a clone's, a sweep's run's) cleaned and, when longer than a name may be,
    shortened around "…" (nobody typed it, so nobody is refused)."""
    return shorten(clean_name(name), MAX_NAME_CHARS)


MAX_RUN_NAME, MAX_TAG, MAX_TAGS, MAX_NOTE = MAX_NAME_CHARS, 32, 12, 2000  # characters; tags per run


def edit(
    lab: Lab,
    run_id: int,
    *,
    name: str | None = None,
    tags: Sequence[str] | None = None,
    note: str | None = None,
    actor: Actor | None = None,
) -> Run:
    """Rename a run, set its tags (stripped, a repeat kept once whatever its case) or its note; what is None stays.
    Any run may be edited, a running one too; in a workshop, only its owner's or the host's. One ValueError names
    every bad field, and nothing is written then."""
    _allowed(lab, run_id, actor, "edit")
    problems = []
    if name is not None and not (name := clean_name(name)):
        problems.append("name: a run needs a name (not only spaces)")
    if name is not None and len(name) > MAX_RUN_NAME:
        problems.append(f"name: at most {MAX_RUN_NAME} characters (this one has {len(name)})")
    if tags is not None:
        kept: dict[str, str] = {}
        for tag in filter(None, (t.strip() for t in tags)):
            kept.setdefault(tag.casefold(), tag)  # the first spelling of each
        tags = list(kept.values())
        bad = [t for t in tags if len(t) > MAX_TAG or "," in t]
        problems += [f"tag {t!r}: at most {MAX_TAG} characters, and no commas" for t in bad]
        if len(tags) > MAX_TAGS:
            problems.append(f"tags: at most {MAX_TAGS} per run ({len(tags)} given)")
    if note is not None and len(note := note.strip()) > MAX_NOTE:
        problems.append(f"note: at most {MAX_NOTE} characters (this one has {len(note)})")
    if problems:
        raise ValueError("; ".join(problems))
    return lab.store.update_run(run_id, name=name, tags=tags, note=note)


def _allowed(lab: Lab, run_id: int, actor: Actor | None, verb: str) -> Run:
    """The run, if `actor` may `verb` it (NotAllowedError naming its owner otherwise; no actor: anyone may)."""
    run = lab.store.get_run(run_id)
    if actor is not None:
        actor.check(run.owner, f"run {run.id}", verb)
    return run


def _group_allowed(lab: Lab, group_id: str, actor: Actor | None, verb: str) -> None:
    """NotAllowedError unless `actor` (if any) is the group's owner or the host."""
    if actor is not None:
        group = lab.store.get_group(group_id)
        actor.check(group.owner, f"group {group.name!r}", verb)


def _check_queue_cap(lab: Lab, owner: str, adding: int) -> None:
    """In workshop mode, refuse runs that would take `owner` past the host's cap on queued runs."""
    if not workshop.enabled():
        return
    cap = workshop.Settings.read(lab.data).queue_cap
    queued = len(lab.store.list_runs(owner=owner, statuses=[Status.QUEUED]))
    if queued + adding > cap:
        who = f"{owner} already has" if owner else "you already have"
        these = (
            f"this run would be the {ordinal(queued + 1)}"
            if adding == 1
            else f"these {adding} runs would make {queued + adding} queued"
        )
        raise workshop.QueueFullError(
            f"{who} {queued} run{'' if queued == 1 else 's'} queued and the workshop allows {cap} at a time per "
            f"participant: {these}. Wait for {'one' if adding == 1 else 'some'} to start, or ask the host"
        )


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 25th."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _check_dataset(config: RunConfig) -> None:
    """Raise DataError naming the problem when the config's dataset cannot be loaded."""
    from bert_lab.engine.data import load_dataset  # pandas and the CSV reader: only when submitting

    load_dataset(config.dataset, text_column=config.text_column, label_column=config.label_column)


def _staged(lab: Lab, config: RunConfig) -> RunConfig:
    """The config with a CSV file's path replaced by its copy in the data folder."""
    source = Path(config.dataset)
    if source.is_file() and lab.data.uploads.resolve() not in source.resolve().parents:
        return replace(config, dataset=str(stage_upload(lab, source.read_bytes(), source.name)))
    return config
