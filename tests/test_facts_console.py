"""Facts in the console (Pilot): seen first at 80x24 with their source, the
channel switch marked in the timeline, the reply channel following the
customer, and facts and the name edited with the keymap action, undone with u."""
from __future__ import annotations

import pytest

from store import Store
from tests.support.console import NOW, _utc, anyio_backend, make_app, open_customer, screen_text, settle, until  # noqa: F401
from store.models import InboundMessage, Sender

pytestmark = pytest.mark.anyio


def seed(path, clock) -> int:
    """Jane told us her order number on Telegram; two hours later she writes by e-mail."""
    s = Store(path, clock=clock)
    tg = s.ingest(InboundMessage("telegram", "main", "t1", Sender("telegram", "1001", "Jane Roe", "janeroe",
                                                                    ("jane@roe.example",)),
                                 "hi, my order 5521 has not arrived", NOW - 3 * 3600))
    s.capture_fact(tg.customer_id, "order_number", "5521", "order_number", message_id=tg.message_id,
                   channel="telegram", at=NOW - 3 * 3600)
    mail = s.ingest(InboundMessage("email", "main", "<e1@roe.example>", Sender("email", "jane@roe.example", "Jane Roe"),
                                   "Any news?\n\n> old quoted stuff", NOW - 3600, subject="Where is my vase?",
                                   meta={"new_text": "Any news?"}))
    assert mail.customer_id == tg.customer_id  # linked by the e-mail address Telegram gave
    s.close()
    return tg.customer_id


async def test_facts_topic_and_channel_switch_are_seen_first_at_80x24(db_path, clock, tmp_path):
    cid = seed(db_path, clock)
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_customer(pilot, cid)
        text = screen_text(app)
        assert "order_number 5521 (Telegram 3h)" in text
        assert "topic (Telegram 3h): hi, my order 5521" in text  # the message that opened the case
        assert "now on e-mail, 2h after" in text
        assert app.screen.composer.channel == "email"  # the reply follows them to e-mail
        header = app.screen.case_header.region
        assert header.y < app.timeline.region.y and header.height >= 1  # above the timeline, on screen


async def test_edit_facts_and_name_from_the_console_and_undo(db_path, clock, tmp_path):
    cid = seed(db_path, clock)
    app = make_app(db_path, clock, tmp_path)
    s = Store(db_path, clock=clock)

    async def edit(*keys):
        await pilot.press("e")
        await settle(pilot)
        await pilot.press(*keys)
        await settle(pilot, 3)

    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, cid)
        await edit(*"add", "enter", *"plan=gold", "enter")
        assert s.customer(cid).facts == {"order_number": "5521", "plan": "gold"}
        await until(pilot, lambda: "plan gold" in screen_text(app))

        await edit(*"plan", "enter", *["backspace"] * 4, *"silver", "enter")
        assert s.customer(cid).facts["plan"] == "silver"
        await until(pilot, lambda: "earlier: gold" in screen_text(app))  # the profile keeps the old value in view
        await edit(*"plan", "enter", *["backspace"] * 6, "enter")  # empty removes
        assert "plan" not in s.customer(cid).facts
        await pilot.press("u")
        await settle(pilot, 3)
        assert s.customer(cid).facts["plan"] == "silver"

        await edit(*"name", "enter", "end", *["backspace"] * 3, *"Doe", "enter")  # the old name is there to change
        assert s.customer(cid).name == "Jane Doe"
        await until(pilot, lambda: "Jane Doe" in screen_text(app))
        await pilot.press("u")
        await settle(pilot, 3)
        assert s.customer(cid).name == "Jane Roe"
        kinds = [e.kind for e in s.events(cid, limit=20) if e.actor == "alice"]
        assert kinds.count("fact") == 3 and kinds.count("rename") == 1 and kinds.count("undo") == 2
    s.close()


async def test_a_bad_fact_name_is_refused_in_the_console(db_path, clock, tmp_path):
    """A name templates and search could not spell is refused, the prompt staying open to
    fix it (a name with spaces is not: "gift card" is taken as gift_card, as tags normalise)."""
    cid = seed(db_path, clock)
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, cid)
        await pilot.press("e")
        await settle(pilot)
        await pilot.press(*"add", "enter", *"bad.key=1", "enter")
        await until(pilot, lambda: "a fact name is letters, digits, _ and -" in screen_text(app))
        assert "Add a fact" in screen_text(app)  # the prompt stays open to fix the name
        await pilot.press("escape")
        await settle(pilot)
    s = Store(db_path, clock=clock)
    assert s.customer(cid).facts == {"order_number": "5521"}
    s.close()


async def test_keys_typed_fast_into_the_edit_dialogs_do_not_crash_the_console(db_path, clock, tmp_path):
    """e, enter, enter as one burst: the first enter chooses the name in the picker, the
    second answers the name prompt that follows (the name as it was). Once, answering
    the picker twice popped a screen too many (a crash)."""
    from textual import events

    from console.screens.pickers import Dialog

    cid = seed(db_path, clock)
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, cid)
        for key, char in (("e", "e"), ("enter", "\r"), ("enter", "\r")):
            app.post_message(events.Key(key, char))  # no pause between: a terminal's burst
        await until(pilot, lambda: not isinstance(app.screen, Dialog) and not app.keys.holding)
        assert app.is_running and app.current.name == "Jane Roe"  # both dialogs answered, the console alive
    assert app.return_code in (None, 0)
