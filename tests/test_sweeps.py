"""Sweeps: parsing and checking a sweep, grid expansion, seeds, random draws reproducible from the sweep seed,
launching as one group (or nothing), Optuna's ask and tell through the real worker, and pruning a losing trial."""

from __future__ import annotations

import math
from pathlib import Path
from statistics import mean
from typing import Any

import pytest

from bert_lab.core.config import RunConfig
from bert_lab.engine.data import DataError
from bert_lab.processes.runner import run_job
from bert_lab.processes.worker import Worker
from bert_lab.runs import service
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.sweeps import search
from bert_lab.sweeps.launch import launch
from bert_lab.sweeps.report import ConfigResult, read_group
from bert_lab.sweeps.spec import (
    Range,
    SweepError,
    SweepSpec,
    check,
    choices_of,
    describe_params,
    draw,
    parse_assignments,
    parse_range,
    parse_values,
    runs_of,
)

TINY = RunConfig(model="tiny", dataset="sms_spam", train_size=64, eval_size=32, max_length=32, batch_size=16)


def grid(**values: list[object]) -> SweepSpec:
    return SweepSpec(method="grid", grid=dict(values), seeds=1)


def test_values_are_typed_as_the_config_field() -> None:
    assert parse_values("lr", "1e-4, 3e-3,1e-4") == [1e-4, 3e-3]  # repeats dropped, order kept
    assert parse_values("batch_size", "16,32") == [16, 32] and parse_values("batch_size", "1e2") == [100]
    assert parse_values("dropout", "none,0.1") == [None, 0.1]
    assert parse_values("optimizer", "adam,sgd") == ["adam", "sgd"]
    assert parse_values("group_by_length", "true,no") == [True, False]


@pytest.mark.parametrize(
    ("knob", "text", "message"),
    [
        ("lr", "", "lr: no values given"),
        ("lr", "fast", "lr: 'fast' is not a number"),
        ("batch_size", "3.5", "batch_size: '3.5' is not a whole number"),
        ("colour", "1", "colour: not a knob a sweep can vary"),
        ("seed", "1,2", "seed: use --seeds K"),
        ("nesterov", "x", "nesterov: not a knob a sweep can vary"),
    ],
)
def test_bad_values_name_the_knob(knob: str, text: str, message: str) -> None:
    with pytest.raises(SweepError, match=message):
        parse_values(knob, text)


def test_ranges() -> None:
    assert parse_range("lr", "1e-5:1e-3") == Range(1e-5, 1e-3, log=True)  # learning rates are log by default
    assert parse_range("lr", "1e-5:1e-3:lin") == Range(1e-5, 1e-3, log=False)
    assert parse_range("dropout", "0:0.3") == Range(0.0, 0.3, log=False)
    assert parse_range("optimizer", "adam,sgd") == Range(choices=("adam", "sgd"))
    for text, message in [
        ("1e-3:1e-5", "lr: the range's low 0.001 is above its high 1e-05"),
        ("0:1e-3", "lr: a log range needs a low above 0"),
        ("1:2:3", "a range is LOW:HIGH"),
    ]:
        with pytest.raises(SweepError, match=message):
            parse_range("lr", text)
    with pytest.raises(SweepError, match="schedule: not a number"):
        parse_range("schedule", "a:b")
    assert parse_assignments(["lr=1e-4,3e-4", "batch-size=16"], parse_values, "--grid") == {
        "lr": [1e-4, 3e-4],
        "batch_size": [16],
    }
    with pytest.raises(SweepError, match="lr: given twice"):
        parse_assignments(["lr=1", "lr=2"], parse_values, "--grid")
    with pytest.raises(SweepError, match="write KNOB=VALUES"):
        parse_assignments(["lr"], parse_values, "--grid")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (SweepSpec(method="grid"), "a sweep varies 1 to 3 knobs"),
        (grid(lr=[1e-4], dropout=[0.1], l1=[0.0], l2=[0.0]), "a sweep varies 1 to 3 knobs"),
        (grid(lr=[1e-4, -1.0]), r"lr=-1: must be a number in \(0, 10000\]"),
        (grid(batch_size=[16, 0]), "batch_size=0: must be a whole number at least 1"),
        (grid(lr=[]), "lr: no values given"),
        (SweepSpec(grid={"lr": [1e-4]}, seeds=11), "seeds: must be 1 to 10"),
        (SweepSpec(grid={"lr": [1e-4]}, metric="speed"), "metric: must be one of"),
        (SweepSpec(method="random", ranges={"lr": Range(1e-5, 1e-3, True)}), "needs a number of configs"),
        (SweepSpec(grid={"lr": [1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4, 7e-4]}, seeds=10), "70 runs .* cap of 64"),
    ],
)
def test_check_refuses_bad_sweeps(spec: SweepSpec, message: str) -> None:
    with pytest.raises(SweepError, match=message):
        check(TINY, spec)


def test_a_spec_is_a_frozen_value_that_round_trips_through_its_dict() -> None:
    import dataclasses

    spec = SweepSpec(
        method="random",
        ranges={"dropout": Range(0.0, 0.3), "optimizer": Range(choices=("adam", "sgd"))},
        trials=5,
        sweep_seed=3,
    )
    stored = spec.to_dict()
    assert stored["ranges"] == {
        "dropout": {"low": 0.0, "high": 0.3, "log": False},
        "optimizer": {"choices": ["adam", "sgd"]},
    }
    assert SweepSpec.from_dict(stored) == spec and stored["seeds"] == 1  # one run per config unless asked
    assert stored["prune"] is True  # a search prunes clearly losing trials unless asked not to
    for value, name in ((spec, "trials"), (Range(), "low")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, name, 1)


def test_ranges_say_log_or_lin_for_any_knob_and_need_two_numbers() -> None:
    assert parse_range("dropout", "0.01:0.3:log") == Range(0.01, 0.3, log=True)  # not a log knob, but asked
    with pytest.raises(SweepError, match="a range needs two numbers"):
        parse_range("classifier_dropout", "none:0.3")
    with pytest.raises(SweepError, match="a range needs two numbers"):
        parse_range("classifier_dropout", "0.1:none")


DROPOUT = {"dropout": Range(0.0, 0.3)}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (SweepSpec(method="random", trials=2), r"varies 1 to 3 knobs \(--range KNOB=LOW:HIGH\), got 0"),
        (SweepSpec(method="grid"), r"varies 1 to 3 knobs \(--grid KNOB=VALUES\), got 0"),
        (SweepSpec(method="random", grid={"lr": [1e-4]}, ranges=DROPOUT, trials=2), "a random sweep takes ranges only"),
        (SweepSpec(method="grid", grid={"lr": [1e-4]}, ranges=DROPOUT), "a grid sweep takes values only"),
        (SweepSpec(grid={"lr": [1e-4]}, seeds=0), "seeds: must be 1 to 10, got 0"),
        (SweepSpec(method="random", ranges={"lr": Range(1e-5, 1e-3)}), r"\(at least 1\), got 0"),
        (SweepSpec(method="random", ranges={"lr": Range(-1.0, 1e-3)}, trials=2), "lr=-1: must be a number"),
        (SweepSpec(method="random", ranges={"lr": Range(1e-5, 1e-3)}, trials=65), r"65 runs \(65 configs × 1 seeds\)"),
    ],
)
def test_check_names_the_way_to_fix_a_sweep(spec: SweepSpec, message: str) -> None:
    with pytest.raises(SweepError, match=message):
        check(TINY, spec)


def test_the_smallest_sweeps_pass_their_check() -> None:
    check(TINY, SweepSpec(method="random", ranges={"optimizer": Range(choices=("adam", "sgd"))}, trials=1))
    check(TINY, SweepSpec(grid={"lr": [1e-4]}, seeds=1))


def test_values_read_as_typed_and_choices_of_each_knob() -> None:
    assert describe_params({"classifier_dropout": None, "lr": 1e-4, "optimizer": "adam"}) == (
        "classifier_dropout=default lr=0.0001 optimizer=adam"
    )
    assert choices_of("group_by_length") == ("true", "false") and choices_of("lr") == ()
    assert choices_of("optimizer") == ("sgd", "momentum", "adam", "adamw")


def test_grid_is_every_combination_and_every_config_gets_its_seeds() -> None:
    spec = SweepSpec(grid={"lr": [1e-4, 3e-3], "dropout": [0.0, 0.1]}, seeds=3)
    check(TINY, spec)
    assert draw(spec) == [
        {"lr": 1e-4, "dropout": 0.0},
        {"lr": 1e-4, "dropout": 0.1},
        {"lr": 3e-3, "dropout": 0.0},
        {"lr": 3e-3, "dropout": 0.1},
    ]
    assert (spec.num_configs, spec.num_runs) == (4, 12)
    configs = runs_of(TINY, spec, {"lr": 3e-3, "dropout": 0.1})
    assert [(c.lr, c.dropout, c.seed) for c in configs] == [(3e-3, 0.1, 42), (3e-3, 0.1, 43), (3e-3, 0.1, 44)]


def test_random_draws_are_reproducible_from_the_sweep_seed_and_log_uniform() -> None:
    ranges = {
        "lr": Range(1e-5, 1e-2, log=True),
        "optimizer": Range(choices=("adam", "sgd")),
        "batch_size": Range(8, 64),
    }
    spec = SweepSpec(method="random", ranges=ranges, trials=40, sweep_seed=7)
    first, again = draw(spec), draw(spec)
    assert first == again and first != draw(SweepSpec(method="random", ranges=ranges, trials=40, sweep_seed=8))
    lrs = [d["lr"] for d in first]
    assert all(1e-5 <= lr <= 1e-2 for lr in lrs)
    # Log-uniform: about as many draws in each decade (uniform would put ~90% in the top decade).
    decades = [sum(10**e <= lr < 10 ** (e + 1) for lr in lrs) for e in (-5, -4, -3)]
    assert min(decades) >= 6, decades
    assert {d["optimizer"] for d in first} == {"adam", "sgd"} and all(isinstance(d["batch_size"], int) for d in first)


def test_launch_stores_one_group_with_named_runs(lab: Lab) -> None:
    spec = SweepSpec(grid={"lr": [1e-4, 3e-3]}, seeds=2, metric="accuracy")
    group = launch(lab, TINY, spec, name="lr sweep", owner="ana")
    runs = sorted(lab.store.list_runs(group_id=group.id), key=lambda r: r.id)
    assert (group.name, group.method, group.metric, group.owner) == ("lr sweep", "grid", "accuracy", "ana")
    assert group.spec["knobs"] == ["lr"] and group.spec["seeds"] == 2 and group.spec["base"] == TINY.to_dict()
    assert SweepSpec.from_dict(group.spec) == spec
    assert [r.name for r in runs] == [
        "lr sweep lr=0.0001 seed 42",
        "lr sweep lr=0.0001 seed 43",
        "lr sweep lr=0.003 seed 42",
        "lr sweep lr=0.003 seed 43",
    ]
    assert [(r.config["lr"], r.config["seed"]) for r in runs] == [(1e-4, 42), (1e-4, 43), (3e-3, 42), (3e-3, 43)]


def test_a_bad_sweep_or_dataset_queues_nothing(lab: Lab, tmp_path: Path) -> None:
    with pytest.raises(SweepError):
        launch(lab, TINY, grid(lr=[1e-4, -1.0]))
    bad = tmp_path / "one-class.csv"
    bad.write_text("text,label\n" + "".join(f"t{i},pos\n" for i in range(20)))
    with pytest.raises(DataError):
        launch(lab, RunConfig(**{**TINY.to_dict(), "dataset": str(bad)}), grid(lr=[1e-4]))
    assert lab.store.list_runs() == [] and lab.store.list_groups() == []


def test_group_cancel_resume_and_delete_act_on_every_run(lab: Lab) -> None:
    group = launch(lab, TINY, SweepSpec(grid={"lr": [1e-4, 3e-4]}, seeds=2))
    cancelled = service.cancel_group(lab, group.id)
    assert {r.status for r in cancelled} == {Status.CANCELLED} and len(cancelled) == 4
    assert lab.store.get_group(group.id).stopped
    resumed = service.resume_group(lab, group.id)
    assert {r.status for r in resumed} == {Status.QUEUED} and not lab.store.get_group(group.id).stopped
    running = lab.store.list_runs(group_id=group.id)[0].id
    lab.store.claim_run(running, pid=1)
    with pytest.raises(service.StoreError, match=f"run\\(s\\) {running} running"):
        service.delete_group(lab, group.id)
    lab.store.set_status(running, Status.FINISHED)
    lab.data.run(running).create()
    service.delete_group(lab, group.id)
    assert lab.store.list_runs() == [] and lab.store.list_groups() == []
    assert not lab.data.run(running).path.exists()


def test_optuna_search_asks_and_is_told_through_the_real_worker(lab: Lab) -> None:
    spec = SweepSpec(
        method="search",
        ranges={"lr": Range(1e-5, 1e-2, log=True), "optimizer": Range(choices=("adamw", "sgd"))},
        trials=4,
        seeds=1,
        sweep_seed=3,
    )
    group = launch(lab, TINY, spec, name="search")
    assert len(lab.store.list_runs(group_id=group.id)) == 1  # the first trial; the worker asks for the rest
    worker = Worker(lab, max_concurrent=1)
    try:
        worker.run(exit_when_idle=True)
    finally:
        worker.executor.close()
    runs = sorted(lab.store.list_runs(group_id=group.id), key=lambda r: r.id)
    assert len(runs) == 4 and {r.status for r in runs} == {Status.FINISHED}
    tried = [(r.config["lr"], r.config["optimizer"]) for r in runs]
    assert len(set(tried)) == 4 and all(1e-5 <= lr <= 1e-2 for lr, _ in tried)
    assert all("search trial asked" in e.message for r in runs[1:] for e in lab.store.read_events(r.id)[:1])
    report = read_group(lab.store, group.id)
    assert len(report.configs) == 4 and all(c.stats("f1").n == 1 for c in report.configs)
    # Told results shape the next ask: the same history asks the same next config, a different one another.
    again = search.next_params(spec, report.configs)
    assert again == search.next_params(spec, report.configs)
    assert again != search.next_params(spec, report.configs[:2])
    assert search.ask_due_trials(lab, slots=1) == []  # the budget is spent


def add_eval_series(lab: Lab, run_id: int, values: list[float], metric: str = "f1") -> None:
    lab.store.add_metrics(run_id, [(10 * (i + 1), 0.2 * (i + 1), 1.0, metric, v) for i, v in enumerate(values)])


def search_group_with_finished_runs(
    lab: Lab, series: list[list[float]], metric: str = "f1", *, prune: bool = True
) -> str:
    spec = SweepSpec(
        method="search", ranges={"lr": Range(1e-5, 1e-2, log=True)}, trials=10, seeds=1, metric=metric, prune=prune
    )
    runs = [({**TINY.to_dict(), "lr": 1e-4 * (i + 1)}, f"trial {i}", None) for i in range(len(series))]
    group = lab.store.create_group(
        name="s", method="search", metric=metric, spec={**spec.to_dict(), "base": TINY.to_dict()}, runs=runs
    )
    for run, values in zip(sorted(lab.store.list_runs(group_id=group.id), key=lambda r: r.id), series):
        lab.store.claim_run(run.id, pid=1)
        add_eval_series(lab, run.id, values, metric)
        lab.store.set_status(run.id, Status.FINISHED)
    return group.id


def test_prune_reason_stops_only_a_clearly_losing_run(lab: Lab) -> None:
    group_id = search_group_with_finished_runs(lab, [[0.6, 0.8, 0.85], [0.62, 0.82, 0.84], [0.58, 0.79, 0.8]] * 2)
    group = lab.store.get_group(group_id)
    loser, keeper = (lab.store.create_run(TINY.to_dict(), group_id=group_id).id for _ in range(2))
    add_eval_series(lab, loser, [0.6])
    assert search.prune_reason(lab.store, group, loser) is None  # never at the first evaluation
    add_eval_series(lab, loser, [0.5])
    add_eval_series(lab, keeper, [0.61, 0.81])
    reason = search.prune_reason(lab.store, group, loser)
    assert reason is not None and reason.startswith("pruned at evaluation 2: F1 (macro) 0.600 so far")
    assert "worst quarter of the 6 finished runs" in reason
    assert search.prune_reason(lab.store, group, keeper) is None
    no_prune = lab.store.create_group(name="g", method="grid", metric="f1", spec={})
    assert search.prune_reason(lab.store, no_prune, loser) is None


def test_prune_reason_on_a_loss_names_the_highest_quarter_and_a_search_may_not_prune(lab: Lab) -> None:
    losses = [[0.6, 0.4, 0.35], [0.58, 0.38, 0.36], [0.62, 0.42, 0.4]] * 2
    group = lab.store.get_group(search_group_with_finished_runs(lab, losses, "eval_loss"))
    loser = lab.store.create_run(TINY.to_dict(), group_id=group.id).id
    add_eval_series(lab, loser, [0.6, 0.7], "eval_loss")
    # At evaluation 2 the others are 0.38, 0.38, 0.4, 0.4, 0.42, 0.42: their 75th percentile is 0.4 + 0.75 × 0.02.
    reason = search.prune_reason(lab.store, group, loser)
    assert reason is not None and "0.600 so far" in reason and "(their highest quarter starts at 0.415)" in reason
    kept = lab.store.get_group(search_group_with_finished_runs(lab, losses, "eval_loss", prune=False))
    late = lab.store.create_run(TINY.to_dict(), group_id=kept.id).id
    add_eval_series(lab, late, [0.6, 0.7], "eval_loss")
    assert search.prune_reason(lab.store, kept, late) is None  # asked not to prune


def test_a_pruned_trial_stops_early_and_says_why(lab: Lab) -> None:
    # Four finished trials scored 0.99 at every evaluation: a real tiny-BERT run (F1 ~0.5) is clearly losing.
    group_id = search_group_with_finished_runs(lab, [[0.99] * 25] * 4)
    config = RunConfig(**{**TINY.to_dict(), "train_size": 2000, "eval_every_steps": 5})  # 125 steps, 25 evaluations
    run_id = lab.store.create_run(config.to_dict(), group_id=group_id).id
    lab.store.claim_run(run_id, pid=1)
    assert run_job(lab, run_id) == 0
    run = lab.store.get_run(run_id)
    assert run.status == Status.PRUNED and run.error is not None and run.error.startswith("pruned at evaluation")
    assert run.summary.reason == run.error and run.summary.steps < 125
    assert not lab.data.run(run_id).checkpoint.exists()
    evaluations = [p for p in lab.store.read_metrics(run_id, names=["f1"])]
    assert 2 <= len(evaluations) < 25 and not math.isnan(evaluations[-1].value)


def test_a_sweep_on_the_bundled_minilm_is_trained_and_judged(lab: Lab) -> None:
    base = RunConfig(dataset="rotten_tomatoes", train_size=96, eval_size=64, max_length=32, batch_size=16)
    group = launch(lab, base, SweepSpec(grid={"lr": [1e-4, 3e-3]}, seeds=2), name="minilm")
    worker = Worker(lab, max_concurrent=1)
    try:
        worker.run(exit_when_idle=True)
    finally:
        worker.executor.close()
    report = read_group(lab.store, group.id)
    assert report.counts == {"finished": 4}
    assert sorted(c.params["lr"] for c in report.configs) == [1e-4, 3e-3]
    latest = lab.store.latest_metrics([r.id for c in report.configs for r in c.runs])
    for config in report.configs:
        accuracies = [latest[r.id]["accuracy"] for r in config.runs]  # each seed's final accuracy
        assert config.stats("accuracy").n == 2 and config.stats("accuracy").mean == pytest.approx(mean(accuracies))
        assert {r.config["model"] for r in config.runs} == {"minilm"}
        assert all(r.status == Status.FINISHED and r.summary.steps == 6 for r in config.runs)  # 96 / 16: trained
    verdict = report.verdict()
    assert verdict is not None and verdict.a is report.configs[0] and not math.isnan(verdict.diff)
    assert report.leaders[0] is report.configs[0]  # the best (or, on an exact tie, the first of the tied)


# === the search's parts, without training ===========================================================================
SEARCH_RANGES = {
    "lr": Range(1e-5, 1e-2, log=True),
    "batch_size": Range(8, 64),
    "optimizer": Range(choices=("adam", "sgd")),
}


def test_each_knob_becomes_the_optuna_distribution_of_its_type() -> None:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    assert search.distributions(SweepSpec(method="search", ranges=SEARCH_RANGES, trials=4)) == {
        "lr": FloatDistribution(1e-5, 1e-2, log=True),
        "batch_size": IntDistribution(8, 64),
        "optimizer": CategoricalDistribution(["adam", "sgd"]),
    }


def test_a_value_is_inside_a_range_with_its_ends_and_asked_floats_are_tidied_into_it() -> None:
    from optuna.distributions import FloatDistribution, IntDistribution

    lr = Range(1e-5, 1e-3)
    assert search._inside(1e-5, lr) and search._inside(1e-3, lr) and not search._inside(1.1e-3, lr)
    assert not search._inside(9e-6, lr) and not search._inside(None, lr)
    assert search._inside("sgd", SEARCH_RANGES["optimizer"]) and not search._inside("adamw", SEARCH_RANGES["optimizer"])
    floats = FloatDistribution(1e-5, 1e-2, log=True)
    assert search._tidy(0.000123456, floats) == 0.000123  # three significant digits
    assert search._tidy(9.9949e-6, floats) == 1e-5 and search._tidy(0.0100049, floats) == 1e-2  # kept inside
    assert search._tidy(17, IntDistribution(8, 64)) == 17


def trial_of(lab: Lab, statuses: list[Status], values: list[float], lr: float = 1e-4) -> Any:
    """A tried config of the search (its runs in `statuses`, its finished values) as Optuna's trial, the worst 0.5."""
    spec = SweepSpec(method="search", ranges={"lr": Range(1e-5, 1e-2, log=True)}, trials=4, metric="accuracy")
    runs = []
    for status in statuses:
        run = lab.store.create_run({"lr": lr})
        if status != Status.QUEUED:
            lab.store.claim_run(run.id, pid=1)
            if status != Status.RUNNING:
                lab.store.set_status(run.id, status)
        runs.append(lab.store.get_run(run.id))
    config = ConfigResult({"lr": lr}, runs, {"accuracy": values}, 0)
    return search._as_trial(config, spec, search.distributions(spec), worst=0.5)


def test_a_tried_config_is_told_to_optuna_by_how_its_runs_stand(lab: Lab) -> None:
    from optuna.trial import TrialState

    running = trial_of(lab, [Status.FINISHED, Status.RUNNING], [0.8])
    assert running.state == TrialState.RUNNING and running.params == {"lr": 1e-4}
    assert trial_of(lab, [Status.QUEUED], []).state == TrialState.RUNNING
    pruned = trial_of(lab, [Status.PRUNED], [])
    assert (pruned.state, pruned.value) == (TrialState.COMPLETE, 0.5)  # stopped early: the worst value seen
    done = trial_of(lab, [Status.FINISHED, Status.FINISHED], [0.7, 0.8])
    assert (done.state, done.value) == (TrialState.COMPLETE, pytest.approx(0.75))  # the mean of its seeds
    assert trial_of(lab, [Status.FAILED], []).state == TrialState.FAIL
    assert trial_of(lab, [Status.FINISHED], [0.9], lr=0.1) is None  # outside the ranges: not told
    scored = [ConfigResult({}, [], {"accuracy": [0.6, 0.7]}, 0), ConfigResult({}, [], {"accuracy": [0.9]}, 0)]
    assert search._worst(scored, "accuracy", higher=True) == 0.6 and search._worst(scored, "accuracy", False) == 0.9
    assert search._worst([ConfigResult({}, [], {}, 0)], "accuracy", higher=True) is None


def test_the_worker_asks_for_trials_until_its_slots_or_the_budget_are_full(lab: Lab) -> None:
    spec = SweepSpec(method="search", ranges={"lr": Range(1e-5, 1e-2, log=True)}, trials=3, sweep_seed=1)
    group = launch(lab, TINY, spec, name="search")
    launch(lab, TINY, grid(lr=[1e-4, 3e-4]))  # a grid is never asked for more
    asked = search.ask_due_trials(lab, slots=2)
    assert len(asked) == 1 and [r.group_id for r in asked] == [group.id]  # one queued already: two fill the slots
    assert search.ask_due_trials(lab, slots=2) == []
    for run in lab.store.list_runs(group_id=group.id):
        lab.store.claim_run(run.id, pid=1)
        lab.store.add_metrics(run.id, [(10, 1.0, 5.0, "f1", 0.7)])
        lab.store.set_status(run.id, Status.FINISHED)
    assert len(search.ask_due_trials(lab, slots=2)) == 1  # the third and last trial
    assert search.ask_due_trials(lab, slots=5) == [] and len(lab.store.list_runs(group_id=group.id)) == 3
    wide = launch(lab, TINY, SweepSpec(method="search", ranges={"lr": Range(1e-5, 1e-2, log=True)}, trials=3))
    assert len(search.ask_due_trials(lab, slots=9)) == 2  # slots to spare: its other two trials, one at a time
    lab.store.set_group_stopped(wide.id, True)
    spec_of_another = SweepSpec(method="search", ranges={"lr": Range(1e-5, 1e-2, log=True)}, trials=3)
    stopped = launch(lab, TINY, spec_of_another, name="stopped")
    lab.store.set_group_stopped(stopped.id, True)
    assert search.ask_due_trials(lab, slots=5) == []  # a stopped search asks for nothing


def test_a_search_that_cannot_ask_is_stopped_not_retried(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    runs = [({"lr": 1e-4}, "first", None)]
    spec = {**SweepSpec(method="search", ranges={"lr": Range(1e-5, 1e-2)}, trials=3).to_dict()}  # no base config
    broken = lab.store.create_group(name="broken", method="search", metric="f1", spec=spec, runs=runs)
    assert search.ask_due_trials(lab, slots=2) == []
    assert lab.store.get_group(broken.id).stopped and f"search {broken.id} stopped" in capsys.readouterr().err


def test_nothing_is_pruned_before_four_runs_have_finished(lab: Lab) -> None:
    for finished, pruned in ((3, False), (4, True)):
        group = lab.store.get_group(search_group_with_finished_runs(lab, [[0.6, 0.8, 0.85]] * finished))
        loser = lab.store.create_run(TINY.to_dict(), group_id=group.id).id
        add_eval_series(lab, loser, [0.3, 0.3])
        assert (search.prune_reason(lab.store, group, loser) is not None) is pruned, finished


def test_the_next_trial_ignores_configs_outside_the_ranges() -> None:
    spec = SweepSpec(method="search", ranges={"lr": Range(1e-5, 1e-3, log=True)}, trials=4, metric="accuracy")
    outside = ConfigResult({"lr": 0.5}, [], {"accuracy": [0.9]}, 0)  # tried before the ranges were narrowed
    asked = search.next_params(spec, [outside])
    assert set(asked) == {"lr"} and 1e-5 <= asked["lr"] <= 1e-3


@pytest.mark.parametrize(("trials", "startup"), [(4, 3), (9, 3), (12, 4), (30, 10), (31, 10), (90, 10)])
def test_tpe_samples_a_third_of_the_budget_at_random_first_and_lies_about_running_trials(
    trials: int, startup: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Optuna's sampler as the search sets it up (the outside world: Optuna's constructor is watched, not replaced):
    random start-up trials a third of the budget within 3 to 10, and the constant liar, so that trials asked while
    others run are told apart."""
    import optuna

    made: list[dict[str, Any]] = []
    real = optuna.samplers.TPESampler

    def watched(**kwargs: Any) -> optuna.samplers.TPESampler:
        made.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(optuna.samplers, "TPESampler", watched)
    spec = SweepSpec(method="search", ranges={"lr": Range(1e-5, 1e-3, log=True)}, trials=trials, sweep_seed=2)
    search.next_params(spec, [])
    assert made == [{"seed": 2000, "n_startup_trials": startup, "constant_liar": True}]


def test_the_worst_quarter_is_cut_at_the_25th_percentile_of_the_finished_runs(lab: Lab) -> None:
    # Four finished runs at 0.0, 0.1, 0.2 and 0.3 at evaluation 2: their 25th percentile is 0.075.
    group = lab.store.get_group(search_group_with_finished_runs(lab, [[0.5, v] for v in (0.0, 0.1, 0.2, 0.3)]))
    verdicts = {}
    for best in (0.074, 0.076):
        run = lab.store.create_run(TINY.to_dict(), group_id=group.id).id
        add_eval_series(lab, run, [0.07, best])
        verdicts[best] = search.prune_reason(lab.store, group, run) is not None
    assert verdicts == {0.074: True, 0.076: False}
