"""SQLiteStore: the embedded run store, one SQLite file that many processes share.

The UI, the worker and every training subprocess open their own store on the same file. SQLite in WAL mode lets
readers poll while one writer appends; writers take the lock up front (`BEGIN IMMEDIATE`) and wait on the busy
timeout instead of failing, so a read-then-write needs no row lock. The store's logic is `sql.SQLStore`'s.

A lock held past the busy timeout (or one SQLite reports at once, as when two processes switch a fresh file to WAL
together) is "database is locked": a transient error, so the whole call, opening the store included, is retried
(`runs/retry.py`) until the opener's patience is spent.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bert_lab.runs.sql import SQLStore
from bert_lab.runs.store import PATIENCE_S, StoreError, WaitCallback

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
    """
    ALTER TABLE runs ADD COLUMN host TEXT;
    """,
    """
    CREATE TABLE workers (
        host TEXT NOT NULL, pid INTEGER NOT NULL, slots INTEGER NOT NULL, started_at REAL NOT NULL,
        renewed_at REAL NOT NULL, PRIMARY KEY (host, pid)
    );
    """,
    """
    CREATE INDEX metrics_run_name ON metrics (run_id, name, id);
    """,
    """
    ALTER TABLE runs ADD COLUMN metrics_writer TEXT;
    ALTER TABLE runs ADD COLUMN metrics_batch INTEGER NOT NULL DEFAULT 0;
    """,
    """
    ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT '';
    """,
    """
    CREATE TABLE predictions (
        group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE, owner TEXT NOT NULL, arm TEXT NOT NULL,
        low REAL, high REAL, made_at REAL NOT NULL, PRIMARY KEY (group_id, owner)
    );
    """,
]
BUSY_TIMEOUT_S = 30.0  # SQLite's own wait for a lock, within one attempt (at most the opener's patience)
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _statements(script: str) -> Iterator[str]:
    """Split a SQL script into statements (executescript would commit the surrounding transaction)."""
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n\t;"):
                yield buffer
            buffer = ""


class SQLiteStore(SQLStore):
    """The `RunStore` in one SQLite file (by default `runs.sqlite` in the data folder)."""

    def __init__(
        self, path: Path | str, *, patience_s: float = PATIENCE_S, on_wait: WaitCallback | None = None
    ) -> None:
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(patience_s=patience_s, on_wait=on_wait)

    @property
    def url(self) -> str:
        return f"sqlite:///{self._path}"

    # --- connection -------------------------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        timeout_s = max(0.05, min(BUSY_TIMEOUT_S, self.patience_s))
        conn = sqlite3.connect(self._path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000):d}")
        conn.execute("PRAGMA journal_mode = WAL")  # two fresh openers at once: one may be "locked" at once (retried)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
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

    def _transient(self, exc: BaseException) -> bool:
        """ "database is locked" (or "table is locked"): another connection holds the lock; it will let go."""
        if not isinstance(exc, sqlite3.OperationalError):
            return False
        code = getattr(exc, "sqlite_errorcode", None)
        return (code & 0xFF) in _BUSY if code is not None else "is locked" in str(exc)

    def _migrate(self) -> None:
        """Bring the schema to `len(MIGRATIONS)` in one transaction; refuse a database from newer code."""
        conn = self._conn()
        if self._schema_version(conn) == len(MIGRATIONS):
            return
        with self._write():
            version = self._schema_version(conn)
            for script in MIGRATIONS[version:]:
                for statement in _statements(script):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {len(MIGRATIONS):d}")

    def _schema_version(self, conn: sqlite3.Connection) -> int:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self._path} has schema version {version}, newer than this code knows ({len(MIGRATIONS)});"
                " upgrade bert_lab to open it"
            )
        return version

    def _insert(self, sql: str, params: Sequence[Any]) -> int:
        return int(self._execute(sql, params).lastrowid or 0)
