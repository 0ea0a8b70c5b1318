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
        wait_until(lambda: s.health()["sync"]["state"] == "failed")
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
        wait_until(lambda: s.health()["sync"]["state"] == "failed")
        assert "stuck for" in s.health()["sync"]["detail"]
    finally:
        engine.stop()
        s.close()


# -- at most once: real libraries against the loopback servers ------------------------------
LONG = "\n\n".join(f"P{i} " + "word " * 700 for i in range(5))  # five parts on either channel


def _customer(store, conn, make):
    """Pull the customer's first message in and return their customer id."""
    make()
    wait_until(lambda: _pull(store, conn), 20, what="the customer's message")
    return store.queue(filter="all")[0].customer_id


def _pull(store, conn) -> int:
    batch = conn.fetch(store.load_cursor(conn.name))
    store.ingest_batch(batch.items, conn.name, batch.cursor)
    return len(batch.items)


@pytest.mark.parametrize("fault", ["slow", "drop"])
def test_telegram_a_late_or_lost_answer_is_may_have_been_delivered_never_resent(tg, db_path, fault):
    conn = telegram_connector(tg, timeout=1)
    s = Store(db_path)
    try:
        cid = _customer(s, conn, lambda: tg.send_text(tg.user(601, "Ana"), "hello"))
        engine = Engine(db_path, [conn], max_attempts=5)
        tg.fail(method="sendMessage", after=fault, delay=4)
        mid = s.queue_reply(cid, "your parcel left today", "alex")
        engine.run_once()
        m = s.message(mid)
        assert m.state == "failed" and m.uncertain
        assert m.error.startswith("may have been delivered: ") and "check the channel" in m.error
        engine.run_once()  # no blind retry
        assert [x["text"] for x in tg.sent] == ["your parcel left today"]
        assert tg.count("sendMessage") == 1
    finally:
        s.close()
        conn.close()


def test_telegram_a_long_rate_limit_midway_resumes_at_the_next_part(tg, db_path):
    conn = telegram_connector(tg)
    s = Store(db_path)
    try:
        cid = _customer(s, conn, lambda: tg.send_text(tg.user(602, "Ana"), "tell me everything"))
        engine = Engine(db_path, [conn])
        tg.fail(429, method="sendMessage", retry_after=60, skip=2)  # parts 1-2 go out, then a long wait
        mid = s.queue_reply(cid, LONG, "alex")
        engine.run_once()
        m = s.message(mid)
        assert m.state == "queued" and "2 parts delivered" in m.error
        s.conn.execute("UPDATE outbox SET next_attempt_at = 0")  # the rate limit is over
        engine.run_once()
        assert s.message(mid).state == "sent"
        assert [x["text"][:2] for x in tg.sent] == ["P0", "P1", "P2", "P3", "P4"]
    finally:
        s.close()
        conn.close()


@pytest.mark.parametrize("fault", ["slow", "drop"])
def test_slack_a_late_or_lost_answer_is_may_have_been_delivered_never_resent(slack, db_path, fault):
    conn = slack_connector(slack, timeout=1)
    s = Store(db_path)
    try:
        jane = slack.user("U601", "jane", "Jane Roe")
        cid = _customer(s, conn, lambda: slack.post(jane, slack.dm(jane), "hello"))
        engine = Engine(db_path, [conn], max_attempts=5)
        slack.fail(method="chat.postMessage", after=fault, delay=4)
        mid = s.queue_reply(cid, "your parcel left today", "alex")
        engine.run_once()
        m = s.message(mid)
        assert m.state == "failed" and m.uncertain and m.error.startswith("may have been delivered: ")
        engine.run_once()
        assert [x["text"] for x in slack.sent] == ["your parcel left today"]
    finally:
        s.close()
        conn.close()


def test_slack_a_long_rate_limit_midway_resumes_at_the_next_part(slack, db_path):
    conn = slack_connector(slack)
    s = Store(db_path)
    try:
        jane = slack.user("U602", "jane", "Jane Roe")
        cid = _customer(s, conn, lambda: slack.post(jane, slack.dm(jane), "details please"))
        engine = Engine(db_path, [conn])
        slack.fail(429, method="chat.postMessage", retry_after=60, skip=2)
        mid = s.queue_reply(cid, LONG, "alex")
        engine.run_once()
        assert s.message(mid).state == "queued" and "2 parts delivered" in s.message(mid).error
        s.conn.execute("UPDATE outbox SET next_attempt_at = 0")
        engine.run_once()
        assert s.message(mid).state == "sent"
        assert [x["text"][:2] for x in slack.sent] == ["P0", "P1", "P2", "P3", "P4"]
    finally:
        s.close()
        conn.close()


def test_a_refused_connection_is_retried_a_server_error_too(slack, db_path):
    """Non-delivery the protocol shows is retried: 5xx, and a refused connection."""
    conn = slack_connector(slack, timeout=2)
    s = Store(db_path)
    try:
        jane = slack.user("U603", "jane", "Jane Roe")
        cid = _customer(s, conn, lambda: slack.post(jane, slack.dm(jane), "hi"))
        engine = Engine(db_path, [conn])
        slack.fail(503, method="chat.postMessage")
        mid = s.queue_reply(cid, "first try fails", "alex")
        engine.run_once()
        assert s.message(mid).state == "queued" and not s.message(mid).uncertain
        s.conn.execute("UPDATE outbox SET next_attempt_at = 0")
        engine.run_once()
        assert s.message(mid).state == "sent" and [x["text"] for x in slack.sent] == ["first try fails"]
    finally:
        s.close()
        conn.close()


def test_smtp_an_answer_slower_than_the_timeout_after_data_is_uncertain():
    from email.message import EmailMessage

    from connectors.base import ConnectorError, UncertainError
    from connectors.email import smtp
    from tests.support.smtp import SmtpSink
    from tests.support.dovecot import free_port

    sink = SmtpSink(answer_delay=3)
    sink.start()
    try:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "desk@example.com", "ana@example.com", "Re: parcel"
        msg.set_content("your parcel left today")
        options = {"smtp_host": "127.0.0.1", "smtp_port": sink.port, "smtp_security": "plain", "timeout": 1}
        with pytest.raises(UncertainError, match="no answer after the message was sent"):
            smtp.send(msg, options, None)
        assert len(sink.wait_for(1)) == 1  # it did arrive
    finally:
        sink.stop()
    refused = {"smtp_host": "127.0.0.1", "smtp_port": free_port(), "smtp_security": "plain", "timeout": 1}
    with pytest.raises(ConnectorError) as e:
        smtp.send(msg, refused, None)
    assert not isinstance(e.value, UncertainError)  # nothing went out: safe to retry
