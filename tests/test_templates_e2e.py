"""A rendered template is exactly what reaches the customer: render, queue the
source, let the real engine and connectors send it to the loopback Bot API and
Slack Web API servers, and compare what they received with the preview."""
from __future__ import annotations

import pytest

from connectors import config as config_mod
from connectors.desk import templates as T
from connectors.sandbox.telegram import parse_html
from tests.support.chat import (live_store, running_engine, slack, slack_connector,  # noqa: F401
                                telegram_connector, tg, wait_until)

pytestmark = pytest.mark.slow

FIRST, LAST = "<b>*_&", "😀 שלום \u202eevil"
VALUES = {"tracking_url": "https://t.example/track?id=1&x=<2>",
          # long enough that Telegram and Slack both need several messages
          "status": "shipped *today* & <soon>. " + "More details follow. " * 300}


def _send_and_capture(store, server, cid, channel):
    rendered = T.render_for_customer(store, cid, "order-status", channel, "Ann Lee", VALUES,
                                     directory=T.STARTER_DIR)
    assert len(rendered.parts) >= 2
    mid = store.queue_reply(cid, rendered.source, "ann")
    sent = wait_until(lambda: server.sent if len(server.sent) >= len(rendered.parts) else None,
                      what=f"{len(rendered.parts)} {channel} messages")
    wait_until(lambda: store.message(mid).state == "sent", what="the receipt")
    return rendered, sent


def test_template_reaches_telegram_exactly_as_rendered(tg, live_store, db_path):
    conn = telegram_connector(tg)
    tg.send_text(tg.user(1001, FIRST, LAST), "where is my order?")
    try:
        with running_engine(db_path, [conn]):
            cid = wait_until(lambda: live_store.queue(filter="all"), what="the inbound message")[0].customer_id
            live_store.set_fact(cid, "order number", "A-1042", "ann")
            rendered, sent = _send_and_capture(live_store, tg, cid, "telegram")
    finally:
        conn.close()
    assert [s["html"] for s in sent] == rendered.parts
    assert all(s["parse_mode"] == "HTML" for s in sent)
    # the body is one paragraph too long for a message: the greeting goes first on its own
    assert parse_html(sent[0]["html"]) == "Hi <b>*_&!"
    assert parse_html(sent[1]["html"]).startswith("Order A-1042: shipped *today* & <soon>.")


def test_template_reaches_slack_exactly_as_rendered(slack, live_store, db_path):  # noqa: F811
    conn = slack_connector(slack)
    jane = slack.user("U100", "jane", f"{FIRST} {LAST}")
    slack.post(jane, slack.dm(jane), "where is my order?")
    try:
        with running_engine(db_path, [conn]):
            cid = wait_until(lambda: live_store.queue(filter="all"), what="the inbound message")[0].customer_id
            live_store.set_fact(cid, "order number", "A-1042", "ann")
            rendered, sent = _send_and_capture(live_store, slack, cid, "slack")
    finally:
        conn.close()
    assert [s["text"] for s in sent] == rendered.parts
    assert sent[0]["text"] == "Hi &lt;b&gt;\u2217\u02cd&amp;,"
    assert sent[1]["text"].startswith("Order *A-1042*: shipped \u2217today\u2217 &amp; &lt;soon&gt;.")
    assert "<!" not in "".join(rendered.parts)


def test_template_e_mail_is_composed_exactly_as_rendered(store, make_inbound):
    import email
    import email.policy

    from connectors.email.compose import compose

    store.ingest(make_inbound("email", "jane@example.com", "where is it?", name=f"{FIRST} {LAST}",
                              subject="Order A-1042", account="shop"))
    cid = store.find_customer("jane@example.com")
    store.set_fact(cid, "order number", "A-1042", "ann")
    cfg = config_mod.validate({"channels": {"email": {"signature": "Shop Example <shop.example>"}}})
    rendered = T.render_for_customer(store, cid, "order-status", "email", "Ann Lee", VALUES, config=cfg,
                                     directory=T.STARTER_DIR)
    store.queue_reply(cid, rendered.source, "ann", subject=rendered.subject)
    [out] = store.claim_due()
    msg, _ = compose(out, {"from_address": "shop@example.com"})
    got = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    # the template's own subject, not theirs: no "Re:" for a subject they never used (theirs
    # would get one); the mail still answers theirs, in their thread
    assert got["Subject"] == "Your order A-1042"
    assert got["In-Reply-To"]
    def body(kind):  # as the customer's mail client decodes it (SMTP line ends are CRLF)
        return got.get_body((kind,)).get_content().replace("\r\n", "\n").rstrip("\n")

    assert body("plain") == rendered.text
    assert body("html") == rendered.html.rstrip("\n")
    assert rendered.text.startswith("Hello <b>*_&,\n\nHere is the latest on your order *A-1042*: shipped *today*")
    assert rendered.text.endswith("\n\nBest regards,\nAnn Lee\n\n-- \nShop Example <shop.example>")
    assert "&lt;b&gt;*_&amp;" in rendered.html and "<b>*_&" not in rendered.html
