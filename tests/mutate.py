"""Mutation testing: do a module's own tests fail when its code is wrong? (`make mutate`; issue 22 item 7)

One small change at a time, made to the module's syntax tree: a comparison flipped (`==`/`!=`, `<`/`>=`, `>`/`<=`,
`is`/`is not`, `in`/`not in`), `and`/`or` swapped, `True`/`False` swapped, a `not` dropped, a whole number one more
and one less, `+`/`-` and `*`/`/` (and `//` to `*`) swapped, a returned value made `None`. Each mutant is written
into a copy of the repository (the working tree is never touched) and the module's own tests run there (pytest `-x`,
a fresh interpreter, so a worker process a test starts imports the mutant too). A failing test or one past its time
limit kills the mutant; a mutant every test passes survives, and is printed with its line and change.

    .venv/bin/python tests/mutate.py                          # every module in TARGETS
    .venv/bin/python tests/mutate.py --module bert_lab/runs/queue.py --module annotate
    .venv/bin/python tests/mutate.py --jobs 2 --fresh          # two copies at once; ignore remembered results

Results are remembered in `.mutate/` (ignored by git), keyed by the mutant's source, the tests it ran and their
files' contents: a rerun after a new test only redoes the mutants of the modules whose tests changed (`--fresh` redoes
all; a change to another module of the library does not invalidate them).

Not mutated: docstrings and other strings, type annotations, `if TYPE_CHECKING:` blocks, logging calls and
`if __name__ == "__main__":`. Out of scope: the training side (torch; its tests train models), the pages, and
`runs/postgres.py` (its tests start a PostgreSQL server; it is a thin backend over `sql.py`, whose logic is mutated
against the SQLite backend). Each module's tests are the fast ones that name it: tests that train a real model are left
out (minutes each, and they exercise these modules only through paths the fast tests already take).

Survivors judged harmless (equivalent or beyond what a test should pin) are listed in HARMLESS below with the reason;
the report marks them and counts them apart. A surviving mutant not listed there is a test still to write.
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from queue import Queue

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".mutate"
PYTEST = ("-x", "-q", "-p", "no:cacheprovider", "--no-header", "-o", "addopts=")

# module → the pytest arguments that are its own tests (files, node ids, -k to leave out the slow ones)
SLOW = "not real and not bundled and not through_the_real_worker and not pruned_trial and not postgresql"
# the shared store suite and the faults it must ride through (a lost commit answer, a held lock, fresh stores at once)
STORE_FAULTS = "not postgresql and (test_store or commit_answer or every_store_method or locked or fresh_sqlite)"
TARGETS: dict[str, tuple[str, ...]] = {
    "bert_lab/runs/status.py": ("tests/test_runs.py", "-k", "transitions or sets or reachable or plain_string or ends"),
    "bert_lab/runs/queue.py": ("tests/test_queue.py",),
    "bert_lab/runs/cache.py": ("tests/test_cache.py",),
    "bert_lab/runs/describe.py": ("tests/test_runs.py", "tests/test_queue.py"),
    "bert_lab/runs/workshop.py": ("tests/test_workshop.py",),
    "bert_lab/runs/names.py": ("tests/test_names.py", "tests/test_workshop.py"),
    "bert_lab/runs/records.py": ("tests/test_runs.py",),
    "bert_lab/runs/filters.py": ("tests/test_runs.py", "-k", "filter"),
    "bert_lab/runs/takehome.py": ("tests/test_takehome.py",),
    "bert_lab/runs/retry.py": (
        "tests/test_faults.py",
        "-k",
        "not postgresql and (retries or commit_answer or locked or worker_pass or leases_count or refuses_the_lab)",
    ),
    "bert_lab/runs/service.py": (
        "tests/test_runs.py",
        "tests/test_cache.py",
        "tests/test_workshop.py",
        "-k",
        "not twins",
    ),
    "bert_lab/runs/store.py": (
        "tests/test_store.py",
        "tests/test_faults.py",
        "-k",
        "not postgresql and (test_store or password or url)",
    ),
    "bert_lab/runs/sql.py": ("tests/test_store.py", "tests/test_faults.py", "-k", STORE_FAULTS),
    "bert_lab/runs/sqlite.py": ("tests/test_store.py", "tests/test_faults.py", "-k", STORE_FAULTS),
    "bert_lab/runs/backends.py": ("tests/test_store.py", "-k", "not postgresql"),
    "bert_lab/sweeps/spec.py": ("tests/test_sweeps.py", "-k", SLOW),
    "bert_lab/sweeps/launch.py": ("tests/test_sweeps.py", "tests/test_workshop.py", "-k", SLOW),
    "bert_lab/sweeps/search.py": ("tests/test_sweeps.py", "-k", SLOW),
    "bert_lab/sweeps/study.py": ("tests/test_sweeps.py", "tests/test_report.py", "-k", SLOW),
    "bert_lab/sweeps/report.py": ("tests/test_report.py",),
    "bert_lab/sweeps/estimate.py": ("tests/test_estimate.py", "-k", "not postgresql"),
    "bert_lab/teaching/predictions.py": ("tests/test_predictions.py",),
    "bert_lab/teaching/classroom.py": ("tests/test_predictions.py",),
    "bert_lab/engine/schedules.py": ("tests/test_schedules.py",),
    "bert_lab/teaching/annotate.py": ("tests/test_annotate.py", "-k", SLOW),
}

# What `make mutate` runs (the four targets, in the order it names them); the storage layer and the service
# verbs are in TARGETS for `--module` / `--all`: their tests are the shared store suite (115 tests, ~9 s a mutant on
# two shared cores), ~300 mutants more than an hour on these machines.
DEFAULT = [
    "bert_lab/runs/status.py",
    "bert_lab/runs/queue.py",
    "bert_lab/runs/cache.py",
    "bert_lab/engine/schedules.py",
    "bert_lab/sweeps/report.py",
    "bert_lab/runs/workshop.py",
    "bert_lab/teaching/annotate.py",
    "bert_lab/sweeps/spec.py",
    "bert_lab/sweeps/search.py",
    "bert_lab/sweeps/launch.py",
    "bert_lab/sweeps/study.py",
    "bert_lab/runs/names.py",
    "bert_lab/runs/records.py",
    "bert_lab/runs/describe.py",
    "bert_lab/runs/filters.py",
]

# (module, line, change) → why the surviving mutant is harmless
PAST_THE_RUN = (
    "equivalent: `remaining` is read only at steps ≥ warmup_steps, which a run has only when total_steps > "
    "warmup_steps, so total − warmup ≥ 1; max(0|2, ·) differs from max(1, ·) only at remaining = 1, where s = 0"
)
SEEDS_CAP = "the advice's cap (MAX_SEEDS_ADVISED, 100 seeds) is a limit of what the page offers, not a result to pin"
POSITIVE_SIGN = "equivalent: the ±1 direction only scales a difference compared with 0 or sorted: ±2 orders the same"
SPREADLESS = "equivalent: scipy's Welch interval for two configs without spread is (gap, gap) too, as the shortcut's"
ONE_USED = "equivalent: `used` has exactly one element here, so used[-1] is used[0]"
SQUARE = "equivalent: a confusion matrix is square, so row 0, 1 and -1 have the same length"
LATE_HALF = "equivalent: n + (tail - n) // 2 is (tail + n) // 2 as a slice index, for any tail"
HEAD_OF_100 = "equivalent: a plateau needs ≥ 100 points, so n // 10 ≥ 10 beats max(2|3|4, ·)"
LAST_IS_MIN = (
    "equivalent: when the minimum is the last evaluation the last loss is not 3% above it (losses are > 0), "
    "so the rise check returns [] anyway"
)
SPIKE_START = "equivalent: for every i ≥ 1, i > last + 5 holds with last = -9 or -11 as with -10"
UNUSED_COUNT = "equivalent: the count in the default (0, 0.0) is discarded (`_, until = …`); only the time is read"
SWEEP_SEED = "the default sweep seed is arbitrary: any fixed number draws the same configs twice"
TRIAL_SEED = "equivalent: any sampler seed fixed per (sweep seed, trials so far) is reproducible and moves the same"
CLAIM_ID = "the claim id's length (16 hex digits); it is compared whole, inside a signed token"
TEMP_NAME = "the length of a temporary file's random suffix; the file is linked into place and removed"
PATIENCE = "how long a worker rides through an outage (30 min) is a judgement, not a result: a test would restate it"
EVERY_SEED = "equivalent: every stored config has a seed (RunConfig.to_dict), so the default is never read"
ONE_COLUMN = "equivalent: the query selects one column, so row[-1] is row[0]"
FEWER_THAN_TWO = "equivalent: fewer than two scored configs always leave `varied` empty, and two or more never do"
JSON_INDENT = "the indentation of a JSON file in the zip: the same data whatever it is"
NEW_ROW_ID = "equivalent: an INSERT always gives SQLite's cursor a lastrowid, so the `or` default is never read"
BOTH_ENDS = "equivalent: `predict` refuses a range with one end, so both ends are given or neither"
HARMLESS: dict[tuple[str, int, str], str] = {
    ("bert_lab/teaching/predictions.py", 86, "and → or"): BOTH_ENDS + " (the branch above took one end alone)",
    ("bert_lab/teaching/predictions.py", 133, "and → or"): BOTH_ENDS,
    ("bert_lab/teaching/predictions.py", 153, "0 → -1"): "equivalent: Welch's interval is NaN at both ends or neither",
    ("bert_lab/teaching/predictions.py", 153, "0 → 1"): "equivalent: Welch's interval is NaN at both ends or neither",
    ("bert_lab/engine/schedules.py", 43, "1 → 0"): PAST_THE_RUN,
    ("bert_lab/engine/schedules.py", 43, "1 → 2"): PAST_THE_RUN,
    # sweeps/report.py
    ("bert_lab/sweeps/report.py", 29, "100 → 101"): SEEDS_CAP,
    ("bert_lab/sweeps/report.py", 29, "100 → 99"): SEEDS_CAP,
    ("bert_lab/sweeps/report.py", 320, "+ → -"): SEEDS_CAP + " (the loop's end, MAX_SEEDS_ADVISED + 1)",
    ("bert_lab/sweeps/report.py", 320, "1 → 0"): SEEDS_CAP + " (the loop's end, MAX_SEEDS_ADVISED + 1)",
    ("bert_lab/sweeps/report.py", 320, "1 → 2"): SEEDS_CAP + " (the loop's end, MAX_SEEDS_ADVISED + 1)",
    ("bert_lab/sweeps/report.py", 50, "1 → 0"): (
        "equivalent: one value then takes the general path, where std with ddof=1 and the t interval are NaN too"
    ),
    ("bert_lab/sweeps/report.py", 134, "0 → -1"): "equivalent: both ends of a NaN interval are NaN together",
    ("bert_lab/sweeps/report.py", 134, "0 → 1"): "equivalent: both ends of a NaN interval are NaN together",
    ("bert_lab/sweeps/report.py", 239, "1 → 2"): POSITIVE_SIGN,
    ("bert_lab/sweeps/report.py", 285, "1 → 2"): POSITIVE_SIGN,
    ("bert_lab/sweeps/report.py", 289, "and → or"): "equivalent: the mean of an empty list is NaN as well (it warns)",
    ("bert_lab/sweeps/report.py", 292, "0 → -1"): SPREADLESS,
    ("bert_lab/sweeps/report.py", 292, "0 → 1"): SPREADLESS,
    ("bert_lab/sweeps/report.py", 318, "0 → -1"): "equivalent: with no gap the power is 2.5% at every n: None as well",
    ("bert_lab/sweeps/report.py", 318, "0 → 1"): "equivalent: with no gap the power is 2.5% at every n: None as well",
    ("bert_lab/sweeps/report.py", 348, "2 → 1"): (
        "equivalent: configs are keyed by their knob values, so two scored configs always vary a knob; one or none "
        "leaves `varied` empty and returns the same"
    ),
    ("bert_lab/sweeps/report.py", 405, "2 → 1"): FEWER_THAN_TWO,
    ("bert_lab/sweeps/report.py", 405, "and → or"): FEWER_THAN_TWO,
    ("bert_lab/sweeps/spec.py", 97, "0 → -1"): SWEEP_SEED,
    ("bert_lab/sweeps/spec.py", 97, "0 → 1"): SWEEP_SEED,
    ("bert_lab/sweeps/search.py", 63, "* → /"): TRIAL_SEED,
    ("bert_lab/sweeps/search.py", 63, "+ → -"): TRIAL_SEED,
    ("bert_lab/sweeps/search.py", 63, "1000 → 1001"): TRIAL_SEED,
    ("bert_lab/sweeps/search.py", 63, "1000 → 999"): TRIAL_SEED,
    ("bert_lab/sweeps/search.py", 138, "True → False"): "flush sets when the log line appears, not what it says",
    ("bert_lab/sweeps/search.py", 167, "2 → 1"): "equivalent: the pruner's n_warmup_steps=1 never prunes at the first",
    ("bert_lab/sweeps/search.py", 177, "1 → 0"): "equivalent: the percentile pruner reads intermediate values only",
    ("bert_lab/sweeps/search.py", 177, "1 → 2"): "equivalent: the percentile pruner reads intermediate values only",
    ("bert_lab/sweeps/search.py", 179, "1 → 0"): "equivalent: `len(mine) < 2` already keeps the first evaluation",
    ("bert_lab/runs/describe.py", 121, "0 → -1"): (
        "equivalent: a missing wall time read as -1 only lowers an overhead that is clamped at 0 (max(overhead, 0))"
    ),
    ("bert_lab/runs/names.py", 90, "8 → 7"): CLAIM_ID,
    ("bert_lab/runs/names.py", 90, "8 → 9"): CLAIM_ID,
    # runs/workshop.py
    ("bert_lab/runs/workshop.py", 38, "5 → 4"): "a UI limit (the upload size in MB) the page shows and enforces",
    ("bert_lab/runs/workshop.py", 38, "5 → 6"): "a UI limit (the upload size in MB) the page shows and enforces",
    ("bert_lab/runs/workshop.py", 204, "4 → 5"): (
        "equivalent: Python's base64 decoder (not strict) ignores '=' past the padding a name needs; names of 2 to 5 "
        "bytes sign in with it"
    ),
    ("bert_lab/runs/workshop.py", 231, "4 → 3"): TEMP_NAME,
    ("bert_lab/runs/workshop.py", 231, "4 → 5"): TEMP_NAME,
    ("bert_lab/runs/workshop.py", 253, "0 → -1"): UNUSED_COUNT,
    ("bert_lab/runs/workshop.py", 253, "0 → 1"): UNUSED_COUNT,
    ("bert_lab/runs/workshop.py", 346, "0 → -1"): "equivalent: a stored config always has lr (RunConfig fills it)",
    ("bert_lab/runs/workshop.py", 346, "0 → 1"): "equivalent: a stored config always has lr (RunConfig fills it)",
    # teaching/annotate.py
    ("bert_lab/teaching/annotate.py", 81, "10 → 11"): SPIKE_START,
    ("bert_lab/teaching/annotate.py", 81, "10 → 9"): SPIKE_START,
    ("bert_lab/teaching/annotate.py", 82, "1 → 0"): (
        "differs only when the very first loss is not finite (a run that never trained), marked at step 1 instead of 2"
    ),
    ("bert_lab/teaching/annotate.py", 129, "- → +"): LAST_IS_MIN,
    ("bert_lab/teaching/annotate.py", 129, "1 → 0"): LAST_IS_MIN,
    ("bert_lab/teaching/annotate.py", 147, "0 → -1"): SQUARE,
    ("bert_lab/teaching/annotate.py", 147, "0 → 1"): SQUARE,
    ("bert_lab/teaching/annotate.py", 151, "0 → -1"): ONE_USED,
    ("bert_lab/teaching/annotate.py", 166, "+ → -"): LATE_HALF,
    ("bert_lab/teaching/annotate.py", 168, "3 → 2"): HEAD_OF_100,
    ("bert_lab/teaching/annotate.py", 168, "3 → 4"): HEAD_OF_100,
    # the storage layer
    ("bert_lab/runs/store.py", 22, "* → /"): PATIENCE,
    ("bert_lab/runs/store.py", 22, "30 → 31"): PATIENCE,
    ("bert_lab/runs/store.py", 22, "30 → 29"): PATIENCE,
    ("bert_lab/runs/store.py", 45, "0 → -1"): "equivalent: the error's args hold exactly one message",
    ("bert_lab/runs/store.py", 59, "0 → -1"): "equivalent: the error's args hold exactly one message",
    ("bert_lab/runs/retry.py", 56, "return value → None"): "equivalent: None is as false as False to its callers",
    ("bert_lab/runs/retry.py", 56, "False → True"): "unreachable: every backend (SQLite, PostgreSQL) overrides it",
    ("bert_lab/runs/retry.py", 96, "1 → 2"): "equivalent: the call depth is read as a truth value only",
    ("bert_lab/runs/service.py", 223, "0 → -1"): EVERY_SEED,
    ("bert_lab/runs/service.py", 223, "0 → 1"): EVERY_SEED,
    ("bert_lab/runs/backends.py", 34, "return value → None"): "the PostgreSQL opener: its suite is left out (above)",
    ("bert_lab/runs/sql.py", 39, "24 → 23"): "how long a dead worker's lease row is kept (a day): housekeeping",
    ("bert_lab/runs/sql.py", 39, "24 → 25"): "how long a dead worker's lease row is kept (a day): housekeeping",
    ("bert_lab/runs/sql.py", 162, "0 → -1"): ONE_COLUMN,
    ("bert_lab/runs/sql.py", 346, "12 → 11"): "a group id's length (12 hex digits): any length that is unique works",
    ("bert_lab/runs/sql.py", 346, "12 → 13"): "a group id's length (12 hex digits): any length that is unique works",
    ("bert_lab/runs/sql.py", 381, "0 → -1"): ONE_COLUMN,
    ("bert_lab/runs/sql.py", 384, "0 → -1"): ONE_COLUMN,
    ("bert_lab/runs/sql.py", 466, "0 → -1"): "equivalent: point ids start at 1, so id > -1 and id > 0 select the same",
    ("bert_lab/runs/describe.py", 294, "0 → -1"): "equivalent: `why` has one element, so why[-1] is why[0]",
    ("bert_lab/runs/takehome.py", 50, "1 → 0"): JSON_INDENT,
    ("bert_lab/runs/takehome.py", 50, "1 → 2"): JSON_INDENT,
    ("bert_lab/runs/takehome.py", 52, "1 → 0"): JSON_INDENT,
    ("bert_lab/runs/takehome.py", 52, "1 → 2"): JSON_INDENT,
    ("bert_lab/runs/sql.py", 447, "return value → None"): "equivalent: None is as false as False to its caller",
    ("bert_lab/runs/sqlite.py", 159, "0 → -1"): ONE_COLUMN,
    ("bert_lab/runs/sqlite.py", 168, "0 → -1"): NEW_ROW_ID,
    ("bert_lab/runs/sqlite.py", 168, "0 → 1"): NEW_ROW_ID,
}


@dataclass(frozen=True)
class Mutant:
    module: str
    index: int  # the node's place in ast.walk order
    line: int
    change: str
    source: str = ""
    key: str = ""  # what its result is remembered under


# --- making mutants ---------------------------------------------------------------------------------------------------
COMPARE = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
ARITHMETIC = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Mult}
SYMBOL = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.GtE: ">=",
    ast.Gt: ">",
    ast.LtE: "<=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.And: "and",
    ast.Or: "or",
}
LOGGERS = {"log", "logger", "logging", "warnings"}


def skipped(tree: ast.Module) -> set[int]:
    """ids of the nodes no mutant touches: docstrings, annotations, TYPE_CHECKING blocks, logging, __main__ guards."""
    skip: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.append(first)
        if isinstance(node, ast.arg) and node.annotation:
            skip.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns:
            skip.append(node.returns)
        if isinstance(node, ast.AnnAssign):
            skip.append(node.annotation)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.append(node)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'":
            skip.append(node.test)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id in LOGGERS:
                skip.append(node)
    return {id(inner) for node in skip for inner in ast.walk(node)}


def changes(node: ast.AST) -> Iterator[tuple[str, object]]:
    """Each mutation of one node: (what it does, how to apply it)."""
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in COMPARE:
                yield f"{SYMBOL[type(op)]} → {SYMBOL[COMPARE[type(op)]]}", ("compare", i)
    elif isinstance(node, ast.BoolOp):
        other = ast.Or if isinstance(node.op, ast.And) else ast.And
        yield f"{SYMBOL[type(node.op)]} → {SYMBOL[other]}", ("boolop", None)
    elif isinstance(node, ast.BinOp) and type(node.op) in ARITHMETIC:
        yield f"{SYMBOL[type(node.op)]} → {SYMBOL[ARITHMETIC[type(node.op)]]}", ("binop", None)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "not dropped", ("not", None)
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield f"{node.value} → {not node.value}", ("const", not node.value)
    elif isinstance(node, ast.Constant) and type(node.value) is int:
        yield f"{node.value} → {node.value + 1}", ("const", node.value + 1)
        yield f"{node.value} → {node.value - 1}", ("const", node.value - 1)
    elif isinstance(node, ast.Return) and node.value is not None:
        if not (isinstance(node.value, ast.Constant) and node.value.value is None):
            yield "return value → None", ("return", None)


def mutants(module: str) -> list[Mutant]:
    text = (ROOT / module).read_text()
    tree = ast.parse(text)
    skip = skipped(tree)
    found = []
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in skip:
            continue
        for n, (change, how) in enumerate(changes(node)):
            mutated = apply(copy.deepcopy(tree), index, n, how)
            mutant = Mutant(module, index * 10 + n, getattr(node, "lineno", 0), change, mutated)
            found.append(replace(mutant, key=key(mutant)))
    return found


def apply(tree: ast.Module, index: int, n: int, how: tuple[str, object]) -> str:
    nodes = list(ast.walk(tree))
    node = nodes[index]
    kind, arg = how
    if kind == "compare":
        node.ops[arg] = COMPARE[type(node.ops[arg])]()
    elif kind == "boolop":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind == "binop":
        node.op = ARITHMETIC[type(node.op)]()
    elif kind == "const":
        node.value = arg
    elif kind == "return":
        node.value = None
    elif kind == "not":
        for parent in nodes:
            for field, value in ast.iter_fields(parent):
                if value is node:
                    setattr(parent, field, node.operand)
                elif isinstance(value, list):
                    value[:] = [node.operand if item is node else item for item in value]
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


# --- running them ----------------------------------------------------------------------------------------------------
def test_files(args: tuple[str, ...]) -> list[Path]:
    files = [ROOT / a.split("::")[0] for a in args if a.startswith("tests/")]
    return [*files, ROOT / "tests/conftest.py"]


def key(mutant: Mutant) -> str:
    args = TARGETS[mutant.module]
    digest = hashlib.sha256(mutant.source.encode())
    digest.update(json.dumps(args).encode())
    for path in test_files(args):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def make_copy(into: Path) -> Path:
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    for name in tracked:
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    return into


def warm_up() -> None:
    """Imports the libraries the tests use, once: each mutant's tests run in a fork of this process (no interpreter
    start, no torch import per mutant). Nothing of the repository is imported here: each fork imports its copy's."""
    import accelerate, numpy, optuna, pandas, psutil, pytest, scipy.stats, tenacity, torch  # noqa: E401, F401, I001
    import plotly.graph_objects, transformers  # noqa: E401, F401, I001  (annotate's tests import training)
    import transformers.models.bert.modeling_bert  # noqa: F401


def run_tests(copy_root: Path, module: str, source: str | None, timeout_s: float) -> tuple[bool, float]:
    """Runs the module's tests in `copy_root` with `source` in place of the module: (passed, seconds). They run in a
    fork in its own session (its processes killed together past `timeout_s`); the processes a test starts are fresh
    interpreters in the copy, so they import the mutant too."""
    target = copy_root / module
    original = (ROOT / module).read_text()
    pyc = target.parent / "__pycache__"
    try:
        if source is not None:
            target.write_text(source)
        shutil.rmtree(pyc, ignore_errors=True)  # a stale compiled file of the same size and second would be used
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the fork: the tests, then out without the parent's clean-up
            code = 3
            try:
                os.setsid()
                os.chdir(copy_root)
                sys.path.insert(0, str(copy_root))
                os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
                sys.dont_write_bytecode = True
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)
                os.dup2(null, 2)
                import pytest

                # its own temporary folder: pytest keeps only the newest three under /tmp/pytest-of-<user>, so
                # a mutant's run there would delete the folders (a PostgreSQL's binaries) of a suite running beside
                basetemp = f"--basetemp={copy_root.parent / (copy_root.name + '-pytest')}"
                code = int(pytest.main([*PYTEST, basetemp, *TARGETS[module]]))
            finally:
                os._exit(code)
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                passed = os.waitstatus_to_exitcode(status) == 0
                break
            if time.monotonic() - start > timeout_s:
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                passed = False
                break
            time.sleep(0.05)
        return passed, time.monotonic() - start
    finally:
        target.write_text(original)
        shutil.rmtree(pyc, ignore_errors=True)


def remembered(mutant: Mutant) -> bool | None:
    path = CACHE / f"{mutant.key}.json"
    return json.loads(path.read_text())["killed"] if path.exists() else None


def remember(mutant: Mutant, killed: bool) -> None:
    CACHE.mkdir(exist_ok=True)
    record = {"module": mutant.module, "line": mutant.line, "change": mutant.change, "killed": killed}
    (CACHE / f"{mutant.key}.json").write_text(json.dumps(record))


def mutate(module: str, found: list[Mutant], copies: list[Path], fresh: bool) -> tuple[int, list[Mutant]]:
    """Kills what it can of `module`'s mutants: (how many there were, the survivors)."""
    todo = [m for m in found if fresh or remembered(m) is None]
    survivors = [m for m in found if not fresh and remembered(m) is False]
    if todo:
        passed, baseline_s = run_tests(copies[0], module, None, timeout_s=900)
        if not passed:
            raise SystemExit(f"{module}: its tests fail unmutated ({' '.join(TARGETS[module])})")
        limit_s = 3 * baseline_s + 15
        print(f"{module}: {len(todo)} of {len(found)} mutants to run, tests {baseline_s:.1f} s", flush=True)

        free: Queue[Path] = Queue()
        for each in copies:
            free.put(each)

        def one(mutant: Mutant) -> tuple[Mutant, bool]:
            copy_root = free.get()  # a copy of its own while its tests run
            try:
                passed, _ = run_tests(copy_root, module, mutant.source, limit_s)
            finally:
                free.put(copy_root)
            remember(mutant, not passed)
            return mutant, not passed

        with ThreadPoolExecutor(len(copies)) as pool:
            for done, (mutant, killed) in enumerate(pool.map(one, todo), 1):
                if not killed:
                    survivors.append(mutant)
                if done % 20 == 0:
                    print(f"  {done} of {len(todo)}", flush=True)
    survivors.sort(key=lambda m: (m.line, m.change))
    return len(found), survivors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", help="a module in TARGETS, or part of its path (repeatable)")
    parser.add_argument("--all", action="store_true", help="every module in TARGETS, not only DEFAULT")
    parser.add_argument("--jobs", type=int, default=1, help="copies of the repository testing at once")
    parser.add_argument("--fresh", action="store_true", help="ignore remembered results")
    parser.add_argument("--count", action="store_true", help="only count each module's mutants")
    options = parser.parse_args()
    chosen = [*DEFAULT, *(m for m in TARGETS if m not in DEFAULT)] if options.all or options.module else DEFAULT
    modules = [m for m in chosen if not options.module or any(part in m for part in options.module)]
    if options.count:
        for module in modules:
            print(f"{module}: {len(mutants(module))}")
        return
    warm_up()
    start = time.monotonic()
    totals: dict[str, list[int]] = {}
    every = {module: mutants(module) for module in modules}  # keyed now: tests edited during the run are not used
    with tempfile.TemporaryDirectory(prefix="bert-lab-mutate-") as scratch:
        copies = [make_copy(Path(scratch) / f"copy{i}") for i in range(options.jobs)]
        for module in modules:
            total, survivors = mutate(module, every[module], copies, options.fresh)
            harmless = [m for m in survivors if (m.module, m.line, m.change) in HARMLESS]
            killed = total - len(survivors)
            print(
                f"{module}: killed {killed} of {total} ({100 * killed / max(total, 1):.0f}%)"
                f"; {len(harmless)} of the {len(survivors)} survivors judged harmless",
                flush=True,
            )
            for m in survivors:
                why = HARMLESS.get((m.module, m.line, m.change))
                print(f"  {m.module}:{m.line}: {m.change}" + (f"  (harmless: {why})" if why else ""), flush=True)
            group = module.split("/")[1] if module.startswith("bert_lab/runs") or "sweeps" in module else module
            totals.setdefault(group, [0, 0])
            totals[group][0] += killed
            totals[group][1] += total
    print("\nkilled, by target:")
    for group, (killed, total) in totals.items():
        print(f"  {group}: {killed} of {total} ({100 * killed / max(total, 1):.0f}%)")
    print(f"{time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()

# Measured 2026-12-06 on a shared 2-core machine (`tests/mutate.py --jobs 1` under nice, the default set): killed % is
# of every mutant, harmless ones counted as survivors; the last column leaves the harmless ones (HARMLESS) out.
# module                           mutants killed harmless left killed % of non-harmless %
# bert_lab/runs/status.py                9      9        0    0      100               100
# bert_lab/runs/queue.py                14     14        0    0      100               100
# bert_lab/runs/cache.py                 8      8        0    0      100               100
# bert_lab/engine/schedules.py          56     54        2    0       96               100
# bert_lab/sweeps/report.py            224    203       21    0       91               100
# bert_lab/runs/workshop.py            133    122       11    0       92               100
# bert_lab/teaching/annotate.py        149    136       13    0       91               100
# bert_lab/sweeps/spec.py              125    124        1    0       99               100
# bert_lab/sweeps/search.py             78     60        7   11       77                85
# bert_lab/sweeps/launch.py              4      4        0    0      100               100
# bert_lab/sweeps/study.py               1      1        0    0      100               100
# bert_lab/runs/names.py                24     22        2    0       92               100
# bert_lab/runs/records.py              18     18        0    0      100               100
# bert_lab/runs/describe.py            105    104        1    0       99               100
# The storage layer and the modules added since (issue 23), measured 2026-12-06 (`--jobs 1`/`--jobs 2 --module …`,
# beside a CI run); search after its sampler test, workshop/describe after their new code:
# bert_lab/sweeps/search.py             78     73        5    0       94               100
# bert_lab/sweeps/report.py            232    209       23    0       90               100   (as_study added)
# bert_lab/runs/workshop.py            129    120        9    0       93               100
# bert_lab/runs/describe.py            123    120        3    0       98               100
# bert_lab/runs/filters.py              16     16        0    0      100               100
# bert_lab/runs/takehome.py             44     40        4    0       91               100
# bert_lab/runs/retry.py                33     30        3    0       91               100
# bert_lab/runs/service.py              99     97        2    0       98               100
# bert_lab/runs/store.py                40     35        5    0       88               100
# bert_lab/runs/sql.py                 137    128        9    0       93               100
# bert_lab/runs/sqlite.py               27     24        3    0       89               100
# bert_lab/runs/backends.py             12     11        1    0       92               100
# store.py's and sqlite.py's survivors are constants a test would only restate (how long a worker rides out an outage)
# and equivalents (an error's one message read as args[-1]; one selected column read as row[-1]; a lastrowid an INSERT
# always sets): each is in HARMLESS with its reason. runs/postgres.py is left out (above).
