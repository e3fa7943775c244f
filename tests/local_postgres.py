"""A real PostgreSQL server for tests and benches, from the PyPI package `pgserver` (its bundled 16.x binaries), in a
temporary folder, listening on a loopback TCP port only: the way a worker on another machine reaches the database.

`pgserver.get_server` itself would listen on a Unix socket; here its `initdb` and `pg_ctl` start the server on
127.0.0.1 with no socket file, so every test connects over TCP. PostgreSQL refuses to run as root: as root, the
server runs as the system user `pgserver` (created on first use, as pgserver does).
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from pathlib import Path

import pgserver
import psycopg

SYSTEM_USER = "pgserver"  # the account the server runs as when the tests run as root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPostgres:
    """A PostgreSQL server on 127.0.0.1:`port` with its data in `folder`; `stop()` ends it."""

    def __init__(self, folder: Path) -> None:
        self.data = folder / "pgdata"
        self.log = folder / "postgres.log"
        self.user = None
        self.data.mkdir(parents=True)
        if os.geteuid() == 0:
            from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

            self.user = SYSTEM_USER
            ensure_user_exists(SYSTEM_USER)
            ensure_prefix_permissions(self.data)
            shutil.chown(self.data, SYSTEM_USER)
            shutil.chown(folder, SYSTEM_USER)
        pgserver.initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=self.data, user=self.user)
        self.port = free_port()
        options = f"-h 127.0.0.1 -p {self.port} -k ''"  # loopback TCP only; no Unix socket
        pgserver.pg_ctl(
            ["-w", "-o", options, "-l", str(self.log), "start"], pgdata=self.data, user=self.user, timeout=60
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """The URL of a new, empty database (a fresh name unless given)."""
        name = name or f"lab_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data, user=self.user, timeout=60)
