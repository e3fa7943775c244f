"""Runs in plain words, for pages and the command line: labels, durations, time left, why a run stopped."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from bert_lab.runs.records import Run
from bert_lab.runs.status import Status

BADGES: dict[Status, str] = {
    Status.QUEUED: "… queued",
    Status.RUNNING: "▶ running",
    Status.FINISHED: "✓ finished",
    Status.FAILED: "✗ failed",
    Status.CANCELLED: "■ cancelled",
    Status.DIVERGED: "✗ diverged",
    Status.INTERRUPTED: "‖ interrupted",
}


@dataclass(frozen=True)
class Note:
    """Where a run stands, for runs that need a word: `headline` is shown bold, then `detail`."""

    level: Literal["error", "warning", "info"]
    headline: str
    detail: str


LESS_MEMORY = "lower the batch size or the max length"  # what to do about running out of memory
OUT_OF_MEMORY = f"out of memory: {LESS_MEMORY}"


def looks_out_of_memory(text: str) -> bool:
    """Whether an error text or a crashed process's last lines say it ran out of memory."""
    text = text.lower()
    return any(sign in text for sign in ("out of memory", "memoryerror", "can't allocate memory"))


def run_label(run: Run) -> str:
    return f"#{run.id} {run.name}"


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


def eta_s(run: Run) -> float | None:
    """Seconds left, from the share done so far and the time it took (running runs past 2% only)."""
    elapsed = run.elapsed_s
    if run.status != Status.RUNNING or elapsed is None or run.progress < 0.02:
        return None
    return elapsed * (1 - run.progress) / run.progress


def explain(run: Run, *, worker_alive: bool = True) -> Note | None:
    """Where a run stands, in plain words, for runs that need one."""
    error, label = (run.error or "").strip(), run_label(run)
    if run.status == Status.FAILED:
        return Note("error", f"{label} failed.", error or "No reason was recorded.")
    if run.status == Status.DIVERGED:
        return Note(
            "error",
            f"{label} diverged:",
            f"the loss blew up, so training stopped ({error or 'loss became NaN or huge'}).",
        )
    if run.status.is_resumable:
        why = (
            "its process stopped (the app or the machine restarted?)"
            if run.status == Status.INTERRUPTED
            else error or "it was stopped on request"
        )
        return Note("warning", f"{label} was {run.status}:", f"{why}. Resume continues from its last checkpoint.")
    if run.status == Status.RUNNING and run.cancel_requested:
        return Note("info", f"{label} is stopping:", "it ends at its current step and saves a checkpoint.")
    if run.status == Status.QUEUED and not worker_alive:
        return Note("warning", f"{label} is waiting,", "but no background worker is running to start it.")
    return None
