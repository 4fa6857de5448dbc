"""A real PostgreSQL server for the tests: ``initdb`` into a temporary folder, a free port.

Debian's package (``apt-get install postgresql``) puts the binaries in
/usr/lib/postgresql/<version>/bin. PostgreSQL refuses to run as root, so as root the server
runs as the ``postgres`` system user (``runuser``); the folder is made in /tmp, which that user
can reach (pytest's own tmp folders are private to root).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from service_process import free_port

BIN_GLOB = "/usr/lib/postgresql/*/bin"


def find_binaries() -> Path | None:
    """The newest PostgreSQL bin folder with initdb, or the one on PATH; None if absent."""
    found = sorted(Path("/").glob(BIN_GLOB.lstrip("/")), key=lambda p: int(p.parent.name))
    for folder in reversed(found):
        if (folder / "initdb").is_file():
            return folder
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """One server on 127.0.0.1; ``stop()`` and ``start()`` again keep its data (fault tests)."""

    def __init__(self, bin_dir: Path, durable: bool = False) -> None:
        self.bin = bin_dir
        # Tests stop the server cleanly: without fsync its checkpoints are quick on a busy
        # disk. The benchmark measures with fsync, as a real server runs.
        self.options = [] if durable else ["-c", "fsync=off", "-c", "full_page_writes=off"]
        self.root = Path(tempfile.mkdtemp(prefix="facefind-pg-"))
        self.data, self.sockets = self.root / "data", self.root / "sockets"
        self.sockets.mkdir()
        self.log = self.root / "server.log"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.root, self.user)
            shutil.chown(self.sockets, self.user)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None
        self._databases = 0

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresServer:
        cmd = [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
               "-k", str(self.sockets), "-c", "listen_addresses=127.0.0.1",
               "-c", "max_connections=200", *self.options]  # fmt: skip
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self._as_user(cmd), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited:\n{self.log.read_text()}")
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return self
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"postgres did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        """A fast shutdown (SIGINT): clients are disconnected, committed data stays."""
        if self.proc is not None and self.proc.poll() is None:
            # To the postmaster itself: runuser, our child, does not pass signals on.
            os.kill(int((self.data / "postmaster.pid").read_text().split()[0]), signal.SIGINT)
            self.proc.wait(60)
        self.proc = None

    def create_database(self, prefix: str = "gallery") -> str:
        """A new, empty database; its URL."""
        self._databases += 1
        name = f"{prefix}_{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _as_user(self, cmd: list[str]) -> list[str]:
        return ["runuser", "-u", self.user, "--", *cmd] if self.user else cmd

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            self._as_user([str(self.bin / tool), *args]), check=True, capture_output=True
        )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One server for the session, skipped with the reason where PostgreSQL is not installed."""
    bin_dir = find_binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql): no initdb found")
    server = PostgresServer(bin_dir).start()
    try:
        yield server
    finally:
        server.remove()
