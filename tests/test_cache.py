"""The same-config result cache: what changes the key, a repeat answered at once with the curves and model shared,
twins queued together trained once by the real worker, deleting the run others were answered from, and run again."""

from __future__ import annotations

import time
from dataclasses import fields
from pathlib import Path

from bert_lab.core.config import RunConfig
from bert_lab.processes.worker import Worker
from bert_lab.runs import service
from bert_lab.runs.cache import cache_key
from bert_lab.runs.records import RunSummary
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status

TINY = RunConfig(model="tiny", dataset="sms_spam", train_size=48, eval_size=16, max_length=16, batch_size=16)


def finish_by_hand(lab: Lab, run_id: int, accuracy: float = 0.8) -> None:
    """A finished run with two points and a model folder (no training: the cache only reads what a run left)."""
    lab.store.claim_run(run_id, pid=1, device="cpu")
    lab.store.add_metrics(run_id, [(1, 0.5, 1.0, "train_loss", 0.7), (2, 1.0, 2.0, "accuracy", accuracy)])
    lab.store.update_run(run_id, progress=1.0, summary=RunSummary(total_steps=2, samples_per_s=50.0))
    lab.data.run(run_id).create().model.mkdir()
    lab.store.set_status(run_id, Status.FINISHED)


def test_every_config_field_the_seed_and_the_model_files_change_the_key(tmp_path: Path) -> None:
    base = TINY.to_dict()
    keys = {cache_key(base)}
    for field in fields(RunConfig):
        keys.add(cache_key({**base, field.name: f"other {base[field.name]!r}"}))
    assert len(keys) == 1 + len(fields(RunConfig))  # every field, the seed among them, is part of the key
    assert cache_key(dict(base)) == cache_key(base)  # and nothing else is: the same config, the same key
    assert cache_key(dict(reversed(base.items()))) == cache_key(base)  # in whatever order its fields come
    folder = tmp_path / "my-bert"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    before = cache_key({**base, "model": str(folder)})
    (folder / "model.safetensors").write_bytes(b"weights")  # retrained or replaced: another model
    assert cache_key({**base, "model": str(folder)}) != before


def test_a_key_stays_the_same_across_versions_of_the_code_until_version_is_bumped() -> None:
    # The finished runs in a store keep their keys: a repeat of one after an upgrade must still find it. By hand:
    # sha256 of the JSON {"config": …, "model": [], "version": 1}, keys sorted (a bundled model has no files to list).
    config = {"model": "tiny", "lr": 0.001, "seed": 42}
    assert cache_key(config) == "78a728d9f61a394386a2c234b3d5a61ae6c48ff61bf7051ded3fe95f25d7e374"


def test_a_csv_with_other_content_is_another_key(lab: Lab, tmp_path: Path) -> None:
    rows = "\n".join(f"text {i} {'spam' if i % 2 else 'ham'},{'spam' if i % 2 else 'ham'}" for i in range(40))
    path = tmp_path / "data.csv"
    path.write_text("text,label\n" + rows)
    first = service.submit(lab, RunConfig(**{**TINY.to_dict(), "dataset": str(path)}))
    path.write_text("text,label\n" + rows.replace("text 1 ", "text one "))  # same path, other content
    second = service.submit(lab, RunConfig(**{**TINY.to_dict(), "dataset": str(path)}))
    assert first.config["dataset"] != second.config["dataset"] and first.cache_key != second.cache_key


def test_a_repeat_of_a_finished_run_is_answered_at_once_sharing_curves_and_model(lab: Lab) -> None:
    source = service.submit(lab, TINY, name="first", owner="ana")
    finish_by_hand(lab, source.id)
    started = time.perf_counter()
    repeat = service.submit(lab, TINY, name="again", owner="ben")
    assert time.perf_counter() - started < 1.0
    assert (repeat.status, repeat.cached_from, repeat.progress, repeat.owner) == (
        Status.FINISHED,
        source.id,
        1.0,
        "ben",
    )
    assert repeat.summary == lab.store.get_run(source.id).summary
    points = lab.store.read_metrics([source.id, repeat.id])
    assert sorted((p.run_id, p.name, p.value) for p in points) == sorted(
        (run_id, name, value)
        for run_id in (source.id, repeat.id)
        for name, value in (("train_loss", 0.7), ("accuracy", 0.8))
    )
    assert lab.store.latest_metrics([repeat.id]) == {repeat.id: {"train_loss": 0.7, "accuracy": 0.8}}
    assert lab.data.folder_of(repeat) == lab.data.run(source.id)  # the model is shared, not copied
    other_seed = service.submit(lab, RunConfig(**{**TINY.to_dict(), "seed": 7}))
    assert other_seed.status == Status.QUEUED and other_seed.cached_from is None


def test_deleting_the_run_others_were_answered_from_hands_its_curves_and_model_on(lab: Lab) -> None:
    source = service.submit(lab, TINY)
    finish_by_hand(lab, source.id)
    first, second = service.submit(lab, TINY), service.submit(lab, TINY)
    service.delete(lab, source.id)
    heir, follower = lab.store.get_run(first.id), lab.store.get_run(second.id)
    assert (heir.cached_from, follower.cached_from) == (None, first.id)
    assert lab.store.latest_metrics([first.id, second.id])[second.id] == {"train_loss": 0.7, "accuracy": 0.8}
    assert lab.data.run(first.id).model.is_dir() and not lab.data.run(source.id).path.exists()
    assert service.submit(lab, TINY).cached_from == first.id


def test_run_again_trains_the_config_with_the_next_unused_seed(lab: Lab) -> None:
    source = service.submit(lab, TINY)
    finish_by_hand(lab, source.id)
    cached = service.submit(lab, TINY)
    again = service.run_again(lab, cached.id)
    assert again.status == Status.QUEUED and again.cached_from is None and again.config["seed"] == TINY.seed + 1
    assert service.run_again(lab, cached.id).config["seed"] == TINY.seed + 2


def test_twins_queued_together_train_once(lab: Lab) -> None:
    """Three participants launch the same settings at once, a fourth another seed: the worker trains two runs."""
    twins = [service.submit(lab, TINY, owner=owner).id for owner in ("ana", "ben", "cleo")]
    other = service.submit(lab, RunConfig(**{**TINY.to_dict(), "seed": 1}), owner="dan").id
    worker = Worker(lab, max_concurrent=2)
    try:
        deadline = time.time() + 240
        while worker.children or lab.store.list_runs(statuses=[Status.QUEUED]):
            assert time.time() < deadline, "the runs did not finish in time"
            worker.step()
            time.sleep(0.2)
    finally:
        worker.executor.close()
    runs = {r.id: r for r in lab.store.list_runs()}
    assert all(r.status == Status.FINISHED for r in runs.values())
    assert [runs[i].cached_from for i in twins] == [None, twins[0], twins[0]] and runs[other].cached_from is None
    trained = [i for i in runs if any(e.message.startswith("started on ") for e in lab.store.read_events(i))]
    assert sorted(trained) == sorted([twins[0], other])
    assert lab.store.latest_metrics([twins[2]])[twins[2]] == lab.store.latest_metrics([twins[0]])[twins[0]]


def test_deleting_a_group_keeps_the_curves_of_runs_answered_from_it(lab: Lab) -> None:
    group = service.submit_group(lab, [TINY], name="lesson")
    [source] = lab.store.list_runs(group_id=group.id)
    finish_by_hand(lab, source.id)
    mine = service.submit(lab, TINY, owner="ben")
    service.delete_group(lab, group.id)
    kept = lab.store.get_run(mine.id)
    assert kept.cached_from is None and lab.store.latest_metrics([mine.id])[mine.id]["accuracy"] == 0.8
    assert lab.data.folder_of(kept).model.is_dir()
