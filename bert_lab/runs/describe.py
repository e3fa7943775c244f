"""Runs in plain words, for pages and the command line: labels, durations, time left, why a run stopped."""

from __future__ import annotations

import errno
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import PurePath
from typing import Any, Literal

from bert_lab.core.config import DEFAULTS
from bert_lab.core.metrics import HEADLINE, IN_TABLES, METRICS
from bert_lab.core.text import clean_name, shorten
from bert_lab.runs.queue import expected_starts, fair_order
from bert_lab.runs.records import Run, WorkerLease
from bert_lab.runs.status import Status

BADGES: dict[Status, str] = {
    Status.QUEUED: "… queued",
    Status.RUNNING: "▶ running",
    Status.FINISHED: "✓ finished",
    Status.FAILED: "✗ failed",
    Status.CANCELLED: "■ cancelled",
    Status.DIVERGED: "✗ diverged",
    Status.INTERRUPTED: "‖ interrupted",
    Status.PRUNED: "✂ pruned",
}


RANGE_TEST = "LR range test"  # how a range test's throwaway run is named in lists (teaching/lr_find.py)


@dataclass(frozen=True)
class Note:
    """Where a run stands, for runs that need a word: `headline` is shown bold, then `detail`."""

    level: Literal["error", "warning", "info"]
    headline: str
    detail: str


LESS_MEMORY = "lower the batch size or the max length"  # what to do about running out of memory
OUT_OF_MEMORY = f"out of memory: {LESS_MEMORY}"
DISK_FULL = "the disk is full: free some space, then resume the run (it goes on from its last checkpoint)"


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error is a write that found no room (no space left, or over the user's quota)."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def looks_out_of_memory(text: str) -> bool:
    """Whether an error text or a crashed process's last lines say it ran out of memory."""
    text = text.lower()
    return any(sign in text for sign in ("out of memory", "memoryerror", "can't allocate memory"))


def counts_line(counts: Mapping[str, int], *, sep: str = " · ", empty: str = "") -> str:
    """Runs by status in a line, "2 finished · 1 queued" (statuses in order of name), or `empty` when there are none."""
    return sep.join(f"{n} {status}" for status, n in sorted(counts.items()) if n) or empty


def run_label(run: Run) -> str:
    """`#12 lr 3e-4`: how a run is named in legends, tables and pickers; a long name loses its middle to "…", and
    direction controls (a name stored before they were taken out) go here too."""
    return f"#{run.id} {shorten(clean_name(run.name))}"


def owner_label(owner: str) -> str:
    """How a run's owner is named: their name, or "nobody" for a run launched without one (from the command line,
    or outside a workshop)."""
    return owner or "nobody"


def badge(status: Status) -> str:
    return BADGES[status]


def format_duration(seconds: float | None) -> str:
    """`42s`, `3m 05s`, `1h 02m`; empty for unknown."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def eta_s(run: Run, now: float | None = None) -> float | None:
    """Seconds left at `now` (unix time; the present by default), from the share done so far and the time it took
    (running runs past 2% only)."""
    elapsed = run.elapsed_s if now is None or run.started_at is None else now - run.started_at
    if run.status != Status.RUNNING or elapsed is None or run.progress < 0.02:
        return None
    return max(0.0, elapsed) * (1 - run.progress) / run.progress


# What a run of a model no run has measured here yet is guessed to cost: the slower kind of 2-core CPU (AVX2, fp32).
GUESS_SAMPLES_PER_S: dict[str, float] = {"tiny": 400.0}
GUESS_DEFAULT_SAMPLES_PER_S = 60.0  # MiniLM on a 2-core CPU limited to AVX2, fp32: 67–77 (bench/durations.py)
GUESS_OVERHEAD_S = 15.0  # loading, tokenizing and evaluating


def estimate_run_s(runs: Sequence[Run], config: dict[str, Any]) -> tuple[float, str]:
    """(seconds, how it was estimated) for one run of `config`, from the measured throughput of finished `runs` of
    the same model (the same max length if there are such), else a guess for a slow 2-core CPU. Fields missing from
    `config` (a run stored by hand, or by older code) take their defaults."""
    config = {**DEFAULTS, **config}
    done = [
        r
        for r in runs
        if r.status == Status.FINISHED and r.config.get("model") == config["model"] and r.summary.samples_per_s
    ]
    done = [r for r in done if r.config.get("max_length") == config["max_length"]] or done
    if done:
        recent = done[:10]
        speed = statistics.median(r.summary.samples_per_s for r in recent)
        overhead = statistics.median((r.summary.wall_s or 0) - (r.summary.train_s or 0) for r in recent)
        basis = f"measured: {speed:.0f} samples/s over {len(recent)} finished run(s) of this model here"
    else:
        speed = GUESS_SAMPLES_PER_S.get(config["model"], GUESS_DEFAULT_SAMPLES_PER_S)
        overhead = GUESS_OVERHEAD_S
        basis = f"a guess ({speed:.0f} samples/s): no run of this model has finished here yet"
    return config["train_size"] * config["num_epochs"] / speed + max(overhead, 0.0), basis


QUEUE_PAUSED = "paused by the host"  # a queued run's start while the host has paused the queue: no time to give
QUEUE_PAUSED_DETAIL = "the host has paused the queue, so no queued run starts until the host resumes it."


def queue_places(
    runs: Sequence[Run], *, slots: int, now: float, paused: bool = False
) -> dict[int, tuple[int, float | None]]:
    """Each queued run's place in the fair queue (1 = next) and the seconds until it should start, with `slots` runs
    at a time: a running run's slot frees when its own time left is spent (`eta_s`, from how far it has got), a
    queued run's length is estimated from finished runs (`estimate_run_s`). While the queue is `paused` (the host's
    `workshop.Settings.paused`) nothing starts until the host resumes it, so there is no time to give: None."""
    queued = [r for r in runs if r.status == Status.QUEUED]
    if not queued:
        return {}
    running = [r for r in runs if r.status == Status.RUNNING]
    last_started: dict[str, float] = {}
    for run in runs:
        if run.started_at is not None:
            last_started[run.owner] = max(run.started_at, last_started.get(run.owner, run.started_at))
    order = fair_order(queued, running, last_started)
    lengths: dict[tuple[Any, ...], float] = {}  # one estimate per kind of run, not per run

    def duration_s(run: Run) -> float:
        c = run.config
        key = (c.get("model"), c.get("max_length"), c.get("train_size"), c.get("num_epochs"))
        if key not in lengths:
            lengths[key] = estimate_run_s(runs, c)[0]
        return lengths[key]

    if paused:
        return {run.id: (place, None) for place, run in enumerate(order, start=1)}
    left = partial(eta_s, now=now)
    starts = expected_starts(order, running, slots=slots, duration_s=duration_s, now=now, remaining_s=left)
    return {run.id: (place, starts[run.id]) for place, run in enumerate(order, start=1)}


@dataclass(frozen=True)
class Row:
    """A run as a row of a table (the Runs page, `bert_lab runs`, the host's views), in words and its latest scores
    (`core.metrics.IN_TABLES`)."""

    id: int
    run: str  # its label: #id name
    status: str  # a badge ("✓ finished"; an LR range test: "✓ finished · LR range test")
    progress: float  # 0..1
    steps: str  # "12 / 40", "cached from #3", "#2 in queue"; a finished range test's "suggests lr 1.5e-04"
    elapsed: str
    eta: str  # time left, or when a queued run should start ("next"; QUEUE_PAUSED while the host has paused it)
    scores: dict[str, float | None]  # IN_TABLES name → latest value (all None for an LR range test: it blows up)
    dataset: str
    model: str
    owner: str
    group: str
    device: str
    host: str
    kind: str = "training run"  # or RANGE_TEST


def row(
    run: Run, latest: Mapping[str, float], *, place: tuple[int, float | None] | None = None, group: str = ""
) -> Row:
    """`run` as a table row; `latest`: its latest metric values; `place`: a queued run's place in the fair queue and
    seconds until it should start, None while the queue is paused (`queue_places`); `group`: its group's name."""
    total = run.summary.total_steps
    steps = f"{round(run.progress * total)} / {total}" if total else ""
    eta = format_duration(eta_s(run))
    if run.cached_from is not None:  # answered from a finished run with the same config, data and model
        steps = f"cached from #{run.cached_from}"
    if place is not None:
        steps, eta = f"#{place[0]} in queue", start_words(place[1])
    status, scores = badge(run.status), {name: latest.get(name) for name in IN_TABLES}
    if run.is_range_test:  # a throwaway run whose loss is meant to blow up: no scores to read, one learning rate
        status, scores = f"{status} · {RANGE_TEST}", dict.fromkeys(IN_TABLES)
        suggested = (run.summary.lr_find or {}).get("suggested_lr")
        steps = f"suggests lr {suggested:.1e}" if suggested else steps
    return Row(
        id=run.id,
        run=run_label(run),
        status=status,
        progress=run.progress,
        steps=steps,
        elapsed=format_duration(run.elapsed_s),
        eta=eta,
        scores=scores,
        dataset=PurePath(str(run.config.get("dataset", ""))).name,
        model=PurePath(str(run.config.get("model", ""))).name,
        owner=owner_label(run.owner),
        group=group,
        device=run.device or "",
        host=run.host or "",
        kind=RANGE_TEST if run.is_range_test else "training run",
    )


def start_words(start_s: float | None) -> str:
    """When a queued run should start, in words: "starts in 2m 26s", "next", or QUEUE_PAUSED (None: paused)."""
    if start_s is None:
        return QUEUE_PAUSED
    return f"starts in {format_duration(start_s)}" if start_s else "next"


def explain(run: Run, *, worker_alive: bool = True, paused: bool = False) -> Note | None:
    """Where a run stands, in plain words, for runs that need one; `paused`: the host has paused the queue."""
    error, label = (run.error or "").strip(), run_label(run)
    if run.status == Status.FAILED:
        return Note("error", f"{label} failed.", error or "No reason was recorded.")
    if run.status == Status.DIVERGED:
        return Note(
            "error",
            f"{label} diverged:",
            f"the loss blew up, so training stopped ({error or 'loss became NaN or huge'}).",
        )
    if run.status == Status.PRUNED:
        return Note("info", f"{label} was pruned:", error or "the search stopped it early: it was clearly losing.")
    if run.status.is_resumable:
        why = (
            "its process stopped (the app or the machine restarted?)"
            if run.status == Status.INTERRUPTED
            else error or "it was stopped on request"
        )
        return Note("warning", f"{label} was {run.status}:", f"{why}. Resume continues from its last checkpoint.")
    if run.status == Status.RUNNING and run.cancel_requested:
        return Note("info", f"{label} is stopping:", "it ends at its current step and saves a checkpoint.")
    if run.status == Status.QUEUED and paused:
        return Note("info", f"{label} is waiting:", QUEUE_PAUSED_DETAIL)
    if run.status == Status.QUEUED and not worker_alive:
        return Note("warning", f"{label} is waiting,", "but no background worker is running to start it.")
    return None


def describe_workers(workers: Sequence[WorkerLease]) -> str:
    """Who trains the queue, in a few words: "Background worker on lab-a (1 slot)", or, on several machines,
    "2 background workers: gpu-a (4 slots), gpu-b (4 slots)"."""
    each = ", ".join(f"{w.host} ({w.slots} slot{'s' if w.slots != 1 else ''})" for w in workers)
    return f"Background worker on {each}" if len(workers) == 1 else f"{len(workers)} background workers: {each}"


def worker_facts(worker: WorkerLease, now: float) -> dict[str, Any]:
    """One worker's line in the Host view's table and in `bert-lab workers`: which, its slots, how long it
    has served, when it last renewed its lease (never "in the future", whatever another machine's clock says)."""
    return {
        "worker": f"{worker.host} (pid {worker.pid})",
        "slots": worker.slots,
        "serving for": format_duration(now - worker.started_at),
        "last heard": f"{max(0.0, now - worker.renewed_at):.0f} s ago",
    }


NOTICED = frozenset({Status.FINISHED, Status.FAILED, Status.DIVERGED, Status.INTERRUPTED})


def notice(run: Run, latest: Mapping[str, float]) -> str | None:
    """What to tell the person who launched `run` now that it has ended, in plain words; None for an ending they
    caused or expect (cancelled, a pruned trial) or a run still going."""
    if run.status not in NOTICED:
        return None
    name = run_label(run).strip()
    if run.status == Status.FINISHED and run.is_range_test:  # its scores come from a model it blew up on purpose
        suggested = (run.summary.lr_find or {}).get("suggested_lr")
        return f"{name} finished" + (f": it suggests a learning rate of {suggested:.1e}" if suggested else "")
    if run.status == Status.FINISHED:
        scores = [f"{METRICS[k].label} {latest[k]:.3f}" for k in HEADLINE[:2] if math.isfinite(latest.get(k, math.nan))]
        return f"{name} finished" + (f": {', '.join(scores)}" if scores else "")
    why = (run.error or run.summary.reason or "").splitlines()[-1:] or [""]
    return f"{name} {run.status}" + (f": {why[0][:200]}" if why[0] else "")
