"""The suite's own PostgreSQL server (tests/local_postgres.py) starts wherever the checkout is: as root, the server
runs as another user, which must reach its binaries even when the checkout (and so the virtual environment holding
them) is in a folder only root may enter (`/root/…`, `mktemp -d`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import local_postgres
import psycopg
import pytest
from local_postgres import POSTGRES_BIN_PATH, LocalPostgres


def test_the_server_starts_from_binaries_installed_in_a_folder_only_root_may_enter(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = tmp_path_factory.mktemp("checkout")
    installed = POSTGRES_BIN_PATH.parents[1]  # …/site-packages/pgserver, with pgserver.libs beside it
    site = private / ".venv" / "site-packages"
    for folder in (installed, installed.parent / "pgserver.libs"):
        shutil.copytree(folder, site / folder.name, symlinks=True)
    private.chmod(0o700)  # as `mktemp -d` makes it
    monkeypatch.setattr(local_postgres, "POSTGRES_BIN_PATH", site / "pgserver" / "pginstall" / "bin")
    server = LocalPostgres(tmp_path_factory.mktemp("server"))
    try:
        with psycopg.connect(server.create_database(), autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
    assert Path(private).stat().st_mode & 0o777 == 0o700  # still private: nothing was opened up to reach it
