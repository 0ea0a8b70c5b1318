"""A real PostgreSQL server for tests and benchmarks: Debian's package, started in a
temporary directory on 127.0.0.1 and a free port, one per pytest(-xdist) worker.

Facts this relies on (PostgreSQL 15, Debian): the server refuses to run as root, so as
root initdb and postgres run as the `postgres` user (`runuser`) in a directory that user
owns; the unix socket lives in that directory too (socket paths must stay under ~100
characters, hence a short /tmp name, not pytest's deep tmp_path); authentication is
`trust` (a throwaway server on loopback; tests that need a password make their own role).

No orphan servers: postgres runs under a small guard process (this file run as a
script) whose stdin is a pipe from the test process. The guard stops the server (fast
shutdown, then kill) and removes the directory when that pipe closes: at the fixture's
teardown, and equally when the test process dies, even by SIGKILL. The guard runs in its
own session, so a Ctrl-C in the terminal reaches pytest (which tears down) and not the
server.

Each test gets a fresh database (CREATE DATABASE from a template the Store migrated once,
about 50 ms; dropped at teardown).
"""
from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest


def _pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory (OMNIDESK_PG_BIN overrides)."""
    if os.environ.get("OMNIDESK_PG_BIN"):
        return Path(os.environ["OMNIDESK_PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


PG_BIN = _pg_bin()
SUPERUSER = "postgres"
TEMPLATE = "omnidesk_template"

# Durability is worthless for a throwaway server: these make writes several times faster.
FAST_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_connections": "200",  # every store opens a pool; parallel tests and sync processes add up
    "log_min_messages": "warning",
}


def installed() -> bool:
    return PG_BIN is not None and (PG_BIN / "postgres").exists() and (PG_BIN / "initdb").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user() -> list[str]:
    """The prefix that runs a command as the user the server runs as."""
    return ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []


class PostgresServer:
    """One throwaway PostgreSQL server. `start()`, then `url(db)`, `create_database()`,
    `sql()`; `stop()` (or the death of this process) stops it and removes its files.

    Raises RuntimeError when the server cannot be set up or does not become ready."""

    def __init__(self, *, settings: dict[str, str] | None = None):
        if not installed():
            raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql)")
        self.root = Path(tempfile.mkdtemp(prefix="opg", dir="/tmp"))  # short: socket path < 100 chars
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.settings = {**FAST_SETTINGS, **(settings or {})}
        self.guard: subprocess.Popen | None = None
        self._names = itertools.count(1)
        self._conn = None  # the kept admin connection (_admin)
        if os.geteuid() == 0:
            user = pwd.getpwnam(SUPERUSER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        os.chmod(self.root, 0o700)

    # -- life cycle ---------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> "PostgresServer":
        run = subprocess.run(
            [*_as_server_user(), str(PG_BIN / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
             "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"],
            capture_output=True, text=True)
        if run.returncode:
            shutil.rmtree(self.root, ignore_errors=True)
            raise RuntimeError(f"initdb failed: {run.stderr.strip()[-2000:]}")
        options = [f"-c{key}={value}" for key, value in self.settings.items()]
        command = [*_as_server_user(), str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
                   "-k", str(self.root), *options]
        self.guard = subprocess.Popen([sys.executable, __file__, str(self.root), str(self.log), *command],
                                      stdin=subprocess.PIPE, start_new_session=True)
        self._wait_ready(timeout)
        self.sql(f"CREATE DATABASE {TEMPLATE} TEMPLATE template0")
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.guard is not None and self.guard.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited while starting:\n{self.log_tail()}")
            ready = subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", str(self.root), "-p", str(self.port),
                                    "-U", SUPERUSER, "-d", "postgres", "-t", "1"])
            if ready.returncode == 0:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"PostgreSQL not ready after {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.05)  # poll interval of the readiness check

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the server and remove its directory (the guard does both)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        guard, self.guard = self.guard, None
        if guard is None:
            shutil.rmtree(self.root, ignore_errors=True)
            return
        if guard.stdin:
            guard.stdin.close()
        try:
            guard.wait(timeout)
        except subprocess.TimeoutExpired:
            guard.kill()
            guard.wait()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"

    # -- databases ----------------------------------------------------------------------
    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run SQL as the superuser through psql; its output (unaligned, tuples only).
        Raises RuntimeError with psql's message on an error."""
        run = subprocess.run(
            [str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.root),
             "-p", str(self.port), "-U", SUPERUSER, "-d", database, "-c", statement],
            capture_output=True, text=True)
        if run.returncode:
            raise RuntimeError(f"psql: {run.stderr.strip()}")
        return run.stdout

    def create_database(self, name: str | None = None, template: str = TEMPLATE) -> str:
        """A new database copied from `template` (the migrated one by default); its name.
        FILE_COPY: without fsync, copying the template's files is ~2x faster than WAL_LOG."""
        name = name or f"t{os.getpid()}_{next(self._names)}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        return name

    def drop_database(self, name: str) -> None:
        """Drop `name`, ending any connection still open to it (a store a test left open)."""
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _admin(self, statement: str) -> None:
        """A statement on one kept connection (psycopg; psql where it is missing): a test's
        database costs no process start."""
        try:
            import psycopg
        except ImportError:
            self.sql(statement)
            return
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.url("postgres"), autocommit=True)
        self._conn.execute(statement)

    def refresh_template(self, prepare) -> None:
        """Recreate the template database and run `prepare(url)` on it (e.g. migrate it), so
        every later database starts from that state. Nothing may stay connected to it."""
        self.drop_database(TEMPLATE)
        self.sql(f"CREATE DATABASE {TEMPLATE} TEMPLATE template0")
        prepare(self.url(TEMPLATE))
        self.sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{TEMPLATE}'")


# -- pytest fixtures -------------------------------------------------------------------------
def require_postgres() -> None:
    """Skip a test when PostgreSQL is not installed, except in CI, where that is a failure."""
    if installed():
        return
    if os.environ.get("CI") or os.environ.get("OMNIDESK_CI"):
        pytest.fail("PostgreSQL is not installed; .ci/run must install the Debian package postgresql")
    pytest.skip("PostgreSQL is not installed here (apt-get install postgresql)")


def _migrate(url: str) -> None:
    from store import Store

    Store(url).close()


@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL server for this test process (each xdist worker has its own), with
    its template database migrated, so each test's database starts with the schema."""
    require_postgres()
    server = PostgresServer().start()
    try:
        server.refresh_template(_migrate)
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:
    """The URL of a fresh, migrated database, dropped after the test."""
    name = pg_server.create_database()
    yield pg_server.url(name)
    pg_server.drop_database(name)


# -- the guard ------------------------------------------------------------------------------
def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _guard(root: Path, log: Path, command: list[str]) -> None:
    """Run the server until stdin closes, then stop it and remove `root`."""
    with open(log, "ab") as out:
        server = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    try:
        sys.stdin.buffer.read()  # returns at EOF: the test process closed the pipe or died
    except BaseException:
        pass
    # SIGINT is PostgreSQL's fast shutdown; runuser only forwards some signals, so signal
    # the postmaster itself, then kill whatever is left.
    pid = _postmaster_pid(root / "data")
    for sig, grace in ((signal.SIGINT, 30.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        targets = [p for p in (pid, server.pid) if p]
        for p in targets:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (server.poll() is None or (pid and _alive(pid))):
            time.sleep(0.02)
        if server.poll() is not None and not (pid and _alive(pid)):
            break
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the test process decides when we stop
    _guard(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
