"""Failures are never silent: `sync --once` reports the outbox and exits 1 for
cron, the queue says whose last reply failed, and a reply to nobody is refused."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from store import Store, StoreError
from tests.support.chat import tg, wait_until  # noqa: F401

OMNIDESK = str(Path(sys.executable).parent / "omnidesk")


@pytest.fixture
def desk(tmp_path, tg):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[agent]\nname = "alex"\n[telegram.shop]\ntoken_env = "TG_TOKEN"\nbase_url = "{tg.base_url}"\n'
                   f'base_file_url = "{tg.base_file_url}"\nlong_poll_seconds = 1\ntimeout = 3\n')
    env = {**os.environ, "TG_TOKEN": tg.token}
    db = tmp_path / "omnidesk.db"

    def run(*args, input=None):
        return subprocess.run([OMNIDESK, "--db", str(db), "--config", str(cfg), *args], env=env, input=input,
                              capture_output=True, text=True, timeout=60)
    run.db = db
    return run


def test_sync_once_reports_sent_retrying_and_failed_replies_and_exits_1(desk, tg):
    tg.send_text(tg.user(701, "Ana"), "where is my parcel?")
    first = desk("sync", "--once")
    assert first.returncode == 0, first.stderr
    assert "outbox: 0 sent, 0 retrying, 0 failed" in first.stdout

    assert desk("reply", "telegram:701", "-m", "it left today").returncode == 0
    ok = desk("sync", "--once")
    assert ok.returncode == 0 and "outbox: 1 sent, 0 retrying, 0 failed" in ok.stdout

    tg.fail(429, method="sendMessage", retry_after=600)  # not delivered: tried again in 10 minutes
    assert desk("reply", "telegram:701", "-m", "tracking: AB123").returncode == 0
    retrying = desk("sync", "--once")
    assert retrying.returncode == 1
    assert "outbox: 0 sent, 1 retrying, 0 failed" in retrying.stdout
    assert "retrying: Telegram rate limit: retry after 600s; next try in" in retrying.stdout
    assert "omnidesk: error: reply #" in retrying.stderr

    report = json.loads(desk("--json", "sync", "--once").stdout)  # still waiting for its next try
    assert report["outbox"]["sent"] == 0 and len(report["outbox"]["retrying"]) == 1
    assert report["outbox"]["retrying"][0]["channel"] == "telegram:shop"

    s = Store(desk.db)
    s.conn.execute("UPDATE outbox SET next_attempt_at = 0")
    s.close()
    tg.fail(400, method="sendMessage")  # refused: failed for good
    failed = desk("--json", "sync", "--once")
    assert failed.returncode == 1
    out = json.loads(failed.stdout)["outbox"]
    assert out["retrying"] == [] and [f["outcome"] for f in out["failed"]] == ["failed"]
    assert "Telegram rejected" in out["failed"][0]["error"]

    # the queue row says so, and the `failed` filter lists them
    queue = desk("queue", "--filter", "failed")
    assert "Ana" in queue.stdout and "reply failed" in queue.stdout
    assert "reply failed" in desk("queue", "--filter", "all").stdout
    assert desk("reply", "telegram:701", "-m", "sorry, again: AB123").returncode == 0
    assert desk("sync", "--once").returncode == 0
    assert "Ana" not in desk("queue", "--filter", "failed").stdout


def test_a_reply_to_a_message_without_a_usable_sender_is_refused(store, make_inbound, desk):
    r = store.ingest(make_inbound("email", "unknown-sender@invalid", "no From header here", name="Unknown sender"))
    with pytest.raises(StoreError, match="no e-mail address for #"):
        store.queue_reply(r.customer_id, "hello?", "alex")
    assert store.outbox() == []
