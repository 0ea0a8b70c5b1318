"""`omnidesk store copy` when things go wrong: it never prints a password, a crash at
any point leaves a destination the next run goes on from, a failure is one line that
names the side (SRC or DEST), and SRC is only ever read. Every test runs the installed
command in a subprocess against real SQLite files and a real PostgreSQL server."""
from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess

import pytest

from store import Store
from tests.conftest import ROOT
from tests.support.chat import wait_until
from tests.support.cli import OMNIDESK
from tests.test_store_copy import rows, seed

SECRET = "Sup3rSecret"


def omnidesk(*args: str, timeout: float = 120) -> tuple[int, str, str]:
    """`omnidesk ARGS` as a user runs it: (exit status, stdout, stderr)."""
    run = subprocess.run([str(OMNIDESK), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                         stdin=subprocess.DEVNULL)
    return run.returncode, run.stdout, run.stderr


def with_password(url: str) -> str:
    """The URL with a password in it (the test server trusts loopback: it is not checked)."""
    return url.replace("://postgres@", f"://postgres:{SECRET}@", 1)


@pytest.fixture
def source(tmp_path, clock) -> str:
    """A SQLite store with a bit of everything, closed: its path."""
    s = Store(tmp_path / "source.db", clock=clock)
    seed(s, customers=4)
    s.close()
    return str(tmp_path / "source.db")


def same_rows(a: str, b: str) -> bool:
    sa, sb = Store(a), Store(b)
    try:
        return rows(sa) == rows(sb)
    finally:
        sa.close()
        sb.close()


# -- 1. no password in anything the command prints ----------------------------------------------
def test_a_password_in_a_url_is_never_printed(source, pg_url, tmp_path):
    dest = with_password(pg_url)
    rc, out, err = omnidesk("store", "copy", source, dest)
    assert rc == 0, err
    assert "copied and verified" in err and pg_url.split("@", 1)[1] in err  # it names where, without the secret
    said = out + err
    rc, out, err = omnidesk("store", "copy", source, dest)  # refused: DEST is not empty
    assert rc == 1 and "not empty" in err
    said += out + err
    back = str(tmp_path / "back.db")  # and with the password in SRC
    rc, out, err = omnidesk("store", "copy", dest, back)
    assert rc == 0, err
    said += out + err
    assert SECRET not in said


# -- 2. a crash between creating the progress record and filling it ----------------------------
def test_kill_9_after_the_progress_table_is_created_then_run_again(source, pg_url):
    """An event trigger in DEST gives the progress table, as it is created, an insert
    trigger that waits on a lock the test holds: the copy stops right between CREATE
    TABLE omnidesk_copy and the INSERT that records SRC, and is killed there."""
    import psycopg

    lock = 4242
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("CREATE FUNCTION test_wait() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                      f" PERFORM pg_advisory_lock_shared({lock}); PERFORM pg_advisory_unlock_shared({lock});"
                      " RETURN NEW; END $$")
        admin.execute("CREATE FUNCTION test_hook() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN"
                      " IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands()"
                      "            WHERE object_identity = 'public.omnidesk_copy') THEN"
                      "   CREATE TRIGGER test_wait BEFORE INSERT ON omnidesk_copy FOR EACH ROW"
                      "   EXECUTE FUNCTION test_wait();"
                      " END IF; END $$")
        admin.execute("CREATE EVENT TRIGGER test_hook ON ddl_command_end WHEN TAG IN ('CREATE TABLE')"
                      " EXECUTE FUNCTION test_hook()")
        admin.execute("SELECT pg_advisory_lock(%s)", (lock,))
        proc = subprocess.Popen([str(OMNIDESK), "store", "copy", source, pg_url], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: admin.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                             " AND objid = %s AND NOT granted", (lock,)).fetchone()[0],
                       timeout=60, what="the copy to wait between CREATE TABLE omnidesk_copy and its INSERT")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        wait_until(lambda: not admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                             " AND application_name = 'omnidesk'").fetchone()[0],
                   timeout=60, what="the killed copy's session to end")
        admin.execute("DROP EVENT TRIGGER test_hook")
        admin.execute("SELECT pg_advisory_unlock(%s)", (lock,))
        # one transaction: the kill took the half-made progress record with it
        assert admin.execute("SELECT to_regclass('omnidesk_copy')").fetchone()[0] is None
    rc, out, err = omnidesk("store", "copy", source, pg_url)
    assert rc == 0, err
    assert "copied and verified" in err
    assert same_rows(source, pg_url)


@pytest.mark.both_backends
def test_an_empty_progress_table_left_by_an_older_crash_is_a_fresh_start(source, store_location):
    """What a kill between the two steps left behind before they were one transaction."""
    Store(store_location).close()
    if store_location.startswith("postgresql"):
        import psycopg

        with psycopg.connect(store_location, autocommit=True) as conn:
            conn.execute("CREATE TABLE omnidesk_copy (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    else:
        with sqlite3.connect(store_location) as conn:
            conn.execute("CREATE TABLE omnidesk_copy (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.close()
    rc, out, err = omnidesk("store", "copy", source, store_location)
    assert rc == 0, err
    assert same_rows(source, store_location)
