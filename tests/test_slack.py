"""Slack: the real slack_sdk WebClient (polling) against the loopback Web API server."""
from __future__ import annotations

import threading
import time

import pytest

from connectors.slack import plain_text
from store.models import AttachmentIn
from tests.support.chat import live_store, running_engine, slack, slack_connector, wait_until  # noqa: F401


@pytest.fixture
def conn(slack):
    c = slack_connector(slack, poll_seconds=0, calls_per_minute=100_000)
    yield c
    c.close()


def pull(conn, store):
    """One engine round: wait until the connector's next poll is due (as the engine does),
    then fetch from the saved cursor and ingest with the cursor."""
    conn.wait(10.0, threading.Event())
    batch = conn.fetch(store.load_cursor(conn.name))
    return store.ingest_batch(batch.items, conn.name, batch.cursor)


def customers(store):
    return [store.customer(r.customer_id) for r in store.queue(filter="all")]


def texts(store, cid):
    return [m.text for m in store.timeline(cid, limit=10_000)]


@pytest.mark.parametrize("email_first", [True, False])
def test_profile_email_makes_the_slack_user_and_the_email_sender_one_customer(slack, conn, store, make_inbound,
                                                                              email_first):
    email = make_inbound("email", "Jane.Roe@Example.com", "my order is late", name="Jane Roe",
                         sent_at=time.time() - 60)
    if email_first:
        store.ingest(email)
    jane = slack.user("U100", "jane", "Jane Roe", email="jane.roe@example.com")
    slack.post(jane, slack.dm(jane), "following up on my e-mail")
    pull(conn, store)
    if not email_first:
        store.ingest(email)
    [customer] = customers(store)
    assert sorted((i.channel, i.address) for i in customer.identities) == [
        ("email", "jane.roe@example.com"), ("slack", "U100")]
    assert texts(store, customer.id) == ["my order is late", "following up on my e-mail"]
    slack_ident = next(i for i in customer.identities if i.channel == "slack")
    assert slack_ident.display_name == "Jane Roe" and slack_ident.handle == "jane"


def test_dms_group_dms_and_channels_the_bot_is_in(slack, conn, store):
    jane = slack.user("U100", "jane", "Jane Roe")
    bob = slack.user("U200", "bob", "Bob Li")
    slack.post(jane, slack.dm(jane), "dm from jane")
    slack.post(bob, slack.group_dm([jane, bob]), "group dm from bob")
    slack.post(jane, slack.channel("support", [jane, bob]), "in #support")
    slack.post(bob, slack.channel("private-help", [bob], private=True), "in a private channel")
    slack.post(bob, slack.channel("random", [bob], bot_member=False), "bot is not here")
    pull(conn, store)
    got = {c.name: texts(store, c.id) for c in customers(store)}
    assert got == {"Jane Roe": ["dm from jane", "in #support"],
                   "Bob Li": ["group dm from bob", "in a private channel"]}
    pull(conn, store)  # a second poll, due and run, stores nothing twice
    assert {c.name: texts(store, c.id) for c in customers(store)} == got


def test_history_is_paginated_and_ordered(slack, conn, store):
    jane = slack.user("U100", "jane", "Jane Roe")
    dm = slack.dm(jane)
    for i in range(450):
        slack.post(jane, dm, f"m{i}")
    pull(conn, store)
    [c] = customers(store)
    assert texts(store, c.id) == [f"m{i}" for i in range(450)]
    assert slack.count("conversations.history") == 3  # pages of 200


def test_bots_own_messages_are_not_customers(slack, conn, live_store):
    jane = slack.user("U100", "jane", "Jane Roe")
    dm = slack.dm(jane)
    slack.post(jane, dm, "hi")
    pull(conn, live_store)
    cid = customers(live_store)[0].id
    live_store.queue_reply(cid, "hello Jane", "ann")
    [out] = live_store.claim_due()
    conn.send(out)
    pull(conn, live_store)
    assert len(customers(live_store)) == 1 and texts(live_store, cid) == ["hi", "hello Jane"]


def test_thread_replies_are_read_and_keep_their_thread(slack, conn, store):
    jane = slack.user("U100", "jane", "Jane Roe")
    ch = slack.channel("support", [jane])
    parent = slack.post(jane, ch, "question")
    slack.post(jane, ch, "more detail", thread_ts=parent["ts"])
    pull(conn, store)
    [c] = customers(store)
    msgs = store.timeline(c.id)
    assert [m.text for m in msgs] == ["question", "more detail"]
    assert msgs[1].reply_to == msgs[0].external_id == f"{ch}:{parent['ts']}"
    assert msgs[1].meta["thread_ts"] == parent["ts"] and msgs[1].thread_key == f"{ch}:{parent['ts']}"
    slack.post(jane, ch, "and one more", thread_ts=parent["ts"])  # a new reply to an older thread
    pull(conn, store)
    assert texts(store, c.id) == ["question", "more detail", "and one more"]


def test_files_are_downloaded_with_the_token_and_capped(slack, store):
    conn = slack_connector(slack, poll_seconds=0, max_download_bytes=1000)
    jane = slack.user("U100", "jane", "Jane Roe")
    slack.post(jane, slack.dm(jane), "photo and logs", files=[("box.jpg", "image/jpeg", b"\xff\xd8jpeg"),
                                                              ("logs.zip", "application/zip", b"z" * 5000)])
    pull(conn, store)
    conn.close()
    [msg] = store.timeline(customers(store)[0].id)
    assert [(a.filename, a.content_type, a.size) for a in msg.attachments] == [
        ("box.jpg", "image/jpeg", 6), ("logs.zip", "application/zip", 5000)]
    assert open(msg.attachments[0].path, "rb").read() == b"\xff\xd8jpeg"
    assert msg.attachments[1].path is None  # listed, over the cap: not downloaded
    assert msg.text.startswith("photo and logs\n[logs.zip") and "not downloaded" in msg.text
    downloads = [p for m, p in slack.calls if m == "file download"]
    assert downloads == [{"file": downloads[0]["file"], "authorized": True}]


def test_edits_and_deletions_by_polling(slack, store):
    conn = slack_connector(slack, poll_seconds=0, rescan_seconds=0)
    jane = slack.user("U100", "jane", "Jane Roe")
    dm = slack.dm(jane)
    first = slack.post(jane, dm, "teh lid is cracked")
    second = slack.post(jane, dm, "oops wrong chat")
    pull(conn, store)
    slack.edit(first, "the lid is cracked")
    slack.delete(second)
    pull(conn, store)
    pull(conn, store)
    conn.close()
    msgs = store.timeline(customers(store)[0].id)
    assert msgs[0].text == "the lid is cracked" and msgs[0].previous_texts == ["teh lid is cracked"]
    assert msgs[1].deleted and msgs[1].text == "oops wrong chat"


def test_restart_loses_and_doubles_nothing(slack, store):
    jane = slack.user("U100", "jane", "Jane Roe")
    dm = slack.dm(jane)
    ch = slack.channel("support", [jane])
    parent = slack.post(jane, ch, "p")
    slack.post(jane, dm, "m0")
    first = slack_connector(slack, poll_seconds=0)
    assert len(first.fetch(store.load_cursor(first.name)).items) == 2  # then dies before the commit
    first.close()
    slack.post(jane, ch, "r1", thread_ts=parent["ts"])
    second = slack_connector(slack, poll_seconds=0)
    pull(second, store)
    slack.post(jane, dm, "m1")
    pull(second, store)
    second.close()
    slack.post(jane, ch, "r2", thread_ts=parent["ts"])
    slack.post(jane, dm, "m2")
    third = slack_connector(slack, poll_seconds=0, rescan_seconds=0)
    pull(third, store)
    pull(third, store)
    third.close()
    assert sorted(texts(store, customers(store)[0].id)) == ["m0", "m1", "m2", "p", "r1", "r2"]


def test_reply_goes_to_the_right_thread_with_mrkdwn(slack, conn, live_store, db_path):
    jane = slack.user("U100", "jane", "Jane Roe")
    bob = slack.user("U200", "bob", "Bob Li")
    ch = slack.channel("support", [jane, bob])
    asked = slack.post(jane, ch, "is the blue one in stock?")
    parent = slack.post(bob, ch, "shipping question")
    slack.post(bob, ch, "to Norway", thread_ts=parent["ts"])
    dm = slack.dm(bob)
    with running_engine(db_path, [conn]):
        wait_until(lambda: len(live_store.queue(filter="all")) == 2, what="two customers")
        by_name = {r.name: r.customer_id for r in live_store.queue(filter="all")}
        live_store.queue_reply(by_name["Jane Roe"], "**Yes**, _blue_ & <green> ship today", "ann")
        sent = slack.wait_sent(1)
        live_store.queue_reply(by_name["Bob Li"], "Norway is fine", "ann")  # answers the thread reply
        sent = slack.wait_sent(2)
        slack.post(bob, dm, "thanks!")
        wait_until(lambda: len(live_store.timeline(by_name["Bob Li"])) == 4, what="the DM")
        live_store.queue_reply(by_name["Bob Li"], "You're welcome", "ann")
        sent = slack.wait_sent(3)
    assert (sent[0]["channel"], sent[0]["thread_ts"]) == (ch, asked["ts"])  # a thread on the question
    assert sent[0]["text"] == "*Yes*, _blue_ &amp; &lt;green&gt; ship today"
    assert (sent[1]["channel"], sent[1]["thread_ts"]) == (ch, parent["ts"])  # stays in the thread
    assert (sent[2]["channel"], sent[2]["thread_ts"]) == (dm, None)  # DMs are answered inline


def test_long_reply_is_split(slack, conn, live_store, db_path):
    jane = slack.user("U100", "jane", "Jane Roe")
    slack.post(jane, slack.dm(jane), "details please")
    paragraphs = [f"Part {i}: " + "word " * 380 for i in range(5)]
    with running_engine(db_path, [conn]):
        cid = wait_until(lambda: live_store.queue(filter="all"), what="inbound")[0].customer_id
        mid = live_store.queue_reply(cid, "\n\n".join(paragraphs), "ann")
        sent = wait_until(lambda: slack.sent if len(slack.sent) >= 3 else None, what="three parts")
        wait_until(lambda: live_store.message(mid).state == "sent", what="receipt")
    assert len(sent) == 3 and all(len(s["text"]) <= 4000 for s in sent)
    assert all(s["text"].startswith("Part ") for s in sent)
    assert live_store.message(mid).meta["ts_parts"] == [s["ts"] for s in sent]


def test_files_are_uploaded_in_the_thread(slack, conn, live_store, db_path):
    jane = slack.user("U100", "jane", "Jane Roe")
    ch = slack.channel("support", [jane])
    asked = slack.post(jane, ch, "invoice?")
    with running_engine(db_path, [conn]):
        cid = wait_until(lambda: live_store.queue(filter="all"), what="inbound")[0].customer_id
        live_store.queue_reply(cid, "Attached.", "ann",
                               attachments=[AttachmentIn("invoice.pdf", "application/pdf", b"%PDF-1.4 x")])
        sent = slack.wait_sent(2)
    assert [s["method"] for s in sent] == ["chat.postMessage", "files.completeUploadExternal"]
    assert sent[1]["files"] == [{"name": "invoice.pdf", "title": "invoice.pdf", "data": b"%PDF-1.4 x"}]
    assert sent[1]["thread_ts"] == asked["ts"] and sent[1]["channel"] == ch


def health(store, name="slack:team"):
    return store.health().get(name, {}).get("state")


def test_rate_limit_server_error_and_bad_token_show_as_health_and_recover(slack, live_store, db_path):
    jane = slack.user("U100", "jane", "Jane Roe")
    dm = slack.dm(jane)
    conn = slack_connector(slack, poll_seconds=0.2)
    with running_engine(db_path, [conn]) as engine:
        slack.post(jane, dm, "one")
        wait_until(lambda: live_store.queue(filter="all"), what="first message")
        cid = live_store.queue(filter="all")[0].customer_id
        slack.fail(429, method="conversations.history", retry_after=4)
        wait_until(lambda: health(live_store) == "retrying", what="rate limit health")
        assert "retry after 4s" in live_store.health()["slack:team"]["detail"]
        slack.post(jane, dm, "two")
        wait_until(lambda: len(live_store.timeline(cid)) == 2 and health(live_store) == "ok", timeout=15,
                   what="recovery after 429")
        slack.fail(503, method="conversations.history", times=2)
        wait_until(lambda: health(live_store) == "retrying", what="5xx health")
        assert "server error 503" in live_store.health()["slack:team"]["detail"]
        slack.post(jane, dm, "three")
        wait_until(lambda: len(live_store.timeline(cid)) == 3 and health(live_store) == "ok", timeout=15,
                   what="recovery after 5xx")
        slack.revoke_token()
        wait_until(lambda: health(live_store) == "failed", what="bad token health")
        detail = live_store.health()["slack:team"]["detail"]
        assert "invalid_auth" in detail and slack.bot_token not in detail
        assert all(t.is_alive() for t in engine.threads)
        slack.restore_token()
        slack.post(jane, dm, "four")
        wait_until(lambda: len(live_store.timeline(cid)) == 4 and health(live_store) == "ok", timeout=15,
                   what="recovery after the token is fixed")
    assert slack.bot_token.encode() not in db_path.read_bytes()


def test_short_rate_limits_are_absorbed_by_the_client(slack, conn, store):
    jane = slack.user("U100", "jane", "Jane Roe")
    slack.post(jane, slack.dm(jane), "hi")
    slack.fail(429, method="conversations.history", retry_after=1)
    t0 = time.monotonic()
    assert len(pull(conn, store)) == 1
    assert time.monotonic() - t0 >= 1


def test_polling_interval_respects_the_tier_3_budget(slack):
    jane = slack.user("U100", "jane", "Jane Roe")
    for i in range(20):
        slack.channel(f"c{i}", [jane])
    conn = slack_connector(slack, poll_seconds=1, calls_per_minute=40)
    before = time.time()
    conn.fetch({})
    after = time.time()
    calls = slack.count("conversations.history")
    assert calls == 20
    assert conn.fetch({}).items == [] and slack.count("conversations.history") == 20  # not due yet
    # 20 calls at 40 a minute: the next poll is 30 s after this one ended (bounds, not a race with the clock)
    assert before + 20 * 60 / 40 <= conn._next_poll <= after + 20 * 60 / 40
    conn.close()


def test_plain_text_from_slack_markup():
    assert plain_text("hi <@U123|jane> see <https://x.y/a?b=1&amp;c=2|the page> &lt;3 &amp; <!here> "
                      "<mailto:a@b.c|a@b.c> <#C1|support>") == (
        "hi @jane see the page (https://x.y/a?b=1&c=2) <3 & @here a@b.c #support")


def test_a_reply_without_a_parent_opens_the_dm(slack, conn):
    from store.models import OutboundMessage

    jane = slack.user("U100", "jane", "Jane Roe")
    receipt = conn.send(OutboundMessage(outbox_id=1, message_id=1, channel="slack", account="team",
                                        to_address="U100", text="We have news about your order."))
    [sent] = slack.wait_sent(1)
    assert sent["channel"] == slack.dm(jane) and sent["thread_ts"] is None
    assert receipt.external_id == f"{sent['channel']}:{sent['ts']}"


def test_a_user_slack_cannot_describe_still_gets_their_message_in(slack, conn, store):
    stranger = {"id": "UEXTERNAL1"}  # e.g. a Slack Connect guest users.info does not know
    slack.post(stranger, slack.channel("shared", []), "hello from another workspace")
    pull(conn, store)
    [c] = customers(store)
    assert c.identities[0].address == "UEXTERNAL1" and texts(store, c.id) == ["hello from another workspace"]


def test_a_rate_limit_midway_through_a_long_reply_sends_each_part_once(slack, conn, live_store, db_path):
    jane = slack.user("U100", "jane", "Jane Roe")
    slack.post(jane, slack.dm(jane), "details please")
    with running_engine(db_path, [conn]):
        cid = wait_until(lambda: live_store.queue(filter="all"), what="inbound")[0].customer_id
        slack.fail(429, method="chat.postMessage", retry_after=4, skip=1)  # longer than the client absorbs
        mid = live_store.queue_reply(cid, "\n\n".join(f"P{i} " + "word " * 700 for i in range(3)), "ann")
        wait_until(lambda: live_store.message(mid).state == "sent", timeout=15, what="sent")
    assert [s["text"][:2] for s in slack.sent] == ["P0", "P1", "P2"]
    assert live_store.message(mid).attempts == 1
