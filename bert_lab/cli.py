"""Command line: `python -m bert_lab train|submit|runs|cancel|resume|export|worker`.

Every RunConfig field is a flag (`--batch-size`, `--lr`, …, plus `--epochs` for `num_epochs`), generated from the
dataclass so the CLI can never fall behind the config. Bad flags and values exit with code 2 and a message naming
the field and what is allowed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import typing
from pathlib import Path
from typing import Any

from bert_lab.config import ConfigError, RunConfig, field_help

ALIASES = {"num_epochs": ["--epochs"], "grad_accum_steps": ["--grad-accum"]}


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per RunConfig field; defaults are left unset so only what the user typed overrides the config."""
    hints = typing.get_type_hints(RunConfig)
    group = parser.add_argument_group("run config (defaults in brackets)")
    for f in dataclasses.fields(RunConfig):
        flags = ALIASES.get(f.name, []) + ["--" + f.name.replace("_", "-")]
        help_text = f"{field_help(f.name)} [{f.default}]".replace("%", "%%")
        hint = hints[f.name]
        if hint is bool:
            group.add_argument(*flags, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                               help=help_text)
            continue
        choices = typing.get_args(hint) if typing.get_origin(hint) is typing.Literal else None
        kind = float if float in typing.get_args(hint) or hint is float else int if hint is int else str
        group.add_argument(*flags, dest=f.name, type=kind, default=None, metavar=("|".join(choices) if choices
                           else f.name.upper()), help=help_text)


def config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> RunConfig:
    """The RunConfig the flags describe; a bad value exits 2 naming each bad field."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig) if getattr(args, f.name) is not None}
    try:
        return RunConfig(**given)
    except ConfigError as exc:
        parser.error("; ".join(f"--{k.replace('_', '-')}: {v}" for k, v in exc.problems.items()))
        raise  # unreachable: parser.error exits


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bert_lab", description="BERT Lab: fine-tune BERT, watch it learn.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = sub.add_parser("train", help="fine-tune in this process and print the result")
    add_config_flags(train)
    train.add_argument("--out", type=Path, default=None, help="folder for the trained model [lab_data/models/<time>]")
    train.add_argument("--json", action="store_true", help="print one JSON object with the result as the last line")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        return run_train(parser, args)
    parser.error(f"unknown command {args.command!r}")
    return 2


# --- train ------------------------------------------------------------------------------------------------------------
def run_train(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from bert_lab.data import DataError
    from bert_lab.model import ModelError
    from bert_lab.train import Hooks, train

    config = config_from_args(parser, args)
    out = args.out or Path("lab_data") / "models" / time.strftime("train-%Y%m%d-%H%M%S")
    progress = _progress_bar() if sys.stderr.isatty() else None

    def on_step(record: Any) -> None:
        if progress is not None:
            progress.total = record.total_steps
            progress.update(record.step - progress.n)
            progress.set_postfix(loss=f"{record.loss:.3f}", lr=f"{record.lr:.2e}")

    def on_eval(record: Any) -> None:
        if progress is not None:
            progress.write(f"step {record.step}: eval loss {record.loss:.4f}  accuracy {record.accuracy:.4f}  "
                           f"F1 {record.f1:.4f}")

    try:
        result = train(config, out_dir=out, hooks=Hooks(on_step=on_step, on_eval=on_eval))
    except (DataError, ModelError, ValueError) as exc:
        parser.exit(2, f"{parser.prog} train: error: {exc}\n")
    finally:
        if progress is not None:
            progress.close()
    (out / "run_config.json").parent.mkdir(parents=True, exist_ok=True)
    (out / "run_config.json").write_text(json.dumps(config.to_dict(), indent=1))
    summary = result_summary(result, config)
    if args.json:
        print(json.dumps(summary))
    else:
        ev = summary["eval"]
        print(f"{result.status}: {result.reason}")
        print(f"eval accuracy {ev.get('accuracy', float('nan')):.4f}  F1 {ev.get('f1', float('nan')):.4f}  "
              f"loss {ev.get('loss', float('nan')):.4f}")
        print(f"{summary['train']['samples_per_s']:.1f} samples/s, wall {summary['train']['wall_s']:.1f}s; "
              f"model in {result.model_dir}")
    return 0 if result.status == "finished" else 1


def result_summary(result: Any, config: RunConfig) -> dict[str, Any]:
    ev = result.eval
    return {
        "status": result.status,
        "reason": result.reason,
        "eval": {} if ev is None else {
            "accuracy": ev.accuracy, "f1": ev.f1, "precision": ev.precision, "recall": ev.recall, "loss": ev.loss,
            "confusion": ev.confusion,
        },
        "train": {
            "samples_per_s": result.samples_per_s, "steps": result.steps, "total_steps": result.total_steps,
            "epoch": result.epoch, "wall_s": result.wall_s, "train_s": result.train_s,
        },
        "device": result.device,
        "precision": result.precision,
        "labels": result.label_names,
        "model_dir": result.model_dir,
        "config": config.to_dict(),
    }


def _progress_bar() -> Any:
    from tqdm import tqdm

    return tqdm(unit="step", dynamic_ncols=True)
