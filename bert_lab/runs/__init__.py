"""The run's one home, torch-free: what a run is (`records`), the states it can be in (`status`), what it records
(`metrics`, the catalogue), where its files are (`layout`), where it is kept (`store`, the interface; `sqlite`, the
default backend) and what a person may do to it (`service`, imported on its own since it needs the config).
Pages, the CLI, the worker and the run's process all read these from here."""

from bert_lab.runs.backends import open_store
from bert_lab.runs.layout import DataFolder, RunFolder
from bert_lab.runs.metrics import CATALOGUE, METRICS, Metric
from bert_lab.runs.records import EvalRecord, Hooks, MetricPoint, Run, RunEvent, StepRecord, TrainResult
from bert_lab.runs.status import Status
from bert_lab.runs.store import RunStore, StoreError, UnknownRunError

__all__ = [
    "CATALOGUE",
    "METRICS",
    "DataFolder",
    "EvalRecord",
    "Hooks",
    "Metric",
    "MetricPoint",
    "Run",
    "RunEvent",
    "RunFolder",
    "RunStore",
    "Status",
    "StepRecord",
    "StoreError",
    "TrainResult",
    "UnknownRunError",
    "open_store",
]
