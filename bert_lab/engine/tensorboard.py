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
from bert_lab.runs.records import MetricPoint, Run


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


def write_run(run: Run, points: Iterable[MetricPoint], out: Path) -> Path:
    """`run`'s points and knobs as an event file in `out/run-<id>`; returns that folder."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # torch asks for the tensorboard package when the writer is imported
        raise TensorBoardMissing(
            'writing TensorBoard logs needs the tensorboard package: pip install "bert-lab[tensorboard]"'
        ) from exc
    folder = out / f"run-{run.id}"
    latest: dict[str, float] = {}
    with SummaryWriter(log_dir=str(folder)) as writer:
        for point in points:
            if math.isfinite(point.value):
                writer.add_scalar(tag_of(point.name), point.value, global_step=point.step)
                latest[point.name] = point.value
        scores = {f"hparam/{name}": latest[name] for name in HEADLINE if name in latest}
        writer.add_hparams(hparams_of({"run": f"#{run.id} {run.name}", **run.config}), scores, run_name=".")
    return folder
