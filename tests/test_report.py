"""Reading a group: aggregation per config, the verdict and knob importance, against numbers computed by hand
(Welch–Satterthwaite degrees of freedom, Student's t quantiles from a table) on runs stored in a real store."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from bert_lab.runs.records import RunSummary
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.sweeps.report import (
    SEED_NOISE,
    ConfigResult,
    Stats,
    compare,
    importance,
    importance_missing,
    read_group,
    seeds_to_settle,
)

T_975_DF2 = 4.302653  # Student's t, 97.5% quantile, 2 degrees of freedom (any t table)


def finished_group(
    lab: Lab,
    results: dict[Any, list[float]],
    *,
    knob: str = "lr",
    method: str = "grid",
    majority: int = 58,
    metric: str = "accuracy",
) -> str:
    """A group of finished runs: for each knob value, one run per accuracy in its list (F1 = accuracy − 0.01, eval
    loss = 1 − accuracy), evaluated on 100 examples whose majority class is `majority` of them."""
    runs = [
        ({knob: value, "seed": 42 + i}, f"{knob}={value} seed {42 + i}", None)
        for value, accs in results.items()
        for i in range(len(accs))
    ]
    group = lab.store.create_group(
        name="g", method=method, metric=metric, spec={"knobs": [knob], "seeds": 3}, runs=runs
    )
    stored = sorted(lab.store.list_runs(group_id=group.id), key=lambda r: r.id)
    accuracies = [acc for accs in results.values() for acc in accs]
    for run, acc in zip(stored, accuracies):
        lab.store.claim_run(run.id, pid=1)
        points = [
            (10, 1.0, 5.0, "accuracy", acc),
            (10, 1.0, 5.0, "f1", acc - 0.01),
            (10, 1.0, 5.0, "eval_loss", 1 - acc),
        ]
        lab.store.add_metrics(run.id, points)
        lab.store.update_run(run.id, summary=RunSummary(confusion=[[majority, 0], [100 - majority, 0]]))
        lab.store.set_status(run.id, Status.FINISHED)
    return group.id


def test_stats_match_the_t_interval_by_hand() -> None:
    s = Stats.of([0.70, 0.72, 0.74])
    half = T_975_DF2 * 0.02 / math.sqrt(3)  # t · s / √n
    assert (s.n, s.mean, s.std) == (3, pytest.approx(0.72), pytest.approx(0.02))
    assert s.ci95 == (pytest.approx(0.72 - half), pytest.approx(0.72 + half))
    one = Stats.of([0.7])
    assert one.n == 1 and math.isnan(one.std) and one.to_dict() == {"mean": 0.7, "std": None, "ci95": [None, None]}
    assert Stats.of([]).n == 0
    assert Stats.of([0.7, 0.7]) == Stats(2, 0.7, 0.0, (0.7, 0.7))  # no spread: the interval is the mean itself


def test_configs_are_gathered_ranked_and_judged(lab: Lab) -> None:
    group_id = finished_group(lab, {3e-3: [0.58, 0.58, 0.60], 1e-4: [0.76, 0.75, 0.77]})
    report = read_group(lab.store, group_id)
    assert [c.params for c in report.configs] == [{"lr": 1e-4}, {"lr": 3e-3}]  # best first
    best, worst = report.configs
    assert report.best is best and best.stats("accuracy").mean == pytest.approx(0.76)
    assert best.stats("f1").mean == pytest.approx(0.75) and best.stats("eval_loss").mean == pytest.approx(0.24)
    assert (best.degenerate, worst.degenerate) == (0, 2)  # 0.58 is the majority class: learned nothing
    verdict = report.verdict()
    assert verdict is not None and verdict.a is best and verdict.b is worst
    # Welch by hand: s² = 0.0001 and 0.000133…, df = 3.92; the 95% interval of 17.33 points is [14.86, 19.80].
    assert verdict.diff == pytest.approx(17.3333, abs=1e-3)
    assert verdict.ci95 == (pytest.approx(14.8649, abs=1e-3), pytest.approx(19.8018, abs=1e-3))
    assert verdict.real and verdict.unit == "points"
    words = "lr=0.0001 vs lr=0.003: Accuracy +17.33 points (95% interval +14.86 to +19.80): real at 95%."
    assert verdict.words == words
    data = report.to_dict()
    assert data["best"] == {"lr": 1e-4} and data["verdict"]["real"] is True
    assert data["configs"][0]["n"] == 3 and data["configs"][0]["run_ids"] == [r.id for r in best.runs]
    assert data["counts"] == {"finished": 6}


def test_a_gap_within_seed_noise_says_so_and_how_many_seeds_would_settle_it(lab: Lab) -> None:
    report = read_group(lab.store, finished_group(lab, {1e-4: [0.76, 0.75, 0.77], 2e-4: [0.70, 0.72, 0.65]}))
    verdict = report.verdict()
    assert verdict is not None and not verdict.real
    # Welch by hand: df = 2.306, t = 3.799, se = 2.160 points → 7.00 ± 8.21 points.
    assert verdict.diff == pytest.approx(7.0, abs=1e-6)
    assert verdict.ci95 == (pytest.approx(-1.2077, abs=1e-3), pytest.approx(15.2077, abs=1e-3))
    assert verdict.seeds_needed == 4 and "within seed noise, run more seeds" in verdict.words
    assert "About 4 seeds per config would likely settle it (1 more each)" in verdict.words
    tiny_gap = compare(report.configs[0], report.configs[0], "accuracy")
    assert not tiny_gap.real and tiny_gap.seeds_needed is None and "treat them as equal" in tiny_gap.words


def test_one_seed_per_config_cannot_be_judged(lab: Lab) -> None:
    verdict = read_group(lab.store, finished_group(lab, {1e-4: [0.76], 3e-4: [0.70]})).verdict()
    assert verdict is not None and not verdict.real and math.isnan(verdict.ci95[0])
    assert "run at least 2 seeds of each" in verdict.words


def test_unfinished_runs_are_counted_not_averaged(lab: Lab) -> None:
    group_id = finished_group(lab, {1e-4: [0.76, 0.75]})
    lab.store.create_run({"lr": 1e-4, "seed": 50}, group_id=group_id)
    diverged = lab.store.create_run({"lr": 1e-4, "seed": 51}, group_id=group_id).id
    lab.store.claim_run(diverged, pid=1)
    lab.store.set_status(diverged, Status.DIVERGED, error="loss became nan")
    [config] = read_group(lab.store, group_id).configs
    assert config.stats("accuracy").n == 2 and config.degenerate == 1
    assert config.to_dict()["counts"] == {"finished": 2, "queued": 1, "diverged": 1}


def test_grid_main_effects_and_seed_noise_by_hand(lab: Lab) -> None:
    # Two levels, two seeds each: 0.6, 0.62 | 0.8, 0.78. Level means 0.61 and 0.79, grand mean 0.70:
    # between = 4 · 0.09² = 0.0324; within = 4 · 0.01² = 0.0004; total = 0.0328.
    report = read_group(lab.store, finished_group(lab, {1e-4: [0.6, 0.62], 3e-4: [0.8, 0.78]}))
    method, shares = importance(report)
    assert method == "main effects (η²)"
    assert shares["lr"] == pytest.approx(0.0324 / 0.0328) and shares[SEED_NOISE] == pytest.approx(0.0004 / 0.0328)


LRS = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 2e-3]


def test_no_importance_from_one_config_or_from_configs_that_all_scored_the_same(lab: Lab) -> None:
    assert importance(read_group(lab.store, finished_group(lab, {1e-4: [0.7, 0.72]}))) == ("", {})
    level = finished_group(lab, {1e-4: [0.7, 0.7], 3e-4: [0.7, 0.7]})
    assert importance(read_group(lab.store, level)) == ("", {})  # nothing varied to explain


def test_importance_of_a_random_sweep_comes_from_optuna(lab: Lab) -> None:
    values = {v: [0.5 + 0.03 * i] for i, v in enumerate(LRS)}
    method, shares = importance(read_group(lab.store, finished_group(lab, values, method="random")))
    assert method == "Optuna PED-ANOVA" and set(shares) == {"lr"} and shares["lr"] == pytest.approx(1.0)


def test_a_group_without_a_spec_is_read_by_what_differs(lab: Lab) -> None:
    runs = [
        ({"lr": 1e-4, "seed": 1, "model": "tiny"}, "a", None),
        ({"lr": 3e-4, "seed": 2, "model": "tiny"}, "b", None),
    ]
    group = lab.store.create_group(name="lesson", method="runs", metric="f1", spec={}, runs=runs)
    report = read_group(lab.store, group.id)
    assert report.knobs == ["lr"] and [c.params for c in report.configs] == [{"lr": 1e-4}, {"lr": 3e-4}]
    assert report.verdict() is None and report.to_dict()["verdict"] is None


def config(values: list[float], lr: float, metric: str = "accuracy") -> ConfigResult:
    """A config's finished values on `metric` (the verdict reads only those)."""
    return ConfigResult({"lr": lr}, [], {metric: values}, 0)


def test_one_seed_against_several_cannot_be_judged_yet() -> None:
    one, several = config([0.76], 1e-4), config([0.70, 0.71, 0.72], 3e-4)
    for verdict in (compare(one, several, "accuracy"), compare(several, one, "accuracy")):
        assert verdict.a is one and verdict.diff == pytest.approx(5.0)  # 76 − 71 points
        assert math.isnan(verdict.ci95[0]) and math.isnan(verdict.ci95[1]) and not verdict.real
        assert verdict.seeds_needed == 3  # as many as the config with the most
        assert "cannot tell yet: 1 finished run(s) per config; run at least 2 seeds of each" in verdict.words
    assert compare(config([0.76], 1e-4), config([0.70], 3e-4), "accuracy").seeds_needed == 2
    better_several = compare(config([0.70], 1e-4), config([0.80, 0.81, 0.82], 3e-4), "accuracy")  # the worse: one
    assert better_several.a.params == {"lr": 3e-4} and math.isnan(better_several.ci95[0])
    assert better_several.seeds_needed == 3


def test_configs_without_spread_are_judged_by_their_gap_alone() -> None:
    apart = compare(config([0.6, 0.6], 3e-4), config([0.7, 0.7], 1e-4), "accuracy")
    assert apart.a.params == {"lr": 1e-4} and apart.diff == pytest.approx(10.0)
    assert apart.ci95 == (pytest.approx(10.0), pytest.approx(10.0)) and apart.real and apart.seeds_needed is None
    level = compare(config([0.7, 0.7], 1e-4), config([0.7, 0.7], 3e-4), "accuracy")
    assert (level.diff, level.ci95, level.real, level.seeds_needed) == (0.0, (0.0, 0.0), False, None)
    assert "treat them as equal" in level.words
    for flat, spread in (([0.7, 0.7], [0.6, 0.62]), ([0.6, 0.6], [0.7, 0.72])):  # one without spread: Welch
        one_flat = compare(config(flat, 1e-4), config(spread, 3e-4), "accuracy")
        assert one_flat.ci95[0] < one_flat.diff - 1 and one_flat.ci95[1] > one_flat.diff + 1


def test_an_interval_just_above_or_below_zero_decides() -> None:
    # Welch by hand: both s = 0.5 points, se = √(2 · 0.25 / 3) = 0.408 points, df = 4, t = 2.776.
    real = compare(config([0.70, 0.705, 0.71], 1e-4), config([0.685, 0.69, 0.695], 3e-4), "accuracy")
    assert real.diff == pytest.approx(1.5) and real.ci95[0] == pytest.approx(1.5 - 2.776445 * 0.408248, abs=1e-4)
    assert 0 < real.ci95[0] < 1 and real.real and real.seeds_needed is None  # 0.37 points above zero
    noise = compare(config([0.70, 0.71, 0.72], 1e-4), config([0.68, 0.69, 0.70], 3e-4), "accuracy")
    assert noise.ci95[0] == pytest.approx(2.0 - 2.776445 * 0.816497, abs=1e-4)  # s = 1 point each
    assert -1 < noise.ci95[0] < 0 and not noise.real


def test_a_lower_loss_is_better_and_its_interval_lies_below_zero() -> None:
    lower, higher = config([0.295, 0.30, 0.305], 1e-4, "eval_loss"), config([0.31, 0.315, 0.32], 3e-4, "eval_loss")
    real = compare(higher, lower, "eval_loss")
    assert real.a is lower and real.diff == pytest.approx(-0.015) and real.unit == "eval loss"
    assert real.ci95[1] == pytest.approx(-0.015 + 2.776445 * 0.00408248, abs=1e-5)  # −0.0037: in loss units
    assert -1 < real.ci95[1] < 0 and real.real
    close = compare(
        config([0.30, 0.31, 0.32], 1e-4, "eval_loss"), config([0.31, 0.32, 0.33], 3e-4, "eval_loss"), "eval_loss"
    )
    assert 0 < close.ci95[1] < 1 and not close.real


def test_importance_of_a_random_sweep_over_two_knobs_finds_the_one_that_matters(lab: Lab) -> None:
    # Twenty configs: accuracy follows the learning rate; the batch size takes turns and moves nothing.
    lrs = [1e-5 * 1.3**i for i in range(20)]
    runs = [({"lr": lr, "batch_size": 16 if i % 2 else 32, "seed": 42}, f"r{i}", None) for i, lr in enumerate(lrs)]
    group = lab.store.create_group(
        name="g", method="random", metric="accuracy", spec={"knobs": ["lr", "batch_size"]}, runs=runs
    )
    for i, run in enumerate(sorted(lab.store.list_runs(group_id=group.id), key=lambda r: r.id)):
        lab.store.claim_run(run.id, pid=1)
        lab.store.add_metrics(run.id, [(10, 1.0, 5.0, "accuracy", 0.5 + 0.01 * i)])
        lab.store.set_status(run.id, Status.FINISHED)
    method, shares = importance(read_group(lab.store, group.id))
    assert method == "Optuna PED-ANOVA" and set(shares) == {"lr", "batch_size"}
    assert sum(shares.values()) == pytest.approx(1.0) and shares["lr"] > 0.9 and shares["batch_size"] < 0.1


def test_reports_are_frozen_values() -> None:
    result = config([0.7, 0.72], 1e-4)
    verdict = compare(result, config([0.6, 0.61], 3e-4), "accuracy")
    for value, name in ((Stats.of([0.7]), "n"), (result, "degenerate"), (verdict, "real")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, name, 0)


def test_a_config_is_labelled_by_its_knobs_or_as_the_base_config() -> None:
    assert ConfigResult({"lr": 1e-4, "batch_size": 16}, [], {}, 0).label == "lr=0.0001 batch_size=16"
    assert ConfigResult({}, [], {}, 0).label == "base config"


def test_the_verdict_between_two_chosen_configs_and_none_with_one_scored(lab: Lab) -> None:
    report = read_group(lab.store, finished_group(lab, {1e-4: [0.76, 0.75, 0.77], 3e-4: [0.70, 0.72, 0.65]}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.knobs = []  # type: ignore[misc]
    best, worst = report.configs
    chosen = report.verdict(worst, best)  # the better one comes first whichever order they are given in
    assert chosen is not None and chosen.a is best and chosen.diff == pytest.approx(7.0)
    three = read_group(lab.store, finished_group(lab, {1e-4: [0.8, 0.81], 2e-4: [0.7, 0.72], 3e-4: [0.6, 0.61]}))
    first, second, third = three.configs
    lower = three.verdict(second, third)  # not the two best: the two asked about
    assert lower is not None and (lower.a, lower.b) == (second, third) and lower.diff == pytest.approx(10.5)
    default = three.verdict(third)  # only one given: the default pair
    assert default is not None and (default.a, default.b) == (first, second)
    one = read_group(lab.store, finished_group(lab, {1e-4: [0.7, 0.72]}))
    assert one.verdict() is None and one.to_dict()["verdict"] is None


def test_a_group_on_eval_loss_ranks_the_lowest_first(lab: Lab) -> None:
    report = read_group(lab.store, finished_group(lab, {3e-3: [0.58, 0.60], 1e-4: [0.76, 0.75]}, metric="eval_loss"))
    assert [c.params for c in report.configs] == [{"lr": 1e-4}, {"lr": 3e-3}]  # eval loss 0.245 before 0.41


def test_a_tie_keeps_the_order_the_configs_were_given_in() -> None:
    first, second = config([0.7, 0.71], 1e-4), config([0.71, 0.7], 3e-4)
    assert compare(first, second, "accuracy").a is first and compare(second, first, "accuracy").a is second


def test_seeds_to_settle_match_the_power_tables() -> None:
    # Two configs of three seeds, each with s = 1 point: Cohen's d is the gap in points. Cohen's table (and G*Power)
    # for a two-sided 5% test at 80% power: 17 per group at d = 1, 64 at d = 0.5, 6 at d = 2; d = 0.25 needs 253.
    # d = 1.8 also needs 6, but only just: with 2n − 3 degrees of freedom instead of 2n − 2 it would take 7.
    base = [0.70, 0.71, 0.72]
    for gap, seeds in ((0.01, 17), (0.005, 64), (0.02, 6), (0.018, 6), (0.0025, None)):
        assert seeds_to_settle(base, [v + gap for v in base]) == seeds
    assert seeds_to_settle([0.7, 0.7], [0.6, 0.6]) is None  # no spread: nothing to estimate the noise from
    assert seeds_to_settle(base, base) is None  # no gap


def test_the_advice_asks_for_more_seeds_than_the_configs_have() -> None:
    # Welch's interval on 3 + 3 runs with spreads 0.1 and 2 points has about 2 degrees of freedom (t = 4.30), so a
    # 4.5-point gap (t ≈ 3.9) is not settled; the power formula already gives 80% at 3 seeds: the advice is 4, one more.
    steady, noisy = config([0.745, 0.746, 0.747], 1e-4), config([0.68, 0.70, 0.72], 3e-4)
    verdict = compare(steady, noisy, "accuracy")
    assert not verdict.real and verdict.ci95[0] < 0 and verdict.seeds_needed == 4


def test_importance_reads_only_the_knobs_that_varied(lab: Lab) -> None:
    runs = [({"lr": lr, "batch_size": 16, "seed": 42 + s}, f"r{lr}{s}", None) for lr in (1e-4, 3e-4) for s in (0, 1)]
    group = lab.store.create_group(
        name="g", method="grid", metric="accuracy", spec={"knobs": ["lr", "batch_size"]}, runs=runs
    )
    for run, acc in zip(sorted(lab.store.list_runs(group_id=group.id), key=lambda r: r.id), [0.6, 0.62, 0.8, 0.78]):
        lab.store.claim_run(run.id, pid=1)
        lab.store.add_metrics(run.id, [(10, 1.0, 5.0, "accuracy", acc)])
        lab.store.set_status(run.id, Status.FINISHED)
    method, shares = importance(read_group(lab.store, group.id))
    assert set(shares) == {"lr", SEED_NOISE} and shares["lr"] == pytest.approx(0.0324 / 0.0328)


def test_optuna_gets_a_log_range_for_wide_numbers_and_choices_for_words_and_flags(lab: Lab, monkeypatch) -> None:
    seen: list[dict[str, Any]] = []
    real = optuna.importance.get_param_importances

    def spy(study: optuna.Study, **kwargs: Any) -> dict[str, float]:
        seen.append(study.trials[0].distributions)
        return real(study, **kwargs)

    monkeypatch.setattr(optuna.importance, "get_param_importances", spy)
    rows = [  # lr spans ×10 exactly (log), epochs ×9.5 (linear), dropout starts at 0 (linear)
        (1e-5, 2, 0.0, "constant", True),
        (1e-4, 19, 0.1, "cosine", False),
        (1e-5, 19, 0.1, "constant", False),
        (1e-4, 2, 0.0, "cosine", True),
    ]
    knobs = ["lr", "num_epochs", "dropout", "schedule", "flag"]
    runs = [({**dict(zip(knobs, row)), "seed": 42}, f"r{i}", None) for i, row in enumerate(rows)]
    group = lab.store.create_group(name="g", method="random", metric="accuracy", spec={"knobs": knobs}, runs=runs)
    for i, run in enumerate(sorted(lab.store.list_runs(group_id=group.id), key=lambda r: r.id)):
        lab.store.claim_run(run.id, pid=1)
        lab.store.add_metrics(run.id, [(10, 1.0, 5.0, "accuracy", 0.6 + 0.05 * i)])
        lab.store.set_status(run.id, Status.FINISHED)
    method, _ = importance(read_group(lab.store, group.id))
    assert method == "Optuna PED-ANOVA" and seen == [
        {
            "lr": FloatDistribution(1e-5, 1e-4, log=True),
            "num_epochs": FloatDistribution(2.0, 19.0, log=False),
            "dropout": FloatDistribution(0.0, 0.1, log=False),
            "schedule": CategoricalDistribution(["constant", "cosine"]),
            "flag": CategoricalDistribution([False, True]),
        }
    ]


def test_a_group_becomes_a_study_of_its_configs_means_in_launch_order(lab: Lab) -> None:
    from bert_lab.sweeps.report import as_study

    assert as_study(read_group(lab.store, finished_group(lab, {1e-4: [0.7, 0.8]}))) is None  # one config: no study
    report = read_group(lab.store, finished_group(lab, {3e-3: [0.58, 0.6], 1e-4: [0.7, 0.8]}))
    study = as_study(dataclasses.replace(report, knobs=["lr", "dropout"]))  # dropout the same everywhere: not a param
    assert [t.params for t in study.trials] == [{"lr": 3e-3}, {"lr": 1e-4}]  # launch order, not rank
    assert [t.value for t in study.trials] == pytest.approx([0.59, 0.75])
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE


def test_a_sweep_where_every_run_learned_nothing_gets_one_consistent_verdict(lab: Lab) -> None:
    # Every run at (or under) the majority class, 58%: no seeds advice, no "treat them as equal" beside "run more".
    for results in (
        {1e-3: [0.58, 0.58], 3e-3: [0.58, 0.58]},
        {1e-3: [0.58], 3e-3: [0.56]},
        {1e-3: [0.58, 0.57], 3e-3: [0.5, 0.58]},
    ):
        verdict = read_group(lab.store, finished_group(lab, results)).verdict()
        assert verdict is not None and verdict.learned_nothing and not verdict.real and verdict.seeds_needed is None
        words = verdict.words
        assert "every run learned nothing" in words and "neither config is better" in words
        assert "lower learning rate" in words
        assert not any(w in words for w in ("run more seeds", "treat them as equal", "run at least", "real at 95%"))
    # One config that learned something: the usual verdict, not the degenerate one.
    mixed = read_group(lab.store, finished_group(lab, {1e-4: [0.75, 0.76], 3e-3: [0.58, 0.58]})).verdict()
    assert mixed is not None and not mixed.learned_nothing and mixed.real


def test_an_exact_tie_has_no_single_best(lab: Lab) -> None:
    tie = read_group(lab.store, finished_group(lab, {1e-4: [0.7, 0.72], 3e-4: [0.72, 0.7], 1e-3: [0.6, 0.6]}))
    first, second, third = tie.configs
    assert tie.best is None and tie.leaders == [first, second]
    assert [tie.mark(c) for c in tie.configs] == ["= tied best", "= tied best", ""]
    assert tie.to_dict()["best"] is None and tie.to_dict()["tied_best"] == [{"lr": 1e-4}, {"lr": 3e-4}]
    clear = read_group(lab.store, finished_group(lab, {1e-4: [0.7, 0.72], 3e-4: [0.7, 0.71]}))
    assert clear.best is clear.configs[0] and [clear.mark(c) for c in clear.configs] == ["★ best", ""]
    assert clear.to_dict()["tied_best"] == []
    level = compare(config([0.7, 0.7], 1e-4), config([0.7, 0.7], 3e-4), "accuracy")
    same = "every run of both scored exactly the same: a tie, treat them as equal."
    assert level.words == f"lr=0.0001 vs lr=0.0003: Accuracy +0.00 points: {same}"
    spread = config([0.7, 0.71, 0.72], 1e-4)
    noise = compare(spread, spread, "accuracy")
    assert "treat them as equal" in noise.words and "run more seeds" not in noise.words


def test_importance_says_why_it_is_missing(lab: Lab) -> None:
    one = read_group(lab.store, finished_group(lab, {1e-4: [0.7, 0.72]}))
    assert importance_missing(one) == "Knob importance appears once two configs have finished runs (1 so far)."
    for method in ("grid", "random"):  # PED-ANOVA would name the knob all the same: nothing is shown
        level = read_group(lab.store, finished_group(lab, {1e-3: [0.58], 3e-3: [0.58]}, method=method))
        assert importance(level) == ("", {})
        assert importance_missing(level) == (
            "Every run scored the same Accuracy (58.0%): no knob moved it, so none mattered more than another."
        )
    moved = read_group(lab.store, finished_group(lab, {1e-4: [0.7], 3e-4: [0.6]}))
    assert importance(moved)[1] and importance_missing(moved) == ""


def test_a_score_interval_stays_within_0_and_1_and_says_it_was_cut() -> None:
    # Two runs at 10% and 90%: t (12.71) · 0.566 / √2 = ±5.08 around 0.5 reaches far past both ends.
    wide = Stats.of([0.1, 0.9], bounds=(0.0, 1.0))
    assert wide.ci95 == (0.0, 1.0) and wide.clipped and wide.to_dict()["ci95_clipped"] is True
    assert Stats.of([0.1, 0.9]).ci95[0] < -4  # unbounded: as t gives it
    result = ConfigResult({"lr": 1e-4}, [], {"f1": [0.05, 0.6], "eval_loss": [0.1, 2.0]}, 0)
    assert result.stats("f1").ci95[0] == 0.0 and result.stats("f1").ci95[1] <= 1.0 and result.stats("f1").clipped
    assert result.stats("eval_loss").ci95[0] < 0 and not result.stats("eval_loss").clipped  # a loss: not a share
    narrow = Stats.of([0.7, 0.72, 0.74], bounds=(0.0, 1.0))
    assert not narrow.clipped and "ci95_clipped" not in narrow.to_dict()


def test_an_lr_range_test_in_a_group_is_not_ranked(lab: Lab) -> None:
    group_id = finished_group(lab, {1e-4: [0.7, 0.72]})
    test = lab.store.create_run({"lr": 1.0, "schedule": "range_test", "seed": 1}, group_id=group_id).id
    lab.store.claim_run(test, pid=1)
    lab.store.add_metrics(test, [(10, 1.0, 5.0, "accuracy", 0.99)])
    lab.store.set_status(test, Status.FINISHED)
    report = read_group(lab.store, group_id)
    assert test not in [r.id for r in report.runs] and [c.params for c in report.configs] == [{"lr": 1e-4}]
