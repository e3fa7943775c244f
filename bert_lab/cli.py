"""Command line: `bert-lab COMMAND` (or `python -m bert_lab COMMAND`): app, worker (`--restart`: started again
whenever it dies), stop, workers, doctor; train, lr-find; submit, clone, sweep; runs, show, rename, tag, note,
groups, group, cancel, resume, delete, export; estimate (what runs like a config scored). `bert-lab --version` says
which lab this is.

Every RunConfig field is a flag (`--batch-size`, `--lr`, …, plus `--epochs` for `num_epochs`), generated from the
dataclass so the CLI can never fall behind the config. Bad flags and values exit with code 2 and a message naming
the field and what is allowed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import typing
from collections import Counter
from pathlib import Path
from typing import Any

import bert_lab
from bert_lab.core.config import CHOICES, FIELD_TYPES, ConfigError, RunConfig, field_help
from bert_lab.core.layout import ARTIFACTS_ENV, HOME_ENV, DataFolder, RunFolder
from bert_lab.core.metrics import HEADLINE, IN_TABLES
from bert_lab.core.text import TextTooLongError
from bert_lab.engine.reports import StepRecord, TrainResult
from bert_lab.runs.describe import counts_line, row
from bert_lab.runs.records import Run, RunSummary
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status, ending
from bert_lab.runs.store import STORE_ENV

ALIASES = {"num_epochs": ["--epochs"], "grad_accum_steps": ["--grad-accum"]}


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per RunConfig field; defaults are left unset so only what the user typed overrides the config."""
    group = parser.add_argument_group("run config (defaults in brackets)")
    for f in dataclasses.fields(RunConfig):
        flags = ALIASES.get(f.name, []) + ["--" + f.name.replace("_", "-")]
        help_text = f"{field_help(f.name)} [{f.default}]".replace("%", "%%")
        hint = FIELD_TYPES[f.name]
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
    parser = argparse.ArgumentParser(prog="bert-lab", description="BERT Lab: fine-tune BERT, watch it learn.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {bert_lab.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_home(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--home", type=Path, default=None, help="data folder [$BERT_LAB_HOME or ./lab_data]")
        p.add_argument(
            "--store",
            default=None,
            metavar="URL",
            help="run store: sqlite:///PATH or postgresql://USER@HOST:PORT/DB "
            "[$BERT_LAB_STORE or sqlite:///<data folder>/runs.sqlite]; a password goes in $BERT_LAB_STORE, "
            "$PGPASSWORD or ~/.pgpass, not here (every user sees a command line)",
        )
        p.add_argument(
            "--artifacts",
            type=Path,
            default=None,
            help="artifact root: run folders and uploads, shared by every machine [$BERT_LAB_ARTIFACTS or --home]",
        )
        return p

    app = with_home(
        sub.add_parser(
            "app",
            help="serve the lab in the browser, with its worker (Ctrl-C stops both)",
            epilog="Any other --section.option flag goes to Streamlit, such as --server.sslCertFile cert.pem.",
        )
    )
    app.add_argument("--port", type=int, default=8501, help="[8501]")
    app.add_argument("--address", default=None, help="where to listen [127.0.0.1; with --workshop, every interface]")
    app.add_argument(
        "--workshop",
        action="store_true",
        help="serve a room: participants sign in with $BERT_LAB_PASSCODE, the host with $BERT_LAB_HOST_PASSCODE",
    )
    doctor = with_home(sub.add_parser("doctor", help="what this machine has for the lab, and what is wrong"))
    doctor.add_argument("--json", action="store_true", help="a JSON list of checks instead of text")

    train = sub.add_parser("train", help="fine-tune in this process and print the result")
    add_config_flags(train)
    train.add_argument("--out", type=Path, default=None, help="model folder [$BERT_LAB_HOME/models/<time>]")
    train.add_argument("--json", action="store_true", help="print one JSON object with the result as the last line")

    find = sub.add_parser("lr-find", help="LR range test in this process: loss against learning rate, a suggestion")
    add_config_flags(find)
    find.add_argument("--start-lr", type=float, default=1e-7, help="the first step's learning rate [1e-7]")
    find.add_argument("--end-lr", type=float, default=1.0, help="the last step's learning rate [1]")
    find.add_argument("--steps", type=int, default=100, help="optimizer steps at most [100]")
    find.add_argument("--json", action="store_true", help="print one JSON object as the last line")

    estimate = with_home(
        sub.add_parser("estimate", help="what finished runs like this config scored: accuracy and F1, before running")
    )
    add_config_flags(estimate)
    estimate.add_argument("--json", action="store_true", help="one JSON object instead of a sentence")
    submit = with_home(sub.add_parser("submit", help="queue a run for the background worker; prints its id"))
    add_config_flags(submit)
    submit.add_argument("--name", default="", help="a name to recognise the run by")
    submit.add_argument("--owner", default="", help="who launched it (workshops: one name per participant)")
    clone = with_home(sub.add_parser("clone", help="queue a copy of a run with the flags given changed; prints its id"))
    clone.add_argument("id", type=int)
    add_config_flags(clone)
    clone.add_argument("--name", default="", help="a name for the copy [<name> (clone)]")
    sweep = with_home(sub.add_parser("sweep", help="queue a group of runs varying 1-3 knobs; prints the group id"))
    add_config_flags(sweep)
    how = sweep.add_argument_group("sweep (the flags above are the base config)")
    how.add_argument("--grid", action="append", default=[], metavar="KNOB=V1,V2", help="a knob's values (grid)")
    how.add_argument(
        "--range",
        action="append",
        default=[],
        metavar="KNOB=LOW:HIGH[:log|lin]",
        help="a knob's range for --random or --search; KNOB=A,B for choices (lr, weight decay, L1, L2: log)",
    )
    how.add_argument("--random", type=int, default=None, metavar="N", help="draw N configs from the ranges")
    how.add_argument("--search", choices=("optuna",), default=None, help="Bayesian search (TPE) over the ranges")
    how.add_argument("--trials", type=int, default=None, metavar="N", help="configs the search tries [12]")
    how.add_argument("--seeds", type=int, default=1, metavar="K", help="runs per config, seeds base, base+1, … [1]")
    how.add_argument("--metric", choices=HEADLINE, default="f1", help="judged by [f1]")
    how.add_argument("--sweep-seed", type=int, default=0, help="seeds the random draws and the search [0]")
    how.add_argument("--no-prune", action="store_true", help="search: never stop a losing trial early")
    how.add_argument("--name", default="", help="the group's name [method × knobs]")
    how.add_argument("--owner", default="", help="who launched it")
    show = with_home(sub.add_parser("show", help="one run: config, status, latest metrics, what its curves show"))
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true", help="one JSON object instead of text")
    runs = with_home(sub.add_parser("runs", help="list runs with status, progress and latest metrics"))
    runs.add_argument("--json", action="store_true", help="a JSON list instead of a table")
    for name, text in (
        ("cancel", "stop a queued or running run (it saves a checkpoint)"),
        ("resume", "continue an interrupted or cancelled run from its checkpoint"),
        ("delete", "delete a run, its metrics and its files"),
    ):
        with_home(sub.add_parser(name, help=text)).add_argument("id", type=int)
    rename = with_home(sub.add_parser("rename", help="give a run a new name"))
    rename.add_argument("id", type=int)
    rename.add_argument("name")
    tag = with_home(sub.add_parser("tag", help="put tags on a run (--remove takes them off); prints its tags"))
    tag.add_argument("id", type=int)
    tag.add_argument("tags", nargs="+", metavar="TAG")
    tag.add_argument("--remove", action="store_true", help="take these tags off instead")
    note = with_home(sub.add_parser("note", help='write a run\'s note, free text ("" clears it)'))
    note.add_argument("id", type=int)
    note.add_argument("text")
    groups = with_home(sub.add_parser("groups", help="list groups (sweeps, lessons) with their run counts"))
    groups.add_argument("--json", action="store_true", help="a JSON list instead of a table")
    group = with_home(sub.add_parser("group", help="read a group: per-config statistics and the verdict"))
    group.add_argument("id")
    group.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    act = group.add_mutually_exclusive_group()
    act.add_argument("--cancel", action="store_true", help="stop the whole group (queued runs, running runs, search)")
    act.add_argument("--resume", action="store_true", help="queue its cancelled and interrupted runs again")
    act.add_argument("--delete", action="store_true", help="delete the group, its runs and their files")
    export = with_home(
        sub.add_parser("export", help="write runs' metric points (CSV, JSON, TensorBoard) or a run's model (a zip)")
    )
    export.add_argument("ids", type=int, nargs="+", metavar="ID")
    export.add_argument(
        "--format",
        choices=("csv", "json", "tensorboard", "model"),
        default="csv",
        help="csv, json: the metric points (one row per run and step); tensorboard: event files with each run's "
        "knobs as HParams, for `tensorboard --logdir OUT`; model: one run's fine-tuned model with a model card, "
        "as one zip [csv]",
    )
    export.add_argument(
        "--out",
        type=Path,
        default=None,
        help="file or folder [stdout; a model: bert-lab-run-ID.zip; tensorboard: required]",
    )
    worker = with_home(sub.add_parser("worker", help="train queued runs in the background (one per data folder)"))
    worker.add_argument("--max-concurrent", type=int, default=0, help="runs at once [the GPUs' slots, or 1 on the CPU]")
    worker.add_argument(
        "--slots-per-gpu", type=int, default=0, help="runs sharing one GPU [as many as fit by memory, at most 8]"
    )
    worker.add_argument("--exit-when-idle", action="store_true", help="stop when nothing is queued or running")
    worker.add_argument("--stale-after-s", type=float, default=30.0, help="silent heartbeat → interrupted [30]")
    worker.add_argument("--cancel-timeout-s", type=float, default=30.0, help="kill a cancelled run after [30]")
    worker.add_argument("--memory-limit-mb", type=int, default=None, help="address-space cap per run")
    worker.add_argument("--restart", action="store_true", help="start the worker again whenever it dies")
    with_home(sub.add_parser("stop", help="stop this data folder's worker; its runs stop, resumable"))
    workers = with_home(sub.add_parser("workers", help="the workers serving this store now, on every machine"))
    workers.add_argument("--json", action="store_true", help="a JSON list instead of a table")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, streamlit_flags = parser.parse_known_args(argv)
    if args.command == "app":
        return run_app(parser, args, streamlit_flags)
    if streamlit_flags:
        parser.error(f"unrecognized arguments: {' '.join(streamlit_flags)}")
    if args.command == "train":
        return run_train(parser, args)
    if args.command == "lr-find":
        return run_lr_find(parser, args)
    if args.command == "doctor":
        return run_doctor(args)
    from bert_lab.runs.store import LONG_PATIENCE_S, PATIENCE_S, StoreError
    from bert_lab.runs.workshop import NotAllowedError, QueueFullError

    # A worker outlives an outage of the store; a person at the prompt is told after seconds.
    patience_s = LONG_PATIENCE_S if args.command == "worker" else PATIENCE_S
    try:
        with Lab.open(args.home, args.store, args.artifacts, patience_s=patience_s) as lab:
            return COMMANDS[args.command](parser, args, lab)
    except (StoreError, QueueFullError, NotAllowedError) as exc:
        parser.exit(2, f"{parser.prog} {args.command}: error: {exc}\n")
    return 2


# --- train ------------------------------------------------------------------------------------------------------------
def run_train(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from bert_lab.engine.data import DataError
    from bert_lab.engine.model import ModelError
    from bert_lab.engine.reports import Hooks
    from bert_lab.engine.train import train

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
    status = ending(result.stop)
    if args.json:
        print(json.dumps(result_json(result, config)))
    else:
        nan = float("nan")
        accuracy, f1, loss = (result.eval.accuracy, result.eval.f1, result.eval.loss) if result.eval else (nan,) * 3
        print(f"{status}: {result.reason}")
        print(f"eval accuracy {accuracy:.4f}  F1 {f1:.4f}  loss {loss:.4f}")
        print(f"{result.samples_per_s:.1f} samples/s, wall {result.wall_s:.1f}s; model in {result.model_dir}")
    return 0 if status == Status.FINISHED else 1


def run_lr_find(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from bert_lab.engine.data import DataError
    from bert_lab.engine.model import ModelError
    from bert_lab.engine.train import train
    from bert_lab.teaching.lr_find import RangeTest, range_test_config

    base = config_from_args(parser, args)
    try:
        config = range_test_config(base, start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps)
    except ConfigError as exc:
        parser.error(flag_problems(exc).replace("--range-start-lr", "--start-lr").replace("--lr", "--end-lr"))
    test = RangeTest()
    started = time.perf_counter()
    try:
        train(config, hooks=test.hooks())
        found = test.suggest()
    except (DataError, ModelError, ValueError) as exc:
        parser.exit(2, f"{parser.prog} lr-find: error: {exc}\n")
    result = {**found.to_dict(), "wall_s": time.perf_counter() - started, "stopped": test.stopped}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{len(test.lrs)} steps; {test.stopped or 'ran to the end'}")
        print(
            f"suggested learning rate {found.suggested_lr:.2e} (steepest {found.steep_lr:.2e}, "
            f"minimum/10 {found.min_lr:.2e}); {result['wall_s']:.1f} s"
        )
    return 0


def result_json(result: TrainResult, config: RunConfig) -> dict[str, Any]:
    """`train --json`: how the run went (its summary as a run in the store would keep it), its last evaluation, and
    its config."""
    summary = RunSummary.of(result, reason=result.reason)
    ev = result.eval
    return {
        "status": ending(result.stop),
        "reason": summary.reason,
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
            "samples_per_s": summary.samples_per_s,
            "steps": summary.steps,
            "total_steps": summary.total_steps,
            "epoch": result.epoch,
            "wall_s": summary.wall_s,
            "train_s": summary.train_s,
        },
        "device": result.device,
        "precision": summary.precision,
        "labels": summary.labels,
        "model_dir": result.model_dir,
        "config": config.to_dict(),
    }


def _progress_bar() -> Any:
    from tqdm import tqdm

    return tqdm(unit="step", dynamic_ncols=True)


# --- run store commands -----------------------------------------------------------------------------------------------
def run_submit(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    from bert_lab.engine.data import DataError
    from bert_lab.runs import service

    config = config_from_args(parser, args)
    try:
        run = service.submit(lab, config, name=args.name, owner=args.owner)
    except DataError as exc:
        parser.exit(2, f"{parser.prog} submit: error: --dataset: {exc}\n")
    except TextTooLongError as exc:
        parser.exit(2, f"{parser.prog} submit: error: --{exc}\n")
    print(run.id)
    return 0


def run_estimate(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    from bert_lab.sweeps.estimate import estimate_from_store, no_runs_words

    config = config_from_args(parser, args)
    found = estimate_from_store(lab.store, config)
    if args.json:
        print(json.dumps(found.to_dict() if found else {"n": 0, "same_config": False, "words": no_runs_words(config)}))
    else:
        print(found.words if found else no_runs_words(config))
    return 0


def run_clone(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    from bert_lab.engine.data import DataError
    from bert_lab.runs import service

    try:
        run = service.clone(lab, args.id, changes=given_fields(args), name=args.name)
    except ConfigError as exc:
        parser.exit(2, f"{parser.prog} clone: error: {flag_problems(exc)}\n")
    except DataError as exc:
        parser.exit(2, f"{parser.prog} clone: error: --dataset: {exc}\n")
    except TextTooLongError as exc:
        parser.exit(2, f"{parser.prog} clone: error: --{exc}\n")
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
            "host": r.host,
            "created_at": r.created_at,
            "elapsed_s": r.elapsed_s,
            "error": r.error,
            "group_id": r.group_id,
            "cached_from": r.cached_from,
            "tags": list(r.tags),
            "note": r.note,
            "metrics": latest.get(r.id, {}),
            "config": r.config,
        }
        for r in runs
    ]
    if args.json:
        print(json.dumps(rows))
        return 0
    headers = "  ".join(f"{k:>10}" for k in IN_TABLES)
    print(f"{'id':>4}  {'status':<11} {'progress':>8}  {headers}  name")
    for run in runs:
        r = row(run, latest.get(run.id, {}))
        cells = "  ".join(f"{'-':>10}" if v is None else f"{v:>10.4f}" for v in r.scores.values())
        kind = f"  [{r.kind}: {r.steps}]" if run.is_range_test else ""  # its scores are blanks: say what it is
        print(f"{run.id:>4}  {run.status:<11} {r.progress:>8.0%}  {cells}  {run.name}{tags_of(run)}{kind}")
    return 0


def run_sweep(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    from bert_lab.engine.data import DataError
    from bert_lab.sweeps.launch import launch
    from bert_lab.sweeps.spec import SweepError, SweepSpec, parse_assignments, parse_range, parse_values

    base = config_from_args(parser, args)
    try:
        spec = SweepSpec(
            method=_sweep_method(parser, args),
            grid=parse_assignments(args.grid, parse_values, "--grid"),
            ranges=parse_assignments(args.range, parse_range, "--range"),
            seeds=args.seeds,
            trials=args.random or args.trials or (12 if args.search else 0),
            metric=args.metric,
            sweep_seed=args.sweep_seed,
            prune=not args.no_prune,
        )
        group = launch(lab, base, spec, name=args.name, owner=args.owner)
    except SweepError as exc:
        parser.exit(2, f"{parser.prog} sweep: error: {exc}\n")
    except DataError as exc:
        parser.exit(2, f"{parser.prog} sweep: error: --dataset: {exc}\n")
    runs = lab.store.list_runs(group_id=group.id)
    planned = f"{spec.num_runs} runs in all" if spec.method == "search" else f"{len(runs)} runs"
    print(f"queued {group.method} sweep {group.name!r}: {planned}, {spec.seeds} seed(s) per config", file=sys.stderr)
    print(group.id)
    return 0


def _sweep_method(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    if args.grid and (args.range or args.random or args.search):
        parser.exit(2, f"{parser.prog} sweep: error: --grid cannot be mixed with --range, --random or --search\n")
    if args.random is not None and args.search:
        parser.exit(2, f"{parser.prog} sweep: error: choose --random N or --search optuna, not both\n")
    return "search" if args.search else "random" if args.random is not None else "grid"


def run_groups(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    rows = [
        {
            "id": g.id,
            "name": g.name,
            "method": g.method,
            "metric": g.metric,
            "counts": dict(Counter(str(r.status) for r in lab.store.list_runs(group_id=g.id))),
        }
        for g in lab.store.list_groups()
    ]
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'id':<12}  {'method':<7} {'metric':<9} {'runs':>4}  name")
    for g in rows:
        print(f"{g['id']:<12}  {g['method']:<7} {g['metric']:<9} {sum(g['counts'].values()):>4}  {g['name']}")
    return 0


def run_group(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    from bert_lab.runs import service
    from bert_lab.sweeps.report import read_group

    if args.cancel or args.resume:
        verb = service.cancel_group if args.cancel else service.resume_group
        changed = verb(lab, args.id)
        print(f"group {args.id}: {'cancelled' if args.cancel else 'resumed'} ({len(changed)} run(s))")
        return 0
    if args.delete:
        service.delete_group(lab, args.id)
        print(f"group {args.id}: deleted")
        return 0
    report = read_group(lab.store, args.id)
    said = lab.store.list_predictions(args.id)
    if args.json:
        print(json.dumps({**report.to_dict(), "predictions": [prediction_dict(p, report) for p in said]}))
        return 0
    print(render_group(report))
    if said:
        from bert_lab.teaching.predictions import arms, tally

        counts = ", ".join(f"{arm}: {n}" for arm, n in tally(said, arms(report.group, report)).items())
        print(f"\npredictions: {len(said)} ({counts})")
    return 0


def prediction_dict(prediction: Any, report: Any) -> dict[str, Any]:
    """A prediction as JSON, with its outcome in words once the group has a result."""
    from dataclasses import asdict

    from bert_lab.teaching.predictions import outcome

    return {**asdict(prediction), "outcome": outcome(prediction, report)}


def render_group(report: Any) -> str:
    """A group report as a readable table (a GroupReport)."""

    def cell(stats: Any, scale: float) -> str:
        if not stats.n:
            return f"{'-':>19}"
        ci = "" if stats.n < 2 else f" [{stats.ci95[0] * scale:.1f},{stats.ci95[1] * scale:.1f}]"
        return f"{stats.mean * scale:>6.1f}{ci:>13}"

    counts = counts_line(report.counts, sep=", ")
    lines = [f"{report.group.name}  ({report.group.method}, judged by {report.metric}; {counts})", ""]
    head = f"{'config':<34} {'n':>2}  {'accuracy % [95% CI]':>19}  {'F1 % [95% CI]':>19}  {'eval loss':>9}  degen."
    lines.append("  " + head)
    for config in report.configs:
        mark = {"★ best": "★ ", "= tied best": "= "}.get(report.mark(config), "  ")  # a tie has no one ★
        loss = config.stats("eval_loss")
        lines.append(
            f"{mark}{config.label[:34]:<34} {config.stats('accuracy').n:>2}  {cell(config.stats('accuracy'), 100)}  "
            f"{cell(config.stats('f1'), 100)}  {loss.mean:>9.4f}  {config.degenerate:>6}"
        )
    verdict = report.verdict()
    lines += ["", f"verdict: {verdict.words}" if verdict else "verdict: needs two configs with finished runs"]
    return "\n".join(lines)


def run_show(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    from bert_lab.figures.curves import points_frame
    from bert_lab.teaching.annotate import annotate

    run = lab.store.get_run(args.id)
    notes = annotate(run, points_frame(lab.store.read_metrics(run.id)))
    shown = {
        "id": run.id,
        "name": run.name,
        "owner": run.owner,
        "status": str(run.status),
        "error": run.error,
        "group_id": run.group_id,
        "cached_from": run.cached_from,
        "tags": list(run.tags),
        "note": run.note,
        "progress": round(run.progress, 4),
        "elapsed_s": run.elapsed_s,
        "metrics": lab.store.latest_metrics([run.id])[run.id],
        "config": run.config,
        "annotations": [a.to_dict() for a in notes],
    }
    if args.json:
        print(json.dumps(shown))
        return 0
    print(f"#{run.id} {run.name}: {run.status}{f' ({run.error})' if run.error else ''}")
    if run.tags or run.note:
        print(f"  tags: {', '.join(run.tags) or '-'}" + (f"\n  note: {run.note}" if run.note else ""))
    print("  " + "  ".join(f"{k} {v:.4g}" for k, v in sorted(shown["metrics"].items())))
    for note in notes:
        print(f"  step {note.step}: [{note.kind}] {note.hint}")
    return 0


def run_edit(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    """rename, tag, note: one service verb (`service.edit`), its every problem named."""
    from bert_lab.runs import service

    run = lab.store.get_run(args.id)
    changes: dict[str, Any] = {}
    if args.command == "rename":
        changes["name"] = args.name
    elif args.command == "note":
        changes["note"] = args.text
    else:
        gone = {t.strip().casefold() for t in args.tags} if args.remove else set()
        changes["tags"] = [t for t in run.tags if t.casefold() not in gone] + ([] if args.remove else args.tags)
    try:
        run = service.edit(lab, run.id, **changes)
    except ValueError as exc:
        parser.exit(2, f"{parser.prog} {args.command}: error: {exc}\n")
    print(f"#{run.id} {run.name}{tags_of(run)}" + (f"\n{run.note}" if run.note else ""))
    return 0


def tags_of(run: Run) -> str:
    """A run's tags as a table line ends: "  [keep, lr]" ("" without tags)."""
    return f"  [{', '.join(run.tags)}]" if run.tags else ""


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
    from bert_lab.figures.export import metrics_frame, spreadsheet_csv

    runs = [lab.store.get_run(run_id) for run_id in args.ids]
    if args.format == "model":
        from bert_lab.runs.takehome import folder_name, model_zip

        if len(runs) > 1:
            parser.error("export --format model: one run at a time (each is its own zip)")
        out = args.out or Path(f"{folder_name(runs[0])}.zip")
        out.write_bytes(model_zip(lab.data, runs[0]))
        print(f"wrote {out}: unzip it, then pipeline('text-classification', model='{folder_name(runs[0])}')")
        return 0
    if args.format == "tensorboard":
        from bert_lab.engine.tensorboard import TensorBoardMissing, write_run

        if args.out is None:
            parser.error("export --format tensorboard: --out DIR names the folder for the logs")
        try:
            folders = [
                write_run(
                    args.out / f"run-{run.id}",
                    {"run": f"#{run.id} {run.name}", **run.config},
                    ((p.step, p.name, p.value) for p in lab.store.read_metrics(run.id)),
                )
                for run in runs
            ]
        except TensorBoardMissing as exc:
            parser.exit(2, f"{parser.prog} export: error: {exc}\n")
        print(f"wrote {len(folders)} run(s) under {args.out}: tensorboard --logdir {args.out}")
        return 0
    frame = metrics_frame(lab.store.read_metrics([r.id for r in runs]), {r.id: r.name for r in runs})
    text = spreadsheet_csv(frame) if args.format == "csv" else frame.to_json(orient="records")
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def run_worker(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    from bert_lab.processes.worker import Worker, serve, supervise

    if args.restart:
        options = [
            f"--max-concurrent={args.max_concurrent}",
            f"--slots-per-gpu={args.slots_per_gpu}",
            f"--stale-after-s={args.stale_after_s}",
            f"--cancel-timeout-s={args.cancel_timeout_s}",
            *([f"--memory-limit-mb={args.memory_limit_mb}"] if args.memory_limit_mb else []),
            *(["--exit-when-idle"] if args.exit_when_idle else []),
        ]
        return supervise(lab, options)
    worker = Worker(
        lab,
        max_concurrent=args.max_concurrent,
        slots_per_gpu=args.slots_per_gpu,
        stale_after_s=args.stale_after_s,
        cancel_timeout_s=args.cancel_timeout_s,
        memory_limit_mb=args.memory_limit_mb,
    )
    code = serve(worker, exit_when_idle=args.exit_when_idle)
    if code:
        print(f"a worker is already running for {lab.data.path}", file=sys.stderr)
    return code


def run_stop(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    from bert_lab.processes.worker import stop_worker

    pid = stop_worker(lab.data, lab.store)
    if pid is None:
        print(f"no worker serves {lab.data.path} on this machine")
    else:
        print(f"stopped the worker of {lab.data.path} (pid {pid}); its runs stopped where they were: resume them")
    return 0


def run_workers(parser: argparse.ArgumentParser, args: argparse.Namespace, lab: Lab) -> int:
    from bert_lab.processes.worker import live_workers
    from bert_lab.runs.describe import worker_facts

    leases = live_workers(lab.store)
    if args.json:
        print(json.dumps([dataclasses.asdict(w) for w in leases]))
        return 0
    if not leases:
        print("no worker is serving this store: queued runs wait (start one with `bert-lab worker`, or `bert-lab app`)")
    now = time.time()
    for facts in (worker_facts(w, now) for w in leases):
        print(
            f"{facts['worker']}: {facts['slots']} slot(s), serving for {facts['serving for']}, "
            f"last heard {facts['last heard']}"
        )
    return 0


# --- app, doctor ------------------------------------------------------------------------------------------------------
def run_app(parser: argparse.ArgumentParser, args: argparse.Namespace, streamlit_flags: list[str]) -> int:
    """Become the lab's server (`lab_ui.serve`, in place of this process: Ctrl-C and SIGTERM reach it, and it stops
    the worker it started). A workshop is refused here, before anything starts, unless its passcodes hold."""
    from bert_lab.runs import workshop

    if args.workshop and (found := workshop.problems()):
        parser.exit(2, "".join(f"bert-lab app: {p}\n" for p in found) + "bert-lab app: nothing was started\n")
    address = args.address or ("0.0.0.0" if args.workshop else "127.0.0.1")
    flags = ["--server.address", address, "--server.port", str(args.port)]
    if args.workshop:
        flags += ["--server.maxUploadSize", str(workshop.UPLOAD_LIMIT_MB)]
    given = {HOME_ENV: args.home, STORE_ENV: args.store, ARTIFACTS_ENV: args.artifacts}
    os.environ.update({name: str(value) for name, value in given.items() if value is not None})
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "lab_ui.serve", *flags, *streamlit_flags])
    return 1  # unreachable: execv does not return


def run_doctor(args: argparse.Namespace) -> int:
    from bert_lab import doctor

    checks = doctor.examine(args.home, args.store, args.artifacts)
    print(json.dumps(doctor.as_json(checks)) if args.json else doctor.report(checks))
    return 1 if any(c.problem for c in checks) else 0


COMMANDS = {
    "submit": run_submit,
    "estimate": run_estimate,
    "clone": run_clone,
    "sweep": run_sweep,
    "runs": run_list,
    "show": run_show,
    "groups": run_groups,
    "group": run_group,
    "cancel": run_cancel,
    "resume": run_resume,
    "delete": run_delete,
    "export": run_export,
    "worker": run_worker,
    "workers": run_workers,
    "stop": run_stop,
    "rename": run_edit,
    "tag": run_edit,
    "note": run_edit,
}
