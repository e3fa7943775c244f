"""Runs as TensorBoard logs: `bert-lab export ID… --format tensorboard --out DIR`, then `tensorboard --logdir DIR`.

Each run gets its own folder (`run-<id>`, which TensorBoard lists as a run) with one event file written by
`torch.utils.tensorboard.SummaryWriter`: every metric point as a scalar (tag `train/<name>` for the per-step
metrics, `eval/<name>` for the evaluations, at the run's step), and the run's knobs as HParams with its final scores
(`hparam/accuracy`, `hparam/f1`, `hparam/eval_loss`), so that the HParams tab compares runs by their settings. It needs
the `tensorboard` package (`pip install "bert-lab[tensorboard]"`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

from bert_lab.core.metrics import HEADLINE, METRICS

Point = tuple[int, str, float]  # (step, metric name, value)


class TensorBoardMissing(RuntimeError):
    """The `tensorboard` package is not installed."""


def tag_of(name: str) -> str:
    """A metric's TensorBoard tag: its section (train for per-step metrics, eval for evaluations), then its name."""
    return f"{'train' if name in METRICS and METRICS[name].per == 'step' else 'eval'}/{name}"


def hparams_of(config: Mapping[str, object]) -> dict[str, bool | float | int | str]:
    """The knobs as HParams take them: numbers, booleans and text (None becomes "default")."""
    return {
        k: "default" if v is None else v if isinstance(v, bool | int | float | str) else str(v)
        for k, v in config.items()
    }


def write_run(folder: Path, knobs: Mapping[str, object], points: Iterable[Point]) -> Path:
    """A run's points and knobs as an event file in `folder` (made if missing); returns it."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # torch asks for the tensorboard package when the writer is imported
        raise TensorBoardMissing(
            'writing TensorBoard logs needs the tensorboard package: pip install "bert-lab[tensorboard]"'
        ) from exc
    latest: dict[str, float] = {}
    with SummaryWriter(log_dir=str(folder)) as writer:
        for step, name, value in points:
            if math.isfinite(value):
                writer.add_scalar(tag_of(name), value, global_step=step)
                latest[name] = value
        scores = {f"hparam/{name}": latest[name] for name in HEADLINE if name in latest}
        writer.add_hparams(hparams_of(knobs), scores, run_name=".")
    return folder
