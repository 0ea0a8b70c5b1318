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


# -- 3. NUL in SQLite text: PostgreSQL holds U+FFFD, and the copy says so ------------------------
def test_nul_characters_are_copied_as_u_fffd_and_reported(tmp_path, pg_url, clock):
    from tests.conftest import inbound

    path = str(tmp_path / "nul.db")
    s = Store(path, clock=clock)
    seed(s, customers=3)
    s.ingest(inbound("email", "nul@shop.test", "hello\x00world", name="Nul\x00Sender", subject="a\x00b"))
    s.ingest(inbound("telegram", "4299", "second\x00one"))
    s.close()
    rc, out, err = omnidesk("store", "copy", path, pg_url)
    assert rc == 0, err
    assert "copied and verified" in err
    assert "messages: 3 values had NUL characters, stored as U+FFFD" in err  # two texts and a subject
    assert all(line.endswith(" ok") for line in out.splitlines()[1:])
    dest = Store(pg_url)
    try:
        texts = {r[0] for r in dest.q("SELECT text FROM messages")}
        assert {"hello\ufffdworld", "second\ufffdone"} <= texts
        assert dest.search("world")  # the replaced text is indexed like any other
    finally:
        dest.close()
    back = str(tmp_path / "back.db")  # and back again: nothing more to replace
    rc, out, err = omnidesk("store", "copy", "--json", pg_url, back)
    assert rc == 0, err
    assert "NUL" not in err


# -- 4. a side that fails mid-copy: one line naming it, and the next run goes on ----------------
def _backends(admin, database: str) -> list[int]:
    return [r[0] for r in admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s"
                                        " AND application_name = 'omnidesk'", (database,)).fetchall()]


def _hold_an_events_row(source: str, dest_url: str):
    """An uncommitted row in DEST's events with an id from the middle of SRC's: the copy
    commits the batches before it, then waits on that row's lock (an open connection)."""
    import psycopg

    s = Store(source)
    middle_id = s.q("SELECT id FROM events ORDER BY id")[s.q1("SELECT count(*) FROM events")[0] // 2][0]
    s.close()
    blocker = psycopg.connect(dest_url)
    blocker.execute("INSERT INTO events(id, at, actor, kind, customer_id, data) VALUES (%s, 0, 'x', 'x', 0, '{}')",
                    (middle_id,))
    return blocker


def _wait_for_the_lock(admin, database: str) -> None:
    wait_until(lambda: admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                                     " AND wait_event_type = 'Lock'", (database,)).fetchone()[0],
               timeout=60, what="the copy to wait on the locked row")


def test_dest_server_going_away_mid_copy_is_one_line_naming_dest_then_resumes(source, pg_url, pg_server):
    import psycopg

    database = pg_url.rsplit("/", 1)[1]
    blocker = _hold_an_events_row(source, pg_url)
    proc = subprocess.Popen([str(OMNIDESK), "store", "copy", "--batch", "2", source, with_password(pg_url)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        with psycopg.connect(pg_server.url(), autocommit=True) as admin:
            _wait_for_the_lock(admin, database)
            for pid in _backends(admin, database):
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        out, err = proc.communicate(timeout=60)
    finally:
        blocker.rollback()
        blocker.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1
    problem = [line for line in err.splitlines() if line.startswith("omnidesk: error:")]
    assert problem == [f"omnidesk: error: DEST {pg_url}: lost the connection to the server; what was copied is"
                       " kept: run the same command again to go on"], err
    assert "Traceback" not in err and SECRET not in err and source not in problem[0]
    rc, out, err = omnidesk("store", "copy", source, pg_url)
    assert rc == 0, err
    assert "(resumed)" in err
    assert same_rows(source, pg_url)


def test_src_server_going_away_mid_scan_is_one_line_naming_src_then_resumes(source, pg_server, tmp_path):
    """PostgreSQL to PostgreSQL: while the copy waits on a locked row in DEST, SRC's
    server-side cursor is open in the middle of a table; SRC's session is ended there."""
    import psycopg

    src_db, dest_db = pg_server.create_database(), pg_server.create_database()
    src_url, dest_url = pg_server.url(src_db), pg_server.url(dest_db)
    try:
        rc, _, err = omnidesk("store", "copy", source, src_url)  # SRC: the seeded store, on PostgreSQL
        assert rc == 0, err
        blocker = _hold_an_events_row(source, dest_url)
        proc = subprocess.Popen([str(OMNIDESK), "store", "copy", "--batch", "2", with_password(src_url), dest_url],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)
        try:
            with psycopg.connect(pg_server.url(), autocommit=True) as admin:
                _wait_for_the_lock(admin, dest_db)
                for pid in _backends(admin, src_db):
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                wait_until(lambda: not _backends(admin, src_db), timeout=60, what="SRC's session to end")
                blocker.rollback()  # the copy's insert goes through; its next read of SRC fails
                out, err = proc.communicate(timeout=60)
        finally:
            blocker.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 1
        problem = [line for line in err.splitlines() if line.startswith("omnidesk: error:")]
        assert problem == [f"omnidesk: error: SRC {src_url}: lost the connection to the server; what was copied is"
                           " kept: run the same command again to go on"], err
        assert "Traceback" not in err and SECRET not in err
        rc, out, err = omnidesk("store", "copy", src_url, dest_url)
        assert rc == 0, err
        assert "(resumed)" in err
        assert same_rows(src_url, dest_url)
    finally:
        pg_server.drop_database(src_db)
        pg_server.drop_database(dest_db)


# -- 6. SRC is only read: not a store, another version, a partial store are refused untouched ----
def digest(path: str) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_a_postgresql_database_that_is_no_store_is_refused_and_left_empty(pg_server, tmp_path):
    import psycopg

    database = pg_server.create_database(template="template0")  # e.g. .../postgres by mistake
    url = pg_server.url(database)
    try:
        rc, out, err = omnidesk("store", "copy", url, str(tmp_path / "copy.db"))
        assert rc == 1
        assert f"omnidesk: error: SRC {url}: not an omnidesk store" in err
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
                                ).fetchone()[0] == 0
        assert not (tmp_path / "copy.db").exists()
    finally:
        pg_server.drop_database(database)


def test_a_sqlite_file_that_is_no_store_is_refused_and_left_as_it_was(tmp_path):
    other = str(tmp_path / "other.db")
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        conn.execute("INSERT INTO notes(text) VALUES ('mine')")
    conn.close()
    before = digest(other)
    rc, out, err = omnidesk("store", "copy", other, str(tmp_path / "copy.db"))
    assert rc == 1
    assert f"SRC {other}: not an omnidesk store" in err
    assert digest(other) == before
    assert not (tmp_path / "copy.db").exists()


@pytest.mark.parametrize("change, said", [(+1, "is newer than this omnidesk's"), (-1, "is older than this omnidesk's")])
def test_a_sqlite_store_of_another_version_is_refused_and_left_as_it_was(source, tmp_path, change, said):
    from store import schema

    with sqlite3.connect(source) as conn:
        conn.execute(f"PRAGMA user_version = {schema.LATEST + change}")
    conn.close()
    before = digest(source)
    rc, out, err = omnidesk("store", "copy", source, str(tmp_path / "copy.db"))
    assert rc == 1
    assert f"SRC {source}: its schema (v{schema.LATEST + change}) {said}" in err
    assert digest(source) == before  # not upgraded by what the user took for an export


def test_a_newer_postgresql_store_is_refused_and_left_as_it_was(source, pg_url, tmp_path):
    import psycopg

    rc, _, err = omnidesk("store", "copy", source, pg_url)
    assert rc == 0, err
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE omnidesk_schema SET version = version + 1")
        version = conn.execute("SELECT version FROM omnidesk_schema").fetchone()[0]
    rc, out, err = omnidesk("store", "copy", pg_url, str(tmp_path / "copy.db"))
    assert rc == 1
    assert f"SRC {pg_url}: its schema (v{version}) is newer" in err
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT version FROM omnidesk_schema").fetchone()[0] == version


def test_a_store_missing_a_table_is_refused(source, tmp_path):
    with sqlite3.connect(source) as conn:
        conn.execute("DROP TABLE drafts")
    conn.close()
    before = digest(source)
    rc, out, err = omnidesk("store", "copy", source, str(tmp_path / "copy.db"))
    assert rc == 1
    assert f"SRC {source} lacks table drafts: not a whole omnidesk store" in err
    assert digest(source) == before


def test_a_read_only_source_file_is_copied_and_not_changed(source, tmp_path):
    before = digest(source)
    os.chmod(source, 0o444)
    try:
        rc, out, err = omnidesk("store", "copy", source, str(tmp_path / "copy.db"))
    finally:
        os.chmod(source, 0o600)
    assert rc == 0, err
    assert digest(source) == before
    assert same_rows(source, str(tmp_path / "copy.db"))


def test_a_locked_sqlite_dest_is_named_as_dest(source, tmp_path):
    """Another process holds DEST's write lock for the whole run: the error names DEST's
    file (it once named the configured store, neither SRC nor DEST)."""
    dest = str(tmp_path / "dest.db")
    Store(dest).close()
    config = tmp_path / "config.toml"
    config.write_text("[store]\nbusy_timeout = 0.5\n")
    holder = sqlite3.connect(dest, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        rc, out, err = omnidesk("--config", str(config), "store", "copy", source, dest)
    finally:
        holder.rollback()
        holder.close()
    assert rc == 1
    assert err.strip().splitlines()[-1] == f"omnidesk: error: DEST {dest}: store locked by another process", err
    rc, out, err = omnidesk("store", "copy", source, dest)  # the lock gone, the same command copies
    assert rc == 0, err
    assert same_rows(source, dest)
