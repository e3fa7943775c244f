"""What runs like this one scored: a config's final accuracy and F1 estimated before it runs, from the finished runs
in the store on the same dataset and model (the launch page's "Runs like this one scored…", `bert-lab estimate`).

How: a kernel-weighted average of the nearest past runs (Nadaraya–Watson). Each run's config becomes a point in a
space where one unit is about one decade of learning rate (`SCALES`, `_features`), the distance to the candidate is
Euclidean there plus a penalty for each choice that differs (`_penalties`), and each run weighs exp(−½(d/h)²) with
h = `BANDWIDTH`; runs farther than `REACH` bandwidths count for nothing. The estimate is the weighted mean of their
final scores, its spread their weighted standard deviation around it (seed noise and the neighbours' differences
together), `n` the runs it rests on and `nearest` the closest one, to link to. A config with the very cache key of a
finished run (`runs/cache.py`, as the store compares it) is no estimate: the store answers it at once with its result.

Why this and not a surrogate from Optuna or scipy: Optuna's TPE models where good and bad configs lie (two
densities), not what a config scores, so it has no "0.76 ± 0.03" to give; its GP sampler needs torch, which the pages
never import; scipy's `RBFInterpolator` passes exactly through every run, seed noise included, and gives no spread.
A lab's history is tens to hundreds of runs, mostly a few sweeps over one or two knobs, with seeds that disagree by
several points: a weighted average says which runs it rests on, cannot extrapolate past them (far from every run it
says "no similar runs yet"), and costs ~15 ms over 300 runs, store reads included, so the launch page asks it on
every rerun. The width: over a 16-run sweep (bench/estimate.py, leave-one-out) 0.15 erred least and 0.25 next, then
0.35, 0.5, 1.0 ever worse; 0.25 was kept because 0.15 reaches only 0.45 decades, so a config between the points of a
3× grid of learning rates would find no run near it.

What counts: the learning rate (peak, and its mean over the run: the schedule's shape with its warmup and decay
parameters), the optimizer, the effective batch size, the epochs, the training examples (a run on 500 learns less
than one on 2,000) and, more weakly, the max length (a cut that drops words; past a dataset's longest text it changes
nothing), dropout, weight decay, the L1/L2 penalties, clipping, betas and momentum. Not: the seed (runs of other
seeds are the replicates whose spread the estimate reports), the evaluation size (how precisely a score is measured,
not what the model learns), how often it evaluates, precision, padding and batching by length. LR range tests,
runs answered from the cache (their source counts once) and runs that did not finish are left out; similar runs
that diverged are counted apart (`diverged`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path, PurePath
from typing import Any

from bert_lab.core.config import DEFAULTS, MINILM_ALIASES, RunConfig
from bert_lab.engine.schedules import count_steps, lr_factor
from bert_lab.runs.cache import cache_key
from bert_lab.runs.records import Run
from bert_lab.runs.status import Status
from bert_lab.runs.store import RunStore

SCORES = ("accuracy", "f1")
BANDWIDTH = 0.25  # the kernel's width, in distance units: a run 3× the LR away (0.48) weighs 0.16 (bench/estimate.py)
REACH = 3.0  # in bandwidths: runs farther (a weight below 1.1%) count for nothing

# Distance units per unit of each feature (`_features`): one unit ≈ one decade of learning rate.
SCALES: dict[str, float] = {
    "lr": 1.0,  # per decade of the peak learning rate
    "lr_mean": 1.0,  # per decade of the mean LR multiplier over the run (schedule, warmup, decay parameters)
    "batch": 0.5,  # per doubling of the effective batch (fewer steps at the same epochs)
    "epochs": 0.5,  # per doubling
    "train_size": 0.5,  # per doubling of the training examples
    "max_length": 0.25,  # per doubling
    "dropout": 1.5,  # per unit of probability; the other two follow it when unset: 0.1 → 0.3 moves all three, 0.52
    "attention_dropout": 1.5,
    "classifier_dropout": 1.5,
    "weight_decay": 0.25,  # per decade above 1e-3 (decoupled decay barely moves a short run)
    "l2": 0.5,  # per decade above 1e-5
    "l1": 0.5,  # per decade above 1e-6
    "max_grad_norm": 0.25,  # per decade (no clipping counts as 1000)
    "momentum": 0.5,  # per decade of 1 − momentum
    "beta1": 0.5,
    "beta2": 0.5,
}
FAMILIES = ({"adam", "adamw"}, {"sgd", "momentum"})  # optimizers that differ a little; across families, a lot
OPTIMIZER_PENALTY = (0.5, 2.0)  # in the same family, across families
CHOICE_PENALTY = 0.25  # a schedule, Nesterov or early stopping that differs (beyond what the features say)


@dataclass(frozen=True)
class Estimate:
    """What runs like a config scored, or (`same_config`) what its very config scored: the store answers it at once."""

    accuracy: float
    f1: float
    accuracy_spread: float  # weighted standard deviation of the runs' accuracy around the estimate; NaN with one run
    f1_spread: float
    n: int  # finished runs it rests on (within REACH bandwidths)
    nearest_id: int  # the closest past run (the cache's source when `same_config`)
    nearest_name: str
    nearest_distance: float  # in distance units (≈ decades of learning rate); 0 for the same knobs
    same_config: bool  # a finished run has this config's cache key: answered from the cache instantly
    dataset: str  # the dataset's name as a person reads it
    model: str
    diverged: int = 0  # similar runs that diverged (not in the averages)

    @property
    def words(self) -> str:
        """The estimate in a sentence (plain text: a page escapes it)."""
        closest = f"#{self.nearest_id} {self.nearest_name}"
        if self.same_config:
            return (
                f"Already run: answered from the cache instantly (run {closest}: "
                f"accuracy {self.accuracy:.3f}, F1 {self.f1:.3f})."
            )
        runs = f"{self.n} past run{'s' if self.n != 1 else ''} on {self.dataset} with {self.model}"
        diverged = f"; {self.diverged} similar run{'s' if self.diverged != 1 else ''} diverged" if self.diverged else ""
        return (
            f"Runs like this one scored accuracy {_pm(self.accuracy, self.accuracy_spread)}, "
            f"F1 {_pm(self.f1, self.f1_spread)} ({runs}{diverged}; closest: run {closest})."
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN (no spread from one run) as None, with `words`."""
        fields = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(self).items()}
        return fields | {"words": self.words}


def _pm(value: float, spread: float) -> str:
    return f"{value:.2f}" if math.isnan(spread) else f"{value:.2f} ± {spread:.2f}"


def no_runs_words(config: RunConfig) -> str:
    """What to say when there is no estimate."""
    return f"No similar runs yet on {dataset_label(config.dataset)} with {config.model}."


def dataset_label(dataset: str) -> str:
    return PurePath(dataset).name


# --- reading the store ------------------------------------------------------------------------------------------------
def past_runs(store: RunStore, *, hidden: Collection[str] = ()) -> tuple[list[Run], dict[int, dict[str, float]]]:
    """The runs an estimate may rest on (finished or diverged, not answered from the cache, in none of the `hidden`
    groups: a class lesson not yet revealed) and the finished ones' final scores: one list and one index probe per
    run and score."""
    done = store.list_runs(statuses=(Status.FINISHED, Status.DIVERGED))
    runs = [r for r in done if r.cached_from is None and r.group_id not in hidden]
    finished = [r.id for r in runs if r.status == Status.FINISHED]
    return runs, store.latest_metrics(finished, names=SCORES) if finished else {}


def estimate_from_store(
    store: RunStore, config: RunConfig, *, data: bytes | None = None, hidden: Collection[str] = ()
) -> Estimate | None:
    """`estimate` over the store's runs (leaving out the `hidden` groups')."""
    runs, scores = past_runs(store, hidden=hidden)
    return estimate(config, runs, scores, data=data)


# --- the estimate -----------------------------------------------------------------------------------------------------
def estimate(
    config: RunConfig,
    runs: Sequence[Run],
    scores: Mapping[int, Mapping[str, float]],
    *,
    data: bytes | None = None,
    bandwidth: float = BANDWIDTH,
) -> Estimate | None:
    """The estimate of `config`'s final accuracy and F1 from `runs` (their final `scores` by run id), or None when
    no finished run on the same dataset and model is within `REACH` bandwidths. `data`: the bytes of an uploaded data
    file not yet staged (its name alone says nothing about its content)."""
    if config.schedule == "range_test":
        return None
    wanted = config.to_dict()
    task = _task(wanted, data)
    same = [r for r in runs if _usable(r) and _task(r.config, None) == task]
    finished = [r for r in same if r.status == Status.FINISHED and _scored(scores.get(r.id, {}))]
    if not finished:
        return None
    labels = {"dataset": dataset_label(config.dataset), "model": config.model}
    if (source := _cache_source(finished, wanted)) is not None:
        s = scores[source.id]
        return Estimate(s["accuracy"], s["f1"], 0.0, 0.0, 1, source.id, source.name, 0.0, True, **labels)
    here = _features(wanted)
    distances = {r.id: distance(here, wanted, r.config) for r in same}
    reach = REACH * bandwidth
    near = sorted((r for r in finished if distances[r.id] <= reach), key=lambda r: (distances[r.id], -r.id))
    if not near:
        return None
    weights = [math.exp(-0.5 * (distances[r.id] / bandwidth) ** 2) for r in near]
    means, spreads = {}, {}
    for name in SCORES:
        values = [scores[r.id][name] for r in near]
        means[name], spreads[name] = _weighted(values, weights)
    diverged = sum(1 for r in same if r.status == Status.DIVERGED and distances[r.id] <= reach)
    closest = near[0]
    return Estimate(
        means["accuracy"],
        means["f1"],
        spreads["accuracy"],
        spreads["f1"],
        len(near),
        closest.id,
        closest.name,
        distances[closest.id],
        False,
        **labels,
        diverged=diverged,
    )


def _weighted(values: list[float], weights: list[float]) -> tuple[float, float]:
    """Weighted mean and weighted standard deviation (reliability weights, unbiased; NaN for a single run)."""
    total = sum(weights)
    mean = sum(w * v for w, v in zip(weights, values)) / total
    denominator = total - sum(w * w for w in weights) / total
    if len(values) < 2 or denominator <= 0:
        return mean, math.nan
    return mean, math.sqrt(sum(w * (v - mean) ** 2 for w, v in zip(weights, values)) / denominator)


def _usable(run: Run) -> bool:
    """Not an LR range test (its config says so, or its summary holds suggestions) nor a cached copy (its source
    counts once)."""
    return not run.is_range_test and run.summary.lr_find is None and run.cached_from is None


def _scored(scores: Mapping[str, float]) -> bool:
    return all(isinstance(scores.get(n), (int, float)) and math.isfinite(scores[n]) for n in SCORES)


def _cache_source(finished: list[Run], wanted: dict[str, Any]) -> Run | None:
    """The finished run the store would answer `wanted` from: the oldest with its cache key. A run's dataset path is
    put in first: the same content staged once has one path (a bundled dataset's name is the same anyway)."""
    keys: dict[str, str] = {}
    for run in sorted(finished, key=lambda r: r.id):
        dataset = str(run.config.get("dataset"))
        if dataset not in keys:
            keys[dataset] = cache_key({**wanted, "dataset": dataset})
        if run.cache_key is not None and run.cache_key == keys[dataset]:
            return run
    return None


def _task(config: Mapping[str, Any], data: bytes | None) -> tuple[str, ...]:
    """What a run learns from: its data (by content for a file), the columns read from it, and its model."""
    c = {**DEFAULTS, **config}
    dataset = _digest(data) if data is not None else _dataset_identity(str(c["dataset"]))
    return (dataset, str(c["text_column"]), str(c["label_column"]), _model_identity(str(c["model"])))


def _model_identity(model: str) -> str:
    if model.lower() in MINILM_ALIASES:
        return "minilm"
    folder = Path(model).expanduser()
    return str(folder.resolve()) if folder.is_dir() else model


def _dataset_identity(dataset: str) -> str:
    """A bundled dataset's name, or a data file's content digest (the original and its staged copy agree)."""
    path = Path(dataset).expanduser()
    try:
        stat = path.stat()
    except OSError:
        return dataset
    return _file_digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns) if path.is_file() else dataset


@lru_cache(maxsize=256)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:  # size and time: a changed file is read again
    return _digest(Path(path).read_bytes())


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- the distance -----------------------------------------------------------------------------------------------------
def distance(here: Mapping[str, float], wanted: Mapping[str, Any], stored: Mapping[str, Any]) -> float:
    """How far a stored run's config lies from the candidate's (`here` = `_features(wanted)`), in distance units."""
    there = _features(stored)
    squares = sum((SCALES[k] * (here[k] - there[k])) ** 2 for k in SCALES)
    return math.sqrt(squares + sum(p * p for p in _penalties(wanted, {**DEFAULTS, **stored})))


def _features(config: Mapping[str, Any]) -> dict[str, float]:
    c = {**DEFAULTS, **config}
    dropout = 0.1 if c["dropout"] is None else c["dropout"]  # None keeps the model's own: BERT's is 0.1
    classifier = dropout if c["classifier_dropout"] is None else c["classifier_dropout"]
    return {
        "lr": math.log10(c["lr"]),
        "lr_mean": math.log10(max(_mean_factor(*_schedule_of(c)), 1e-6)),
        "batch": math.log2(c["batch_size"] * c["grad_accum_steps"] * c["num_processes"]),
        "epochs": math.log2(c["num_epochs"]),
        "train_size": math.log2(c["train_size"]),
        "max_length": math.log2(c["max_length"]),
        "dropout": dropout,
        "attention_dropout": dropout if c["attention_dropout"] is None else c["attention_dropout"],
        "classifier_dropout": classifier,
        "weight_decay": math.log10(max(c["weight_decay"], 1e-3)),
        "l2": math.log10(max(c["l2"], 1e-5)),
        "l1": math.log10(max(c["l1"], 1e-6)),
        "max_grad_norm": math.log10(min(max(c["max_grad_norm"] or 1e3, 1e-3), 1e3)),
        **{name: math.log10(1 - _if_used(c, name)) for name in ("momentum", "beta1", "beta2")},
    }


def _if_used(c: Mapping[str, Any], name: str) -> float:
    """A knob's value where the optimizer uses it, else its default (a hidden widget's value means nothing)."""
    used = c["optimizer"] == "momentum" if name == "momentum" else c["optimizer"] in ("adam", "adamw")
    return c[name] if used else DEFAULTS[name]


def _penalties(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[float]:
    out = []
    if a["optimizer"] != b["optimizer"]:
        family = any({a["optimizer"], b["optimizer"]} <= f for f in FAMILIES)
        out.append(OPTIMIZER_PENALTY[0] if family else OPTIMIZER_PENALTY[1])
    for name in ("schedule", "nesterov"):
        if a[name] != b[name]:
            out.append(CHOICE_PENALTY)
    if bool(a["early_stopping_patience"]) != bool(b["early_stopping_patience"]):
        out.append(CHOICE_PENALTY)
    return out


def _schedule_of(c: Mapping[str, Any]) -> tuple[Any, ...]:
    total = count_steps(c["train_size"], c["batch_size"], c["grad_accum_steps"], c["num_epochs"], c["num_processes"])
    return (c["schedule"], total[1], c["warmup_steps"], c["decay_rate"], c["decay_steps"], c["step_size"], c["gamma"])


@lru_cache(maxsize=4096)
def _mean_factor(
    schedule: str, total: int, warmup: int, decay_rate: float, decay_steps: int, step_size: int, gamma: float
) -> float:
    """The mean multiplier of the peak LR over a run's steps (at most 1,000 of them, evenly spread)."""
    steps = range(0, total, max(1, total // 1000))
    factors = [
        lr_factor(
            s,
            schedule=schedule,
            total_steps=total,
            warmup_steps=warmup,
            decay_rate=decay_rate,
            decay_steps=decay_steps,
            step_size=step_size,
            gamma=gamma,
        )
        for s in steps
    ]
    return sum(factors) / len(factors)
