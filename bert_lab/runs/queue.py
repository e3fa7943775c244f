"""The queue's fair order: which queued run starts next, and when each queued run can expect to start.

Round-robin by owner. The next run belongs to the owner with the fewest runs running; among those, to the owner whose
latest start is longest ago (an owner who never started a run comes first); then to whoever queued first. Within one
owner, first in, first out. So one participant's 20-run sweep takes turns with everyone else's runs instead of going
first, and with a single owner the order is plain first-in-first-out. The worker claims in this order; the Runs page
shows each queued run's place in it.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence

from bert_lab.runs.records import Run


def fair_order(queued: Sequence[Run], running: Sequence[Run], last_started: Mapping[str, float]) -> list[Run]:
    """Every queued run, first to start first. `last_started` maps an owner to the start time of their latest run
    (`RunStore.last_started_by_owner`)."""
    waiting: dict[str, deque[Run]] = {}
    for run in sorted(queued, key=lambda r: r.id):
        waiting.setdefault(run.owner, deque()).append(run)
    active = Counter(run.owner for run in running)
    started = dict(last_started)
    clock = max(started.values(), default=0.0)
    order: list[Run] = []
    while waiting:
        owner = min(waiting, key=lambda o: (active[o], started.get(o, -math.inf), waiting[o][0].id))
        order.append(waiting[owner].popleft())
        if not waiting[owner]:
            del waiting[owner]
        active[owner] += 1  # as if it started now: the owner goes to the back of the round
        clock += 1.0
        started[owner] = clock
    return order


def expected_starts(
    order: Sequence[Run],
    running: Sequence[Run],
    *,
    slots: int,
    duration_s: Callable[[Run], float],
    now: float,
    remaining_s: Callable[[Run], float | None] = lambda run: None,
) -> dict[int, float]:
    """Seconds from `now` until each queued run in `order` should start, with `slots` runs at a time: each running
    run frees its slot when its own time left is spent (`remaining_s`: from how far it has got), else, before it has
    got far enough to tell, when its estimated duration is spent (at once if overdue); each queued run takes the
    first slot to free up and holds it for its own estimated duration."""

    def left_s(run: Run) -> float:
        left = remaining_s(run)
        return left if left is not None else (run.started_at or now) + duration_s(run) - now

    free_at = [max(0.0, left_s(r)) for r in running]
    free_at = sorted(free_at)[-slots:] if len(free_at) > slots else free_at
    free_at += [0.0] * (slots - len(free_at))
    heapq.heapify(free_at)
    starts = {}
    for run in order:
        start = heapq.heappop(free_at)
        starts[run.id] = start
        heapq.heappush(free_at, start + duration_s(run))
    return starts
