"""SQLiteStore: the embedded run store, one SQLite file that many processes share.

The UI, the worker and every training subprocess open their own store on the same file. SQLite in WAL mode lets
readers poll while one writer appends; writers take the lock up front (`BEGIN IMMEDIATE`) and wait on the busy
timeout instead of failing. Status changes are compare-and-set, so two processes can never both claim a run.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Self

from bert_lab.runs.records import Group, MetricPoint, Point, Run, RunEvent
from bert_lab.runs.status import TERMINAL, Status
from bert_lab.runs.store import StoreError, UnknownGroupError, UnknownRunError

# Columns set when a run enters a status (named parameters :now and :error are always bound).
_ON_ENTER: dict[Status, str] = {
    Status.RUNNING: "started_at = COALESCE(started_at, :now), heartbeat_at = :now",
    Status.QUEUED: "resume_count = resume_count + 1, finished_at = NULL, error = NULL, pid = NULL, "
    "cancel_requested = 0",
    **{s: "finished_at = :now, pid = NULL, error = :error" for s in TERMINAL},
}

MIGRATIONS: list[str] = [
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL DEFAULT '', owner TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'queued', config TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL, started_at REAL, finished_at REAL, device TEXT, progress REAL NOT NULL DEFAULT 0,
        error TEXT, pid INTEGER, heartbeat_at REAL, group_id TEXT, cancel_requested INTEGER NOT NULL DEFAULT 0,
        summary TEXT NOT NULL DEFAULT '{}', resume_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX runs_status ON runs (status, id);
    CREATE TABLE metrics (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        step INTEGER NOT NULL, epoch REAL, elapsed_s REAL, name TEXT NOT NULL, value REAL
    );
    CREATE INDEX metrics_run ON metrics (run_id, id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        time REAL NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL
    );
    CREATE INDEX events_run ON events (run_id, id);
    """,
    """
    CREATE TABLE groups (
        id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', owner TEXT NOT NULL DEFAULT '', method TEXT NOT NULL,
        metric TEXT NOT NULL, spec TEXT NOT NULL DEFAULT '{}', created_at REAL NOT NULL,
        stopped INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX runs_group ON runs (group_id, id);
    """,
    """
    ALTER TABLE runs ADD COLUMN cache_key TEXT;
    ALTER TABLE runs ADD COLUMN cached_from INTEGER;
    CREATE INDEX runs_cache ON runs (cache_key, status);
    """,
]


def _float(value: float | None) -> float:
    """SQLite stores NaN as NULL; read it back as NaN."""
    return math.nan if value is None else float(value)


def _run_from_row(row: sqlite3.Row) -> Run:
    values = {field.name: row[field.name] for field in fields(Run)}  # columns added later are not Run fields yet
    values["config"] = json.loads(values["config"])
    values["summary"] = json.loads(values["summary"])
    values["cancel_requested"] = bool(values["cancel_requested"])
    values["status"] = Status(values["status"])
    return Run(**values)


def _group_from_row(row: sqlite3.Row) -> Group:
    values = {field.name: row[field.name] for field in fields(Group)}
    return Group(**{**values, "spec": json.loads(values["spec"]), "stopped": bool(values["stopped"])})


def _point_from_row(row: sqlite3.Row) -> MetricPoint:
    epoch, elapsed_s, value = _float(row["epoch"]), _float(row["elapsed_s"]), _float(row["value"])
    return MetricPoint(row["id"], row["run_id"], row["step"], epoch, elapsed_s, row["name"], value)


def _delete_run(conn: sqlite3.Connection, run_id: int) -> int | None:
    """Delete a run's row (its points and events cascade), unless runs were answered from it: then the oldest of
    those inherits its points and the others are answered from that one. Returns the heir's id, if any."""
    heir = conn.execute("SELECT MIN(id) FROM runs WHERE cached_from = ?", (run_id,)).fetchone()[0]
    if heir is not None:
        conn.execute("UPDATE metrics SET run_id = ? WHERE run_id = ?", (heir, run_id))
        conn.execute("UPDATE runs SET cached_from = ? WHERE cached_from = ? AND id != ?", (heir, run_id, heir))
        conn.execute("UPDATE runs SET cached_from = NULL WHERE id = ?", (heir,))
    conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
    return heir


def _marks(values: Iterable[Any]) -> tuple[str, list[Any]]:
    """Placeholders and parameters for an `IN (...)` clause."""
    params = list(values)
    return ", ".join("?" * len(params)), params


def _statements(script: str) -> Iterator[str]:
    """Split a SQL script into statements (executescript would commit the surrounding transaction)."""
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n\t;"):
                yield buffer
            buffer = ""


class SQLiteStore:
    """The `RunStore` in one SQLite file (by default `runs.sqlite` in the data folder)."""

    def __init__(self, path: Path | str) -> None:
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._migrate()

    @property
    def url(self) -> str:
        return f"sqlite:///{self._path}"

    # --- connection -------------------------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (a forked child opens its own rather than reuse its parent's)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self._path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the lock up front; nested use joins the outer transaction."""
        conn = self._conn()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _migrate(self) -> None:
        """Bring the schema to `len(MIGRATIONS)` in one transaction; refuse a database from newer code."""
        conn = self._conn()
        try:
            if self._schema_version(conn) == len(MIGRATIONS):
                return
            with self._write():
                version = self._schema_version(conn)
                for script in MIGRATIONS[version:]:
                    for statement in _statements(script):
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {len(MIGRATIONS):d}")
        except BaseException:
            self.close()
            raise

    def _schema_version(self, conn: sqlite3.Connection) -> int:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self._path} has schema version {version}, newer than this code knows ({len(MIGRATIONS)});"
                " upgrade bert_lab to open it"
            )
        return version

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

    # --- runs -------------------------------------------------------------------------------------------------------
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
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO runs (name, owner, status, config, created_at, group_id, cache_key)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, owner, Status.QUEUED, json.dumps(config), time.time(), group_id, cache_key),
            )
            run_id = int(cursor.lastrowid or 0)
            if not name:
                conn.execute("UPDATE runs SET name = ? WHERE id = ?", (f"run-{run_id}", run_id))
            return self.answer_from_cache(run_id) or self.get_run(run_id)

    def answer_from_cache(self, run_id: int) -> Run | None:
        with self._write() as conn:
            source = conn.execute(
                "SELECT s.* FROM runs r JOIN runs s ON s.cache_key = r.cache_key AND s.id != r.id"
                " WHERE r.id = ? AND r.status = ? AND s.status = ? AND s.cached_from IS NULL ORDER BY s.id LIMIT 1",
                (run_id, Status.QUEUED, Status.FINISHED),
            ).fetchone()
            if source is None:
                return None
            now = time.time()
            conn.execute(
                "UPDATE runs SET status = ?, started_at = ?, finished_at = ?, progress = 1, device = ?, summary = ?,"
                " cached_from = ? WHERE id = ? AND status = ?",
                (Status.FINISHED, now, now, source["device"], source["summary"], source["id"], run_id, Status.QUEUED),
            )
            return self.get_run(run_id)

    def get_run(self, run_id: int) -> Run:
        row = self._conn().execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UnknownRunError(run_id)
        return _run_from_row(row)

    def list_runs(
        self,
        *,
        statuses: Iterable[Status] | None = None,
        ids: Iterable[int] | None = None,
        owner: str | None = None,
        group_id: str | None = None,
    ) -> list[Run]:
        where: list[str] = ["1"]
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
        return [_run_from_row(row) for row in self._conn().execute(sql, params)]

    def last_started_by_owner(self) -> dict[str, float]:
        sql = "SELECT owner, MAX(started_at) FROM runs WHERE started_at IS NOT NULL GROUP BY owner"
        return {owner: started for owner, started in self._conn().execute(sql)}

    def claim_run(self, run_id: int, *, pid: int, device: str | None = None) -> Run | None:
        now = time.time()
        with self._write() as conn:
            claimed = conn.execute(
                "UPDATE runs SET status = ?, started_at = COALESCE(started_at, ?), pid = ?, heartbeat_at = ?,"
                " device = ?, cancel_requested = 0, error = NULL WHERE id = ? AND status = ?",
                (Status.RUNNING, now, pid, now, device, run_id, Status.QUEUED),
            ).rowcount
            run = self.get_run(run_id)  # raises UnknownRunError for an unknown id
            return run if claimed else None

    def set_status(self, run_id: int, status: Status, *, error: str | None = None) -> Run:
        status = Status(status)
        sources = {f"from{i}": s for i, s in enumerate(s for s in Status if s.can_become(status))}
        marks = ", ".join(f":{key}" for key in sources)
        sql = f"UPDATE runs SET status = :to, {_ON_ENTER[status]} WHERE id = :id AND status IN ({marks})"
        with self._write() as conn:
            params = {"to": status, "id": run_id, "now": time.time(), "error": error, **sources}
            if conn.execute(sql, params).rowcount == 0:
                current = self.get_run(run_id).status
                raise StoreError(f"run {run_id}: cannot change status from {current} to {status}")
            return self.get_run(run_id)

    def update_run(
        self,
        run_id: int,
        *,
        progress: float | None = None,
        device: str | None = None,
        pid: int | None = None,
        summary: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> Run:
        """Set the given fields; `summary` is merged into the stored summary."""
        with self._write() as conn:
            run = self.get_run(run_id)
            changes: dict[str, Any] = {"progress": progress, "device": device, "pid": pid, "name": name}
            changes = {k: v for k, v in changes.items() if v is not None}
            if summary is not None:
                changes["summary"] = json.dumps({**run.summary, **summary})
            if changes:
                assignments = ", ".join(f"{column} = ?" for column in changes)
                conn.execute(f"UPDATE runs SET {assignments} WHERE id = ?", [*changes.values(), run_id])
            return self.get_run(run_id)

    def heartbeat(self, run_id: int, *, progress: float | None = None) -> None:
        """Record that the run's process is alive (and optionally its progress, 0..1)."""
        with self._write() as conn:
            sql = "UPDATE runs SET heartbeat_at = ?, progress = COALESCE(?, progress) WHERE id = ?"
            if conn.execute(sql, (time.time(), progress, run_id)).rowcount == 0:
                raise UnknownRunError(run_id)

    def request_cancel(self, run_id: int) -> Run:
        """Cancel a queued run now; ask a running one to stop (its process sees `cancel_requested`)."""
        with self._write() as conn:
            run = self.get_run(run_id)
            if run.status == Status.QUEUED:
                return self.set_status(run_id, Status.CANCELLED)
            if run.status != Status.RUNNING:
                raise StoreError(f"run {run_id} is {run.status}; only queued or running runs can be cancelled")
            conn.execute("UPDATE runs SET cancel_requested = 1 WHERE id = ?", (run_id,))
            return self.get_run(run_id)

    def delete_run(self, run_id: int) -> int | None:
        with self._write() as conn:
            if self.get_run(run_id).status == Status.RUNNING:
                raise StoreError(f"run {run_id} is running; cancel it before deleting it")
            return _delete_run(conn, run_id)

    # --- groups -----------------------------------------------------------------------------------------------------
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
        with self._write() as conn:
            conn.execute(
                "INSERT INTO groups (id, name, owner, method, metric, spec, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (group_id, name, owner, method, metric, json.dumps(spec), time.time()),
            )
            for config, run_name, cache_key in runs:
                self.create_run(config, name=run_name, owner=owner, group_id=group_id, cache_key=cache_key)
            return self.get_group(group_id)

    def get_group(self, group_id: str) -> Group:
        row = self._conn().execute("SELECT * FROM groups WHERE id = ?", (group_id,)).fetchone()
        if row is None:
            raise UnknownGroupError(group_id)
        return _group_from_row(row)

    def list_groups(self, *, owner: str | None = None) -> list[Group]:
        sql, params = "SELECT * FROM groups", []
        if owner is not None:
            sql, params = sql + " WHERE owner = ?", [owner]
        return [_group_from_row(row) for row in self._conn().execute(sql + " ORDER BY created_at DESC", params)]

    def set_group_stopped(self, group_id: str, stopped: bool) -> Group:
        with self._write() as conn:
            conn.execute("UPDATE groups SET stopped = ? WHERE id = ?", (int(stopped), group_id))
            return self.get_group(group_id)

    def delete_group(self, group_id: str) -> dict[int, int]:
        with self._write() as conn:
            self.get_group(group_id)
            sql = "SELECT id FROM runs WHERE group_id = ? AND status = ?"
            running = [row[0] for row in conn.execute(sql, (group_id, Status.RUNNING))]
            if running:
                raise StoreError(f"group {group_id}: run(s) {', '.join(map(str, running))} running; cancel them first")
            ids = [row[0] for row in conn.execute("SELECT id FROM runs WHERE group_id = ? ORDER BY id", (group_id,))]
            heirs = {run_id: _delete_run(conn, run_id) for run_id in ids}
            conn.execute("DELETE FROM groups WHERE id = ?", (group_id,))
            return {run_id: heir for run_id, heir in heirs.items() if heir is not None}

    # --- metrics and events -----------------------------------------------------------------------------------------
    def add_metrics(self, run_id: int, points: Iterable[Point]) -> None:
        """Append (step, epoch, elapsed_s, name, value) points in one transaction; NaN is kept (as NULL)."""
        rows = [(run_id, step, epoch, elapsed_s, name, value) for step, epoch, elapsed_s, name, value in points]
        if not rows:
            return
        with self._write() as conn:
            sql = "INSERT INTO metrics (run_id, step, epoch, elapsed_s, name, value) VALUES (?, ?, ?, ?, ?, ?)"
            conn.executemany(sql, rows)

    def delete_metrics_after(self, run_id: int, step: int) -> int:
        """Drop points past `step` (a resumed run rewinds to its checkpoint and writes them again); returns how many."""
        with self._write() as conn:
            return conn.execute("DELETE FROM metrics WHERE run_id = ? AND step > ?", (run_id, step)).rowcount

    def read_metrics(
        self, run_ids: int | Iterable[int], *, since_id: int = 0, names: Iterable[str] | None = None
    ) -> list[MetricPoint]:
        """Points with id > `since_id`, in insertion order: poll with the last id seen to get only new points."""
        readers = self._points_of([run_ids] if isinstance(run_ids, int) else run_ids)
        marks, params = _marks(readers)
        sql = f"SELECT * FROM metrics WHERE run_id IN ({marks}) AND id > ?"
        params.append(since_id)
        if names is not None:
            name_marks, name_params = _marks(names)
            sql += f" AND name IN ({name_marks})"
            params += name_params
        rows = self._conn().execute(sql + " ORDER BY id", params)
        return [
            replace(point, run_id=reader) for point in map(_point_from_row, rows) for reader in readers[point.run_id]
        ]

    def latest_metrics(self, run_ids: Iterable[int]) -> dict[int, dict[str, float]]:
        """For each run, the most recent value of each metric name (runs without points map to {})."""
        wanted = list(run_ids)
        readers = self._points_of(wanted)
        marks, params = _marks(readers)
        latest: dict[int, dict[str, float]] = {run_id: {} for run_id in wanted}
        sql = (
            "SELECT m.run_id, m.name, m.value FROM metrics m JOIN (SELECT MAX(id) AS id FROM metrics"
            f" WHERE run_id IN ({marks}) GROUP BY run_id, name) last ON m.id = last.id"
        )
        for owner_id, name, value in self._conn().execute(sql, params):
            for reader in readers[owner_id]:
                latest[reader][name] = _float(value)
        return latest

    def _points_of(self, run_ids: Iterable[int]) -> dict[int, list[int]]:
        """The runs whose points to read → the asked-for runs that read them (a cached run reads its source's)."""
        ids = list(run_ids)
        marks, params = _marks(ids)
        sources = dict(
            self._conn().execute(f"SELECT id, cached_from FROM runs WHERE id IN ({marks})", params).fetchall()
        )
        readers: dict[int, list[int]] = {}
        for run_id in dict.fromkeys(ids):
            readers.setdefault(sources.get(run_id) or run_id, []).append(run_id)
        return readers

    def add_event(self, run_id: int, message: str, level: str = "info") -> None:
        with self._write() as conn:
            sql = "INSERT INTO events (run_id, time, level, message) VALUES (?, ?, ?, ?)"
            conn.execute(sql, (run_id, time.time(), level, message))

    def read_events(self, run_id: int, since_id: int = 0) -> list[RunEvent]:
        sql = "SELECT id, run_id, time, level, message FROM events WHERE run_id = ? AND id > ? ORDER BY id"
        return [RunEvent(*row) for row in self._conn().execute(sql, (run_id, since_id))]
