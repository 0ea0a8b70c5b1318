"""The PostgreSQL store when things go wrong (review s4): a store that fails to open
gives its connection back, passwords never reach a message even when written wrongly,
every kind of server error reaches callers as sqlite3's classes, a dropped connection
is taken up again. A real server (tests/support/postgres.py), no mocks."""
from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from store import Store, StoreError, postgres
from tests.support.chat import wait_until
from tests.support.cli import OMNIDESK


def _pool_of(url: str):
    return next(p for (pid, u, _), p in postgres._pools.items() if u == url)


def _checked_out(pool) -> int:
    stats = pool.get_stats()
    return stats.get("pool_size", 0) - stats.get("pool_available", 0)


# -- item 9: a store that fails to open holds no connection --------------------------------
def test_a_store_that_cannot_open_gives_its_connection_back(pg_url, tmp_path):
    keeper = Store(pg_url, attachments_dir=tmp_path / "files")  # keeps the pool open to count in it
    keeper.conn.execute("UPDATE omnidesk_schema SET version = 999")
    for _ in range(postgres.POOL_SIZE + 2):  # more than the pool holds: each one must come back
        with pytest.raises(StoreError, match="newer than this omnidesk"):
            Store(pg_url, attachments_dir=tmp_path / "files")
    pool = _pool_of(pg_url)
    assert pool.omnidesk_out == 1  # only the keeper uses it
    wait_until(lambda: _checked_out(pool) == 1, timeout=10, what="only the keeper's connection out of the pool")
    keeper.close()


def _open_files(path) -> int:
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if _target(fd) == str(path))


def _target(fd) -> str:
    try:
        return os.readlink(fd)
    except OSError:
        return ""


def test_a_sqlite_store_that_cannot_open_closes_its_file(tmp_path):
    path = tmp_path / "new.db"
    s = Store(path)
    s.conn.execute("PRAGMA user_version = 999")
    s.close()
    with pytest.raises(StoreError, match="newer than this omnidesk") as refused:
        Store(path)
    assert refused.value is not None and _open_files(path) == 0  # (the traceback still holds the half-made store)


# -- item 10: a password with an unescaped '@' --------------------------------------------
def test_a_password_with_an_unescaped_at_sign_never_shows(pg_server, tmp_path):
    url = f"postgresql://desk:s3cr@t-t@il@127.0.0.1:{pg_server.port}/nosuchdb"
    assert "cr" not in postgres.scrub(url).replace("postgresql", "") and postgres.scrub(url).endswith(
        f"@127.0.0.1:{pg_server.port}/nosuchdb")
    assert postgres.where(url) == f"desk@127.0.0.1:{pg_server.port}/nosuchdb"
    with pytest.raises(StoreError) as e:
        Store(url, attachments_dir=tmp_path / "files")
    text = str(e.value)
    assert "%40" in text and not any(part in text for part in ("s3cr", "t-t", "il@"))
    run = subprocess.run([str(OMNIDESK), "--db", url, "queue"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode != 0 and "%40" in run.stderr
    assert not any(part in run.stderr + run.stdout for part in ("s3cr", "t-t", "il@"))


# -- item 4: every server error as sqlite3's class -----------------------------------------
def test_server_errors_of_every_kind_reach_callers_as_sqlite3_errors(pg_url, tmp_path):
    s = Store(pg_url, attachments_dir=tmp_path / "files")
    with pytest.raises(sqlite3.ProgrammingError):  # psycopg's UndefinedTable
        s.conn.execute("SELECT * FROM no_such_table")
    with pytest.raises(sqlite3.DataError):  # psycopg's DivisionByZero
        s.conn.execute("SELECT 1 / 0")
    with pytest.raises(sqlite3.IntegrityError):
        s.conn.execute("INSERT INTO customers(id, name, created_at) VALUES (1, 'a', 0), (1, 'b', 0)")
    with pytest.raises(sqlite3.OperationalError) as canceled:  # psycopg's QueryCanceled
        s.conn.script("SET statement_timeout = 10; SELECT pg_sleep(5)")
    assert "PostgreSQL at" in canceled.value.problem
    s.conn.script("SET statement_timeout = 0")
    assert s.conn.execute("SELECT 1").fetchone()[0] == 1  # the connection still works
    s.close()


# -- item 11: no process-wide lock held over a connect --------------------------------------
def test_a_slow_connect_elsewhere_does_not_hold_up_other_stores(pg_url, tmp_path):
    """A server that accepts and never answers (a dead host behind a firewall keeps a
    connect waiting up to connect_timeout): meanwhile this process opens and closes
    stores on a server that works."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
    stuck_done = threading.Event()

    def stuck() -> None:
        try:
            Store(f"postgresql://x@127.0.0.1:{silent.getsockname()[1]}/x?connect_timeout=120",
                  attachments_dir=tmp_path / "files")
        except StoreError:
            pass
        stuck_done.set()
    threading.Thread(target=stuck, daemon=True).start()
    wait_until(lambda: accepted, timeout=30, what="the silent server's connection")
    opened = threading.Event()

    def works() -> None:
        Store(pg_url, attachments_dir=tmp_path / "files").close()
        opened.set()
    threading.Thread(target=works, daemon=True).start()
    wait_until(opened.is_set, timeout=60, what="a store on the working server")
    assert not stuck_done.is_set()  # it opened while the other connect was still waiting
    accepted[0].close()
    silent.close()
    wait_until(stuck_done.is_set, timeout=60, what="the silent server's connect to fail")

