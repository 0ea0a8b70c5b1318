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



# -- item 0: a dropped connection is taken up again ----------------------------------------
def _db(url: str) -> str:
    return url.rsplit("/", 1)[1]


def drop_connections(pg_server, url: str) -> None:
    """What a server restart, a failover or a firewall's idle timeout does to every
    connection to the database: ended by the server (and gone before this returns)."""
    import psycopg

    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as admin:
        pids = [r[0] for r in admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <>"
                                            " pg_backend_pid()", (_db(url),))]
        admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid", (pids,))
        wait_until(lambda: not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)).fetchall(),
                   timeout=30, what="the ended connections to go")


def refuse_connections(pg_server, url: str, refuse: bool) -> None:
    """The database takes no connections (as while its server is down), or takes them again."""
    pg_server.sql(f'ALTER DATABASE "{_db(url)}" ALLOW_CONNECTIONS {"false" if refuse else "true"}')


def _listening(s: Store) -> list[str]:
    return [r[0] for r in s.conn.execute("SELECT pg_listening_channels()").fetchall()]


def test_a_dropped_connection_is_taken_up_again_reads_writes_and_changes(pg_url, pg_server, tmp_path):
    from store.models import InboundMessage, Sender

    watcher = Store(pg_url, attachments_dir=tmp_path / "files")
    seen = watcher.data_version()
    drop_connections(pg_server, pg_url)
    assert watcher.queue_count("waiting") == 0  # a read works at once, on a fresh connection
    assert watcher.data_version() != seen  # notes may have been missed meanwhile: a change, re-read
    seen = watcher.data_version()
    drop_connections(pg_server, pg_url)
    writer = Store(pg_url, attachments_dir=tmp_path / "files")
    writer.ingest(InboundMessage("telegram", "main", "m1", Sender("telegram", "42", "Zed"), "hello?", 1_790_000_000.0))
    wait_until(lambda: watcher.data_version() != seen, timeout=10, what="the other store's commit, heard again")
    assert _listening(watcher) == ["omnidesk_changes"]
    drop_connections(pg_server, pg_url)
    watcher.set_health("email:shop", "ok")  # a write transaction: its BEGIN finds the connection gone and reconnects
    assert watcher.health()["email:shop"]["state"] == "ok" and watcher.queue_count("waiting") == 1
    watcher.close()
    writer.close()


def test_a_transaction_whose_connection_drops_fails_whole_and_runs_again(pg_url, pg_server, tmp_path):
    s = Store(pg_url, attachments_dir=tmp_path / "files")
    with pytest.raises(sqlite3.OperationalError) as lost:
        with s.tx():
            s.conn.execute("UPDATE cursors SET value = 'half' WHERE connector = 'automation'")
            drop_connections(pg_server, pg_url)
            s.conn.execute("UPDATE cursors SET value = 'done' WHERE connector = 'automation'")
    assert lost.value.problem.startswith("lost the connection to PostgreSQL at") and "reconnecting" in lost.value.problem
    assert "half" not in [r[0] for r in s.conn.execute("SELECT value FROM cursors").fetchall()]  # nothing of it stayed
    with s.tx():  # the caller's retry: the same transaction again, on a fresh connection
        s.conn.execute("UPDATE cursors SET value = 'done' WHERE connector = 'automation'")
    assert "done" in [r[0] for r in s.conn.execute("SELECT value FROM cursors").fetchall()]
    s.close()


def test_while_the_server_is_away_errors_say_so_then_the_store_works_again(pg_url, pg_server, tmp_path):
    s = Store(pg_url, attachments_dir=tmp_path / "files")
    refuse_connections(pg_server, pg_url, True)
    drop_connections(pg_server, pg_url)
    with pytest.raises(sqlite3.OperationalError) as away:
        s.queue_count("waiting")
    assert away.value.problem.startswith(f"lost the connection to PostgreSQL at {postgres.where(pg_url)}, reconnecting")
    assert s.connection_lost
    refuse_connections(pg_server, pg_url, False)
    assert wait_until(lambda: _answers(s), timeout=30, what="the store to answer again") == 1
    s.close()


def _answers(s: Store):
    try:
        return s.queue_count("waiting") + 1
    except sqlite3.OperationalError:
        return None


# -- item 5: only a store that reads the notes listens -------------------------------------
def test_only_a_store_asked_for_changes_listens(pg_url, tmp_path):
    engine_like = Store(pg_url, attachments_dir=tmp_path / "files")
    watcher = Store(pg_url, attachments_dir=tmp_path / "files")
    watcher.data_version()
    for n in range(50):
        watcher.set_health("email:shop", f"ok {n}")
    assert _listening(engine_like) == [] and _listening(watcher) == ["omnidesk_changes"]
    assert not engine_like.conn.raw._notifies_backlog  # psycopg keeps nothing for it
    watcher.close()
    engine_like.close()


# -- item 0 in the console and the sync engine -----------------------------------------------
@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_the_console_outlives_a_dropped_connection_and_a_server_away(pg_url, pg_server, tmp_path, clock):
    from store.models import InboundMessage, Sender
    from tests.support.console import make_app, screen_text, seed, settle, until

    seed(pg_url, clock)
    app = make_app(pg_url, clock, tmp_path)

    def someone_writes(address: str, name: str) -> None:  # another process: the sync engine, another agent
        other = Store(pg_url, clock=clock, attachments_dir=tmp_path / "files")
        other.ingest(InboundMessage("telegram", "main", f"m-{address}", Sender("telegram", address, name),
                                    "hello, anyone?", clock()))
        other.close()

    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        assert "Zed Newcomer" not in screen_text(app)
        drop_connections(pg_server, pg_url)
        someone_writes("777", "Zed Newcomer")
        await until(pilot, lambda: "Zed Newcomer" in screen_text(app))

        refuse_connections(pg_server, pg_url, True)  # the server away for a while
        drop_connections(pg_server, pg_url)
        await until(pilot, lambda: "lost the connection to PostgreSQL" in screen_text(app))
        assert app.is_running
        app.queue.focus()  # reads in the background meanwhile fail (a toast), and their Stores are not kept
        await pilot.press("down", "enter")
        await settle(pilot)
        assert app.is_running and not [s for s in app.desk.reader._idle if s.connection_lost]
        refuse_connections(pg_server, pg_url, False)
        someone_writes("778", "Yola Later")
        await until(pilot, lambda: "Yola Later" in screen_text(app) and "lost the connection" not in screen_text(app))
        assert app.is_running and not [n for n in app._notifications if "unexpected" in n.message]


def test_the_sync_engine_takes_up_lease_and_outbox_after_the_connection_drops(pg_url, pg_server, tmp_path, caplog):
    import logging

    from connectors.engine import ENGINE, Engine
    from tests.support.fake_channel import FileChannel, write_server

    server = tmp_path / "server.jsonl"
    write_server(server, 1)
    channel = FileChannel(server)
    engine = Engine(pg_url, [channel], poll_interval=0.05, lease_seconds=2)
    s = Store(pg_url, attachments_dir=tmp_path / "files")
    caplog.set_level(logging.WARNING, logger="omnidesk.engine")
    engine.start()
    try:
        cid = wait_until(lambda: _find(s, "1000"), timeout=30, what="the first poll")
        first = s.queue_reply(cid, "before the drop", "alex")
        wait_until(lambda: s.message(first).state == "sent", timeout=30, what="the first reply sent")

        drop_connections(pg_server, pg_url)  # every connection of the engine and of this test
        second = s.queue_reply(cid, "after the drop", "alex")
        wait_until(lambda: s.message(second).state == "sent", timeout=30, what="a reply sent after the drop")
        write_server(server, 1, start=1)
        wait_until(lambda: _find(s, "1001"), timeout=30, what="a poll after the drop")

        refuse_connections(pg_server, pg_url, True)  # away for longer than the lease
        drop_connections(pg_server, pg_url)
        wait_until(lambda: not engine.has_lease.is_set(), timeout=30, what="polling paused")
        assert engine.live_health()[ENGINE]["state"] == "retrying"
        assert "lost the connection to PostgreSQL" in engine.live_health()[ENGINE]["detail"]
        refuse_connections(pg_server, pg_url, False)
        third = s.queue_reply(cid, "after the server came back", "alex")
        wait_until(lambda: _answers(s) and s.message(third).state == "sent", timeout=60,
                   what="a reply sent once the server is back")
        lease = s.conn.execute("SELECT holder, heartbeat FROM leases").fetchone()
        assert lease[0] == engine.holder
        wait_until(lambda: s.conn.execute("SELECT heartbeat FROM leases").fetchone()[0] > lease[1], timeout=30,
                   what="the lease renewed")
    finally:
        engine.stop()
        s.close()
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "lost the connection to PostgreSQL at" in said and "to another process" not in said
    assert [m.text for m in channel.sent] == ["before the drop", "after the drop", "after the server came back"]


def _find(s: Store, ref: str) -> int | None:
    try:
        return s.find_customer(ref)
    except StoreError:
        return None


# -- item 7: printf('%.6f') as Python's ------------------------------------------------------
def test_printf_formats_a_float_exactly_as_python(pg_url, tmp_path):
    import random
    import struct

    s = Store(pg_url, attachments_dir=tmp_path / "files")
    rng = random.Random(7)
    values = [1_796_539_306.8586395, 1_796_539_306.0078125, 0.0078125, -0.0, -1e-9, 5e-324, 1e22, 2.0 ** 53]
    values += [1_790_000_000 + rng.random() * 1e7 for _ in range(2000)]  # timestamps: 1 in 20 differed
    values += [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0] for _ in range(300)]
    values = [v for v in values if v == v and abs(v) != float("inf")]
    got = [r[0] for r in s.conn.execute("SELECT printf('wait:%.6f', v) FROM unnest(CAST(? AS float8[])) v",
                                        (values,)).fetchall()]
    assert [g for g, v in zip(got, values) if g != "wait:%.6f" % v] == []
    s.close()


@pytest.mark.both_backends
def test_a_timer_rule_that_fired_leaves_the_customer_out_of_the_next_look(store_location, tmp_path):
    """The periods the rules write (Python's "%.6f") and the store's filter agree, whatever
    the waiting time's last digits (1796539306.8586395 rounded twice on PostgreSQL)."""
    from connectors.desk.automation import wait_period
    from store.models import InboundMessage, Sender

    times = [1_796_539_306.8586395, 1_796_539_307.1234565, 1_796_539_308.0000005]
    s = Store(store_location, attachments_dir=tmp_path / "files", clock=lambda: times[-1] + 3600)
    ids = [s.ingest(InboundMessage("telegram", "main", f"m{n}", Sender("telegram", str(n), f"C{n}"), "hi", t)).customer_id
           for n, t in enumerate(times)]
    for cid, t in zip(ids, times):
        s.conn.execute("UPDATE customers SET waiting_since = ? WHERE id = ?", (t, cid))
    assert sorted(s.waiting_customers(60, rules=["nudge"])) == sorted(ids)
    for cid in ids:
        assert s.claim_rule_fire("nudge", cid, wait_period(s.customer(cid)))
    assert s.waiting_customers(60, rules=["nudge"]) == []
    s.close()


def test_an_older_store_gets_the_exact_printf_when_it_opens(pg_url, tmp_path):
    from store import schema

    s = Store(pg_url, attachments_dir=tmp_path / "files")
    s.conn.execute("""CREATE OR REPLACE FUNCTION printf(format text, x double precision) RETURNS text
        LANGUAGE sql IMMUTABLE AS $$ SELECT replace(format, '%.6f', CAST(round(CAST(CAST(x AS text) AS numeric), 6)
        AS text)) $$""")  # the function of schema v17 and before
    s.conn.execute("UPDATE omnidesk_schema SET version = 17")
    s.close()
    s = Store(pg_url, attachments_dir=tmp_path / "files")
    assert s.version == schema.LATEST
    assert s.conn.execute("SELECT printf('%.6f', ?)", (1_796_539_306.8586395,)).fetchone()[0] == "1796539306.858639"
    s.close()
