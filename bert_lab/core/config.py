"""RunConfig: every knob of one fine-tuning run, frozen and validated.

`RunConfig(**fields)` raises one `ConfigError` that names every bad field and what is allowed; variants are made with
`dataclasses.replace`. The config is the only thing a run needs: it round-trips through JSON into the store and back.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

from bert_lab.core.metrics import SCORES

Optimizer = Literal["sgd", "momentum", "adam", "adamw"]
Schedule = Literal["constant", "exponential", "step", "linear", "cosine", "range_test"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Padding = Literal["dynamic", "max_length"]

OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
SCHEDULES: tuple[str, ...] = get_args(Schedule)[:-1]  # what a training run uses; range_test is the LR finder's
PRECISIONS: tuple[str, ...] = get_args(Precision)


# The allowed values of each choice field (for validation, command-line help and the app's select boxes).
CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": OPTIMIZERS,
    "schedule": get_args(Schedule),
    "precision": PRECISIONS,
    "padding": get_args(Padding),
    "early_stopping_metric": SCORES,
}

DEFAULT_MODEL = "minilm"
MINILM_ALIASES = ("minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2")  # the bundled model


class ConfigError(ValueError):
    """A config with bad fields; `problems` maps each field name to what is wrong with it."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("invalid config: " + "; ".join(f"{k}: {v}" for k, v in problems.items()))


@dataclass(frozen=True)
class RunConfig:
    # --- data -------------------------------------------------------------------------------------------------------
    dataset: str = "rotten_tomatoes"
    """Bundled dataset name (rotten_tomatoes, sms_spam, trec, bbc_news) or a path to a CSV file."""
    text_column: str | None = None
    """CSV only: the text column; found by common names when None."""
    label_column: str | None = None
    """CSV only: the label column; found by common names when None."""
    train_size: int = 2000
    """Training examples drawn (stratified) from the dataset; capped by what the dataset has."""
    eval_size: int = 1000
    """Held-out evaluation examples (stratified, disjoint from training); 1000 keeps the noise near ±1.5 points."""
    max_length: int = 128
    """Tokens per text; longer texts are truncated."""
    padding: Padding = "dynamic"
    """dynamic: each batch is padded to its longest text (rounded up to 8 in bf16 and on a GPU); max_length: every
    batch to `max_length`."""
    # --- model ------------------------------------------------------------------------------------------------------
    model: str = DEFAULT_MODEL
    """`minilm` (bundled all-MiniLM-L6-v2), `tiny` (random 2-layer BERT), a local model folder or a cached hub id."""
    dropout: float | None = None
    """Hidden-layer dropout probability; None keeps the model's own (0.1 for BERT)."""
    attention_dropout: float | None = None
    """Attention-probability dropout; None keeps the model's own."""
    classifier_dropout: float | None = None
    """Dropout before the classification head; None follows `dropout`."""
    # --- optimization -----------------------------------------------------------------------------------------------
    optimizer: Optimizer = "adamw"
    """sgd, momentum (heavy ball, optionally Nesterov), adam, adamw."""
    lr: float = 1e-4
    """Peak learning rate (after warmup)."""
    momentum: float = 0.9
    """Momentum coefficient for `momentum` (SGD with momentum)."""
    nesterov: bool = False
    """Use Nesterov momentum with the `momentum` optimizer."""
    beta1: float = 0.9
    """Adam/AdamW first-moment decay."""
    beta2: float = 0.999
    """Adam/AdamW second-moment decay."""
    weight_decay: float = 0.0
    """Decoupled weight decay (AdamW style): θ ← θ − lr·wd·θ each step, not part of the loss; any optimizer."""
    l2: float = 0.0
    """L2 penalty λ: λ/2·‖θ‖² added to the loss (goes through the optimizer's gradient scaling, unlike weight decay)."""
    l1: float = 0.0
    """L1 penalty λ: λ·‖θ‖₁ added to the loss."""
    max_grad_norm: float = 1.0
    """Clip the global gradient norm to this; 0 turns clipping off."""
    batch_size: int = 32
    """Examples per optimizer step (per process, before gradient accumulation)."""
    grad_accum_steps: int = 1
    """Micro-batches accumulated into one optimizer step."""
    num_epochs: float = 1.0
    """Passes over the training set; fractions stop part-way through the last epoch."""
    # --- learning-rate schedule -------------------------------------------------------------------------------------
    schedule: Schedule = "linear"
    """constant, exponential (lr·rate^(step/decay_steps)), step (lr·γ^⌊step/step_size⌋), linear or cosine (to 0);
    range_test (the LR finder: from `range_start_lr` up to `lr`, exponentially)."""
    warmup_steps: int = 0
    """Steps of linear warmup from 0 to `lr`, before any schedule."""
    decay_rate: float = 0.5
    """Exponential schedule: the factor applied every `decay_steps` steps."""
    decay_steps: int = 100
    """Exponential schedule: steps over which the LR is multiplied by `decay_rate`."""
    step_size: int = 100
    """Step schedule: steps between drops."""
    gamma: float = 0.5
    """Step schedule: the factor of each drop."""
    range_start_lr: float = 1e-7
    """Range-test schedule: the learning rate of the first step (it rises exponentially to `lr` at the last)."""
    # --- evaluation and stopping ------------------------------------------------------------------------------------
    eval_every_steps: int = 0
    """Evaluate every N optimizer steps (and always at the end); 0 picks about 5 evaluations per run."""
    early_stopping_patience: int = 0
    """Stop after this many evaluations without improving `early_stopping_metric`; 0 turns it off."""
    early_stopping_metric: str = "f1"
    """Metric watched by early stopping: an evaluation score such as f1, accuracy (higher is better) or eval_loss."""
    divergence_factor: float = 20.0
    """A run stops as `diverged` when the loss is NaN/inf or exceeds this many times its first value."""
    seed: int = 42
    """Seeds the split, the head's initialisation, dropout and the batch order."""
    # --- environment (not hyperparameters) --------------------------------------------------------------------------
    precision: Precision = "auto"
    """auto (bf16 where the hardware has it natively, fp16 on older GPUs, else fp32), fp32, bf16, fp16."""
    num_processes: int = 1
    """Data-parallel processes (through `accelerate launch`); 2 works on the CPU with gloo."""
    group_by_length: bool = True
    """Batch texts of similar length together to cut padding (batches are still shuffled)."""

    def __post_init__(self) -> None:
        problems = validate(self)
        if problems:
            raise ConfigError(problems)

    # --- (de)serialisation ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError({name: "unknown field" for name in unknown})
        return cls(**data)


FIELD_TYPES: dict[str, Any] = typing.get_type_hints(RunConfig)  # each field's annotation, evaluated once


def parse_field(name: str, text: str) -> Any:
    """A RunConfig field's value from text (a sweep's values, a shared link), typed as the field is: whole numbers,
    numbers, true/false, `none` or `default` for an optional field, else the text. ValueError naming the field."""
    hint, text = FIELD_TYPES[name], text.strip()
    args = get_args(hint)
    if type(None) in args and text.lower() in ("none", "default"):
        return None
    if hint is bool:
        if text.lower() not in ("true", "false", "yes", "no", "1", "0"):
            raise ValueError(f"{name}: {text!r} is not true or false")
        return text.lower() in ("true", "yes", "1")
    if hint is int:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not number.is_integer():
            raise ValueError(f"{name}: {text!r} is not a whole number")
        return int(number)
    if hint is float or float in args:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{name}: {text!r} is not a number") from None
    return text


def field_help(name: str) -> str:
    """The one-line docstring of a RunConfig field (used by the CLI and the app)."""
    return FIELD_DOCS.get(name, "")


def _read_field_docs() -> dict[str, str]:
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(RunConfig))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = str(nxt.value.value)  # type: ignore[union-attr]
    return docs


FIELD_DOCS: dict[str, str] = _read_field_docs()


# --- validation -----------------------------------------------------------------------------------------------------
def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def validate(c: RunConfig) -> dict[str, str]:
    """Every problem with `c`, as {field: what is wrong and what is allowed}."""
    p: dict[str, str] = {}

    def check(name: str, ok: bool, message: str) -> None:
        if not ok and name not in p:
            p[name] = message

    def int_at_least(name: str, low: int, high: int | None = None) -> None:
        v = getattr(c, name)
        upper = f" and at most {high}" if high is not None else ""
        ok = _is_int(v) and v >= low and (high is None or v <= high)
        check(name, ok, f"must be a whole number at least {low}{upper}, got {v!r}")

    def number_in(name: str, low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> None:
        v = getattr(c, name)
        ok = _is_number(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        check(name, ok, f"must be a number in {lo}{low:g}, {high:g}{hi}, got {v!r}")

    def choice(name: str, allowed: tuple[str, ...]) -> None:
        v = getattr(c, name)
        check(name, v in allowed, f"must be one of {', '.join(allowed)}; got {v!r}")

    for name in ("dataset", "model"):
        v = getattr(c, name)
        check(name, isinstance(v, str) and v.strip() != "", f"must be a non-empty name or path, got {v!r}")
    for name in ("text_column", "label_column"):
        v = getattr(c, name)
        check(name, v is None or (isinstance(v, str) and v.strip() != ""), f"must be a column name or empty, got {v!r}")
    int_at_least("train_size", 2)
    int_at_least("eval_size", 2)
    int_at_least("max_length", 8, 512)
    for name in ("dropout", "attention_dropout", "classifier_dropout"):
        if getattr(c, name) is not None:
            number_in(name, 0.0, 1.0, high_open=True)
    choice("optimizer", CHOICES["optimizer"])
    number_in("lr", 0.0, 1e4, low_open=True)
    number_in("momentum", 0.0, 1.0, high_open=True)
    check("nesterov", isinstance(c.nesterov, bool), f"must be true or false, got {c.nesterov!r}")
    check("nesterov", not (c.nesterov and c.optimizer != "momentum"), "only applies to the momentum optimizer")
    check("nesterov", not (c.nesterov and c.momentum == 0), "needs momentum > 0")
    number_in("beta1", 0.0, 1.0, high_open=True)
    number_in("beta2", 0.0, 1.0, high_open=True)
    for name in ("weight_decay", "l2", "l1"):
        number_in(name, 0.0, 10.0)
    number_in("max_grad_norm", 0.0, 1e6)
    int_at_least("batch_size", 1, 4096)
    int_at_least("grad_accum_steps", 1, 1024)
    number_in("num_epochs", 0.0, 1000.0, low_open=True)
    choice("schedule", CHOICES["schedule"])
    int_at_least("warmup_steps", 0)
    number_in("decay_rate", 0.0, 1.0, low_open=True)
    int_at_least("decay_steps", 1)
    int_at_least("step_size", 1)
    number_in("gamma", 0.0, 1.0, low_open=True)
    number_in("range_start_lr", 0.0, 1e4, low_open=True)
    check("range_start_lr", c.schedule != "range_test" or c.range_start_lr < c.lr, "must be below lr")
    int_at_least("eval_every_steps", 0)
    int_at_least("early_stopping_patience", 0)
    choice("early_stopping_metric", CHOICES["early_stopping_metric"])
    number_in("divergence_factor", 1.0, 1e12, low_open=True)
    int_at_least("seed", 0, 2**32 - 1)
    choice("precision", CHOICES["precision"])
    choice("padding", CHOICES["padding"])
    int_at_least("num_processes", 1, 64)
    check("group_by_length", isinstance(c.group_by_length, bool), f"must be true or false, got {c.group_by_length!r}")
    return p


DEFAULTS: dict[str, Any] = RunConfig().to_dict()  # every field's default (read it; do not change it)
