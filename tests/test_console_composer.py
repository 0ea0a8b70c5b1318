"""The composer keeps the agent's work: drafts per customer, the channel they picked."""
from __future__ import annotations

import pytest

from store import Store
from store.models import InboundMessage, Sender
from tests.support.console import ids, make_app, open_customer, screen_text, settle, until  # noqa: F401

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


async def _insert_order_status(pilot, values) -> None:
    """Type into the template picker and each value's prompt once that screen is up (the
    prompts follow a background render: keys typed before would land elsewhere)."""
    from console.screens.pickers import PickerScreen, PromptScreen

    app = pilot.app
    await pilot.press("ctrl+t")
    await until(pilot, lambda: isinstance(app.screen, PickerScreen))
    await pilot.press(*"order-status", "enter")
    asked = None
    for value in values:
        await until(pilot, lambda: isinstance(app.screen, PromptScreen) and app.screen is not asked)
        asked = app.screen
        await pilot.press(*value, "enter")
    await until(pilot, lambda: not isinstance(app.screen, PromptScreen))


async def test_a_template_goes_in_at_the_cursor_on_its_own_lines_with_values_as_typed(db_path, clock, tmp_path, ids):
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        await pilot.press("r", *"Hi Jane, sorry about the vase!")
        await _insert_order_status(pilot, ["A-1042", "shipped today (by DHL)", "https://track.example/a-1?x=1&y=2"])
        text = app.composer.area.text
        lines = text.split("\n")
        # not glued: the template starts a line; the reply had its greeting, so the template's stays out
        assert lines[0] == "Hi Jane, sorry about the vase!" and "Hi Jane!" not in lines
        assert "Order **A-1042**: shipped today (by DHL)." in lines  # values exactly as typed
        assert "https://track.example/a-1?x=1&y=2" in text and "\\" not in text
        await pilot.press("ctrl+s")
        await settle(pilot, 3)
    s = Store(db_path, clock=clock)
    assert "shipped today (by DHL)" in s.timeline(ids["jane"])[-1].text
    assert [h.message_id for h in s.search('"by DHL"')] == [s.timeline(ids["jane"])[-1].id]  # search finds it as typed
    s.close()


async def test_a_template_keeps_the_thread_subject(db_path, clock, tmp_path, ids):
    """Bob wrote "Shipping": the reply stays "Re: Shipping" (mail clients keep the thread),
    not the template's "Your order ..." subject."""
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("r")
        await _insert_order_status(pilot, ["1042", "shipped", "https://track.example/1042"])
        assert "Your order" not in screen_text(app)
        await pilot.press("ctrl+s")
        await settle(pilot, 3)
    s = Store(db_path, clock=clock)
    assert s.timeline(ids["bob"])[-1].subject == "Re: Shipping"
    s.close()


async def _pick_channel(pilot, app, channel: str) -> None:
    from console.screens.pickers import PickerScreen

    await pilot.press("ctrl+o")
    await until(pilot, lambda: isinstance(app.screen, PickerScreen))
    await pilot.press(*{"email": "mail", "telegram": "telegram"}[channel], "enter")
    await until(pilot, lambda: app.composer.channel == channel)


async def _insert_refund(pilot, app) -> None:
    from console.screens.pickers import PickerScreen, PromptScreen

    await pilot.press("ctrl+t")
    await until(pilot, lambda: isinstance(app.screen, PickerScreen))
    await pilot.press(*"refund", "enter")
    asked = None
    for value in ("EUR 25.00", "1042", "5"):  # asked in the order the text uses them
        await until(pilot, lambda: isinstance(app.screen, PromptScreen) and app.screen is not asked)
        asked = app.screen
        await pilot.press(*value, "enter")
    await until(pilot, lambda: "1042" in app.composer.area.text)


async def test_a_template_follows_a_channel_switch_and_what_is_sent_is_the_new_channels(db_path, clock, tmp_path, ids):
    """Inserted on e-mail (greeting, sign-off), switched to Telegram, sent: the
    customer gets the template's Telegram text, exactly as the preview showed."""
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        await pilot.press("r")
        await _pick_channel(pilot, app, "email")
        await _insert_refund(pilot, app)
        assert "Best regards" in app.composer.area.text  # the e-mail version, sign-off included
        await _pick_channel(pilot, app, "telegram")
        await until(pilot, lambda: "Best regards" not in app.composer.area.text)
        text = app.composer.area.text
        assert "Hello Jane" not in text and text.startswith("Hi Jane!")
        assert "Done: I've refunded **EUR 25.00** for order **1042**" in text
        await until(pilot, lambda: "as sent on Telegram" in screen_text(app))
        assert "Best regards" not in screen_text(app)
        await pilot.press("ctrl+s")
        await settle(pilot, 3)
    s = Store(db_path, clock=clock)
    last = s.timeline(ids["jane"])[-1]
    assert last.channel == "telegram" and "Done: I've refunded" in last.text
    assert "Best regards" not in last.text and "Hello Jane" not in last.text
    s.close()


async def test_an_edited_template_asks_before_a_channel_switch_rewrites_it(db_path, clock, tmp_path, ids):
    from console.screens.pickers import ConfirmScreen

    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        await pilot.press("r", *"Sorry about the vase.")
        await _pick_channel(pilot, app, "email")
        await _insert_refund(pilot, app)
        app.composer.area.text = app.composer.area.text.replace("Sorry again", "So sorry again")
        await settle(pilot)
        await pilot.press("ctrl+o")
        await settle(pilot)
        await pilot.press(*"telegram", "enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "written for e-mail" in screen_text(app).lower()
        await pilot.press("y")
        await until(pilot, lambda: "Best regards" not in app.composer.area.text)
        text = app.composer.area.text
        # the agent's own line stays; the template, inserted into a reply begun, brings no greeting
        assert text.startswith("Sorry about the vase.\nDone: I've refunded") and "Hi Jane!" not in text
        assert "So sorry again" not in text and "Done: I've refunded" in text
        await pilot.press("ctrl+s")
        await settle(pilot, 3)
    s = Store(db_path, clock=clock)
    last = s.timeline(ids["jane"])[-1]
    assert last.channel == "telegram" and "Best regards" not in last.text
    s.close()


async def test_send_never_takes_a_template_rendered_for_another_channel(db_path, clock, tmp_path, ids):
    """Whatever moved the channel (a refresh following the customer, a key pressed
    before the rewrite arrived), send rewrites first and sends nothing stale."""
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        await pilot.press("r")
        await _pick_channel(pilot, app, "email")
        await _insert_refund(pilot, app)
        # the channel moves under the composer without the switch's rewrite having run
        app.composer.identity = next(i for i in app.current.identities if i.channel == "telegram")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "Best regards" not in app.composer.area.text)
        s = Store(db_path, clock=clock)
        assert s.timeline(ids["jane"])[-1].direction == "in"  # nothing went out yet
        s.close()
        await pilot.press("ctrl+s")  # now the Telegram version, as the preview shows
        await settle(pilot, 3)
    s = Store(db_path, clock=clock)
    last = s.timeline(ids["jane"])[-1]
    assert last.channel == "telegram" and last.text.startswith("Hi Jane!") and "Best regards" not in last.text
    s.close()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_every_composer_key_hint_is_on_screen_while_writing(db_path, clock, tmp_path, ids, size):
    """At 80x24 the hints take two lines rather than lose the last ones (^r preview was
    cut, ^n note and the rest were off screen); a note shows the keys a note has."""
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["bob"])
        await pilot.press("r", *"hello")
        await settle(pilot)
        shown = screen_text(app)
        for hint in ("^s send", "^o channel", "^t template", "^r preview", "^n note", "^e editor", "^f attach",
                     "^b cc", "esc leave"):
            assert hint in shown, hint
        assert max(len(line.rstrip()) for line in shown.splitlines()) <= size[0]
        await pilot.press("ctrl+n")
        await settle(pilot)
        shown = screen_text(app)
        for hint in ("^s add note", "^n reply", "^e editor", "esc leave"):
            assert hint in shown, hint
        assert "^o channel" not in shown  # nothing about sending while writing a note
