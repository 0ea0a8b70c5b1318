"""Nothing lost, nothing sent twice: the engine under a locked store, slow and
dropped answers and rate limits, with the real channel libraries against the
loopback servers."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connectors.engine import Engine
from store import Store
from tests.conftest import ROOT
from tests.support.chat import slack, slack_connector, telegram_connector, tg, wait_until  # noqa: F401

OMNIDESK = str(Path(sys.executable).parent / "omnidesk")  # the entry point users run


def _config(tmp_path, tg, busy: float = 1.0):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[store]\nbusy_timeout = {busy}\n[sync]\npoll_interval = 1\nlease_seconds = 3\n'
                   f'[telegram.shop]\ntoken_env = "TG_TOKEN"\nbase_url = "{tg.base_url}"\n'
                   f'base_file_url = "{tg.base_file_url}"\nlong_poll_seconds = 1\ntimeout = 2\n')
    return cfg


def _stored(db) -> int:
    s = Store(db)
    try:
        return s.q1("SELECT count(*) FROM messages WHERE direction='in'")[0]
    finally:
        s.close()


def test_sync_survives_a_store_locked_longer_than_the_busy_timeout(tmp_path, tg):
    """Another process holds the write lock for several busy timeouts while
    `omnidesk sync` runs: polling stops, health says why, and everything sent
    meanwhile is stored once the lock goes, by the same process."""
    db = tmp_path / "omnidesk.db"
    cfg = _config(tmp_path, tg)
    Store(db).close()
    env = {**os.environ, "TG_TOKEN": tg.token}
    proc = subprocess.Popen([sys.executable, "-m", "console.cli", "--db", str(db), "--config", str(cfg), "sync"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ana = tg.user(501, "Ana")
        tg.send_text(ana, "before the lock")
        wait_until(lambda: _stored(db) == 1, 30, what="the first message")
        locker = sqlite3.connect(db, isolation_level=None, timeout=0)
        locker.execute("BEGIN IMMEDIATE")  # the write lock, held well past the 1 s busy timeout
        tg.send_text(ana, "during the lock")
        # held until the engine could not renew its lease for longer than the lease
        # (3 s) plus several busy timeouts (1 s): reads still work under the lock
        reader = Store(db)
        wait_until(lambda: time.time() - reader.lease_holder()[1] > 6, 60, what="a long-held lock")
        reader.close()
        assert _stored(db) == 1
        locker.execute("ROLLBACK")
        locker.close()
        wait_until(lambda: _stored(db) == 2, 30, what="the message sent during the lock")
        tg.send_text(ana, "after the lock")
        wait_until(lambda: _stored(db) == 3, 30, what="polling after the lock")
        s = Store(db)
        wait_until(lambda: s.health().get("sync", {}).get("state") == "ok", 30, what="the engine's health row")
        assert s.health()["telegram:shop"]["state"] == "ok"
        assert s.health()["sync"]["detail"].startswith("3/3 threads alive")
        texts = [m.text for c in s.customers() for m in s.timeline(c.id)]
        s.close()
        assert sorted(texts) == ["after the lock", "before the lock", "during the lock"]
        assert proc.poll() is None  # the same process, still running
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_a_locked_store_is_named_in_live_health_and_clears(tmp_path, tg, db_path):
    """The console's status bar reads the engine's live health: while the store
    is locked it says so (the store itself cannot take the news)."""
    Store(db_path).close()
    ana = tg.user(502, "Ana")
    engine = Engine(db_path, [telegram_connector(tg, long_poll=1, timeout=2)], poll_interval=0.2,
                    lease_seconds=3, store_options={"busy_seconds": 0.3})
    engine.start()
    try:
        tg.send_text(ana, "one")
        wait_until(lambda: _stored(db_path) == 1, 20)
        locker = sqlite3.connect(db_path, isolation_level=None, timeout=0)
        locker.execute("BEGIN IMMEDIATE")
        tg.send_text(ana, "two")
        live = wait_until(lambda: engine.live_health().get("telegram:shop", {}).get("state") == "retrying"
                          and engine.live_health()["telegram:shop"], 20)
        assert live["detail"].startswith("store locked by another process")
        locker.execute("ROLLBACK")
        locker.close()
        wait_until(lambda: _stored(db_path) == 2, 20)
        wait_until(lambda: engine.live_health()["telegram:shop"]["state"] == "ok", 20)
        assert engine.threads_alive() == (3, 3)
    finally:
        engine.stop()


def test_a_failed_commit_rolls_back(db_path):
    """A COMMIT that fails leaves no transaction open: the next write works."""
    s = Store(db_path, busy_seconds=0.1)
    reader = sqlite3.connect(db_path, isolation_level=None)
    try:
        s.conn.execute("PRAGMA journal_mode=DELETE")  # rollback journal: a reader blocks COMMIT
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM customers").fetchone()  # holds a shared lock
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            with s.tx():
                s.conn.execute("INSERT INTO customers(name, created_at) VALUES ('x', 0)")
        assert not s.conn.in_transaction
        reader.execute("ROLLBACK")
        with s.tx():
            s.conn.execute("INSERT INTO customers(name, created_at) VALUES ('y', 0)")
        assert [r[0] for r in s.q("SELECT name FROM customers")] == ["y"]
    finally:
        reader.close()
        s.close()


class _Fatal(BaseException):
    """Something no loop can catch (as KeyboardInterrupt would be)."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_thread_that_stops_anyway_is_reported_in_health(tmp_path, db_path):
    from tests.support.fake_channel import FileChannel, write_server

    server = tmp_path / "server.jsonl"
    write_server(server, 2)
    channel = FileChannel(server)
    engine = Engine(db_path, [channel], poll_interval=0.05, lease_seconds=2)
    s = Store(db_path)
    engine.start()
    try:
        wait_until(lambda: s.q1("SELECT count(*) FROM messages")[0] == 2)
        wait_until(lambda: s.health().get("sync", {}).get("detail") == "3/3 threads alive")
        channel.fail_next = [_Fatal()]
        write_server(server, 1, start=2)
        wait_until(lambda: s.health()["sync"]["state"] == "failed", 10)
        assert s.health()["sync"]["detail"] == "2/3 threads alive: poll telegram:fake stopped"
        assert engine.live_health()["sync"]["state"] == "failed"
        doctor = subprocess.run([OMNIDESK, "--db", str(db_path), "doctor"], capture_output=True, text=True,
                                timeout=60)
        assert doctor.returncode == 1
        assert "FIX  sync: " in doctor.stdout and "poll telegram:fake stopped" in doctor.stdout
    finally:
        engine.stop()
        s.close()


def test_a_hanging_thread_is_reported_in_health(tmp_path, db_path):
    from tests.support.fake_channel import FileChannel, write_server

    server = tmp_path / "server.jsonl"
    write_server(server, 1)
    engine = Engine(db_path, [FileChannel(server)], poll_interval=0.05, lease_seconds=2)
    s = Store(db_path)
    engine.start()
    try:
        wait_until(lambda: s.health().get("sync", {}).get("detail") == "3/3 threads alive")
        engine.stuck_after = 0.0  # every loop turn is now "late"
        wait_until(lambda: s.health()["sync"]["state"] == "failed", 10)
        assert "stuck for" in s.health()["sync"]["detail"]
    finally:
        engine.stop()
        s.close()
