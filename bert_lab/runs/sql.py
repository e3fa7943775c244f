"""SQLStore: the run store's logic, written once in SQL for every backend (SQLite, PostgreSQL).

A backend subclass supplies a new connection and its transactions (`_connect`, `_write`: one connection per thread
and process is kept here), how a new row's id comes back
(`_insert`), how a row is locked for a read-then-write (`_lock_run`), its placeholders (`_sql`) and its migrations.
Statements here use `?` and `:name` placeholders; status changes are compare-and-set (`UPDATE … WHERE status IN …`),
so two processes, or two machines, can never both claim a run. Every public method retries a lost connection or a
locked database (`@retried`, `runs/retry.py`), the backend saying which errors are transient (`_transient`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import fields, replace
from typing import Any, Self

from bert_lab.engine.reports import Point
from bert_lab.runs.records import Group, MetricPoint, Prediction, Run, RunEvent, RunSummary, WorkerLease
from bert_lab.runs.retry import Retries, retried
from bert_lab.runs.status import TERMINAL, Status
from bert_lab.runs.store import PATIENCE_S, StoreError, UnknownGroupError, UnknownRunError, WaitCallback

# Columns set when a run enters a status (named parameters :now and :error are always bound).
_ON_ENTER: dict[Status, str] = {
    Status.RUNNING: "started_at = COALESCE(started_at, :now), heartbeat_at = :now",
    Status.QUEUED: "resume_count = resume_count + 1, finished_at = NULL, error = NULL, pid = NULL, "
    "cancel_requested = 0",
    **{s: "finished_at = :now, pid = NULL, error = :error" for s in TERMINAL},
}
Row = Mapping[str, Any]  # a row: by column name, and by position (row[0])
FORGET_WORKERS_AFTER_S = 24 * 3600.0  # a lease expired this long ago is deleted (a lost worker's row)


def _float(value: float | None) -> float:
    """A missing number (SQLite stores NaN as NULL) reads back as NaN."""
    return math.nan if value is None else float(value)


def _run_from_row(row: Row) -> Run:
    values = {field.name: row[field.name] for field in fields(Run)}  # columns added later are not Run fields yet
    values["config"] = json.loads(values["config"])
    values["summary"] = RunSummary.from_dict(json.loads(values["summary"]))
    values["cancel_requested"] = bool(values["cancel_requested"])
    values["status"] = Status(values["status"])
    values["tags"] = tuple(json.loads(values["tags"]))
    return Run(**values)


def _group_from_row(row: Row) -> Group:
    values = {field.name: row[field.name] for field in fields(Group)}
    return Group(**{**values, "spec": json.loads(values["spec"]), "stopped": bool(values["stopped"])})


_POINT_COLUMNS = "id, run_id, step, epoch, elapsed_s, name, value"  # MetricPoint's fields, in order


def _point_from_row(row: Sequence[Any]) -> MetricPoint:
    """A metrics row selected as `_POINT_COLUMNS` (by position: pages read tens of thousands at a time)."""
    point_id, run_id, step, epoch, elapsed_s, name, value = row
    return MetricPoint(point_id, run_id, step, _float(epoch), _float(elapsed_s), name, _float(value))


def _marks(values: Iterable[Any]) -> tuple[str, list[Any]]:
    """Placeholders and parameters for an `IN (...)` clause (`IN (NULL)`, which matches nothing, for none)."""
    params = list(values)
    return ", ".join("?" * len(params)) or "NULL", params


class SQLStore(Retries):
    """The `RunStore` methods over a SQL database; see the module's docstring for what a backend adds."""

    def __init__(self, *, patience_s: float = PATIENCE_S, on_wait: WaitCallback | None = None) -> None:
        """Open the store: its schema brought up to date (`_migrate`, retried like any call; nothing stays open when
        that fails). A backend sets what `_connect` needs first."""
        super().__init__(patience_s=patience_s, on_wait=on_wait)
        self._local = threading.local()  # this thread's connection, and the process that opened it
        self._all: list[Any] = []  # every connection opened, for `close`
        self._lock = threading.Lock()
        try:
            self._retrying(self._migrate)
        except BaseException:
            self.close()
            raise

    def _conn(self) -> Any:
        """This thread's connection (a forked child opens its own rather than reuse its parent's)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid() or getattr(conn, "closed", False):
            conn = self._connect()
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._lock:
                self._all.append(conn)
        return conn

    def _drop_connection(self) -> None:
        """Close and forget this thread's connection (after a transient error: the next attempt opens a new one)."""
        conn, self._local.conn = getattr(self._local, "conn", None), None
        if conn is None:
            return
        with self._lock:
            self._all = [c for c in self._all if c is not conn]
        with contextlib.suppress(Exception):
            conn.close()

    # --- what a backend supplies ------------------------------------------------------------------------------------
    def _connect(self) -> Any:
        """A new DB-API connection, set up for this backend."""
        raise NotImplementedError

    def _migrate(self) -> None:
        """Bring the schema to the backend's latest version in one transaction; refuse a database from newer code."""
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Any]:
        """A write transaction; nested use joins the outer one."""
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        """`sql` in the backend's placeholder style."""
        return sql

    def _insert(self, sql: str, params: Sequence[Any]) -> int:
        """Run an INSERT of one row; returns its new id."""
        raise NotImplementedError

    def _lock_run(self, run_id: int) -> None:
        """Inside a write transaction: hold run `run_id`'s row until it ends (for a read, then a write)."""

    _CLAIMABLE = "id = ? AND status = ?"  # (run id, queued): the row a claim may take

    def close(self) -> None:
        """Close every connection this store opened (any thread)."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
        return self._conn().execute(self._sql(sql), params)

    def _execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn().cursor().executemany(self._sql(sql), rows)

    def _delete_run(self, run_id: int) -> int | None:
        """Delete a run's row (its points and events cascade), unless runs were answered from it: then the oldest
        of those inherits its points and the others are answered from that one. Returns the heir's id, if any."""
        heir = self._execute("SELECT MIN(id) FROM runs WHERE cached_from = ?", (run_id,)).fetchone()[0]
        if heir is not None:
            self._execute("UPDATE metrics SET run_id = ? WHERE run_id = ?", (heir, run_id))
            self._execute("UPDATE runs SET cached_from = ? WHERE cached_from = ? AND id != ?", (heir, run_id, heir))
            self._execute("UPDATE runs SET cached_from = NULL WHERE id = ?", (heir,))
        self._execute("DELETE FROM runs WHERE id = ?", (run_id,))
        return heir

    # --- runs -------------------------------------------------------------------------------------------------------
    @retried
    def create_run(
        self,
        config: dict[str, Any],
        *,
        name: str = "",
        owner: str = "",
        group_id: str | None = None,
        cache_key: str | None = None,
    ) -> Run:
        """Queue a new run; its name defaults to `run-<id>`."""
        with self._write():
            run_id = self._insert(
                "INSERT INTO runs (name, owner, status, config, created_at, group_id, cache_key)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, owner, Status.QUEUED, json.dumps(config), time.time(), group_id, cache_key),
            )
            if not name:
                self._execute("UPDATE runs SET name = ? WHERE id = ?", (f"run-{run_id}", run_id))
            return self.answer_from_cache(run_id) or self.get_run(run_id)

    @retried
    def answer_from_cache(self, run_id: int) -> Run | None:
        with self._write():
            source = self._execute(
                "SELECT s.* FROM runs r JOIN runs s ON s.cache_key = r.cache_key AND s.id != r.id"
                " WHERE r.id = ? AND r.status = ? AND s.status = ? AND s.cached_from IS NULL ORDER BY s.id LIMIT 1",
                (run_id, Status.QUEUED, Status.FINISHED),
            ).fetchone()
            if source is None:
                return None
            now = time.time()
            self._execute(
                "UPDATE runs SET status = ?, started_at = ?, finished_at = ?, progress = 1, device = ?, summary = ?,"
                " cached_from = ? WHERE id = ? AND status = ?",
                (Status.FINISHED, now, now, source["device"], source["summary"], source["id"], run_id, Status.QUEUED),
            )
            return self.get_run(run_id)

    @retried
    def get_run(self, run_id: int) -> Run:
        row = self._execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UnknownRunError(run_id)
        return _run_from_row(row)

    @retried
    def list_runs(
        self,
        *,
        statuses: Iterable[Status] | None = None,
        ids: Iterable[int] | None = None,
        owner: str | None = None,
        group_id: str | None = None,
    ) -> list[Run]:
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        for column, values in (
            ("status", statuses),
            ("id", ids),
            ("owner", None if owner is None else [owner]),
            ("group_id", None if group_id is None else [group_id]),
        ):
            if values is not None:
                marks, values_ = _marks(values)
                where.append(f"{column} IN ({marks})")
                params += values_
        sql = f"SELECT * FROM runs WHERE {' AND '.join(where)} ORDER BY id DESC"
        return [_run_from_row(row) for row in self._execute(sql, params)]

    @retried
    def last_started_by_owner(self) -> dict[str, float]:
        sql = "SELECT owner, MAX(started_at) FROM runs WHERE started_at IS NOT NULL GROUP BY owner"
        return {row[0]: row[1] for row in self._execute(sql)}

    @retried
    def claim_run(self, run_id: int, *, pid: int, device: str | None = None, host: str | None = None) -> Run | None:
        now = time.time()
        with self._write():
            claimed = self._execute(
                "UPDATE runs SET status = ?, started_at = COALESCE(started_at, ?), pid = ?, heartbeat_at = ?,"
                f" device = ?, host = ?, cancel_requested = 0, error = NULL WHERE {self._CLAIMABLE}",
                (Status.RUNNING, now, pid, now, device, host, run_id, Status.QUEUED),
            ).rowcount
            run = self.get_run(run_id)  # raises UnknownRunError for an unknown id
            mine = (run.status, run.pid, run.host) == (Status.RUNNING, pid, host)
            if not claimed and mine and self._retry_attempt > 1:
                return run  # this claim's first attempt committed, its answer was lost
            return run if claimed else None

    @retried
    def set_status(self, run_id: int, status: Status, *, error: str | None = None) -> Run:
        status = Status(status)
        sources = {f"from{i}": s for i, s in enumerate(s for s in Status if s.can_become(status))}
        marks = ", ".join(f":{key}" for key in sources)
        sql = f"UPDATE runs SET status = :to, {_ON_ENTER[status]} WHERE id = :id AND status IN ({marks})"
        with self._write():
            params = {"to": status, "id": run_id, "now": time.time(), "error": error, **sources}
            if self._execute(sql, params).rowcount == 0:
                current = self.get_run(run_id).status
                if current == status and self._retry_attempt > 1:
                    return self.get_run(run_id)  # this change's first attempt committed, its answer was lost
                raise StoreError(f"run {run_id}: cannot change status from {current} to {status}")
            return self.get_run(run_id)

    @retried
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
        """Set the given fields; the fields `summary` reports replace the stored summary's."""
        with self._write():
            self._lock_run(run_id)
            run = self.get_run(run_id)
            changes: dict[str, Any] = {"progress": progress, "device": device, "pid": pid, "name": name, "note": note}
            changes = {k: v for k, v in changes.items() if v is not None}
            if tags is not None:
                changes["tags"] = json.dumps(list(tags))
            if summary is not None:
                changes["summary"] = json.dumps(run.summary.merged(summary).to_dict())
            if changes:
                assignments = ", ".join(f"{column} = ?" for column in changes)
                self._execute(f"UPDATE runs SET {assignments} WHERE id = ?", [*changes.values(), run_id])
            return self.get_run(run_id)

    @retried
    def heartbeat(self, run_id: int, *, progress: float | None = None) -> None:
        """Record that the run's process is alive (and optionally its progress, 0..1)."""
        with self._write():
            sql = "UPDATE runs SET heartbeat_at = ?, progress = COALESCE(?, progress) WHERE id = ?"
            if self._execute(sql, (time.time(), progress, run_id)).rowcount == 0:
                raise UnknownRunError(run_id)

    @retried
    def request_cancel(self, run_id: int) -> Run:
        """Cancel a queued run now; ask a running one to stop (its process sees `cancel_requested`)."""
        with self._write():
            self._lock_run(run_id)
            run = self.get_run(run_id)
            if run.status == Status.QUEUED:
                return self.set_status(run_id, Status.CANCELLED)
            if run.status != Status.RUNNING:
                raise StoreError(f"run {run_id} is {run.status}; only queued or running runs can be cancelled")
            self._execute("UPDATE runs SET cancel_requested = 1 WHERE id = ?", (run_id,))
            return self.get_run(run_id)

    @retried
    def delete_run(self, run_id: int) -> int | None:
        with self._write():
            self._lock_run(run_id)
            if self.get_run(run_id).status == Status.RUNNING:
                raise StoreError(f"run {run_id} is running; cancel it before deleting it")
            return self._delete_run(run_id)

    # --- groups -----------------------------------------------------------------------------------------------------
    @retried
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
        """A new group with its first runs, each (config, name, cache key), in the same transaction: all or nothing."""
        group_id = uuid.uuid4().hex[:12]
        with self._write():
            self._execute(
                "INSERT INTO groups (id, name, owner, method, metric, spec, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (group_id, name, owner, method, metric, json.dumps(spec), time.time()),
            )
            for config, run_name, cache_key in runs:
                self.create_run(config, name=run_name, owner=owner, group_id=group_id, cache_key=cache_key)
            return self.get_group(group_id)

    @retried
    def get_group(self, group_id: str) -> Group:
        row = self._execute("SELECT * FROM groups WHERE id = ?", (group_id,)).fetchone()
        if row is None:
            raise UnknownGroupError(group_id)
        return _group_from_row(row)

    @retried
    def list_groups(self, *, owner: str | None = None) -> list[Group]:
        sql, params = "SELECT * FROM groups", []
        if owner is not None:
            sql, params = sql + " WHERE owner = ?", [owner]
        return [_group_from_row(row) for row in self._execute(sql + " ORDER BY created_at DESC", params)]

    @retried
    def set_group_stopped(self, group_id: str, stopped: bool) -> Group:
        with self._write():
            self._execute("UPDATE groups SET stopped = ? WHERE id = ?", (int(stopped), group_id))
            return self.get_group(group_id)

    @retried
    def delete_group(self, group_id: str) -> dict[int, int]:
        with self._write():
            self.get_group(group_id)
            sql = "SELECT id FROM runs WHERE group_id = ? AND status = ?"
            running = [row[0] for row in self._execute(sql, (group_id, Status.RUNNING))]
            if running:
                raise StoreError(f"group {group_id}: run(s) {', '.join(map(str, running))} running; cancel them first")
            ids = [row[0] for row in self._execute("SELECT id FROM runs WHERE group_id = ? ORDER BY id", (group_id,))]
            heirs = {run_id: self._delete_run(run_id) for run_id in ids}
            self._execute("DELETE FROM predictions WHERE group_id = ?", (group_id,))
            self._execute("DELETE FROM groups WHERE id = ?", (group_id,))
            return {run_id: heir for run_id, heir in heirs.items() if heir is not None}

    # --- predictions ------------------------------------------------------------------------------------------------
    @retried
    def predict(self, prediction: Prediction) -> Prediction:
        """Store a person's prediction for a group (replacing their earlier one), refused once a run of the group has
        a result: the check and the write in one transaction, so a run finishing meanwhile cannot slip between."""
        with self._write():
            self.get_group(prediction.group_id)
            sql = "SELECT id FROM runs WHERE group_id = ? AND status IN (?, ?) ORDER BY id LIMIT 1"
            done = self._execute(sql, (prediction.group_id, Status.FINISHED, Status.DIVERGED)).fetchone()
            if done is not None:
                raise StoreError(f"group {prediction.group_id}: predictions are closed, run {done[0]} has its result")
            self._execute(
                "INSERT INTO predictions (group_id, owner, arm, low, high, made_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (group_id, owner) DO UPDATE SET arm = excluded.arm, low = excluded.low, "
                "high = excluded.high, made_at = excluded.made_at",
                (
                    prediction.group_id,
                    prediction.owner,
                    prediction.arm,
                    prediction.low,
                    prediction.high,
                    prediction.made_at,
                ),
            )
        return prediction

    @retried
    def list_predictions(self, group_id: str) -> list[Prediction]:
        sql = "SELECT group_id, owner, arm, low, high, made_at FROM predictions WHERE group_id = ? ORDER BY made_at"
        return [Prediction(*row) for row in self._execute(sql, (group_id,))]

    # --- metrics and events -----------------------------------------------------------------------------------------
    @retried
    def add_metrics(self, run_id: int, points: Iterable[Point], *, batch: tuple[str, int] | None = None) -> bool:
        """Append (step, epoch, elapsed_s, name, value) points in one transaction; NaN is kept (as NULL). A numbered
        `batch` (writer, n) is applied once: see `RunStore.add_metrics`."""
        rows = [(run_id, step, epoch, elapsed_s, name, value) for step, epoch, elapsed_s, name, value in points]
        if not rows and batch is None:
            return True
        with self._write():
            if batch is not None and not self._take_batch(run_id, *batch):
                return False
            sql = "INSERT INTO metrics (run_id, step, epoch, elapsed_s, name, value) VALUES (?, ?, ?, ?, ?, ?)"
            if rows:
                self._execute_many(sql, rows)
            return True

    def _take_batch(self, run_id: int, writer: str, number: int) -> bool:
        """Inside a write: record batch `number` of `writer` as the last applied to run `run_id`; False when it (or a
        later one of the same writer) already was."""
        sql = (
            "UPDATE runs SET metrics_writer = ?, metrics_batch = ? WHERE id = ?"
            " AND (metrics_writer IS NULL OR metrics_writer != ? OR metrics_batch < ?)"
        )
        if self._execute(sql, (writer, number, run_id, writer, number)).rowcount:
            return True
        self.get_run(run_id)  # UnknownRunError when there is no such run
        return False

    @retried
    def delete_metrics_after(self, run_id: int, step: int) -> int:
        """Drop points past `step` (a resumed run rewinds to its checkpoint and writes them again); returns how many."""
        with self._write():
            return self._execute("DELETE FROM metrics WHERE run_id = ? AND step > ?", (run_id, step)).rowcount

    @retried
    def read_metrics(
        self,
        run_ids: int | Iterable[int],
        *,
        since_id: int | Mapping[int, int] = 0,
        names: Iterable[str] | None = None,
    ) -> list[MetricPoint]:
        readers = self._points_of([run_ids] if isinstance(run_ids, int) else run_ids)
        if not readers:
            return []
        seen = (lambda run_id: since_id) if isinstance(since_id, int) else (lambda run_id: since_id.get(run_id, 0))
        since = {source: min(map(seen, runs)) for source, runs in readers.items()}  # what its first reader lacks
        sql = f"SELECT {_POINT_COLUMNS} FROM metrics WHERE ({' OR '.join(['(run_id = ? AND id > ?)'] * len(since))})"
        params: list[Any] = [value for pair in since.items() for value in pair]
        if names is not None:
            name_marks, name_params = _marks(names)
            sql += f" AND name IN ({name_marks})"
            params += name_params
        rows = self._execute(sql + " ORDER BY id", params)
        return [
            point if reader == point.run_id else replace(point, run_id=reader)  # (replace is slow: pages read 1e5)
            for point in map(_point_from_row, rows)
            for reader in readers[point.run_id]
            if point.id > seen(reader)
        ]

    @retried
    def latest_metrics(
        self, run_ids: Iterable[int], *, names: Iterable[str] | None = None
    ) -> dict[int, dict[str, float]]:
        wanted = list(run_ids)
        readers = self._points_of(wanted)
        latest: dict[int, dict[str, float]] = {run_id: {} for run_id in wanted}
        names = None if names is None else list(dict.fromkeys(names))
        if not readers or names == []:
            return latest
        if names is None:  # every name there is: a scan of the runs' points
            marks, params = _marks(readers)
            last = f"SELECT MAX(id) FROM metrics WHERE run_id IN ({marks}) GROUP BY run_id, name"
        else:  # each (run, name): the last point by the index on (run_id, name, id)
            params = [value for run_id in readers for name in names for value in (run_id, name)]
            probes = ", ".join(["(?, ?)"] * (len(params) // 2))
            last = (
                "SELECT (SELECT m.id FROM metrics m WHERE m.run_id = p.column1 AND m.name = p.column2"
                f" ORDER BY m.id DESC LIMIT 1) FROM (VALUES {probes}) AS p"
            )
        sql = f"SELECT m.run_id, m.name, m.value FROM metrics m WHERE m.id IN ({last})"
        for owner_id, name, value in self._execute(sql, params):
            for reader in readers[owner_id]:
                latest[reader][name] = _float(value)
        return latest

    def _points_of(self, run_ids: Iterable[int]) -> dict[int, list[int]]:
        """The runs whose points to read → the asked-for runs that read them (a cached run reads its source's)."""
        ids = list(run_ids)
        marks, params = _marks(ids)
        sources = dict(self._execute(f"SELECT id, cached_from FROM runs WHERE id IN ({marks})", params).fetchall())
        readers: dict[int, list[int]] = {}
        for run_id in dict.fromkeys(ids):
            readers.setdefault(sources.get(run_id) or run_id, []).append(run_id)
        return readers

    @retried
    def add_event(self, run_id: int, message: str, level: str = "info") -> None:
        with self._write():
            sql = "INSERT INTO events (run_id, time, level, message) VALUES (?, ?, ?, ?)"
            self._execute(sql, (run_id, time.time(), level, message))

    @retried
    def read_events(self, run_id: int, since_id: int = 0) -> list[RunEvent]:
        sql = "SELECT id, run_id, time, level, message FROM events WHERE run_id = ? AND id > ? ORDER BY id"
        return [RunEvent(*row) for row in self._execute(sql, (run_id, since_id))]

    # --- workers ----------------------------------------------------------------------------------------------------
    @retried
    def renew_worker(self, host: str, pid: int, *, slots: int) -> None:
        now = time.time()
        with self._write():
            sql = (
                "INSERT INTO workers (host, pid, slots, started_at, renewed_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (host, pid) DO UPDATE SET slots = excluded.slots, renewed_at = excluded.renewed_at"
            )
            self._execute(sql, (host, pid, slots, now, now))
            self._execute("DELETE FROM workers WHERE renewed_at < ?", (now - FORGET_WORKERS_AFTER_S,))

    @retried
    def live_workers(self, *, within_s: float) -> list[WorkerLease]:
        sql = "SELECT host, pid, slots, started_at, renewed_at FROM workers WHERE renewed_at >= ? ORDER BY host, pid"
        return [WorkerLease(*row) for row in self._execute(sql, (time.time() - within_s,))]

    @retried
    def end_worker(self, host: str, pid: int) -> None:
        with self._write():
            self._execute("DELETE FROM workers WHERE host = ? AND pid = ?", (host, pid))

    @retried
    def schema_version(self) -> int:
        return self._schema_version(self._conn())

    def _schema_version(self, conn: Any) -> int:
        """The version `conn`'s database records; StoreError when it is newer than this code knows."""
        raise NotImplementedError
