"""A run's own process, as the worker starts it: `python -m bert_lab.processes.job ID --home HOME --artifacts ROOT`
trains run ID (`runner.run_job`); `--standby` imports the heavy modules first and then waits for a run id on stdin
(the worker's warm spare). The store's URL comes in `$BERT_LAB_STORE` (`Lab.command`): never on a command line.

Not a `bert-lab` verb: nobody types it, so `bert-lab --help` does not list it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bert_lab.processes.runner import run_job, standby
from bert_lab.runs.service import Lab
from bert_lab.runs.store import LONG_PATIENCE_S, StoreError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bert_lab.processes.job", description=__doc__.splitlines()[0])
    parser.add_argument("id", type=int, nargs="?", help="the run to train")
    parser.add_argument("--standby", action="store_true", help="import, then wait for a run id on stdin")
    parser.add_argument("--home", type=Path, default=None, help="data folder [$BERT_LAB_HOME or ./lab_data]")
    parser.add_argument("--artifacts", type=Path, default=None, help="run folders [$BERT_LAB_ARTIFACTS or --home]")
    args = parser.parse_args(argv)
    if (args.id is None) == (not args.standby):
        parser.error("give a run id or --standby")
    try:  # a run outlives an outage of the store
        with Lab.open(args.home, None, args.artifacts, patience_s=LONG_PATIENCE_S) as lab:
            return standby(lab) if args.standby else run_job(lab, args.id)
    except StoreError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
