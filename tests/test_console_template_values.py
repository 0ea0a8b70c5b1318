"""Values typed into a template's prompts appear exactly as typed: in the composer (no
Markdown backslashes), in the preview and in what each channel is sent (Telegram's
HTML, Slack's mrkdwn, e-mail's plain text: only the channel's own escaping), in the
queue and in search. What the connectors send is the stored Markdown formatted with
connectors.formatting (tests/test_templates_e2e.py checks that against the loopback
Bot API and Slack servers); here it is formatted the same way."""
from __future__ import annotations

import pytest

from connectors import formatting
from connectors.sandbox.telegram import parse_html
from console.widgets.queue import readable_preview
from store import Store
from tests.support.console import ids, make_app, open_customer, settle, until  # noqa: F401

pytestmark = pytest.mark.anyio

ORDER = "*A-1042*"
STATUS = "*rushed* _today_ [box 2] <b> `x` #1 & co"


async def _insert_order_status(pilot, values) -> None:
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
    await until(pilot, lambda: STATUS in app.composer.area.text)


def _as_sent(channel: str, md: str) -> str:
    if channel == "telegram":
        return "".join(parse_html(part) for part in formatting.telegram_parts(md))  # as the app shows it
    if channel == "slack":
        return "".join(formatting.slack_parts(md))
    return formatting.plain_text(md)


@pytest.mark.parametrize("who,channel", [("jane", "telegram"), ("bob", "email"), ("carol", "slack")])
async def test_markdown_characters_in_prompt_values_stay_as_typed(db_path, clock, tmp_path, ids, who, channel):
    app = make_app(db_path, clock, tmp_path)
    cid = ids[who]
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, cid)
        assert app.composer.channel == channel
        await pilot.press("r")
        await _insert_order_status(pilot, [ORDER, STATUS, "https://t.example/1"])
        text = app.composer.area.text
        assert "\\" not in text and STATUS in text and f"**{ORDER}**" in text  # as typed, in the template's bold
        preview = _as_sent(channel, app.make_outgoing(cid, app.composer.markdown(), channel).source)
        await pilot.press("ctrl+s")
        await settle(pilot, 3)
    s = Store(db_path, clock=clock)
    sent = s.timeline(cid)[-1]
    assert sent.direction == "out" and _as_sent(channel, sent.text) == preview  # the preview is what goes
    if channel == "slack":  # mrkdwn: & < > escaped, its formatting marks as look-alikes (no escape exists)
        assert "&lt;b&gt;" in preview and "&amp; co" in preview and "[box 2]" in preview and "#1" in preview
        assert "*" + "∗A-1042∗" + "*" in preview  # bold, around the value's own stars
    else:
        assert STATUS in preview and "A-1042" in preview
        assert "<b>" not in preview.replace(STATUS, "")  # nothing became markup
    row = next(r for r in s.queue(filter="all") if r.customer_id == cid)
    assert STATUS in readable_preview(row.preview)  # the queue shows it as typed
    assert sent.id in [h.message_id for h in s.search('"box 2"')]
    s.close()


async def test_the_agents_own_markdown_around_a_value_still_formats(db_path, clock, tmp_path, ids):
    """Only the value is kept literal: the agent's own **bold** typed in the reply is markup."""
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, ids["jane"])
        await pilot.press("r", *"**Sorry!**", "enter")
        await _insert_order_status(pilot, [ORDER, STATUS, "https://t.example/1"])
        html = formatting.telegram_parts(app.composer.markdown())[0]
        assert "<b>Sorry!</b>" in html and "<b>*A-1042*</b>" in html and "*rushed* _today_" in html
