"""Telegram: the real python-telegram-bot client against the loopback Bot API server."""
from __future__ import annotations

import threading
import time

import pytest

from store.models import AttachmentIn
from tests.support.chat import live_store, running_engine, telegram_connector, tg, wait_until  # noqa: F401


@pytest.fixture
def conn(tg):
    c = telegram_connector(tg)
    yield c
    c.close()


def pull(conn, store):
    """One engine-like round: fetch from the saved cursor, ingest with the cursor."""
    batch = conn.fetch(store.load_cursor(conn.name))
    return store.ingest_batch(batch.items, conn.name, batch.cursor)


def only_customer(store):
    rows = store.queue(filter="all")
    assert len(rows) == 1
    return store.customer(rows[0].customer_id)


def test_inbound_text_lands_under_the_customer(tg, conn, store):
    jane = tg.user(1001, "Jane", "Roe", "janeroe")
    tg.send_text(jane, "my order <b>#1042</b> arrived broken & wet")
    tg.send_text(jane, "hello?")
    assert len(pull(conn, store)) == 2
    customer = only_customer(store)
    assert customer.name == "Jane Roe"
    ident = customer.identities[0]
    assert (ident.channel, ident.address, ident.handle) == ("telegram", "1001", "janeroe")
    texts = [m.text for m in store.timeline(customer.id)]
    assert texts == ["my order <b>#1042</b> arrived broken & wet", "hello?"]  # untrusted text kept verbatim
    first = store.timeline(customer.id)[0]
    assert first.external_id == "1001:1" and first.meta["chat_id"] == 1001


def test_media_is_downloaded_and_oversized_files_are_recorded_not_fetched(tg, store):
    conn = telegram_connector(tg, max_download_bytes=1000)
    try:
        bob = tg.user(2002, "Bob", username=None)
        tg.send_photo(bob, b"\xff\xd8photo-bytes" * 10, caption="the box")
        tg.send_document(bob, b"%PDF-1.4 invoice", "invoice.pdf", "application/pdf")
        tg.send_voice(bob, b"OggS-voice")
        tg.send_video(bob, b"video-bytes", caption="unboxing")
        tg.send_document(bob, b"x" * 5000, "huge.zip", "application/zip")
        pull(conn, store)
    finally:
        conn.close()
    customer = only_customer(store)
    assert customer.name == "Bob"
    msgs = store.timeline(customer.id)
    assert [m.text for m in msgs[:4]] == ["the box", "", "[voice message, 0:03]", "unboxing"]
    got = [(a.filename, a.content_type, a.size) for m in msgs for a in m.attachments]
    assert got == [("photo_1.jpg", "image/jpeg", 130), ("invoice.pdf", "application/pdf", 16),
                   ("voice_3.ogg", "audio/ogg", 10), ("video.mp4", "video/mp4", 11),
                   ("huge.zip", "application/zip", 5000)]  # listed, content not kept
    assert open(msgs[1].attachments[0].path, "rb").read() == b"%PDF-1.4 invoice"
    assert "huge.zip" in msgs[4].text and "not downloaded" in msgs[4].text
    assert msgs[4].attachments[0].path is None and msgs[4].meta["skipped_files"][0]["size"] == 5000
    assert tg.count("getFile") == 4  # the big one was never requested


def test_edit_updates_the_message_and_keeps_the_earlier_text(tg, conn, store):
    jane = tg.user(1001, "Jane", "Roe")
    sent = tg.send_text(jane, "the lid is cracked")
    pull(conn, store)
    tg.edit(sent, "the lid and the base are cracked")
    pull(conn, store)
    msgs = store.timeline(only_customer(store).id)
    assert len(msgs) == 1
    assert msgs[0].text == "the lid and the base are cracked"
    assert msgs[0].previous_texts == ["the lid is cracked"]
    assert msgs[0].edited_at is not None


def test_reply_to_a_specific_message_is_kept(tg, conn, store):
    jane = tg.user(1001, "Jane")
    first = tg.send_text(jane, "order 1042")
    tg.send_text(jane, "about this one", reply_to=first)
    pull(conn, store)
    msgs = store.timeline(only_customer(store).id)
    assert msgs[1].reply_to == "1001:1" == msgs[0].external_id


def test_shared_contact_phone_links_to_the_email_customer(tg, conn, store, make_inbound):
    store.ingest(make_inbound("email", "jane@example.com", "order question", name="Jane Roe",
                              phones=("+44 20 7946 0958",)))
    jane = tg.user(1001, "Jane", "R.")
    tg.send_text(jane, "hi, it's Jane from the e-mail")
    tg.share_contact(jane, "+442079460958")
    tg.share_location(jane, 51.50135, -0.14189)
    pull(conn, store)
    customer = only_customer(store)
    assert sorted(i.channel for i in customer.identities) == ["email", "telegram"]
    assert "+442079460958" in store.timeline(customer.id)[-2].text
    assert store.timeline(customer.id)[-1].text == "[location: 51.50135, -0.14189]"


def test_someone_elses_contact_does_not_link(tg, conn, store, make_inbound):
    store.ingest(make_inbound("email", "bob@example.com", "hi", phones=("+442079460958",)))
    jane = tg.user(1001, "Jane")
    msg = tg._customer_message(jane, None, None, contact={"phone_number": "+442079460958", "first_name": "Bob",
                                                          "user_id": 2002})
    assert msg["contact"]["user_id"] != jane["id"]
    pull(conn, store)
    assert len(store.queue(filter="all")) == 2


def test_reply_reaches_the_chat_in_html_answering_the_message(tg, conn, live_store, db_path):
    jane = tg.user(1001, "Jane", "Roe")
    tg.send_text(jane, "is <this> & that in stock?")
    with running_engine(db_path, [conn]):
        cid = wait_until(lambda: live_store.queue(filter="all"), what="the inbound message")[0].customer_id
        mid = live_store.queue_reply(cid, "**Yes!** Both <this> & that ship today.\n\n- fast\n- free", "ann")
        sent = tg.wait_sent(1)
        wait_until(lambda: live_store.message(mid).state == "sent", what="the receipt")
    assert len(sent) == 1
    out = sent[0]
    assert out["chat_id"] == 1001 and out["parse_mode"] == "HTML" and out["reply_to"] == 1
    assert out["html"].startswith("<b>Yes!</b> Both &lt;this&gt; &amp; that")
    assert out["text"].startswith("Yes! Both <this> & that ship today.")
    assert live_store.message(mid).external_id == f"1001:{out['message_id']}"


def test_long_reply_is_split_at_paragraphs(tg, conn, live_store, db_path):
    tg.send_text(tg.user(1001, "Jane"), "tell me everything")
    paragraphs = [f"Paragraph {i}: " + "word " * 400 for i in range(5)]  # ~2,000 characters each
    with running_engine(db_path, [conn]):
        cid = wait_until(lambda: live_store.queue(filter="all"), what="inbound")[0].customer_id
        live_store.queue_reply(cid, "\n\n".join(paragraphs), "ann")
        sent = wait_until(lambda: tg.sent if len(tg.sent) >= 3 else None, what="three parts")
    assert len(sent) == 3
    assert all(len(s["text"]) <= 4096 for s in sent)
    assert [s["reply_to"] for s in sent] == [1, None, None]
    for s in sent:  # each part holds whole paragraphs
        assert s["text"].startswith("Paragraph ")
    joined = "\n\n".join(s["text"] for s in sent)
    assert [p.strip() for p in joined.split("\n\n")] == [p.strip() for p in paragraphs]


def test_attachments_are_sent(tg, conn, live_store, db_path):
    tg.send_text(tg.user(1001, "Jane"), "invoice please")
    with running_engine(db_path, [conn]):
        cid = wait_until(lambda: live_store.queue(filter="all"), what="inbound")[0].customer_id
        live_store.queue_reply(cid, "Here it is.", "ann", attachments=[
            AttachmentIn("invoice-1042.pdf", "application/pdf", b"%PDF-1.4 ..."),
            AttachmentIn("label.png", "image/png", b"\x89PNG...")])
        sent = tg.wait_sent(3)
    assert [s["method"] for s in sent] == ["sendMessage", "sendDocument", "sendPhoto"]
    assert sent[1]["file"]["filename"] == "invoice-1042.pdf" and sent[1]["file"]["data"] == b"%PDF-1.4 ..."


def test_restart_loses_and_doubles_nothing(tg, store):
    jane = tg.user(1001, "Jane")
    for i in range(3):
        tg.send_text(jane, f"m{i}")
    first = telegram_connector(tg)
    batch = first.fetch(store.load_cursor(first.name))  # fetched, then the process dies before the commit
    assert len(batch.items) == 3
    first.close()
    second = telegram_connector(tg)
    pull(second, store)
    tg.send_text(jane, "m3")
    pull(second, store)
    second.close()
    third = telegram_connector(tg)  # a clean restart from the saved offset
    tg.send_text(jane, "m4")
    pull(third, store)
    pull(third, store)
    third.close()
    assert [m.text for m in store.timeline(only_customer(store).id)] == ["m0", "m1", "m2", "m3", "m4"]
    assert tg.pending_updates() == 0  # everything was confirmed to Telegram


def test_restart_with_the_engine(tg, live_store, db_path):
    jane = tg.user(1001, "Jane")
    tg.send_text(jane, "before")
    conn = telegram_connector(tg)
    with running_engine(db_path, [conn]):
        wait_until(lambda: live_store.queue(filter="all"), what="first message")
    tg.send_text(jane, "while stopped")
    conn = telegram_connector(tg)
    with running_engine(db_path, [conn]):
        cid = live_store.queue(filter="all")[0].customer_id
        wait_until(lambda: len(live_store.timeline(cid)) == 2, what="second message")
        tg.send_text(jane, "after")
        wait_until(lambda: len(live_store.timeline(cid)) == 3, what="third message")
    assert [m.text for m in live_store.timeline(cid)] == ["before", "while stopped", "after"]


def health(store, name="telegram:shop"):
    return store.health().get(name, {}).get("state")


def test_rate_limit_and_server_errors_show_as_health_and_recover(tg, conn, live_store, db_path):
    jane = tg.user(1001, "Jane")
    tg.fail(429, method="getUpdates", retry_after=1)
    with running_engine(db_path, [conn]):
        wait_until(lambda: health(live_store) == "retrying", what="retrying health")
        assert "retry after 1s" in live_store.health()["telegram:shop"]["detail"]
        tg.send_text(jane, "are you there?")
        wait_until(lambda: health(live_store) == "ok" and live_store.queue(filter="all"), what="recovery")
        tg.fail(502, method="getUpdates", times=2)
        wait_until(lambda: health(live_store) == "retrying", what="5xx health")
        assert "Telegram server error" in live_store.health()["telegram:shop"]["detail"]
        tg.send_text(jane, "still there?")
        cid = live_store.queue(filter="all")[0].customer_id
        wait_until(lambda: len(live_store.timeline(cid)) == 2 and health(live_store) == "ok", what="recovery")


def test_bad_token_is_a_clear_failure_without_the_token(tg, live_store, db_path):
    tg.revoke_token()
    conn = telegram_connector(tg)
    with running_engine(db_path, [conn]) as engine:
        wait_until(lambda: health(live_store) == "failed", what="failed health")
        detail = live_store.health()["telegram:shop"]["detail"]
        assert "rejected the bot token" in detail and tg.token not in detail
        assert engine.threads and all(t.is_alive() for t in engine.threads)  # the engine keeps running
        tg.restore_token()
        tg.send_text(tg.user(1001, "Jane"), "hello")
        wait_until(lambda: health(live_store) == "ok" and live_store.queue(filter="all"), what="recovery")
    assert tg.token.encode() not in db_path.read_bytes()


def test_send_rate_limit_is_retried(tg, conn, live_store, db_path):
    tg.send_text(tg.user(1001, "Jane"), "hi")
    tg.fail(429, method="sendMessage", retry_after=1)
    with running_engine(db_path, [conn]):
        cid = wait_until(lambda: live_store.queue(filter="all"), what="inbound")[0].customer_id
        mid = live_store.queue_reply(cid, "hello", "ann")
        wait_until(lambda: live_store.message(mid).state == "sent", what="sent after the rate limit")
        assert live_store.message(mid).attempts == 2
    assert [s["text"] for s in tg.sent] == ["hello"]


def test_wait_long_polls_and_honours_stop(tg, store):
    conn = telegram_connector(tg, long_poll=50)  # a long poll outlasts any slowness of the machine
    try:
        pull(conn, store)
        stop = threading.Event()
        t0 = time.monotonic()
        threading.Timer(0.3, lambda: tg.send_text(tg.user(1001, "Jane"), "wake up")).start()
        conn.wait(60, stop)
        assert 0.25 < time.monotonic() - t0 < 50  # woke up when the message arrived, not at the timeout
        assert len(pull(conn, store)) == 1
        assert tg.count("getUpdates") == 2  # the long poll's result was used, not fetched again
        threading.Timer(0.2, stop.set).start()
        t0 = time.monotonic()
        conn.wait(60, stop)
        assert time.monotonic() - t0 < 50  # stopped, not timed out
    finally:
        conn.close()


def test_the_token_never_reaches_the_logs(tg, store, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    conn = telegram_connector(tg)
    try:
        tg.send_document(tg.user(1001, "Jane"), b"data", "a.txt", "text/plain")
        pull(conn, store)
        tg.revoke_token()
        with pytest.raises(Exception):
            conn.fetch(store.load_cursor(conn.name))
    finally:
        conn.close()
    assert "getUpdates" in caplog.text  # the libraries did log their requests
    assert tg.token not in caplog.text


def test_group_chat_messages_are_answered_in_the_group(tg, conn, live_store, db_path):
    jane = tg.user(1001, "Jane", "Roe")
    group = tg.group(-100555, "Wholesale buyers")
    tg.send_text(jane, "do you ship to Oslo?", chat=group)
    with running_engine(db_path, [conn]):
        cid = wait_until(lambda: live_store.queue(filter="all"), what="inbound")[0].customer_id
        [msg] = live_store.timeline(cid)
        assert msg.external_id == "-100555:1" and msg.meta["chat_type"] == "group"
        live_store.queue_reply(cid, "We do.", "ann")
        [sent] = tg.wait_sent(1)
    assert sent["chat_id"] == -100555 and sent["reply_to"] == 1


def test_hostile_file_names_are_made_safe(tg, conn, store):
    tg.send_document(tg.user(1001, "Jane"), b"echo pwned", "../../.bashrc", "text/plain")
    tg.send_document(tg.user(1001, "Jane"), b"x", "\u202egnp.exe", "application/octet-stream")
    pull(conn, store)
    names = [a.filename for m in store.timeline(only_customer(store).id) for a in m.attachments]
    assert names == ["bashrc", "gnp.exe"]


def test_a_reply_without_a_parent_goes_to_the_private_chat(tg, conn):
    from store.models import OutboundMessage

    tg.send_text(tg.user(1001, "Jane"), "hi")  # the bot may only write to people who wrote first
    receipt = conn.send(OutboundMessage(outbox_id=1, message_id=1, channel="telegram", account="shop",
                                        to_address="1001", text="Your order shipped."))
    [sent] = tg.wait_sent(1)
    assert sent["chat_id"] == 1001 and sent["reply_to"] is None and receipt.external_id == f"1001:{sent['message_id']}"


def test_a_webhook_on_the_bot_is_a_clear_failure(tg, conn, store):
    from connectors.base import PermanentError

    tg.webhook_url = "https://example.com/hook"
    with pytest.raises(PermanentError, match="webhook"):
        conn.fetch({})


def test_a_flood_limit_midway_through_a_long_reply_sends_each_part_once(tg, conn, live_store, db_path):
    tg.send_text(tg.user(1001, "Jane"), "tell me everything")
    with running_engine(db_path, [conn]):
        cid = wait_until(lambda: live_store.queue(filter="all"), what="inbound")[0].customer_id
        tg.fail(429, method="sendMessage", retry_after=1, skip=1)  # the second part is rate-limited
        mid = live_store.queue_reply(cid, "\n\n".join(f"P{i} " + "word " * 700 for i in range(3)), "ann")
        wait_until(lambda: live_store.message(mid).state == "sent", timeout=15, what="sent")
    assert [s["text"][:2] for s in tg.sent] == ["P0", "P1", "P2"]
    assert tg.count("sendMessage") == 4 and live_store.message(mid).attempts == 1


def test_a_backlog_comes_in_batches_in_order(tg, conn, store):
    jane = tg.user(1001, "Jane")
    for i in range(250):
        tg.send_text(jane, f"m{i}")
    mores = []
    while True:
        batch = conn.fetch(store.load_cursor(conn.name))
        store.ingest_batch(batch.items, conn.name, batch.cursor)
        mores.append((len(batch.items), batch.more))
        if not batch.more:
            break
    assert mores == [(100, True), (100, True), (50, False)]
    assert [m.text for m in store.timeline(only_customer(store).id, limit=1000)] == [f"m{i}" for i in range(250)]
