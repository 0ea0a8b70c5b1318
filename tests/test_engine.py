"""The sync engine: exactly-once rows across crashes, backoff, health, lease, outbox."""
import os
import signal
import subprocess
import sys
import time

import pytest

from connectors.base import ConnectorError, PermanentError
from connectors.engine import Engine, backoff
from store import Store
from tests.support.fake_channel import FileChannel, write_server
from tests.conftest import ROOT

pytestmark = pytest.mark.both_backends


def wait_for(predicate, timeout=30.0, interval=0.02):  # generous: a loaded CI box
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def count(store_location):
    s = Store(store_location)
    try:
        return tuple(s.q1("SELECT count(*), count(DISTINCT external_id) FROM messages"))
    finally:
        s.close()


def test_killed_mid_sync_loses_and_doubles_nothing(tmp_path, store_location):
    server = tmp_path / "server.jsonl"
    write_server(server, 600)
    Store(store_location).close()
    for attempt in range(3):  # kill -9 at three different points of the stream
        proc = subprocess.Popen([sys.executable, "-m", "tests.support.fake_channel", str(store_location), str(server)],
                                cwd=ROOT, stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"started"
        target = 150 * (attempt + 1)
        assert wait_for(lambda: count(store_location)[0] >= target, timeout=30)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rows, distinct = count(store_location)
        assert rows == distinct  # never a double
        s = Store(store_location)
        assert int(s.load_cursor("telegram:fake").get("offset", 0)) == rows  # cursor never ahead of rows
        s.close()
    # restart and finish: everything exactly once (after the dead holder's lease expires)
    time.sleep(2.1)
    engine = Engine(store_location, [FileChannel(server)], poll_interval=0.05, lease_seconds=2)
    engine.run_once()
    assert count(store_location) == (600, 600)


def test_errors_back_off_show_as_health_and_recover(tmp_path, store_location):
    server = tmp_path / "server.jsonl"
    write_server(server, 3)
    channel = FileChannel(server)
    # the server refuses until the test has seen "retrying" (a loaded box may not look within a backoff)
    channel.fail_next = [ConnectorError("connection refused") for _ in range(50)]
    engine = Engine(store_location, [channel], poll_interval=0.05, lease_seconds=2)
    s = Store(store_location)
    engine.start()
    try:
        assert wait_for(lambda: s.health().get("telegram:fake", {}).get("state") == "retrying")
        assert "connection refused" in s.health()["telegram:fake"]["detail"]
        channel.fail_next = [ConnectorError("rate limited", retry_after=0.3)]
        assert wait_for(lambda: s.health()["telegram:fake"]["state"] == "ok")
        assert wait_for(lambda: s.q1("SELECT count(*) FROM messages")[0] == 3)
        channel.fail_next = [PermanentError("invalid bot token")]
        write_server(server, 1, start=3)
        assert wait_for(lambda: s.health()["telegram:fake"]["state"] == "failed")
        assert s.health()["telegram:fake"]["detail"] == "invalid bot token"
    finally:
        engine.stop()
        s.close()


def test_backoff_grows_with_jitter_and_caps():
    delays = [backoff(n, base=1.0, cap=60.0) for n in range(1, 12)]
    assert 0.5 <= delays[0] <= 1.0
    assert 4.0 <= delays[3] <= 8.0
    assert all(d <= 60.0 for d in delays)
    assert len({round(backoff(5), 6) for _ in range(20)}) > 1  # jitter


def test_two_engines_one_store_only_one_polls(tmp_path, store_location):
    server = tmp_path / "server.jsonl"
    write_server(server, 5)
    a, b = FileChannel(server), FileChannel(server)
    # a long lease: a holder starved of CPU for a moment on a loaded box must not lose it (stop() releases it)
    ea = Engine(store_location, [a], poll_interval=0.05, lease_seconds=15, holder="console-a")
    eb = Engine(store_location, [b], poll_interval=0.05, lease_seconds=15, holder="console-b")
    ea.start()
    try:
        assert wait_for(lambda: a.fetches > 2)
        eb.start()
        time.sleep(0.5)
        assert b.fetches == 0
        ea.stop()  # releases the lease; b takes over
        assert wait_for(lambda: b.fetches > 0)
    finally:
        ea.stop()
        eb.stop()
    assert count(store_location) == (5, 5)


def test_outbox_sends_retries_then_fails_keeping_text(tmp_path, store_location):
    server = tmp_path / "server.jsonl"
    write_server(server, 1)
    channel = FileChannel(server)
    engine = Engine(store_location, [channel], poll_interval=0.05, lease_seconds=2, max_attempts=2)
    engine.run_once()
    s = Store(store_location)
    cid = s.find_customer("1000")
    ok = s.queue_reply(cid, "first reply", "alex")
    engine.run_once()
    assert s.message(ok).state == "sent" and s.message(ok).external_id == f"sent-{ok}"
    assert channel.sent[0].text == "first reply" and channel.sent[0].to_address == "1000"

    bad = s.queue_reply(cid, "second reply", "alex")
    channel.send_errors = [ConnectorError("timeout"), ConnectorError("timeout again")]
    engine.run_once()
    m = s.message(bad)
    assert m.state == "queued" and m.error == "timeout"
    s.conn.execute("UPDATE outbox SET next_attempt_at = 0")
    engine.run_once()
    m = s.message(bad)
    assert m.state == "failed" and "after 2 attempts" in m.error and m.text == "second reply"

    perm = s.queue_reply(cid, "third", "alex")
    channel.send_errors = [PermanentError("chat not found")]
    engine.run_once()
    assert s.message(perm).state == "failed" and s.message(perm).error == "chat not found"
    s.close()


def test_omnidesk_sync_without_channels_says_what_to_do(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text("[sync]\npoll_interval = 1\n")
    proc = subprocess.run([sys.executable, "-m", "console.cli", "--db", str(tmp_path / "x.db"), "--config", str(cfg),
                           "sync"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and "no channels configured" in proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_omnidesk_sync_stops_cleanly_on_signal(tmp_path, store_location, sig):
    """`omnidesk sync` against the demo's loopback channels: SIGTERM or Ctrl-C
    stops it with exit 0 and every stored row complete."""
    from console.demo import DemoWorld

    world = DemoWorld(speed=8, root=tmp_path / "world").start()
    db = store_location
    try:
        proc = subprocess.Popen([sys.executable, "-m", "console.cli", "--db", str(db), "--config",
                                 str(world.config_path), "sync"], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert "channel(s)" in proc.stdout.readline()
        assert wait_for(lambda: count(db)[0] >= 4, timeout=30)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        rows, distinct = count(db)
        assert rows == distinct
        s = Store(db)
        assert s.lease_holder() is None  # the lease was released for the next poller
        assert all(m.text or m.attachments for c in s.customers() for m in s.timeline(c.id))
        s.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        world.stop()


def test_a_rejected_reply_fails_alone_and_a_bad_token_clears_when_polling_works(tmp_path, store_location):
    from connectors.base import RejectedError

    server = tmp_path / "server.jsonl"
    write_server(server, 1)
    channel = FileChannel(server)
    engine = Engine(store_location, [channel], poll_interval=0.05, lease_seconds=2)
    s = Store(store_location)
    engine.start()
    try:
        assert wait_for(lambda: s.q1("SELECT count(*) FROM messages")[0] == 1)
        cid = s.find_customer("1000")
        channel.send_errors = [RejectedError("bot was blocked by the user")]
        blocked = s.queue_reply(cid, "hello?", "alex")
        engine.wake_outbox()
        assert wait_for(lambda: s.message(blocked).state == "failed")
        assert s.message(blocked).error == "bot was blocked by the user" and s.message(blocked).attempts == 1
        assert s.health()["telegram:fake"]["state"] == "ok"
        channel.send_errors = [PermanentError("invalid token")]
        second = s.queue_reply(cid, "second", "alex")
        engine.wake_outbox()
        assert wait_for(lambda: s.message(second).state == "failed")
        assert s.message(second).error == "invalid token"
        # the channel itself still polls fine, so its health does not stay "failed"
        assert wait_for(lambda: s.health()["telegram:fake"]["state"] == "ok")
    finally:
        engine.stop()
        s.close()


def test_an_unexpected_error_carrying_a_secret_is_scrubbed_from_health(tmp_path, store_location):
    server = tmp_path / "server.jsonl"
    write_server(server, 1)

    class Leaky(FileChannel):
        def secrets(self):
            return ["123:SECRET"]

    channel = Leaky(server)
    channel.fail_next = [RuntimeError("GET https://api.example/bot123:SECRET/getUpdates failed")]
    engine = Engine(store_location, [channel], poll_interval=0.05, lease_seconds=2)
    s = Store(store_location)
    engine.start()
    try:
        assert wait_for(lambda: s.health().get("telegram:fake", {}).get("state") == "retrying")
        detail = s.health()["telegram:fake"]["detail"]
        assert "SECRET" not in detail and "bot***" in detail
    finally:
        engine.stop()
        s.close()
