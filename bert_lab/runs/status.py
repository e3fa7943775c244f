"""A run's status: the states a run can be in, which changes are allowed, and which states are active or resumable.

    queued ──► running ──► finished | diverged | pruned | failed | cancelled | interrupted
      │ │                                                │            │
      │ └──► finished (answered from the result cache)   │            │
      └──► cancelled ◄─────── resume (back to queued) ───┴────────────┘

Every other module names statuses through `Status`; only the store writes them, through `Status.can_become`. How a
run's ending becomes its status is decided here only (`ending`): the run's process and the worker say why it ended.
"""

from __future__ import annotations

from enum import StrEnum

from bert_lab.engine.reports import Stop


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    PRUNED = "pruned"  # a search trial stopped early because it was clearly losing

    def can_become(self, target: Status) -> bool:
        return target in TRANSITIONS.get(self, frozenset())

    @property
    def is_active(self) -> bool:
        """Queued or running: the run still has work ahead of it."""
        return self in ACTIVE

    @property
    def is_resumable(self) -> bool:
        """Stopped part-way with a checkpoint: resume continues it."""
        return self in RESUMABLE


ACTIVE = frozenset({Status.QUEUED, Status.RUNNING})
TERMINAL = frozenset(
    {Status.FINISHED, Status.FAILED, Status.CANCELLED, Status.DIVERGED, Status.INTERRUPTED, Status.PRUNED}
)
RESUMABLE = frozenset({Status.INTERRUPTED, Status.CANCELLED})
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.RUNNING, Status.CANCELLED, Status.FINISHED}),  # finished: from the cache
    Status.RUNNING: TERMINAL,
    **{status: frozenset({Status.QUEUED}) for status in RESUMABLE},
}


class Ending(StrEnum):
    """Why a run ended, as whoever saw it knows it: its training loop (the first three are `engine.reports.Stop`'s),
    its own process (what it asked the loop to stop for, or an error), or the worker (a process that ended without
    recording its end)."""

    COMPLETED = "completed"  # every planned step
    EARLY_STOPPED = "early_stopped"  # the early-stopping metric stopped improving
    DIVERGED = "diverged"  # the loss blew up
    CANCELLED = "cancelled"  # a person asked
    INTERRUPTED = "interrupted"  # SIGTERM or its worker went away: stopped at its step with a checkpoint
    PRUNED = "pruned"  # a search trial that was clearly losing
    RANGE_TEST_DONE = "range_test_done"  # an LR range test's own stop rule: it found what it looked for
    DISK_FULL = "disk_full"  # its last whole checkpoint stays: resumable once there is space
    FAILED = "failed"  # an error in its process, or the process exited without recording its end
    LOST = "lost"  # its process stopped reporting (died, or its machine did): resumable from its checkpoint
    KILLED = "killed"  # cancelled, but its process did not stop in time and was killed


STATUS_OF: dict[Ending, Status] = {
    Ending.COMPLETED: Status.FINISHED,
    Ending.EARLY_STOPPED: Status.FINISHED,
    Ending.RANGE_TEST_DONE: Status.FINISHED,
    Ending.DIVERGED: Status.DIVERGED,
    Ending.CANCELLED: Status.CANCELLED,
    Ending.KILLED: Status.CANCELLED,
    Ending.INTERRUPTED: Status.INTERRUPTED,
    Ending.DISK_FULL: Status.INTERRUPTED,
    Ending.LOST: Status.INTERRUPTED,
    Ending.PRUNED: Status.PRUNED,
    Ending.FAILED: Status.FAILED,
}


def ending(why: Stop | Ending, asked: Ending | None = None) -> Status:
    """The status a run ends in: why it ended, and when its loop stopped because it was asked to, why it was asked
    (a person's cancel unless said otherwise)."""
    return STATUS_OF[(asked or Ending.CANCELLED) if why is Stop.ASKED else Ending(why.value)]
