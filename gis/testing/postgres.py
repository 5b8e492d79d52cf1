"""A throw-away PostgreSQL 15 + PostGIS cluster under a temp folder, for the tests and benchmarks (nothing is mocked).

``initdb`` a new cluster (trust authentication, user ``postgres``), start it
with ``pg_ctl`` on a Unix socket in the same folder and on a free port of
127.0.0.1, make a template database with the ``postgis`` extension, and hand
out one fresh database per test. As root, the server runs as the ``postgres``
OS user (``runuser -u postgres --``); otherwise as the current user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path(os.environ.get("LUTECE_PG_BIN", "/usr/lib/postgresql/15/bin"))
POSTGIS_CONTROL = Path("/usr/share/postgresql/15/extension/postgis.control")
TEMPLATE = "lutece_template"


def missing_binaries() -> str | None:
    """What is missing to run a PostGIS cluster here, or ``None``."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).is_file():
            return f"{PG_BIN / tool} not found"
    if not POSTGIS_CONTROL.is_file():
        return f"{POSTGIS_CONTROL} not found (Debian package postgresql-15-postgis-3)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresCluster:
    """One throw-away cluster in ``folder``."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder or tempfile.mkdtemp(prefix="lutece-postgis-"))
        self.data = self.folder / "data"
        self.sockets = self.folder / "sockets"
        self.log = self.folder / "server.log"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.started = False

    def _run(self, *args: str) -> None:
        command = [str(a) for a in args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.is_file() else ""
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}\n{log}")

    def start(self) -> None:
        self.sockets.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            shutil.chown(self.folder, "postgres", "postgres")
            shutil.chown(self.sockets, "postgres", "postgres")
        self._run(PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        options = (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=60 "
                   f"-c shared_buffers=64MB")
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "60", "start")
        self.started = True
        self.admin(f"CREATE DATABASE {TEMPLATE}")
        self.admin("CREATE EXTENSION postgis", database=TEMPLATE)
        self.admin(f"ALTER DATABASE {TEMPLATE} WITH is_template true")

    def stop(self) -> None:
        if self.started:
            self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
            self.started = False
        shutil.rmtree(self.folder, ignore_errors=True)

    def dsn(self, database: str) -> str:
        return f"host={self.sockets} port={self.port} dbname={database} user=postgres"

    def tcp_dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={database} user=postgres"

    def admin(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.dsn(database), autocommit=True) as con:
            con.execute(statement)

    def create_database(self, name: str) -> None:
        self.admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")

    def drop_database(self, name: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
