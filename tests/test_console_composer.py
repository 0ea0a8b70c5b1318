"""The composer keeps the agent's work: drafts per customer, the channel they picked."""
from __future__ import annotations

import pytest

from store import Store
from store.models import InboundMessage, Sender
from tests.test_console_app import ids, make_app, open_customer, screen_text, settle, until  # noqa: F401

pytestmark = pytest.mark.anyio


async def test_a_draft_survives_moving_through_the_queue(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        await pilot.press("r", *"My long careful draft")
        await pilot.press("escape")
        await open_customer(pilot, ids["bob"])
        assert app.composer.area.text == ""  # Bob's reply starts empty
        await open_customer(pilot, ids["jane"])
        assert app.composer.area.text == "My long careful draft"
        assert "My long careful draft" in screen_text(app)
        await pilot.press("r", "ctrl+s")  # sent: the draft is gone for good
        await settle(pilot, 3)
        await open_customer(pilot, ids["bob"])
        await open_customer(pilot, ids["jane"])
        assert app.composer.area.text == ""
    s = Store(db_path, clock=clock)
    assert s.timeline(ids["jane"])[-1].text == "My long careful draft"
    s.close()


async def test_the_reply_channel_follows_the_customer_until_the_agent_picks_one(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        assert app.composer.channel == "telegram"  # her newest message
        s = Store(db_path, clock=clock)
        s.ingest(InboundMessage("email", "main", "new-mail", Sender("email", "jane@roe.example", "Jane Roe"),
                                "one more thing", clock() - 1, subject="Order #1042"))
        s.close()
        await until(pilot, lambda: "one more thing" in screen_text(app))
        assert app.composer.channel == "email"  # she wrote by e-mail now: answer there
        await pilot.press("r", "ctrl+o")  # the agent picks a channel themselves
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        picked = app.composer.channel
        assert picked == "email"
        s = Store(db_path, clock=clock)
        s.ingest(InboundMessage("telegram", "main", "new-tg", Sender("telegram", "1001", "Jane Roe", "janeroe"),
                                "and on telegram", clock()))
        s.close()
        await until(pilot, lambda: "and on telegram" in screen_text(app))
        assert app.composer.channel == picked  # their choice stands
