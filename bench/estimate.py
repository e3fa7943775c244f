"""How good is "runs like this one scored…"? Leave-one-out over the finished runs of a real sweep.

Trains a grid on the bundled MiniLM (learning rate × schedule, 2 seeds each; 2,000 rotten_tomatoes snippets, one
epoch, batch 32, max length 64; through the real CLI and worker), then for every finished run
estimates its final accuracy and F1 from all the other runs (`sweeps/estimate.py`, as the launch page would have
before it ran) and compares that with what it scored. The naive guess to beat is the mean of all the other runs on
the same dataset and model; the ratio of the two mean absolute errors says whether the estimate beats it (below 1)
and by how much. Also: the worst error, how often the actual score fell within the estimate's ± spread (about 68% if
the spread were a calibrated standard deviation), and the same over other kernel widths.

    .venv/bin/python bench/estimate.py                      # train the sweep (about 16 runs), then measure
    .venv/bin/python bench/estimate.py --store URL          # measure on an existing lab's store instead
    .venv/bin/python bench/estimate.py --home DIR           # keep the sweep's lab in DIR (measured again if it exists)
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from browser_lab import cpu

from bert_lab.core.config import ConfigError, RunConfig
from bert_lab.runs.backends import open_store
from bert_lab.runs.records import Run
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.runs.store import RunStore
from bert_lab.sweeps.estimate import BANDWIDTH, SCORES, estimate, past_runs

GRID = ["lr=3e-5,1e-4,3e-4,1e-3", "schedule=constant,linear"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", default=None, metavar="URL", help="measure this store's runs; train nothing")
    p.add_argument("--home", type=Path, default=None, help="the sweep's data folder [a temporary one]")
    p.add_argument("--grid", action="append", default=None, metavar="KNOB=V1,V2", help=f"[{' '.join(GRID)}]")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--train-size", type=int, default=2000)
    p.add_argument("--eval-size", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--bandwidths", default="0.15,0.25,0.35,0.5,1.0", help="kernel widths to compare")
    return p.parse_args(argv)


def train_sweep(args: argparse.Namespace, home: Path) -> float:
    """Queue the grid and train it with the worker until the queue is empty; the wall time in seconds."""
    lab = [sys.executable, "-m", "bert_lab"]
    config = ["--dataset", "rotten_tomatoes", "--model", "minilm", "--train-size", str(args.train_size)]
    config += ["--eval-size", str(args.eval_size), "--max-length", "64", "--epochs", "1"]
    config += ["--batch-size", str(args.batch_size)]
    config += ["--eval-every-steps", "100000"]  # one evaluation, at the end: the score the estimate is about
    grid = [flag for knob in (args.grid or GRID) for flag in ("--grid", knob)]
    started = time.perf_counter()
    subprocess.run([*lab, "sweep", "--home", str(home), *config, *grid, "--seeds", str(args.seeds)], check=True)
    subprocess.run([*lab, "worker", "--home", str(home), "--exit-when-idle"], check=True)
    return time.perf_counter() - started


Row = tuple[Run, dict[str, float], dict[str, float], dict[str, float]]


def leave_one_out(
    runs: Sequence[Run], scores: dict[int, dict[str, float]], bandwidth: float, *, whole_config: bool = False
) -> tuple[list[Row], int]:
    """For each finished run: (run, actual, estimate from the others, spread), with the naive guess in the estimate's
    dict under `naive_<score>`; and how many runs were tried. `whole_config`: leave out every seed of the run's config
    too (a config never run before); runs with no estimate (nothing near) are left out of the rows."""
    out, tried = [], 0
    for run in runs:
        if run.status != Status.FINISHED or run.id not in scores or run.summary.lr_find is not None:
            continue
        try:
            config = RunConfig.from_dict(run.config)
        except ConfigError:
            continue
        tried += 1
        others = [r for r in runs if r.id != run.id and not (whole_config and _knobs(r) == _knobs(run))]
        found = estimate(config, others, scores, bandwidth=bandwidth)
        peers = [r.id for r in others if r.status == Status.FINISHED and r.id in scores and _same(r, run)]
        if found is None or not peers:
            continue
        guess = {"accuracy": found.accuracy, "f1": found.f1}
        guess |= {f"naive_{s}": statistics.fmean(scores[i][s] for i in peers) for s in SCORES}
        out.append((run, dict(scores[run.id]), guess, {"accuracy": found.accuracy_spread, "f1": found.f1_spread}))
    return out, tried


def _same(a: Run, b: Run) -> bool:
    return all(a.config.get(k) == b.config.get(k) for k in ("dataset", "model", "text_column", "label_column"))


def _knobs(run: Run) -> dict[str, object]:
    return {k: v for k, v in run.config.items() if k != "seed"}


def report(store: RunStore, bandwidths: list[float]) -> None:
    runs, scores = past_runs(store)
    finished = [r for r in runs if r.status == Status.FINISHED and r.id in scores]
    print(f"{len(finished)} finished runs with scores ({len(runs) - len(finished)} diverged) in {store.url}")
    print_rows(leave_one_out(runs, scores, BANDWIDTH)[0])
    for whole_config in (False, True):
        left = "every seed of its config left out too" if whole_config else "only the run itself left out"
        print(f"\nleave-one-out, {left}:")
        for h in bandwidths:
            rows, tried = leave_one_out(runs, scores, h, whole_config=whole_config)
            default = " (the default)" if h == BANDWIDTH else ""
            print(f"  bandwidth {h}{default}: {len(rows)} of {tried} runs had an estimate")
            for score in SCORES:
                print_errors(rows, score)


def print_errors(rows: list[Row], score: str) -> None:
    if not rows:
        return
    errors = [abs(g[score] - a[score]) for _, a, g, _ in rows]
    naive = [abs(g[f"naive_{score}"] - a[score]) for _, a, g, _ in rows]
    spreads = [(abs(g[score] - a[score]), s[score]) for _, a, g, s in rows if not math.isnan(s[score])]
    within = sum(e <= s for e, s in spreads) / len(spreads) if spreads else math.nan
    ratio = statistics.fmean(errors) / statistics.fmean(naive) if statistics.fmean(naive) else math.nan
    print(
        f"    {score:>8}: mean abs error {statistics.fmean(errors):.3f} (worst {max(errors):.3f}); naive (mean of the "
        f"others) {statistics.fmean(naive):.3f} (worst {max(naive):.3f}); estimate / naive {ratio:.2f}; "
        f"within ± spread {within:.0%}"
    )


def print_rows(rows: list[Row]) -> None:
    print("\nrun   lr       schedule  seed  accuracy  estimate (± spread)  naive   |  F1      estimate (± spread)")
    for run, actual, guess, spread in sorted(rows, key=lambda row: row[0].id):
        c = run.config
        print(
            f"#{run.id:<4} {c.get('lr', 0):<8.2g} {c.get('schedule', ''):<9} {c.get('seed', 0):<5} "
            f"{actual['accuracy']:.3f}     {guess['accuracy']:.3f} (± {spread['accuracy']:.3f})       "
            f"{guess['naive_accuracy']:.3f}   |  {actual['f1']:.3f}   {guess['f1']:.3f} (± {spread['f1']:.3f})"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"CPU: {cpu()}", flush=True)
    bandwidths = [float(h) for h in args.bandwidths.split(",")]
    if args.store:
        with open_store(args.store) as store:
            report(store, bandwidths)
        return 0
    home = args.home or Path(tempfile.mkdtemp(prefix="bert-lab-estimate-"))
    if not (home / "runs.sqlite").exists():
        wall_s = train_sweep(args, home)
        print(f"sweep trained in {wall_s:.0f} s ({home})", flush=True)
    with Lab.open(home) as lab:
        report(lab.store, bandwidths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
