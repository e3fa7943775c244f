"""Reading a group: aggregation per config, the verdict and knob importance, against numbers computed by hand
(Welch–Satterthwaite degrees of freedom, Student's t quantiles from a table) on runs stored in a real store."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bert_lab.runs.records import RunSummary
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.sweeps.report import SEED_NOISE, Stats, compare, importance, read_group

T_975_DF2 = 4.302653  # Student's t, 97.5% quantile, 2 degrees of freedom (any t table)


def finished_group(
    lab: Lab, results: dict[Any, list[float]], *, knob: str = "lr", method: str = "grid", majority: int = 58
) -> str:
    """A group of finished runs: for each knob value, one run per accuracy in its list (F1 = accuracy − 0.01, eval
    loss = 1 − accuracy), evaluated on 100 examples whose majority class is `majority` of them."""
    runs = [
        ({knob: value, "seed": 42 + i}, f"{knob}={value} seed {42 + i}", None)
        for value, accs in results.items()
        for i in range(len(accs))
    ]
    group = lab.store.create_group(
        name="g", method=method, metric="accuracy", spec={"knobs": [knob], "seeds": 3}, runs=runs
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
    assert verdict.real and verdict.unit == "points" and "real at 95%" in verdict.words
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


def test_importance_of_a_random_sweep_comes_from_optuna(lab: Lab) -> None:
    values = {v: [0.5 + 0.03 * i] for i, v in enumerate([1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 2e-3])}
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
