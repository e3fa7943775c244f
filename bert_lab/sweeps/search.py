"""The Bayesian search (Optuna TPE) and its pruning, with the lab's store as the only record.

The store already keeps every trial: a trial is a config of the group (its runs, one per seed), its value the mean of
the group's metric over its finished runs. So each question to Optuna rebuilds an in-memory study from the group's
runs (`create_trial` + `add_trial`: Optuna's ask-and-tell), asks it once, and lets it go. Nothing is kept in a second
database that could disagree with the runs, and any store backend works. Trials still running are told as running,
and TPE's constant liar keeps parallel asks apart.

The worker asks for the next trial as its slots free up (`ask_due_trials`); a run's process checks after each
evaluation whether it is clearly losing (`prune_reason`), comparing it with the group's finished runs at the same
evaluation (evaluations are numbered, so runs of different batch sizes still line up).
"""

from __future__ import annotations

import sys
import traceback
from typing import TYPE_CHECKING, Any

import numpy as np

from bert_lab.core.config import RunConfig
from bert_lab.core.metrics import METRICS
from bert_lab.runs.records import Group, Run
from bert_lab.runs.service import Lab, add_to_group
from bert_lab.runs.status import ACTIVE, Status
from bert_lab.runs.store import RunStore
from bert_lab.sweeps.report import ConfigResult, read_group
from bert_lab.sweeps.spec import Range, SweepSpec, is_integer, run_name, runs_of
from bert_lab.sweeps.study import new_study

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.trial import FrozenTrial


PRUNE_WORST = 25.0  # percent: a run in the worst quarter of the finished runs at the same evaluation is clearly losing
PRUNE_AFTER_RUNS = 4  # finished runs needed before anything is pruned
STARTUP_TRIALS = (3, 10)  # random trials before TPE models the space: a third of the budget, within these bounds


def distributions(spec: SweepSpec) -> dict[str, BaseDistribution]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, BaseDistribution] = {}
    for knob, r in spec.ranges.items():
        if r.choices:
            out[knob] = CategoricalDistribution(list(r.choices))
        elif is_integer(knob):
            out[knob] = IntDistribution(int(r.low), int(r.high), log=r.log)
        else:
            out[knob] = FloatDistribution(r.low, r.high, log=r.log)
    return out


def next_params(spec: SweepSpec, configs: list[ConfigResult]) -> dict[str, Any]:
    """The next config to try, given the configs tried so far (each with its runs)."""
    import optuna

    startup = max(STARTUP_TRIALS[0], min(STARTUP_TRIALS[1], spec.trials // 3))
    # A fresh sampler per question: its seed moves with the trial count, so draws are reproducible and distinct.
    sampler = optuna.samplers.TPESampler(
        seed=spec.sweep_seed * 1000 + len(configs), n_startup_trials=startup, constant_liar=True
    )
    study = new_study(spec.metric, sampler)
    dists = distributions(spec)
    worst = _worst(configs, spec.metric, METRICS[spec.metric].higher_is_better)
    for config in configs:
        trial = _as_trial(config, spec, dists, worst=worst)
        if trial is not None:
            study.add_trial(trial)
    asked = study.ask(dists).params
    return {knob: _tidy(asked[knob], dists[knob]) for knob in spec.ranges}


def _as_trial(
    config: ConfigResult, spec: SweepSpec, dists: dict[str, BaseDistribution], *, worst: float | None
) -> FrozenTrial | None:
    """One tried config as an Optuna trial: running while a run of it is active; complete with its mean; stopped
    early (pruned, diverged) as the worst value seen in the group; else failed."""
    from optuna.trial import TrialState, create_trial

    if not all(_inside(config.params.get(k), r) for k, r in spec.ranges.items()):
        return None  # a value outside the ranges: nothing to learn from it here
    statuses = {r.status for r in config.runs}
    values = config.values.get(spec.metric, [])
    params = {k: config.params[k] for k in spec.ranges}
    if statuses & ACTIVE:
        return create_trial(state=TrialState.RUNNING, params=params, distributions=dists)
    stopped_early = bool(statuses & {Status.PRUNED, Status.DIVERGED})
    if stopped_early and worst is not None:
        return create_trial(value=worst, params=params, distributions=dists)
    if values:
        return create_trial(value=float(np.mean(values)), params=params, distributions=dists)
    return create_trial(state=TrialState.FAIL, params=params, distributions=dists)


def _inside(value: Any, r: Range) -> bool:
    if r.choices:
        return value in r.choices
    return isinstance(value, (int, float)) and r.low <= value <= r.high


def _worst(configs: list[ConfigResult], metric: str, higher: bool) -> float | None:
    values = [v for c in configs for v in c.values.get(metric, [])]
    return (min(values) if higher else max(values)) if values else None


def _tidy(value: Any, dist: BaseDistribution) -> Any:
    """Floats to 3 significant digits (tables read well), kept inside the range."""
    from optuna.distributions import FloatDistribution

    if isinstance(dist, FloatDistribution):
        return min(max(float(f"{value:.3g}"), dist.low), dist.high)
    return value


# --- the worker asks ------------------------------------------------------------------------------------------------
def ask_due_trials(lab: Lab, slots: int) -> list[Run]:
    """For every open search group with budget left, queue trials until its active runs fill `slots`; the runs
    queued. Cheap when no search is open (the worker calls this on every pass). A search that cannot ask is stopped,
    its error in the worker's log, rather than failing on every pass."""
    queued: list[Run] = []
    for group in lab.store.list_groups():
        if group.method != "search" or group.stopped:
            continue
        try:
            spec = SweepSpec.from_dict(group.spec)
            runs = lab.store.list_runs(group_id=group.id)
            active = sum(r.status.is_active for r in runs)
            tried = len({tuple(r.config.get(k) for k in spec.knobs) for r in runs})
            while tried < spec.trials and active < slots:
                added = _queue_trial(lab, group, spec)
                queued += added
                active, tried = active + len(added), tried + 1
        except Exception:  # noqa: BLE001 - one broken group must not stop the worker
            traceback.print_exc()
            print(f"search {group.id} stopped: it could not ask for its next trial", file=sys.stderr, flush=True)
            lab.store.set_group_stopped(group.id, True)
    return queued


def _queue_trial(lab: Lab, group: Group, spec: SweepSpec) -> list[Run]:
    base = RunConfig.from_dict(group.spec["base"])
    params = next_params(spec, read_group(lab.store, group.id).configs)
    configs = runs_of(base, spec, params)
    runs = add_to_group(lab, group, configs, [run_name(group.name, params, c.seed) for c in configs])
    for run in runs:
        lab.store.add_event(run.id, f"search trial asked for by the worker ({len(runs)} seed(s))")
    return runs


# --- a run's process checks whether it is clearly losing --------------------------------------------------------------
def prune_reason(store: RunStore, group: Group, run_id: int) -> str | None:
    """Why run `run_id` should stop now, or None: its best evaluation so far is in the worst quarter of the group's
    finished runs at the same evaluation (Optuna's PercentilePruner; not at the first evaluation)."""
    spec = SweepSpec.from_dict(group.spec)
    if group.method != "search" or not spec.prune:
        return None
    finished = [r.id for r in store.list_runs(group_id=group.id, statuses=[Status.FINISHED])]
    if len(finished) < PRUNE_AFTER_RUNS:
        return None
    series: dict[int, list[float]] = {}
    for point in store.read_metrics([*finished, run_id], names=[spec.metric]):
        series.setdefault(point.run_id, []).append(point.value)
    mine = series.get(run_id, [])
    if len(mine) < 2:
        return None
    import optuna
    from optuna.trial import TrialState, create_trial

    higher = METRICS[spec.metric].higher_is_better
    study = new_study(spec.metric)
    for rid in finished:
        values = series.get(rid, [])
        if values:
            study.add_trial(create_trial(value=values[-1], intermediate_values=dict(enumerate(values))))
    pruner = optuna.pruners.PercentilePruner(  # its percentile is the share kept: the best 75%
        100 - PRUNE_WORST, n_startup_trials=PRUNE_AFTER_RUNS, n_warmup_steps=1, n_min_trials=PRUNE_AFTER_RUNS
    )
    current = create_trial(state=TrialState.RUNNING, intermediate_values=dict(enumerate(mine)))
    if not pruner.prune(study, current):
        return None
    at = len(mine) - 1
    others = [v[at] for v in series.values() if v is not mine and len(v) > at]
    cut = float(np.percentile(others, PRUNE_WORST if higher else 100 - PRUNE_WORST))
    best = max(mine) if higher else min(mine)
    label = METRICS[spec.metric].label
    return (
        f"pruned at evaluation {at + 1}: {label} {best:.3f} so far is in the worst quarter of the {len(others)} "
        f"finished runs at that evaluation (their {'lowest' if higher else 'highest'} quarter starts at {cut:.3f})"
    )
