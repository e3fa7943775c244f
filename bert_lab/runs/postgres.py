"""PostgresStore: the run store in a PostgreSQL database, the one place a lab on several machines shares.

Chosen by a `postgresql://user@host:port/db` URL (`--store`, or `$BERT_LAB_STORE`). Every process (the app, a worker,
a run) opens its own connection per thread; reads run in autocommit, writes in a transaction at READ COMMITTED.
Status changes are compare-and-set (`UPDATE … WHERE status IN …`; a claim skips a row another claim holds: `FOR
UPDATE SKIP LOCKED`) and a read-then-write holds the run's row (`SELECT … FOR UPDATE`). The logic is `sql.SQLStore`'s.

Schema changes are this module's own numbered scripts (MIGRATIONS), applied in one transaction under an advisory
lock (two machines starting at once migrate once) and recorded in `schema_version`. Not Alembic: it would bring
SQLAlchemy for a handful of tables whose two dialects differ only in their DDL, and SQLite keeps its own scripts too.

A lost connection (the server restarting, `AdminShutdown`, a broken socket, a refused connect) is transient: the
call is retried whole on a new connection (`runs/retry.py`); TCP keepalives notice a server that vanished without a
word. The URL's password is never shown: messages carry `redacted(url)`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from bert_lab.runs.sql import SQLStore
from bert_lab.runs.store import PATIENCE_S, StoreError, WaitCallback, masked, redacted

MIGRATIONS: list[str] = [
    """
    CREATE TABLE runs (
        id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL DEFAULT '', owner TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'queued', config TEXT NOT NULL DEFAULT '{}', created_at DOUBLE PRECISION NOT NULL,
        started_at DOUBLE PRECISION, finished_at DOUBLE PRECISION, device TEXT,
        progress DOUBLE PRECISION NOT NULL DEFAULT 0, error TEXT, pid INTEGER, heartbeat_at DOUBLE PRECISION,
        group_id TEXT, cancel_requested INTEGER NOT NULL DEFAULT 0, summary TEXT NOT NULL DEFAULT '{}',
        resume_count INTEGER NOT NULL DEFAULT 0, cache_key TEXT, cached_from BIGINT
    );
    CREATE INDEX runs_status ON runs (status, id);
    CREATE INDEX runs_group ON runs (group_id, id);
    CREATE INDEX runs_cache ON runs (cache_key, status);
    CREATE TABLE metrics (
        id BIGSERIAL PRIMARY KEY, run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        step INTEGER NOT NULL, epoch DOUBLE PRECISION, elapsed_s DOUBLE PRECISION, name TEXT NOT NULL,
        value DOUBLE PRECISION
    );
    CREATE INDEX metrics_run ON metrics (run_id, id);
    CREATE TABLE events (
        id BIGSERIAL PRIMARY KEY, run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        time DOUBLE PRECISION NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL
    );
    CREATE INDEX events_run ON events (run_id, id);
    CREATE TABLE groups (
        id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', owner TEXT NOT NULL DEFAULT '', method TEXT NOT NULL,
        metric TEXT NOT NULL, spec TEXT NOT NULL DEFAULT '{}', created_at DOUBLE PRECISION NOT NULL,
        stopped INTEGER NOT NULL DEFAULT 0
    )
    """,
    """
    ALTER TABLE runs ADD COLUMN host TEXT
    """,
    """
    CREATE TABLE workers (
        host TEXT NOT NULL, pid INTEGER NOT NULL, slots INTEGER NOT NULL, started_at DOUBLE PRECISION NOT NULL,
        renewed_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (host, pid)
    )
    """,
    """
    CREATE INDEX metrics_run_name ON metrics (run_id, name, id)
    """,
    """
    ALTER TABLE runs ADD COLUMN metrics_writer TEXT;
    ALTER TABLE runs ADD COLUMN metrics_batch INTEGER NOT NULL DEFAULT 0
    """,
    """
    ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT ''
    """,
    """
    CREATE TABLE predictions (
        group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE, owner TEXT NOT NULL, arm TEXT NOT NULL,
        low DOUBLE PRECISION, high DOUBLE PRECISION, made_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (group_id, owner)
    )
    """,
]
# A transaction that lost to another (serialization failure, deadlock) is rolled back whole: it may simply go again.
_RETRYABLE_STATES = {"40001", "40P01"}
# The server answered and refused who we are (a restarting server says "starting up" or "shutting down" instead): no
# retry cures a wrong password or a database that is not there, so it is said at once.
_REFUSED = re.compile(r"does not exist|password authentication failed|no pg_hba\.conf entry")
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
MIGRATION_LOCK = 0x6265_7274  # the advisory lock that serialises migrations ("bert")
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class _Row(tuple):
    """A row readable by position and by column name, as sqlite3.Row is."""

    names: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        return super().__getitem__(self.names[key] if isinstance(key, str) else key)


def _rows(cursor: psycopg.Cursor[Any]) -> Callable[[Sequence[Any]], _Row]:
    names = {column.name: i for i, column in enumerate(cursor.description or [])}

    def make(values: Sequence[Any]) -> _Row:
        row = _Row(values)
        row.names = names
        return row

    return make


class PostgresStore(SQLStore):
    """The `RunStore` in a PostgreSQL database."""

    def __init__(self, url: str, *, patience_s: float = PATIENCE_S, on_wait: WaitCallback | None = None) -> None:
        self._url = url
        super().__init__(patience_s=patience_s, on_wait=on_wait)

    @property
    def url(self) -> str:
        return self._url

    # --- connection -------------------------------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self._url, autocommit=True, row_factory=_rows, connect_timeout=10, **_KEEPALIVES)
        except psycopg.OperationalError as exc:
            if _REFUSED.search(str(exc)):
                text = f"the PostgreSQL store at {redacted(self._url)} refused this lab: {exc}"
                raise StoreError(masked(text, self._url)) from exc
            raise

    def _transient(self, exc: BaseException) -> bool:
        """A connection lost, refused or closed, the server shutting down, or a transaction that lost a race."""
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return True
        return isinstance(exc, psycopg.Error) and exc.sqlstate in _RETRYABLE_STATES

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        """A transaction; nested use joins the outer one."""
        conn = self._conn()
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            yield conn
            return
        with conn.transaction():
            yield conn

    def _sql(self, sql: str) -> str:
        return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%").replace("?", "%s"))

    def _insert(self, sql: str, params: Sequence[Any]) -> int:
        return int(self._execute(sql + " RETURNING id", params).fetchone()[0])

    # Workers on several machines claim at once: one that finds the row taken by another's claim moves on to its
    # next candidate instead of waiting for it (the worker's fair order decides the candidates).
    _CLAIMABLE = "id = (SELECT id FROM runs WHERE id = ? AND status = ? FOR UPDATE SKIP LOCKED)"

    def _lock_run(self, run_id: int) -> None:
        self._execute("SELECT id FROM runs WHERE id = ? FOR UPDATE", (run_id,))

    def _migrate(self) -> None:
        """Bring the schema to `len(MIGRATIONS)` in one transaction; refuse a database from newer code."""
        with self._write() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            for script in MIGRATIONS[self._schema_version(conn) :]:
                for statement in filter(str.strip, script.split(";")):
                    conn.execute(statement)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (len(MIGRATIONS),))

    def _schema_version(self, conn: psycopg.Connection[Any]) -> int:
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        version = 0 if row is None else int(row[0])
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{redacted(self._url)} has schema version {version}, newer than this code knows"
                f" ({len(MIGRATIONS)}); upgrade bert_lab to open it"
            )
        return version
