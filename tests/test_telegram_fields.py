"""What the agent sees of each field of a Bot API Message: the real
python-telegram-bot against the loopback Bot API server. Two rules: someone
else's words are never shown as the customer's, and nothing sent goes unseen."""
from __future__ import annotations

import time

import pytest

from tests.support.chat import live_store, telegram_connector, tg  # noqa: F401

JANE = {"id": 1001, "is_bot": False, "first_name": "Jane", "last_name": "Roe", "username": "janeroe"}
BOB = {"id": 2002, "is_bot": False, "first_name": "Bob", "username": "bobli"}


@pytest.fixture
def conn(tg):
    c = telegram_connector(tg)
    yield c
    c.close()


def pull(conn, store):
    batch = conn.fetch(store.load_cursor(conn.name))
    return store.ingest_batch(batch.items, conn.name, batch.cursor)


def messages(store):
    return [m for r in store.queue(filter="all") for m in store.timeline(r.customer_id, limit=1000)]


def test_stickers_keep_their_real_format(tg, conn, store):
    """shared/cases/tg-sticker-formats: WEBP, TGS (gzipped Lottie) and WEBM."""
    tg.send_sticker(JANE, b"RIFF....WEBPVP8 ", "static")
    tg.send_sticker(JANE, b"\x1f\x8b\x08lottie", "animated", emoji="\U0001F389")
    tg.send_sticker(JANE, b"\x1aE\xdf\xa3webm", "video")
    pull(conn, store)
    got = [(a.filename, a.content_type, open(a.path, "rb").read()[:4]) for m in messages(store) for a in m.attachments]
    assert got == [("sticker_1.webp", "image/webp", b"RIFF"), ("sticker_2.tgs", "application/x-tgsticker", b"\x1f\x8b\x08l"),
                   ("sticker_3.webm", "video/webm", b"\x1aE\xdf\xa3")]
    assert [m.text for m in messages(store)] == ["[sticker \U0001F600]", "[sticker \U0001F389]", "[sticker \U0001F600]"]


def test_forwards_are_someone_elses_words(tg, conn, store):
    when = int(time.time()) - 3600
    tg.send_message(JANE, text="my card was charged twice",
                    forward_origin={"type": "user", "date": when, "sender_user": BOB})
    tg.send_message(JANE, text="you will be refunded",
                    forward_origin={"type": "hidden_user", "date": when, "sender_user_name": "Support Agent"})
    tg.send_message(JANE, text="Outage today", forward_origin={
        "type": "channel", "date": when, "message_id": 7, "author_signature": "Ops",
        "chat": {"id": -1001, "type": "channel", "title": "Shop News", "username": "shopnews"}})
    pull(conn, store)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(when))
    assert [m.text for m in messages(store)] == [
        f"[forwarded from Bob (@bobli), {stamp}]\n> my card was charged twice",
        f"[forwarded from Support Agent (hidden account), {stamp}]\n> you will be refunded",
        f"[forwarded from Ops in Shop News (@shopnews), {stamp}]\n> Outage today"]
    assert messages(store)[0].meta["forwarded_from"] == "Bob (@bobli)"


def test_a_forwarded_contact_does_not_become_the_customers_phone(tg, conn, store, make_inbound):
    store.ingest(make_inbound("email", "bob@example.com", "hello", name="Bob Li", phones=("+15551234567",)))
    tg.send_message(JANE, contact={"phone_number": "+15551234567", "first_name": "Jane", "user_id": 1001},
                    forward_origin={"type": "user", "date": int(time.time()), "sender_user": BOB})
    pull(conn, store)
    assert len(store.queue(filter="all")) == 2  # Jane's card forwarded from Bob links nobody
    [m] = [m for m in messages(store) if m.channel == "telegram"]
    assert m.text.startswith("[forwarded from Bob (@bobli)") and "> [shared contact: Jane, +15551234567]" in m.text


def test_quotes_replies_and_stories(tg, conn, store):
    group = {"id": -500, "type": "supergroup", "title": "Shop help"}
    bobs = tg.send_text(BOB, "the blue one is sold out", chat=group)
    tg.send_message(JANE, chat=group, reply_to=bobs, text="is that true?",
                    quote={"text": "sold out", "position": 16})
    tg.send_message(JANE, chat=group, reply_to=bobs, text="really?")
    tg.send_message(JANE, text="love it", reply_to_story={"chat": {"id": -1001, "type": "channel",
                                                                    "title": "Shop News"}, "id": 3})
    tg.send_message(JANE, text="what does this mean?", quote={"text": "price drops Friday", "position": 0},
                    external_reply={"origin": {"type": "channel", "date": int(time.time()), "message_id": 9,
                                               "chat": {"id": -1001, "type": "channel", "title": "Shop News"}},
                                    "chat": {"id": -1001, "type": "channel", "title": "Shop News"}})
    tg.send_message(JANE, story={"chat": {"id": -1001, "type": "channel", "title": "Shop News"}, "id": 4})
    pull(conn, store)
    texts = {m.text for m in messages(store)}
    assert "[in reply to Bob (@bobli), quoting:]\n> sold out\nis that true?" in texts
    assert "[in reply to Bob (@bobli):]\n> the blue one is sold out\nreally?" in texts
    assert "[in reply to a story by Shop News]\nlove it" in texts
    assert ("[in reply to a message by Shop News in Shop News, quoting:]\n> price drops Friday\n"
            "what does this mean?") in texts
    assert "[shared a story by Shop News]" in texts


def test_content_kinds_all_show(tg, conn, store):
    tg.send_message(JANE, poll={"id": "p1", "question": "Which colour?", "options": [
        {"text": "blue", "voter_count": 0, "persistent_id": "o1"},
        {"text": "green", "voter_count": 0, "persistent_id": "o2"}], "total_voter_count": 0,
        "is_closed": False, "is_anonymous": True, "type": "regular", "allows_multiple_answers": False,
        "allows_revoting": False, "members_only": False})
    tg.send_message(JANE, dice={"emoji": "\U0001F3B2", "value": 4})
    tg.send_message(JANE, venue={"location": {"latitude": 51.5, "longitude": -0.12}, "title": "Shop",
                                 "address": "1 High St"}, location={"latitude": 51.5, "longitude": -0.12})
    tg.send_message(JANE, location={"latitude": 51.5, "longitude": -0.12, "live_period": 900})
    tg.send_message(JANE, text="gif", via_bot={"id": 99, "is_bot": True, "first_name": "GIF", "username": "gif"},
                    animation={**tg.add_file(b"gif", "animations", "mp4"), "width": 1, "height": 1, "duration": 1,
                               "file_name": "funny.mp4", "mime_type": "video/mp4"},
                    document={**tg.add_file(b"gif", "documents", "mp4"), "file_name": "funny.mp4",
                              "mime_type": "video/mp4"})
    tg.send_message(JANE, audio={**tg.add_file(b"mp3", "music", "mp3"), "duration": 200, "performer": "Band",
                                 "title": "Song", "mime_type": "audio/mpeg", "file_name": "song.mp3"})
    tg.send_message(JANE, successful_payment={"currency": "EUR", "total_amount": 1250, "invoice_payload": "order-881",
                                              "telegram_payment_charge_id": "tg1", "provider_payment_charge_id": "p1"})
    tg.send_message(JANE, text="hi", some_future_field={"x": 1})
    pull(conn, store)
    msgs = messages(store)
    assert [m.text for m in msgs] == [
        "[poll: Which colour? — blue / green]",
        "[dice \U0001F3B2: 4]",
        "[venue: Shop, 1 High St (51.50000, -0.12000)]",
        "[location: 51.50000, -0.12000 (live location)]",
        "gif\n[sent via the bot GIF (@gif)]",
        "[audio: Band – Song]",
        "[payment received: 1250 EUR (minor units), charge tg1, payload 'order-881']",
        "hi\n[this message also has some_future_field, which omnidesk cannot show]"]
    assert [a.filename for a in msgs[4].attachments] == ["funny.mp4"]  # a GIF is not also a document
    assert [a.filename for a in msgs[5].attachments] == ["song.mp3"]


def test_service_messages_and_channel_copies_are_not_messages(tg, conn, store):
    group = {"id": -500, "type": "supergroup", "title": "Shop help"}
    tg.send_message(JANE, chat=group, new_chat_members=[BOB])
    tg.send_message(JANE, chat=group, pinned_message={"message_id": 1, "date": 0, "chat": group})
    tg.send_message(JANE, chat=group, new_chat_title="Shop help 2")
    tg.send_message({**JANE, "id": 777000, "first_name": "Telegram"}, chat=group, text="channel post copy",
                    is_automatic_forward=True, sender_chat={"id": -1001, "type": "channel", "title": "Shop News"})
    tg.send_message(JANE, chat=group, text="a real question")
    pull(conn, store)
    assert [m.text for m in messages(store)] == ["a real question"]


def test_a_message_sent_as_a_chat_is_that_chats(tg, conn, store):
    group = {"id": -500, "type": "supergroup", "title": "Shop help"}
    anon = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}
    tg.send_message(anon, chat=group, text="admins here: is the shop open?", sender_chat=group)
    pull(conn, store)
    [row] = store.queue(filter="all")
    assert row.name == "Shop help"
    [m] = store.timeline(row.customer_id)
    assert m.text == "admins here: is the shop open?" and m.meta["sender_chat"] == -500


def test_entities_are_readable_and_quoted_words_marked(tg, conn, store):
    text = "Bold and here and a quote from the shop\nthanks"
    tg.send_message(JANE, text=text, entities=[
        {"type": "bold", "offset": 0, "length": 4},
        {"type": "text_link", "offset": 9, "length": 4, "url": "https://shop.example/o/881"},
        {"type": "spoiler", "offset": 0, "length": 4},
        {"type": "blockquote", "offset": 18, "length": 21}])
    pull(conn, store)
    [m] = messages(store)
    assert m.text == "Bold and here (https://shop.example/o/881) and\n> a quote from the shop\nthanks"
    assert store.search("881")


def test_a_reply_quoting_a_formatted_message_round_trips(tg, conn, live_store):
    text = "see this page please"
    tg.send_message(JANE, text=text, entities=[{"type": "text_link", "offset": 4, "length": 9,
                                                "url": "https://shop.example/o/881"},
                                               {"type": "bold", "offset": 14, "length": 6}])
    pull(conn, live_store)
    [row] = live_store.queue(filter="all")
    [m] = live_store.timeline(row.customer_id)
    assert m.text == "see this page (https://shop.example/o/881) please"
    live_store.queue_reply(row.customer_id, "> " + m.text + "\n\nThat page is right.", "ann")
    [out] = live_store.claim_due()
    conn.send(out)
    [sent] = tg.wait_sent(1)
    assert sent["text"].startswith("see this page (https://shop.example/o/881) please")  # as the customer sees it
    assert "https://shop.example/o/881" in sent["html"] and "<blockquote>" in sent["html"]


def test_video_messages_spoilers_games_and_gifts_are_not_missed(tg, conn, store):
    tg.send_message(JANE, video_note={**tg.add_file(b"vn", "video_notes", "mp4"), "length": 240, "duration": 75})
    tg.send_message(JANE, photo=[{**tg.add_file(b"ph", "photos", "jpg"), "width": 9, "height": 9}],
                    has_media_spoiler=True)
    tg.send_message(JANE, game={"title": "Lucky Box", "description": "d", "photo": []})
    pull(conn, store)
    msgs = messages(store)
    assert [m.text for m in msgs] == ["[video message, 1:15]", "[sent hidden as a spoiler]", "[game: Lucky Box]"]
    assert [a.filename for a in msgs[0].attachments] == ["video_note_1.mp4"]
