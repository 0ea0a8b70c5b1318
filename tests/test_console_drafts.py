"""Drafts outlive the console: text, channel, attachments and Cc are kept in the store
(console/drafts.py), marked ✎ in the queue after a restart, and sent whole."""
from __future__ import annotations

import os

import pytest

from console.screens.pickers import ConfirmScreen
from store import Store
from tests.support.console import ids, make_app, open_customer, screen_text, settle, until  # noqa: F401
from tests.test_console_workflow import flat, row_line, until_closed

pytestmark = pytest.mark.anyio


async def test_a_draft_with_attachment_and_cc_outlives_the_console_and_sends_both(db_path, clock, tmp_path, ids):
    invoice = tmp_path / "invoice.pdf"
    invoice.write_bytes(b"%PDF-1.4 the invoice")
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("r", *"Invoice attached, copy to accounts.", "ctrl+f")
        await until(pilot, lambda: "Attach a file" in screen_text(app))
        await pilot.press(*str(invoice), "enter", "ctrl+b")
        await until(pilot, lambda: "Cc" in screen_text(app))
        await pilot.press(*"accounts@li.example", "enter", "escape")
        await until(pilot, lambda: app.composer.cc == ["accounts@li.example"])
        app.queue.focus()
        await pilot.press("q")  # kept in the store: no question, the console closes
        await until_closed(app)
    assert app.return_code == 0

    app = make_app(db_path, clock, tmp_path)  # the next morning
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await until(pilot, lambda: "✎" in row_line(app, "Bob Li"))
        await open_customer(pilot, ids["bob"])
        assert app.composer.area.text == "Invoice attached, copy to accounts."
        assert app.composer.attachments == [str(invoice)] and app.composer.cc == ["accounts@li.example"]
        bar = flat(app)
        assert "cc accounts@li.example" in bar and "📎 invoice.pdf" in bar
        await pilot.press("r", "ctrl+s")
        await until(pilot, lambda: app.composer.area.text == "" and not app.busy())
    s = Store(db_path, clock=clock)
    sent = s.timeline(ids["bob"])[-1]
    assert sent.direction == "out" and sent.text == "Invoice attached, copy to accounts."
    assert [a.filename for a in sent.attachments] == ["invoice.pdf"] and sent.meta["cc"] == ["accounts@li.example"]
    assert s.drafts("alice") == []  # sent: the draft is gone
    s.close()


async def test_a_draft_is_marked_in_the_queue_and_quitting_keeps_it(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["carol"])
        assert "✎" not in row_line(app, "Carol Diaz")
        await pilot.press("r", *"Looking into the 502s", "escape")
        await open_customer(pilot, ids["bob"])
        await until(pilot, lambda: "✎" in row_line(app, "Carol Diaz"))
        assert "✎" not in row_line(app, "Bob Li")
        await pilot.press("q")
        await until_closed(app)
    s = Store(db_path, clock=clock)
    assert [(d.customer_id, d.text) for d in s.drafts("alice")] == [(ids["carol"], "Looking into the 502s")]
    assert s.drafts("bob") == []  # drafts are each agent's own
    s.close()


async def test_emptying_a_draft_removes_it(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["carol"])
        await pilot.press("r", *"oops")
        await until(pilot, lambda: not app.desk.drafts.unsaved() and app.desk.drafts.saved.get(ids["carol"]))
        await pilot.press(*["backspace"] * 4, "escape")
        await open_customer(pilot, ids["bob"])
        await until(pilot, lambda: "✎" not in row_line(app, "Carol Diaz"))
        app.queue.focus()
        await pilot.press("q")
        await until_closed(app)
    s = Store(db_path, clock=clock)
    assert s.drafts("alice") == []
    s.close()


async def test_quitting_asks_when_the_store_cannot_keep_drafts(db_path, clock, tmp_path, ids):
    """A read-only store (chmod a-w) opens for reading: drafts cannot be kept, so quitting asks."""
    os.chmod(db_path, 0o444)
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["carol"])
        await pilot.press("r", *"Looking into the 502s", "escape")
        app.queue.focus()
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Quit with 1 unsent draft not kept?" in screen_text(app)
        assert "Drafts to Carol Diaz are lost" in flat(app)
        await pilot.press("n")  # stay: the draft is still there
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert app.is_running and app.composer.draft_for(ids["carol"]).text == "Looking into the 502s"
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until_closed(app)
    assert app.return_code == 0
