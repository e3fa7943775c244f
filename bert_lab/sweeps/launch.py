"""Launching a sweep: checked whole (`spec.check`, in a workshop for the server's files too), then queued as one group
of runs, or a search's first trial (the worker asks `search` for the rest as slots free up). Its own module so that
`spec` (what a sweep is) and `search` (Optuna) need not import each other."""

from __future__ import annotations

from collections.abc import Callable

from bert_lab.core.config import RunConfig
from bert_lab.runs import workshop
from bert_lab.runs.records import Group
from bert_lab.runs.service import Lab, submit_group
from bert_lab.runs.workshop import Actor
from bert_lab.sweeps.search import next_params
from bert_lab.sweeps.spec import SweepSpec, check, draw, run_name, runs_of


def allow_for(lab: Lab, actor: Actor | None) -> Callable[[RunConfig], None]:
    """The check that a config names nothing of the server's, for `actor` (in a workshop: workshop.check_config)."""
    return lambda config: workshop.check_config(config.to_dict(), lab.data, actor)


def launch(
    lab: Lab, base: RunConfig, spec: SweepSpec, *, name: str = "", owner: str = "", actor: Actor | None = None
) -> Group:
    """Check the sweep, then queue it as one group (all its runs, or a search's first trial; the worker asks the
    search for the rest as slots free up). Raises SweepError (or DataError for the dataset) with nothing queued; in
    a workshop a participant `actor`'s sweep may name no file or folder of the server, in any value."""
    workshop.check_config(base.to_dict(), lab.data, actor)
    check(base, spec, allow=allow_for(lab, actor))
    name = name or f"{spec.method} {' × '.join(spec.knobs)}"
    if spec.method == "search":
        drawn = [next_params(spec, [])]
    else:
        drawn = draw(spec)
    configs, names = [], []
    for params in drawn:
        for config in runs_of(base, spec, params):
            configs.append(config)
            names.append(run_name(name, params, config.seed))
    stored = {**spec.to_dict(), "base": base.to_dict()}
    return submit_group(
        lab,
        configs,
        name=name,
        owner=owner,
        method=spec.method,
        metric=spec.metric,
        spec=stored,
        run_names=names,
        actor=actor,
    )
