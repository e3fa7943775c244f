"""What a sweep is: a base config, 1–3 knobs to vary, how (a grid of values, N random draws from ranges, or a Bayesian
search through Optuna), k seeds per config and the score it is judged by. Parsed from the command line's
`lr=1e-4,3e-3` and `lr=1e-5:1e-3:log`, checked against the config before anything is queued, expanded into runs
(`launch.py` queues them as one group).

Every problem is one `SweepError` naming the knob and what is wrong; nothing is queued until the whole sweep is good.
"""

from __future__ import annotations

import itertools
import math
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from bert_lab.core.config import CHOICES, FIELD_TYPES, ConfigError, RunConfig, parse_field
from bert_lab.core.metrics import SCORES

Method = Literal["grid", "random", "search"]
METHODS: tuple[str, ...] = typing.get_args(Method)
MAX_RUNS = 64  # one sweep's runs at most: about an hour of MiniLM on a 2-core CPU at the default 2,000 examples
MAX_KNOBS = 3
MAX_SEEDS = 10
# The RunConfig fields a person would sweep, in the order the app offers them.
KNOBS: tuple[str, ...] = (
    "lr",
    "batch_size",
    "schedule",
    "warmup_steps",
    "decay_rate",
    "decay_steps",
    "step_size",
    "gamma",
    "optimizer",
    "momentum",
    "beta1",
    "beta2",
    "weight_decay",
    "l2",
    "l1",
    "dropout",
    "attention_dropout",
    "classifier_dropout",
    "max_grad_norm",
    "grad_accum_steps",
    "num_epochs",
    "max_length",
    "padding",
    "train_size",
    "model",
    "group_by_length",
)
LOG_KNOBS = frozenset({"lr", "weight_decay", "l1", "l2"})  # drawn log-uniformly unless a range says `lin`


class SweepError(ValueError):
    """A sweep that cannot be queued; the message names the knob and the problem."""


@dataclass(frozen=True)
class Range:
    """Where random draws and the search look for a knob's value: numbers in [low, high] (log-uniform if `log`), or
    one of `choices`."""

    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        if self.choices:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Range:
        return cls(choices=tuple(data["choices"])) if "choices" in data else cls(data["low"], data["high"], data["log"])


@dataclass(frozen=True)
class SweepSpec:
    method: Method = "grid"
    grid: dict[str, list[Any]] = field(default_factory=dict)
    """Grid: each knob's values; every combination is a config."""
    ranges: dict[str, Range] = field(default_factory=dict)
    """Random and search: each knob's range."""
    seeds: int = 1
    """Runs per config, seeded base seed, base seed + 1, …"""
    trials: int = 0
    """Random: configs drawn. Search: the trial budget (configs tried)."""
    metric: str = "f1"
    """The evaluation score the group is judged by (higher is better, except eval_loss)."""
    sweep_seed: int = 0
    """Seeds the random draws and the search, so a sweep can be drawn again the same."""
    prune: bool = True
    """Search: stop trials that are clearly losing at an intermediate evaluation."""

    @property
    def knobs(self) -> list[str]:
        return list(self.grid if self.method == "grid" else self.ranges)

    @property
    def num_configs(self) -> int:
        return math.prod(len(v) for v in self.grid.values()) if self.method == "grid" else self.trials

    @property
    def num_runs(self) -> int:
        return self.num_configs * self.seeds

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "knobs": self.knobs,
            "grid": self.grid,
            "ranges": {k: r.to_dict() for k, r in self.ranges.items()},
            "seeds": self.seeds,
            "trials": self.trials,
            "metric": self.metric,
            "sweep_seed": self.sweep_seed,
            "prune": self.prune,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepSpec:
        ranges = {k: Range.from_dict(r) for k, r in data.get("ranges", {}).items()}
        keep = ("method", "grid", "seeds", "trials", "metric", "sweep_seed", "prune")
        return cls(ranges=ranges, **{k: data[k] for k in keep if k in data})


# --- parsing ----------------------------------------------------------------------------------------------------------
def parse_value(knob: str, text: str) -> Any:
    """One value of `knob` from text, typed as the config field is (`none`/`default` for an optional field)."""
    check_knob(knob)
    try:
        return parse_field(knob, text)
    except ValueError as exc:
        raise SweepError(str(exc)) from None


def parse_values(knob: str, text: str) -> list[Any]:
    """`1e-4,3e-3` → the knob's values, in order, without repeats."""
    values = [parse_value(knob, piece) for piece in text.split(",") if piece.strip()]
    if not values:
        raise SweepError(f"{knob}: no values given")
    return list(dict.fromkeys(values))


def parse_range(knob: str, text: str) -> Range:
    """`1e-5:1e-3`, `1e-5:1e-3:log` or `0:0.3:lin` → numbers; `adam,adamw` → choices."""
    check_knob(knob)
    if ":" not in text:
        return Range(choices=tuple(parse_values(knob, text)))
    pieces = [p.strip() for p in text.split(":")]
    if len(pieces) not in (2, 3) or (len(pieces) == 3 and pieces[2] not in ("log", "lin")):
        raise SweepError(f"{knob}: a range is LOW:HIGH, LOW:HIGH:log or LOW:HIGH:lin, got {text!r}")
    if not is_numeric(knob):
        raise SweepError(f"{knob}: not a number; give its choices as a list, e.g. {knob}=a,b")
    low, high = parse_value(knob, pieces[0]), parse_value(knob, pieces[1])
    if low is None or high is None:
        raise SweepError(f"{knob}: a range needs two numbers, got {text!r}")
    log = pieces[2] == "log" if len(pieces) == 3 else knob in LOG_KNOBS
    if low > high:
        raise SweepError(f"{knob}: the range's low {low:g} is above its high {high:g}")
    if log and low <= 0:
        raise SweepError(f"{knob}: a log range needs a low above 0, got {low:g} (use {knob}={text}:lin)")
    return Range(low, high, log)


def is_integer(knob: str) -> bool:
    return FIELD_TYPES[knob] is int


def is_numeric(knob: str) -> bool:
    hint = FIELD_TYPES[knob]
    return hint in (int, float) or float in typing.get_args(hint)


def check_knob(knob: str) -> None:
    if knob == "seed":
        raise SweepError("seed: use --seeds K to run every config with K seeds")
    if knob not in KNOBS:
        raise SweepError(f"{knob}: not a knob a sweep can vary; choose from {', '.join(KNOBS)}")


def parse_assignments(items: Sequence[str], parse: Any, flag: str) -> dict[str, Any]:
    """`["lr=1e-4,3e-3", "dropout=0,0.1"]` → {knob: parse(knob, text)}; each knob once."""
    out: dict[str, Any] = {}
    for item in items:
        knob, sep, text = item.partition("=")
        knob = knob.strip().replace("-", "_")
        if not sep or not knob:
            raise SweepError(f"{flag} {item!r}: write KNOB=VALUES, e.g. {flag} lr=1e-4,3e-4")
        if knob in out:
            raise SweepError(f"{knob}: given twice")
        out[knob] = parse(knob, text)
    return out


# --- checking and expanding -------------------------------------------------------------------------------------------
def check(base: RunConfig, spec: SweepSpec, *, allow: Callable[[RunConfig], None] | None = None) -> None:
    """Raise SweepError naming the first problem: method, knob count, seeds, metric, a value the config refuses (or
    `allow` refuses, raising ValueError: a workshop's rule on the server's files), or more runs than the cap."""
    if spec.method not in METHODS:
        raise SweepError(f"method: must be one of {', '.join(METHODS)}, got {spec.method!r}")
    knobs = spec.knobs
    if not 1 <= len(knobs) <= MAX_KNOBS:
        how = "--grid KNOB=VALUES" if spec.method == "grid" else "--range KNOB=LOW:HIGH"
        raise SweepError(f"a sweep varies 1 to {MAX_KNOBS} knobs ({how}), got {len(knobs)}")
    if (spec.grid and spec.method != "grid") or (spec.ranges and spec.method == "grid"):
        raise SweepError(f"a {spec.method} sweep takes {'values' if spec.method == 'grid' else 'ranges'} only")
    if not 1 <= spec.seeds <= MAX_SEEDS:
        raise SweepError(f"seeds: must be 1 to {MAX_SEEDS}, got {spec.seeds}")
    if spec.metric not in SCORES:
        raise SweepError(f"metric: must be one of {', '.join(SCORES)}, got {spec.metric!r}")
    if spec.method != "grid" and spec.trials < 1:
        raise SweepError(f"a {spec.method} sweep needs a number of configs to try (at least 1), got {spec.trials}")
    for knob in knobs:
        check_knob(knob)
    for knob, values in spec.grid.items():
        if not values:
            raise SweepError(f"{knob}: no values given")
        for value in values:
            _allowed(_config(base, {knob: value}), allow)
    for knob, r in spec.ranges.items():
        ends = r.choices or (r.low, r.high)
        for value in ends:
            _allowed(_config(base, {knob: value}), allow)
    if spec.num_runs > MAX_RUNS:
        shape = " × ".join(str(len(v)) for v in spec.grid.values()) if spec.method == "grid" else str(spec.trials)
        raise SweepError(
            f"{spec.num_runs} runs ({shape} configs × {spec.seeds} seeds) is more than the cap of {MAX_RUNS}: "
            "use fewer values, configs or seeds"
        )


def draw(spec: SweepSpec) -> list[dict[str, Any]]:
    """The sweep's configs as knob values: every grid combination, or `trials` random draws (reproducible from the
    sweep seed; log-uniform on log ranges; numbers kept to 3 significant digits so tables read well)."""
    if spec.method == "grid":
        return [dict(zip(spec.grid, combo)) for combo in itertools.product(*spec.grid.values())]
    rng = np.random.default_rng(spec.sweep_seed)
    return [{knob: _draw_one(knob, r, rng) for knob, r in spec.ranges.items()} for _ in range(spec.trials)]


def _draw_one(knob: str, r: Range, rng: np.random.Generator) -> Any:
    if r.choices:
        return r.choices[int(rng.integers(len(r.choices)))]
    if r.log:
        value = math.exp(rng.uniform(math.log(r.low), math.log(r.high)))
    else:
        value = rng.uniform(r.low, r.high)
    return round(value) if is_integer(knob) else float(f"{value:.3g}")


def runs_of(base: RunConfig, spec: SweepSpec, params: dict[str, Any]) -> list[RunConfig]:
    """One config's runs: the base with `params`, once per seed."""
    config = _config(base, params)
    return [replace(config, seed=config.seed + i) for i in range(spec.seeds)]


def run_name(prefix: str, params: dict[str, Any], seed: int) -> str:
    return f"{prefix} {describe_params(params)} seed {seed}"


def describe_params(params: dict[str, Any]) -> str:
    """`lr=0.0001 dropout=0.1`, values as a person would type them."""
    return " ".join(f"{k}={format_value(v)}" for k, v in params.items())


def format_value(value: Any) -> str:
    if value is None:
        return "default"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _allowed(config: RunConfig, allow: Callable[[RunConfig], None] | None) -> None:
    """SweepError with `allow`'s reason when it refuses `config` (the value itself is not repeated)."""
    if allow is not None:
        try:
            allow(config)
        except ValueError as exc:
            raise SweepError(str(exc)) from None


def _config(base: RunConfig, params: dict[str, Any]) -> RunConfig:
    try:
        return replace(base, **params)
    except ConfigError as exc:
        problems = (f"{k}={format_value(params.get(k))}: {v}" for k, v in exc.problems.items())
        raise SweepError("; ".join(problems)) from None


def choices_of(knob: str) -> tuple[str, ...]:
    """The values a choice knob allows (empty for numbers)."""
    return CHOICES.get(knob, ("true", "false") if FIELD_TYPES[knob] is bool else ())
