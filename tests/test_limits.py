"""Limits before sending: a reply over its channel's size limit needs a yes in
the console and --force on the command line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from connectors.limits import over_limit
from store import Store
from tests.support.console import _utc, anyio_backend, ids, make_app, open_customer, screen_text, settle  # noqa: F401

pytestmark = pytest.mark.anyio
OMNIDESK = str(Path(sys.executable).parent / "omnidesk")
HUGE = ("A long paste of a log file, line after line. " * 40 + "\n\n") * 120  # ~220 kB: ~55 Telegram messages


def test_each_channel_counts_in_its_own_unit():
    assert over_limit("telegram", "thanks!") is None and over_limit("slack", "thanks!") is None
    assert over_limit("telegram", HUGE).startswith("it would go out as ") and "the limit is 10" in over_limit(
        "telegram", HUGE)
    assert "Slack messages" in over_limit("slack", HUGE)
    assert over_limit("email", HUGE) is None  # an e-mail carries it in one message
    assert "the limit for one e-mail is 10 MB" in over_limit("email", "x", attachment_bytes=11 * 1024 * 1024)


def test_the_cli_refuses_an_over_limit_reply_without_force(tmp_path, store, make_inbound):
    r = store.ingest(make_inbound("telegram", "4242", "send me the logs", name="Ana"))
    db = str(store.path)

    def reply(*extra):
        return subprocess.run([OMNIDESK, "--db", db, "reply", str(r.customer_id), *extra], input=HUGE,
                              capture_output=True, text=True, timeout=60)
    refused = reply()
    assert refused.returncode == 1
    assert "reply not queued: it would go out as" in refused.stderr and "--force" in refused.stderr
    assert store.outbox() == []
    forced = reply("--force")
    assert forced.returncode == 0, forced.stderr
    assert len(store.outbox()) == 1


async def test_the_console_asks_before_sending_an_over_limit_reply(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)  # confirm_send is off: only the size asks
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["carol"])
        await pilot.press("r")
        await settle(pilot)
        app.composer.area.text = HUGE
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "This reply is long: it would go out as" in screen_text(app)
        await pilot.press("n")
        await settle(pilot)
        s = Store(db_path, clock=clock)
        assert s.timeline(ids["carol"])[-1].direction == "in"
        await pilot.press("ctrl+s", "y")
        await settle(pilot, 3)
        assert s.timeline(ids["carol"])[-1].direction == "out"
        s.close()
