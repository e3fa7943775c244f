"""Opening a run store from its URL: each backend registered under its URL schemes (as MLflow's store registry is),
so the store's interface (`store.py`) knows none of them and a new backend is one entry in `BACKENDS`.

    sqlite:///relative/path.sqlite   sqlite:////absolute/path.sqlite        the embedded default (`sqlite.py`)
    postgresql://user[:password]@host[:port]/database                      a lab on several machines (`postgres.py`)

A backend's module is imported when a URL of its scheme is opened: a lab on SQLite never loads psycopg.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from bert_lab.core.layout import DataFolder
from bert_lab.runs.store import PATIENCE_S, POSTGRES_SCHEMES, STORE_ENV, RunStore, StoreError, WaitCallback, redacted

Opener = Callable[[str, float, WaitCallback | None], RunStore]  # (URL, patience_s, on_wait) -> the open store


def _sqlite(url: str, patience_s: float, on_wait: WaitCallback | None) -> RunStore:
    from bert_lab.runs.sqlite import SQLiteStore

    rest = url.partition("://")[2]
    path = rest[1:] if rest.startswith("/") else ""  # sqlite:///runs.sqlite -> runs.sqlite; sqlite:////d/x -> /d/x
    if not path:
        raise StoreError(f"unsupported store URL {url!r}: a SQLite URL names a file, sqlite:///path/to/runs.sqlite")
    return SQLiteStore(path, patience_s=patience_s, on_wait=on_wait)


def _postgres(url: str, patience_s: float, on_wait: WaitCallback | None) -> RunStore:
    from bert_lab.runs.postgres import PostgresStore

    return PostgresStore(url, patience_s=patience_s, on_wait=on_wait)


BACKENDS: dict[str, Opener] = {"sqlite": _sqlite, **dict.fromkeys(POSTGRES_SCHEMES, _postgres)}


def store_url(data: DataFolder) -> str:
    """`$BERT_LAB_STORE`, else the SQLite file in the data folder."""
    return os.environ.get(STORE_ENV) or f"sqlite:///{data.sqlite}"


def open_store(url: str, *, patience_s: float = PATIENCE_S, on_wait: WaitCallback | None = None) -> RunStore:
    """The store at `url` (see the module's docstring; a PostgreSQL password can stay out of the URL: `PGPASSWORD`
    or `~/.pgpass`). Each call retries a lost connection or a locked database for up to `patience_s` seconds
    (telling `on_wait` before each wait), then raises StoreUnavailable: pages wait a few seconds, workers and runs
    `LONG_PATIENCE_S`. Opening it (its migrations) is such a call too."""
    scheme, sep, rest = url.partition("://")
    opener = BACKENDS.get(scheme) if sep and rest else None
    if opener is None:
        raise StoreError(
            f"unsupported store URL {redacted(url)!r}: use sqlite:///path/to/runs.sqlite or"
            " postgresql://user@host:port/database"
        )
    return opener(url, patience_s, on_wait)
