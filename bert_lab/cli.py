"""Command line: `python -m bert_lab train|submit|clone|runs|cancel|resume|delete|export|worker`.

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

from bert_lab.config import CHOICES, ConfigError, RunConfig, field_help
from bert_lab.runs.layout import DataFolder, RunFolder
from bert_lab.runs.records import StepRecord, TrainResult
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status

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
            group.add_argument(*flags, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            continue
        choices = CHOICES.get(f.name)
        kind = float if float in typing.get_args(hint) or hint is float else int if hint is int else str
        group.add_argument(
            *flags,
            dest=f.name,
            type=kind,
            default=None,
            metavar=("|".join(choices) if choices else f.name.upper()),
            help=help_text,
        )


def config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> RunConfig:
    """The RunConfig the flags describe; a bad value exits 2 naming each bad field."""
    try:
        return RunConfig(**given_fields(args))
    except ConfigError as exc:
        parser.error(flag_problems(exc))
        raise  # unreachable: parser.error exits


def given_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The RunConfig fields the user typed a flag for."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig) if getattr(args, f.name) is not None}


def flag_problems(exc: ConfigError) -> str:
    return "; ".join(f"--{k.replace('_', '-')}: {v}" for k, v in exc.problems.items())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bert_lab", description="BERT Lab: fine-tune BERT, watch it learn.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = sub.add_parser("train", help="fine-tune in this process and print the result")
    add_config_flags(train)
    train.add_argument("--out", type=Path, default=None, help="model folder [$BERT_LAB_HOME/models/<time>]")
    train.add_argument("--json", action="store_true", help="print one JSON object with the result as the last line")

    def with_home(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--home", type=Path, default=None, help="data folder [$BERT_LAB_HOME or ./lab_data]")
        p.add_argument(
            "--store",
            default=None,
            metavar="URL",
            help="run store [$BERT_LAB_STORE or sqlite:///<data folder>/runs.sqlite]",
        )
        return p

    submit = with_home(sub.add_parser("submit", help="queue a run for the background worker; prints its id"))
    add_config_flags(submit)
    submit.add_argument("--name", default="", help="a name to recognise the run by")
    submit.add_argument("--owner", default="", help="who launched it (workshops: one name per participant)")
    clone = with_home(sub.add_parser("clone", help="queue a copy of a run with the flags given changed; prints its id"))
    clone.add_argument("id", type=int)
    add_config_flags(clone)
    clone.add_argument("--name", default="", help="a name for the copy [<name> (clone)]")
    runs = with_home(sub.add_parser("runs", help="list runs with status, progress and latest metrics"))
    runs.add_argument("--json", action="store_true", help="a JSON list instead of a table")
    for name, text in (
        ("cancel", "stop a queued or running run (it saves a checkpoint)"),
        ("resume", "continue an interrupted or cancelled run from its checkpoint"),
        ("delete", "delete a run, its metrics and its files"),
    ):
        with_home(sub.add_parser(name, help=text)).add_argument("id", type=int)
    export = with_home(sub.add_parser("export", help="write a run's metric points as CSV or JSON"))
    export.add_argument("id", type=int)
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--out", type=Path, default=None, help="file to write [stdout]")
    worker = with_home(sub.add_parser("worker", help="train queued runs in the background (one per data folder)"))
    worker.add_argument("--max-concurrent", type=int, default=0, help="runs at once [one per GPU, or 1 on CPU]")
    worker.add_argument("--exit-when-idle", action="store_true", help="stop when nothing is queued or running")
    worker.add_argument("--stale-after-s", type=float, default=30.0, help="silent heartbeat → interrupted [30]")
    worker.add_argument("--cancel-timeout-s", type=float, default=30.0, help="kill a cancelled run after [30]")
    worker.add_argument("--memory-limit-mb", type=int, default=None, help="address-space cap per run")
    job = with_home(sub.add_parser("run-job", help=argparse.SUPPRESS))
    job.add_argument("id", type=int, nargs="?")
    job.add_argument("--standby", action="store_true", help="import, then wait for a run id on stdin")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        return run_train(parser, args)
    from bert_lab.runs.store import StoreError

    try:
        with Lab.open(args.home, args.store) as lab:
            return COMMANDS[args.command](parser, args, lab)
    except StoreError as exc:
        parser.exit(2, f"{parser.prog} {args.command}: error: {exc}\n")
    return 2


# --- train ------------------------------------------------------------------------------------------------------------
def run_train(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from bert_lab.data import DataError
    from bert_lab.model import ModelError
    from bert_lab.runs.records import Hooks
    from bert_lab.train import train

    config = config_from_args(parser, args)
    out = args.out or DataFolder.default().models / time.strftime("train-%Y%m%d-%H%M%S")
    progress = _progress_bar() if sys.stderr.isatty() else None

    def on_step(record: StepRecord) -> None:
        if progress is not None:
            progress.total = record.total_steps
            progress.update(record.step - progress.n)
            progress.set_postfix(loss=f"{record.loss:.3f}", lr=f"{record.lr:.2e}")

    def on_eval(record: Any) -> None:  # an EvalRecord
        if progress is not None:
            progress.write(
                f"step {record.step}: eval loss {record.loss:.4f}  accuracy {record.accuracy:.4f}  F1 {record.f1:.4f}"
            )

    try:
        result = train(config, folder=RunFolder(out), hooks=Hooks(on_step=on_step, on_eval=on_eval))
    except (DataError, ModelError, ValueError) as exc:
        parser.exit(2, f"{parser.prog} train: error: {exc}\n")
    finally:
        if progress is not None:
            progress.close()
    summary = result_summary(result, config)
    if args.json:
        print(json.dumps(summary))
    else:
        ev = summary["eval"]
        print(f"{result.status}: {result.reason}")
        print(
            f"eval accuracy {ev.get('accuracy', float('nan')):.4f}  F1 {ev.get('f1', float('nan')):.4f}  "
            f"loss {ev.get('loss', float('nan')):.4f}"
        )
        print(
            f"{summary['train']['samples_per_s']:.1f} samples/s, wall {summary['train']['wall_s']:.1f}s; "
            f"model in {result.model_dir}"
        )
    return 0 if result.status == Status.FINISHED else 1


def result_summary(result: TrainResult, config: RunConfig) -> dict[str, Any]:
    ev = result.eval
    return {
        "status": result.status,
        "reason": result.reason,
        "eval": {}
        if ev is None
        else {
            "accuracy": ev.accuracy,
            "f1": ev.f1,
            "precision": ev.precision,
            "recall": ev.recall,
            "loss": ev.loss,
            "confusion": ev.confusion,
        },
        "train": {
            "samples_per_s": result.samples_per_s,
            "steps": result.steps,
            "total_steps": result.total_steps,
            "epoch": result.epoch,
            "wall_s": result.wall_s,
            "train_s": result.train_s,
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


# --- run store commands -----------------------------------------------------------------------------------------------
def run_submit(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    from bert_lab.data import DataError
    from bert_lab.runs import service

    config = config_from_args(parser, args)
    try:
        run = service.submit(lab, config, name=args.name, owner=args.owner)
    except DataError as exc:
        parser.exit(2, f"{parser.prog} submit: error: --dataset: {exc}\n")
    print(run.id)
    return 0


LIST_COLUMNS = ("train_loss", "accuracy", "f1")  # the latest value of each, in the table


def run_clone(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    from bert_lab.data import DataError
    from bert_lab.runs import service

    try:
        run = service.clone(lab, args.id, changes=given_fields(args), name=args.name)
    except ConfigError as exc:
        parser.exit(2, f"{parser.prog} clone: error: {flag_problems(exc)}\n")
    except DataError as exc:
        parser.exit(2, f"{parser.prog} clone: error: --dataset: {exc}\n")
    print(run.id)
    return 0


def run_list(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    runs = lab.store.list_runs()
    latest = lab.store.latest_metrics([r.id for r in runs])
    rows = [
        {
            "id": r.id,
            "name": r.name,
            "owner": r.owner,
            "status": str(r.status),
            "progress": round(r.progress, 4),
            "pid": r.pid if r.status == Status.RUNNING else None,
            "device": r.device,
            "created_at": r.created_at,
            "elapsed_s": r.elapsed_s,
            "error": r.error,
            "metrics": latest.get(r.id, {}),
            "config": r.config,
        }
        for r in runs
    ]
    if args.json:
        print(json.dumps(rows))
        return 0
    headers = "  ".join(f"{k:>10}" for k in LIST_COLUMNS)
    print(f"{'id':>4}  {'status':<11} {'progress':>8}  {headers}  name")
    for row in rows:
        m = row["metrics"]
        cells = "  ".join(f"{m[k]:>10.4f}" if k in m else f"{'-':>10}" for k in LIST_COLUMNS)
        print(f"{row['id']:>4}  {row['status']:<11} {row['progress']:>8.0%}  {cells}  {row['name']}")
    return 0


def run_cancel(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    from bert_lab.runs import service

    run = service.cancel(lab, args.id)
    print(f"run {run.id}: {run.status if run.status == Status.CANCELLED else 'cancel requested'}")
    return 0


def run_resume(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    from bert_lab.runs import service

    run = service.resume(lab, args.id)
    print(f"run {run.id}: queued to resume")
    return 0


def run_delete(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    from bert_lab.runs import service

    service.delete(lab, args.id)
    print(f"run {args.id}: deleted")
    return 0


def run_export(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    from bert_lab.export import metrics_frame

    run = lab.store.get_run(args.id)
    frame = metrics_frame(lab.store.read_metrics(run.id))
    text = frame.to_csv(index=False) if args.format == "csv" else frame.to_json(orient="records")
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def run_worker(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    from bert_lab.worker import Worker, serve

    worker = Worker(
        lab,
        max_concurrent=args.max_concurrent,
        stale_after_s=args.stale_after_s,
        cancel_timeout_s=args.cancel_timeout_s,
        memory_limit_mb=args.memory_limit_mb,
    )
    code = serve(worker, exit_when_idle=args.exit_when_idle)
    if code:
        print(f"a worker is already running for {lab.data.path}", file=sys.stderr)
    return code


def run_job_command(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    from bert_lab.runner import run_job, standby

    return standby(lab) if args.standby else run_job(lab, args.id)


COMMANDS = {
    "submit": run_submit,
    "clone": run_clone,
    "runs": run_list,
    "cancel": run_cancel,
    "resume": run_resume,
    "delete": run_delete,
    "export": run_export,
    "worker": run_worker,
    "run-job": run_job_command,
}
