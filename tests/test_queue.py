"""The fair queue against hand-worked examples, and the worker claiming in that order from a real store."""

from __future__ import annotations

from dataclasses import replace

from bert_lab.core.config import RunConfig
from bert_lab.processes.worker import Worker
from bert_lab.runs import describe
from bert_lab.runs.describe import queue_places
from bert_lab.runs.queue import expected_starts, fair_order
from bert_lab.runs.records import Run, RunSummary
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status

BASE = Run(0, "", "", Status.QUEUED, {}, 0.0, None, None, None, 0.0, None, None, None, None, False, {}, 0)


def run(run_id: int, owner: str, status: Status = Status.QUEUED, started_at: float | None = None) -> Run:
    return replace(BASE, id=run_id, owner=owner, status=status, started_at=started_at, name=f"#{run_id}")


def ids(runs: list[Run]) -> list[int]:
    return [r.id for r in runs]


def test_a_big_sweep_takes_turns_with_everyone_else() -> None:
    # Ana queued a 20-run sweep (1-20) before Ben queued 21 and 22 and Cleo 23; nobody has started a run yet.
    queued = [run(i, "ana") for i in range(1, 21)] + [run(21, "ben"), run(22, "ben"), run(23, "cleo")]
    # Round 1: everyone has 0 running and no start; ties go to who queued first: ana (1), ben (21), cleo (23).
    # Round 2: all have one "started"; the longest-ago start goes next: ana (2), then ben (22). Cleo has no more.
    # Then Ana's runs, in the order she queued them.
    assert ids(fair_order(queued, [], {})) == [1, 21, 23, 2, 22, *range(3, 21)]


def test_the_owner_with_fewer_running_goes_first_then_the_longest_ago_start() -> None:
    queued = [run(5, "ana"), run(6, "ana"), run(7, "ben"), run(8, "cleo")]
    running = [run(1, "ana", Status.RUNNING, 100.0), run(2, "ana", Status.RUNNING, 110.0)]
    # Ana has two running: Ben and Cleo go first; Cleo started a run longer ago (50) than Ben (90).
    order = fair_order(queued, running, {"ana": 110.0, "ben": 90.0, "cleo": 50.0})
    assert ids(order) == [8, 7, 5, 6]


def test_a_run_that_starts_counts_as_running_for_the_turns_after_it() -> None:
    # Ana has one run going and two queued; Ben has three queued and never started one. Ben goes first (none
    # running), and then, with one run each going, they alternate: Ana's latest start is older than Ben's.
    queued = [run(2, "ana"), run(3, "ana"), run(4, "ben"), run(5, "ben"), run(6, "ben")]
    running = [run(1, "ana", Status.RUNNING, 100.0)]
    assert ids(fair_order(queued, running, {"ana": 100.0})) == [4, 2, 5, 3, 6]


def test_with_one_owner_the_queue_is_first_in_first_out() -> None:
    queued = [run(i, "") for i in (9, 3, 7)]
    assert ids(fair_order(queued, [run(1, "", Status.RUNNING, 5.0)], {"": 5.0})) == [3, 7, 9]


def test_expected_starts_fill_the_slots_as_runs_free_them() -> None:
    running = [run(1, "ana", Status.RUNNING, started_at=1000.0)]  # 60 s each, started 20 s ago: 40 s left
    queued = [run(2, "ben"), run(3, "ana"), run(4, "cleo")]
    starts = expected_starts(queued, running, slots=2, duration_s=lambda r: 60.0, now=1020.0)
    assert starts == {2: 0.0, 3: 40.0, 4: 60.0}  # a free slot at once; then run 1's slot; then run 2's
    overdue = expected_starts(queued[:1], running, slots=1, duration_s=lambda r: 10.0, now=1020.0)
    assert overdue == {2: 0.0}


def test_the_worker_claims_round_robin_by_owner(lab: Lab) -> None:
    tiny = RunConfig(model="tiny", dataset="sms_spam", train_size=32, eval_size=16, max_length=16).to_dict()
    sweep = [lab.store.create_run(tiny, owner="ana").id for _ in range(3)]
    ben = lab.store.create_run(tiny, owner="ben").id
    worker = Worker(lab, max_concurrent=1)
    try:
        order = []
        for _ in range(4):
            worker.step()  # claims one (and starts its process), then we end it as if it finished
            [claimed] = lab.store.list_runs(statuses=[Status.RUNNING])
            order.append(claimed.id)
            worker.children.pop(claimed.id).kill()
            lab.store.set_status(claimed.id, Status.CANCELLED)
    finally:
        worker.executor.close()
    assert order == [sweep[0], ben, sweep[1], sweep[2]]


def test_queue_places_number_the_fair_order_and_estimate_each_start() -> None:
    tiny = RunConfig(model="tiny", train_size=400).to_dict()  # no finished run yet: guessed at 400/s + 15 s = 16 s
    runs = [
        replace(run(1, "ana", Status.RUNNING, started_at=990.0), config=tiny),  # 6 s left at 1000
        *(replace(run(i, "ana"), config=tiny) for i in (2, 3)),
        replace(run(4, "ben"), config=tiny),
    ]
    places = queue_places(runs, slots=1, now=1000.0)
    assert places == {4: (1, 6.0), 2: (2, 22.0), 3: (3, 38.0)}  # Ben first: Ana already has a run going
    assert queue_places(runs[:1], slots=1, now=1000.0) == {}


def test_queue_places_of_runs_stored_with_partial_configs_take_the_defaults() -> None:
    partial = [replace(run(1, "ana"), config={"model": "tiny"}), replace(run(2, "ben"), config={})]
    assert set(queue_places(partial, slots=1, now=0.0)) == {1, 2}


def test_owners_tied_on_running_and_starts_go_by_their_first_queued_run() -> None:
    # Neither has started a run: Ana's first queued run (1) is older than Ben's (5), though her last (10) is newer.
    queued = [run(1, "ana"), run(10, "ana"), run(5, "ben")]
    assert ids(fair_order(queued, [], {})) == [1, 5, 10]


def test_a_start_adds_one_running_run_to_its_owner() -> None:
    # Ben has two runs going (latest start 50), Ana none: Ana takes two turns (0 then 1 running, fewer than Ben's 2);
    # then both have two and Ben's start is older than Ana's. Were a start to count twice, Ben would go second.
    queued = [run(1, "ana"), run(2, "ana"), run(3, "ana"), run(5, "ben")]
    running = [run(8, "ben", Status.RUNNING, 40.0), run(9, "ben", Status.RUNNING, 50.0)]
    assert ids(fair_order(queued, running, {"ben": 50.0})) == [1, 2, 5, 3]


def test_with_more_runs_running_than_slots_a_queued_run_waits_for_the_last_to_end() -> None:
    # The slots went down from 2 to 1 while two runs were going (10 s and 40 s left): the one slot is free only once
    # both have ended, so the queued run starts in 40 s, not 10.
    running = [run(1, "ana", Status.RUNNING, started_at=960.0), run(2, "ben", Status.RUNNING, started_at=990.0)]
    starts = expected_starts([run(3, "cleo")], running, slots=1, duration_s=lambda r: 50.0, now=1000.0)
    assert starts == {3: 40.0}


def test_a_queued_run_waits_for_what_the_running_run_has_left_not_for_a_guess() -> None:
    # A MiniLM run guessed at 16 s (tiny, 400 samples) started 100 s ago and is a quarter done: by its own pace it has
    # 300 s left, not the guess's nothing. The queued run behind it starts when that run ends, then the next one
    # after the queued run's own guessed 16 s.
    tiny = RunConfig(model="tiny", train_size=400).to_dict()
    going = replace(run(1, "ana", Status.RUNNING, started_at=900.0), config=tiny, progress=0.25)
    waiting = [replace(run(i, "ana"), config=tiny) for i in (2, 3)]
    assert queue_places([going, *waiting], slots=1, now=1000.0) == {2: (1, 300.0), 3: (2, 316.0)}
    # Before it has gone 2% there is no pace to read: the guess for its kind of run stands (16 s from its start).
    young = replace(going, started_at=995.0, progress=0.01)
    assert queue_places([young, *waiting], slots=1, now=1000.0) == {2: (1, 11.0), 3: (2, 27.0)}
    # The same in expected_starts: a run's own time left wins over its estimated duration.
    left = {1: 50.0}
    starts = expected_starts(
        waiting, [going], slots=1, duration_s=lambda r: 10.0, now=1000.0, remaining_s=lambda r: left.get(r.id)
    )
    assert starts == {2: 50.0, 3: 60.0}


def test_while_the_host_has_paused_the_queue_no_queued_run_is_given_a_time() -> None:
    tiny = RunConfig(model="tiny", train_size=400).to_dict()
    runs = [
        replace(run(i, owner), config=tiny, summary=RunSummary()) for i, owner in ((1, "ana"), (2, "ana"), (3, "ben"))
    ]
    assert queue_places(runs, slots=1, now=1000.0, paused=True) == {1: (1, None), 3: (2, None), 2: (3, None)}
    shown = [describe.row(r, {}, place=place).eta for r, place in zip(runs, [(1, None), (3, None), (2, 0.0)])]
    assert shown == [describe.QUEUE_PAUSED, describe.QUEUE_PAUSED, "next"]
    assert describe.start_words(146.0) == "starts in 2m 26s"
    note = describe.explain(runs[0], paused=True)
    assert note is not None and "paused the queue" in note.detail and "resumes" in note.detail
    assert describe.explain(runs[0]) is None  # not paused, a worker alive: nothing to say
