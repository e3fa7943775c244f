from __future__ import annotations

import dataclasses
import json

import pytest

from bert_lab.core.config import CHOICES, ConfigError, RunConfig, field_help
from bert_lab.core.metrics import SCORES


def test_defaults_are_valid_and_round_trip_through_json() -> None:
    c = RunConfig(lr=3e-5, schedule="cosine", dropout=0.2)
    assert RunConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        RunConfig(lr=0, optimizer="lion", batch_size=0, dropout=1.5, schedule="wobbly", max_length=4)
    problems = err.value.problems
    assert set(problems) == {"lr", "optimizer", "batch_size", "dropout", "schedule", "max_length"}
    assert "sgd, momentum, adam, adamw" in problems["optimizer"]
    assert "constant, exponential, step, linear, cosine" in problems["schedule"]
    assert "[0, 1)" in problems["dropout"]
    assert "lr" in str(err.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lr", float("nan")),
        ("train_size", 1),
        ("eval_size", 2.5),
        ("weight_decay", -0.1),
        ("l1", "a"),
        ("num_epochs", 0),
        ("seed", -1),
        ("precision", "fp8"),
        ("grad_accum_steps", 0),
        ("gamma", 1.5),
        ("decay_rate", 0),
        ("nesterov", "yes"),
        ("dataset", ""),
        ("text_column", " "),
    ],
)
def test_bad_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        RunConfig(**{field: value})
    assert field in err.value.problems


def test_nesterov_needs_the_momentum_optimizer() -> None:
    with pytest.raises(ConfigError, match="only applies to the momentum optimizer"):
        RunConfig(optimizer="adamw", nesterov=True)
    assert RunConfig(optimizer="momentum", nesterov=True).nesterov


def test_unknown_fields_are_refused_when_loading() -> None:
    with pytest.raises(ConfigError, match="colour: unknown field"):
        RunConfig.from_dict({"lr": 1e-3, "colour": "red"})


def test_replace_validates_too() -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        dataclasses.replace(RunConfig(), batch_size=-3)


def test_every_field_has_a_one_line_help() -> None:
    for f in dataclasses.fields(RunConfig):
        assert field_help(f.name), f.name


def test_early_stopping_watches_a_score_from_the_catalogue() -> None:
    assert CHOICES["early_stopping_metric"] == SCORES
    for name in SCORES:
        assert RunConfig(early_stopping_metric=name).early_stopping_metric == name
    for name in ("train_loss", "lr", "loss", "F1"):  # per-step traces are not scores; names are exact
        with pytest.raises(ConfigError) as err:
            RunConfig(early_stopping_metric=name)
        assert ", ".join(SCORES) in err.value.problems["early_stopping_metric"]
