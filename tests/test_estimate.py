"""What runs like this one scored (`sweeps/estimate.py`), on finished runs made in a real store without training:
the weights, spread and n against numbers worked out by hand, what is left out, and the cache's answer."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from bert_lab.core.config import RunConfig
from bert_lab.runs.cache import cache_key
from bert_lab.runs.records import Run, RunSummary
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.sweeps.estimate import BANDWIDTH, estimate, estimate_from_store, no_runs_words, past_runs

HALF = 10**-3.5  # a learning rate half a decade above the default 1e-4: two bandwidths away
W1 = math.exp(-0.5 * (0.5 / BANDWIDTH) ** 2)  # its weight: e^-2 = 0.1353


def past(
    lab: Lab,
    accuracy: float,
    f1: float | None = None,
    *,
    name: str = "",
    status: Status = Status.FINISHED,
    summary: RunSummary | None = None,
    **fields: Any,
) -> Run:
    """A run that ended with `status` and these final scores (a run's last evaluation: earlier points come first),
    its config the defaults with `fields` (seed 1 unless given: not the default's 42, so not the candidate's key)."""
    config = RunConfig(**{"seed": 1, **fields}).to_dict()
    run = lab.store.create_run(config, name=name, cache_key=cache_key(config))
    lab.store.claim_run(run.id, pid=1)
    f1 = accuracy - 0.02 if f1 is None else f1
    lab.store.add_metrics(run.id, [(5, 0.5, 2.0, "accuracy", 0.5), (5, 0.5, 2.0, "f1", 0.4)])
    lab.store.add_metrics(run.id, [(10, 1.0, 4.0, "accuracy", accuracy), (10, 1.0, 4.0, "f1", f1)])
    if summary is not None:
        lab.store.update_run(run.id, summary=summary)
    return lab.store.set_status(run.id, status)


def test_a_nearer_run_weighs_more_by_the_gaussian_kernel(lab: Lab) -> None:
    near = past(lab, 0.80, 0.78, name="near")  # the candidate's knobs, another seed: distance 0, weight 1
    past(lab, 0.60, 0.50, name="far", lr=HALF)  # half a decade of learning rate away: distance 0.5, weight e^-2
    got = estimate_from_store(lab.store, RunConfig())
    assert got is not None
    # By hand: (0.80·1 + 0.60·e^-2) / (1 + e^-2) = 0.77616; F1 (0.78 + 0.50·e^-2) / (1 + e^-2) = 0.74665.
    assert (got.accuracy, got.f1) == (pytest.approx(0.776159, abs=1e-6), pytest.approx(0.746623, abs=1e-6))
    assert W1 == pytest.approx(0.135335, abs=1e-6)
    # Two runs' weighted spread (reliability weights) is their plain sample std, whatever the weights: |a − b|/√2.
    assert got.accuracy_spread == pytest.approx(0.20 / math.sqrt(2))
    assert got.f1_spread == pytest.approx(0.28 / math.sqrt(2))
    assert (got.n, got.nearest_id, got.nearest_name, got.nearest_distance) == (2, near.id, "near", 0.0)
    assert not got.same_config and got.diverged == 0
    assert got.words == (
        "Runs like this one scored accuracy 0.78 ± 0.14, F1 0.75 ± 0.20 "
        f"(2 past runs on rotten_tomatoes with minilm; closest: run #{near.id} near)."
    )
    moved = estimate_from_store(lab.store, RunConfig(lr=HALF))  # now the other run is the near one
    assert moved is not None and moved.accuracy == pytest.approx((0.60 + 0.80 * W1) / (1 + W1))
    assert moved.nearest_name == "far"


def test_runs_on_another_dataset_or_model_count_for_nothing(lab: Lab) -> None:
    past(lab, 0.80, name="same")
    past(lab, 0.10, dataset="sms_spam")
    past(lab, 0.10, model="tiny")
    past(lab, 0.10, model="all-MiniLM-L6-v2", seed=2)  # the bundled model by another of its names: the same model
    got = estimate_from_store(lab.store, RunConfig())
    assert got is not None and got.n == 2 and got.accuracy == pytest.approx(0.45)
    spam = estimate_from_store(lab.store, RunConfig(dataset="sms_spam"))
    assert spam is not None and (spam.n, spam.accuracy, spam.dataset) == (1, pytest.approx(0.10), "sms_spam")
    assert math.isnan(spam.accuracy_spread)  # one run: no spread to speak of, and the sentence says none
    assert spam.words.startswith("Runs like this one scored accuracy 0.10, F1 0.08 (1 past run on sms_spam")
    assert spam.to_dict()["accuracy_spread"] is None
    assert estimate_from_store(lab.store, RunConfig(dataset="trec")) is None


def test_lr_range_tests_unfinished_and_cached_runs_are_left_out(lab: Lab) -> None:
    past(lab, 0.70)
    past(lab, 0.10, schedule="range_test", range_start_lr=1e-7, lr=1e-4)  # the LR finder's own run
    past(lab, 0.10, summary=RunSummary(lr_find={"suggested_lr": 1.5e-4}), seed=3)  # one its summary marks
    for status in (Status.FAILED, Status.CANCELLED, Status.INTERRUPTED, Status.PRUNED):
        past(lab, 0.10, status=status, seed=4)
    past(lab, 0.55, status=Status.DIVERGED, seed=5)
    running = lab.store.create_run(RunConfig(seed=6).to_dict())
    lab.store.claim_run(running.id, pid=1)
    lab.store.add_metrics(running.id, [(1, 0.1, 1.0, "accuracy", 0.1), (1, 0.1, 1.0, "f1", 0.1)])
    config = RunConfig(seed=1).to_dict()
    copy = lab.store.create_run(config, cache_key=cache_key(config))  # answered from the first: counted once
    assert copy.cached_from is not None
    got = estimate_from_store(lab.store, RunConfig(seed=7))
    assert got is not None and (got.n, got.accuracy, got.diverged) == (1, pytest.approx(0.70), 1)
    assert "(1 past run on rotten_tomatoes with minilm; 1 similar run diverged; closest" in got.words
    runs, scores = past_runs(lab.store)
    assert {r.status for r in runs} == {Status.FINISHED, Status.DIVERGED} and copy.id not in {r.id for r in runs}
    assert all(set(s) == {"accuracy", "f1"} for s in scores.values())
    assert estimate_from_store(lab.store, RunConfig(schedule="range_test", range_start_lr=1e-7)) is None


def test_no_runs_or_none_near_means_no_estimate(lab: Lab) -> None:
    assert estimate_from_store(lab.store, RunConfig()) is None
    assert no_runs_words(RunConfig()) == "No similar runs yet on rotten_tomatoes with minilm."
    past(lab, 0.60, lr=1e-2)  # two decades away: past the reach
    past(lab, 0.60, optimizer="sgd")  # another family of optimizer: 2.0 away
    assert estimate_from_store(lab.store, RunConfig()) is None
    nearer = estimate_from_store(lab.store, RunConfig(lr=3e-3))  # half a decade from 1e-2: within reach
    assert nearer is not None and nearer.n == 1 and nearer.nearest_distance == pytest.approx(0.5229, abs=1e-4)
    assert nearer.accuracy == 0.60 and math.isnan(nearer.accuracy_spread) and math.isnan(nearer.f1_spread)


def test_the_same_config_is_answered_from_the_cache_as_the_store_does(each_store: str, lab: Lab) -> None:
    other = past(lab, 0.70, seed=42, lr=HALF)
    source = past(lab, 0.76, 0.74, name="first", seed=42)  # the candidate's very config
    got = estimate_from_store(lab.store, RunConfig())
    assert got is not None and got.same_config
    assert (got.accuracy, got.f1, got.n, got.nearest_id, got.accuracy_spread) == (0.76, 0.74, 1, source.id, 0.0)
    assert got.words == (
        f"Already run: answered from the cache instantly (run #{source.id} first: accuracy 0.760, F1 0.740)."
    )
    config = RunConfig().to_dict()
    assert lab.store.create_run(config, cache_key=cache_key(config)).cached_from == source.id  # the store agrees
    seed = estimate_from_store(lab.store, RunConfig(seed=43))  # another seed is another run: an estimate
    assert seed is not None and not seed.same_config and seed.n == 2  # the cached copy is not counted again
    assert seed.accuracy == pytest.approx((0.76 + 0.70 * W1) / (1 + W1)) and seed.nearest_id == source.id
    assert other.id != seed.nearest_id


def test_of_two_runs_with_one_key_the_cache_answers_from_the_oldest(lab: Lab) -> None:
    """Queued together, both trained (the store answers a key only from a finished run); then the oldest answers."""
    config = RunConfig(lr=3e-4).to_dict()
    first, second = (lab.store.create_run(config, name=n, cache_key=cache_key(config)) for n in ("first", "second"))
    for run, accuracy in ((second, 0.61), (first, 0.71)):
        lab.store.claim_run(run.id, pid=1)
        lab.store.add_metrics(run.id, [(10, 1.0, 4.0, "accuracy", accuracy), (10, 1.0, 4.0, "f1", accuracy)])
        lab.store.set_status(run.id, Status.FINISHED)
    got = estimate_from_store(lab.store, RunConfig(lr=3e-4))
    assert got is not None and got.same_config and (got.nearest_id, got.accuracy) == (first.id, 0.71)
    assert lab.store.create_run(config, cache_key=cache_key(config)).cached_from == first.id


def test_the_schedules_shape_counts_not_its_name(lab: Lab) -> None:
    """A step decay whose first drop comes after the run's last step is constant; linear decay halves the mean LR."""
    linear = past(lab, 0.70, name="linear", schedule="linear")
    flat = past(lab, 0.80, name="flat", schedule="step", step_size=100)  # 63 steps: it never drops
    got = estimate_from_store(lab.store, RunConfig(schedule="constant"))
    assert got is not None and got.nearest_id == flat.id
    assert got.nearest_distance == pytest.approx(0.25)  # the name differs (0.25), the mean LR does not
    assert got.accuracy > 0.75 and linear.id != got.nearest_id
    dropping = estimate_from_store(lab.store, RunConfig(schedule="step", step_size=10, gamma=0.1))
    assert dropping is not None and dropping.nearest_id == linear.id  # it drops early: nearer to linear's mean LR


def test_a_data_file_is_known_by_its_content(lab: Lab, tmp_path: Path) -> None:
    content = "text,label\n" + "".join(f"review {i},{'pos' if i % 2 else 'neg'}\n" for i in range(40))
    staged = tmp_path / "uploads" / "reviews-0123.csv"
    staged.parent.mkdir()
    staged.write_text(content)
    run = past(lab, 0.90, dataset=str(staged), seed=42, train_size=20, eval_size=10)
    original = tmp_path / "reviews.csv"
    original.write_text(content)
    on_path = estimate_from_store(lab.store, RunConfig(dataset=str(original), train_size=20, eval_size=10, seed=7))
    assert on_path is not None and (on_path.n, on_path.dataset) == (1, "reviews.csv")
    uploaded = RunConfig(dataset="reviews.csv", train_size=20, eval_size=10)  # the upload's name, not a path
    assert estimate_from_store(lab.store, uploaded) is None
    same = estimate_from_store(lab.store, uploaded, data=content.encode())
    assert same is not None and same.same_config and same.nearest_id == run.id  # staged, it has the run's key
    assert estimate_from_store(lab.store, uploaded, data=b"text,label\nother,pos\n") is None
    columns = RunConfig(dataset=str(original), train_size=20, eval_size=10, text_column="label")
    assert estimate_from_store(lab.store, columns) is None  # other columns of the same file: another task


def test_estimate_reads_only_what_it_is_given(lab: Lab) -> None:
    """The pure function: runs and their scores in, no store; a run without both final scores is left out."""
    assert estimate(RunConfig(), [], {}) is None
    kept = past(lab, 0.80, name="kept")
    unscored = past(lab, 0.60, name="unscored", lr=3e-4)
    runs, scores = past_runs(lab.store)
    got = estimate(RunConfig(), runs, {**scores, unscored.id: {"accuracy": 0.60, "f1": math.nan}})
    assert got is not None and (got.n, got.accuracy, got.nearest_id) == (1, pytest.approx(0.80), kept.id)
    both = estimate(RunConfig(), runs, scores)
    assert both is not None and both.n == 2


def test_a_hidden_groups_runs_tell_nothing(lab: Lab) -> None:
    """A class lesson's runs, until the host reveals them, are no evidence for a participant's estimate."""
    past(lab, 0.80, name="mine")
    config = RunConfig(seed=1, lr=2e-4).to_dict()
    group = lab.store.create_group(name="class", method="lesson", metric="f1", spec={}, runs=[(config, "c", None)])
    [hidden] = lab.store.list_runs(group_id=group.id)
    lab.store.claim_run(hidden.id, pid=1)
    lab.store.add_metrics(hidden.id, [(10, 1.0, 4.0, "accuracy", 0.60), (10, 1.0, 4.0, "f1", 0.58)])
    lab.store.set_status(hidden.id, Status.FINISHED)
    seen = estimate_from_store(lab.store, RunConfig(lr=2e-4))
    assert seen is not None and seen.n == 2 and seen.nearest_id == hidden.id
    blind = estimate_from_store(lab.store, RunConfig(lr=2e-4), hidden={group.id})
    assert blind is not None and blind.n == 1 and blind.accuracy == pytest.approx(0.80)
