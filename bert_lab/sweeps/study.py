"""An Optuna study as the lab uses one: in memory, quiet, its direction the metric's. Shared by the search (`search`)
and knob importance (`report`), which therefore need not import each other."""

from __future__ import annotations

from typing import Any

from bert_lab.core.metrics import METRICS


def new_study(metric: str, sampler: Any = None) -> Any:
    """A quiet in-memory Optuna study that maximises `metric` (minimises a loss)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = "maximize" if METRICS[metric].higher_is_better else "minimize"
    return optuna.create_study(direction=direction, sampler=sampler)
