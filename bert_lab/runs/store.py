"""The run store interface: rows of runs, metric points and events, shared by every process of the lab.

Pages, the CLI, the worker and each run's process are handed a `RunStore` (opened from a URL by `open_store`), never
a concrete class. SQLite in the data folder is the embedded default; another backend implements the same Protocol
and passes the same tests (`tests/test_store.py` runs against the interface). A store keeps rows, not files: run
folders belong to `bert_lab.core.layout`. Status changes are compare-and-set, following `Status.can_become`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, Self
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from bert_lab.engine.reports import Point
from bert_lab.runs.records import Group, MetricPoint, Prediction, Run, RunEvent, RunSummary, WorkerLease
from bert_lab.runs.status import Status

STORE_ENV = "BERT_LAB_STORE"
PATIENCE_S = 10.0  # how long a store call keeps retrying by default: a person is waiting (a page, the CLI)
LONG_PATIENCE_S = 30 * 60.0  # a worker's or a run's: they outlive an outage of the store rather than give up
MASK = "****"  # what a password is shown as
# (seconds this call has waited so far, the error it is waiting out): told before each wait of a retrying call
WaitCallback = Callable[[float, BaseException], None]


class StoreError(RuntimeError):
    """A store operation that cannot be done: bad status change, unknown schema, deleting a running run."""


class StoreUnavailable(StoreError):
    """The run store is unreachable: a call kept retrying (connection lost, database locked) for its whole patience
    and gave up. Nothing it was asked to write was written; trying again later is right."""


class UnknownRunError(StoreError, KeyError):
    """No run with the given id."""

    def __init__(self, run_id: int) -> None:
        super().__init__(f"no run with id {run_id}")
        self.run_id = run_id

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])

    def __reduce__(self) -> tuple[type[UnknownRunError], tuple[int]]:  # survive pickling across processes
        return type(self), (self.run_id,)


class UnknownGroupError(StoreError, KeyError):
    """No group with the given id."""

    def __init__(self, group_id: str) -> None:
        super().__init__(f"no group with id {group_id!r}")
        self.group_id = group_id

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[type[UnknownGroupError], tuple[str]]:
        return type(self), (self.group_id,)


class RunStore(Protocol):
    @property
    def url(self) -> str:
        """What `open_store` takes to open this store again (in another process). It may hold a password: show
        `redacted(url)`, and hand it to a child process in its environment (`STORE_ENV`), never on its command line."""
        ...

    @property
    def reachable_since(self) -> float:
        """When this handle last got through to the store after failing to (time.time(); 0.0 if it never failed):
        a worker gives runs' heartbeats a grace from then, as they could not beat during the outage."""
        ...

    # --- runs ---
    def create_run(
        self,
        config: dict[str, Any],
        *,
        name: str = "",
        owner: str = "",
        group_id: str | None = None,
        cache_key: str | None = None,
    ) -> Run:
        """Queue a new run; its name defaults to `run-<id>`. With a `cache_key` that a finished run (not itself
        cached) has, the run is instead created finished, answered from that run (`cached_from`)."""
        ...

    def answer_from_cache(self, run_id: int) -> Run | None:
        """Finish queued run `run_id` from a finished run with its cache key, if there is one now (else None, and
        the run stays queued): what the worker asks before claiming a run."""
        ...

    def get_run(self, run_id: int) -> Run:
        """The run, or UnknownRunError."""
        ...

    def list_runs(
        self,
        *,
        statuses: Iterable[Status] | None = None,
        ids: Iterable[int] | None = None,
        owner: str | None = None,
        group_id: str | None = None,
    ) -> list[Run]:
        """Runs, newest first, filtered by whichever of statuses, ids, owner and group are given."""
        ...

    def last_started_by_owner(self) -> dict[str, float]:
        """Each owner's latest run start time (owners whose runs never started are left out): the fair queue's
        memory of whose turn it was."""
        ...

    def claim_run(self, run_id: int, *, pid: int, device: str | None = None, host: str | None = None) -> Run | None:
        """Move queued run `run_id` to running for process `pid` on machine `host`; None when it is no longer queued
        (or another machine is claiming it), UnknownRunError when there is no such run. The caller (the worker)
        decides which run to claim next."""
        ...

    def set_status(self, run_id: int, status: Status, *, error: str | None = None) -> Run:
        """Move a run to `status` if `Status.can_become` allows it (compare-and-set); StoreError otherwise."""
        ...

    def update_run(
        self,
        run_id: int,
        *,
        progress: float | None = None,
        device: str | None = None,
        pid: int | None = None,
        summary: RunSummary | None = None,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        note: str | None = None,
    ) -> Run:
        """Set the given fields (a field left None is kept); the fields `summary` reports replace the stored
        summary's."""
        ...

    def heartbeat(self, run_id: int, *, progress: float | None = None) -> None:
        """Record that the run's process is alive (and optionally its progress, 0..1)."""
        ...

    def request_cancel(self, run_id: int) -> Run:
        """Cancel a queued run now; ask a running one to stop (its process sees `cancel_requested`)."""
        ...

    def delete_run(self, run_id: int) -> int | None:
        """Delete a run that is not running, with its events. Its metric points go with it, unless runs were answered
        from it: then the oldest of those inherits its points and becomes the one the others are cached from; its id
        is returned (the caller moves the run's folder to it)."""
        ...

    # --- groups ---
    def create_group(
        self,
        *,
        name: str,
        method: str,
        metric: str,
        spec: dict[str, Any],
        owner: str = "",
        runs: Iterable[tuple[dict[str, Any], str, str | None]] = (),
    ) -> Group:
        """A new group with its first runs, each (config, name, cache key) as `create_run` makes them, in the same
        transaction: all or nothing."""
        ...

    def get_group(self, group_id: str) -> Group:
        """The group, or UnknownGroupError."""
        ...

    def list_groups(self, *, owner: str | None = None) -> list[Group]:
        """Groups, newest first."""
        ...

    def set_group_stopped(self, group_id: str, stopped: bool) -> Group:
        """Mark a group stopped (a search asks for no more trials) or going again."""
        ...

    def delete_group(self, group_id: str) -> dict[int, int]:
        """Delete a group and its runs' rows; StoreError (and nothing deleted) while one of them is running. Runs
        answered from one of its runs keep their points as `delete_run` says; returns {deleted run: heir}."""
        ...

    # --- predictions ---
    def predict(self, prediction: Prediction) -> Prediction:
        """Store a person's prediction for a group, replacing their earlier one; StoreError (nothing written) once a
        run of the group has its result (finished or diverged), or UnknownGroupError."""
        ...

    def list_predictions(self, group_id: str) -> list[Prediction]:
        """A group's predictions, oldest first."""
        ...

    # --- metric points and events ---
    def add_metrics(self, run_id: int, points: Iterable[Point], *, batch: tuple[str, int] | None = None) -> bool:
        """Append (step, epoch, elapsed_s, name, value) points in one transaction; NaN is kept. A `batch` (writer,
        n) is the writer's n-th batch (n counting up from 1; the writer a name unique to it, e.g. a reporter's random
        id): the store keeps the last batch it applied for the run in the same transaction and skips one it already
        has, so a write repeated after its COMMIT went unanswered lands exactly once. False when it was skipped."""
        ...

    def delete_metrics_after(self, run_id: int, step: int) -> int:
        """Drop points past `step` (a resumed run rewinds to its checkpoint and writes them again); how many."""
        ...

    def read_metrics(
        self,
        run_ids: int | Iterable[int],
        *,
        since_id: int | Mapping[int, int] = 0,
        names: Iterable[str] | None = None,
    ) -> list[MetricPoint]:
        """Points with id > `since_id`, in insertion order: poll with the last id seen to get only new points (one
        question for many runs: `since_id` maps each run to the last id seen of it; a run not in it reads them all).
        A run answered from the cache reads the points of the run it was answered from (under its own run id)."""
        ...

    def latest_metrics(
        self, run_ids: Iterable[int], *, names: Iterable[str] | None = None
    ) -> dict[int, dict[str, float]]:
        """For each run, the most recent value of each metric name (runs without points map to {}); cached runs as
        in `read_metrics`. Given `names`, only those: each is then one index probe per run, where every name
        means reading every point of the runs (pages that refresh pass the catalogue's names)."""
        ...

    def add_event(self, run_id: int, message: str, level: str = "info") -> None: ...

    def read_events(self, run_id: int, since_id: int = 0) -> list[RunEvent]: ...

    # --- workers ---
    def renew_worker(self, host: str, pid: int, *, slots: int) -> None:
        """Record that worker `pid` on `host` is serving, with `slots` runs at once (its lease, renewed now)."""
        ...

    def live_workers(self, *, within_s: float) -> list[WorkerLease]:
        """The workers whose lease was renewed in the last `within_s` seconds, on every machine, by host and pid."""
        ...

    def end_worker(self, host: str, pid: int) -> None:
        """Worker `pid` on `host` stopped serving (its lease ends now; a lost worker's simply expires)."""
        ...

    def schema_version(self) -> int:
        """The database's schema version: its migrations applied (opening a store brings it to this code's)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


# --- showing a URL ----------------------------------------------------------------------------------------------------
POSTGRES_SCHEMES = ("postgresql", "postgres")
_URL_PASSWORD = re.compile(r"^[^:/]+://[^/@:]*:([^@/]*)@")


def redacted(url: str) -> str:
    """`url` with its password (in the user part or a `password=` parameter) shown as `MASK`: the one way a store URL
    is shown or logged. A URL psycopg cannot read is shown as its scheme only."""
    scheme = url.partition("://")[0]
    if scheme not in POSTGRES_SCHEMES:
        return url
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(url)
    except Exception:  # noqa: BLE001 - its error would quote the whole URL
        return f"{scheme}://{MASK}"
    if "password" not in params:
        return url
    parts = urlsplit(url)
    user, at, hosts = parts.netloc.rpartition("@")
    netloc = f"{user.partition(':')[0]}:{MASK}@{hosts}" if ":" in user else parts.netloc
    query = [(key, MASK if key == "password" else value) for key, value in parse_qsl(parts.query, True)]
    shown = urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*")))
    try:
        if conninfo_to_dict(shown).get("password") == MASK:
            return shown
    except Exception:  # noqa: BLE001, S110 - the rebuilt URL did not parse: show psycopg's own form below
        pass
    return make_conninfo("", **{**params, "password": MASK})


def masked(text: str, url: str) -> str:
    """`text` (an error message, a log line) with `url` redacted and its password masked wherever else it shows."""
    text = text.replace(url, redacted(url))
    found = _URL_PASSWORD.match(url)
    secrets = {found.group(1), unquote(found.group(1))} if found else set()
    if url.partition("://")[0] in POSTGRES_SCHEMES:
        from psycopg.conninfo import conninfo_to_dict

        try:
            secrets.add(conninfo_to_dict(url).get("password") or "")
        except Exception:  # noqa: BLE001, S110 - unreadable: the user part's password was taken above
            pass
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
