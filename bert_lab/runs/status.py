"""A run's status: the states a run can be in, which changes are allowed, and which states are active or resumable.

    queued ──► running ──► finished | diverged | pruned | failed | cancelled | interrupted
      │ │                                                │            │
      │ └──► finished (answered from the result cache)   │            │
      └──► cancelled ◄─────── resume (back to queued) ───┴────────────┘

Every other module names statuses through `Status`; only the store writes them, through `Status.can_become`.
"""

from __future__ import annotations

from enum import StrEnum


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
