"""A real PostgreSQL server for tests and benches, from the PyPI package `pgserver` (its bundled 16.x binaries), in a
temporary folder, listening on a loopback TCP port only: the way a worker on another machine reaches the database.

`pgserver.get_server` itself would listen on a Unix socket; here its `initdb` and `pg_ctl` start the server on
127.0.0.1 with no socket file, so every test connects over TCP. PostgreSQL refuses to run as root: as root, the
server runs as the system user `pgserver` (created on first use, as pgserver does), from a copy of the binaries in
the server's own folder: a checkout under a folder only root may enter (`/root/…`, `mktemp -d`) keeps the installed
ones out of that user's reach.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import psycopg
from pgserver._commands import POSTGRES_BIN_PATH

SYSTEM_USER = "pgserver"  # the account the server runs as when the tests run as root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_binaries(folder: Path) -> Path:
    """Copy pgserver's binaries into `folder`, with the shared libraries they find by a relative path
    (`$ORIGIN/../../../pgserver.libs`); returns the copy's `bin`."""
    package = POSTGRES_BIN_PATH.parents[1]  # …/site-packages/pgserver
    installed = package.parent / "pgserver.libs"
    shutil.copytree(installed, folder / installed.name, symlinks=True)
    return shutil.copytree(package / "pginstall", folder / "pgserver" / "pginstall", symlinks=True) / "bin"


class LocalPostgres:
    """A PostgreSQL server on 127.0.0.1:`port` with its data in `folder`; `stop()` ends it."""

    def __init__(self, folder: Path) -> None:
        self.data = folder / "pgdata"
        self.log = folder / "postgres.log"
        self.user: str | None = None
        self.bin = POSTGRES_BIN_PATH
        self.data.mkdir(parents=True)
        if os.geteuid() == 0:
            from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

            self.user = SYSTEM_USER
            ensure_user_exists(SYSTEM_USER)
            ensure_prefix_permissions(self.data)  # the server's user may pass through the folders above its own
            self.bin = copy_binaries(folder)
            self.log.touch()
            for path in (self.data, self.log):
                shutil.chown(path, SYSTEM_USER)
            shutil.chown(folder, SYSTEM_USER)
        self._run("initdb", "--auth=trust", "--encoding=utf8", "-U", "postgres")
        self.port = free_port()
        self.start()

    def _run(self, program: str, *args: str) -> None:
        """A PostgreSQL program on this server's data folder, as the server's user; its output goes to the log."""
        with open(self.log, "a") as log:
            subprocess.run(
                [str(self.bin / program), "-D", str(self.data), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                user=self.user,
                check=True,
                timeout=120,
            )

    def start(self) -> None:
        """Start (or start again) on the same port, waiting until it accepts connections."""
        options = f"-h 127.0.0.1 -p {self.port} -k ''"  # loopback TCP only; no Unix socket
        self._run("pg_ctl", "-w", "-o", options, "-l", str(self.log), "start")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """The URL of a new, empty database (a fresh name unless given)."""
        name = name or f"lab_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        """Stop now (fast shutdown: open connections are ended, as an outage would)."""
        self._run("pg_ctl", "-w", "-m", "fast", "stop")
