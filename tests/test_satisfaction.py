"""Satisfaction answers as customers really give them: forms and languages, the new text
of a mail, a Telegram reply to the question, a Slack reply in its thread."""
from __future__ import annotations

import pytest

from connectors import config as config_mod
from connectors.desk import templates
from connectors.desk.automation import Automation
from connectors.desk.satisfaction import parse_answer
from store.models import Receipt
from tests.conftest import inbound
from tests.support.chat import slack, tg  # noqa: F401 - fixtures

pytestmark = pytest.mark.both_backends


@pytest.mark.parametrize("text,score", [
    ("5/5", 5), ("4 out of 5", 4), ("3 of 5", 3), ("5 stars!", 5), ("4,0/5", 4), ("5️⃣", 5),
    ("★★★★☆", 4), ("⭐⭐⭐⭐⭐", 5), (":star::star::star:", 3), ("***", 3), (":+1::skin-tone-3:", 5),
    ("👍👍", 5), ("🙂", 4), ("😡", 1), ("<@U0BOT> 4", 4), ("sehr gut, danke", 5), ("4 von 5", 4),
    ("très bien, merci !", 5), ("excelente", 5), ("bueno", 4), ("slecht", 2), ("ottimo", 5), ("bra, tack", 4),
    ("5:", 5),
    # not ratings: they stay normal messages
    ("10/10", None), ("5 more chairs please", None), ("0", None), ("******", None), ("☆☆☆☆☆", None),
    ("is 5 the order number?", None), ("good morning, my parcel is late", None),
])
def test_common_forms_and_languages(text, score):
    assert parse_answer(text) == score


def _desk(tmp_path, store):
    templates.install_starter_templates(tmp_path / "templates")
    cfg = config_mod.validate({"satisfaction": {"template": "closing"}}, tmp_path / "config.toml")
    auto = Automation(cfg, rules_path=tmp_path / "rules.toml", timer_every=0)
    store.on_ingest[:] = [lambda results: auto.on_ingest(store, results)]
    return auto


def _asked(store, clock, auto, channel="telegram", **kw) -> tuple[int, int]:
    """A case answered by a person and closed; the question sent. (customer, question)."""
    [r] = store.ingest_batch([inbound(channel, text="where is my parcel?", sent_at=clock.now, **kw)])
    clock.advance(60)
    store.queue_reply(r.customer_id, "It left today.", "ann")
    store.set_status(r.customer_id, "done", "ann")
    auto.tick(store)
    [question] = [m for m in store.timeline(r.customer_id) if m.author == "satisfaction"]
    return r.customer_id, question.id


def _send(store, message_id, external_id, **meta):
    """What the engine does once the channel took the message."""
    for out in store.claim_due(limit=100):
        store.mark_sent(out.outbox_id, Receipt(external_id if out.message_id == message_id else f"x-{out.outbox_id}",
                                               meta if out.message_id == message_id else {}))


def test_a_telegram_reply_to_the_question_counts_even_after_other_messages(store, clock, tmp_path):
    auto = _desk(tmp_path, store)
    cid, question = _asked(store, clock, auto)
    _send(store, question, "1001:77")
    clock.advance(30)
    store.ingest_batch([inbound(text="oh and one more thing: can I change the address?", sent_at=clock.now)])
    assert store.customer(cid).status == "open"  # a normal message, as it was
    clock.advance(30)
    store.ingest_batch([inbound(text="4", sent_at=clock.now)])  # not a reply to the question: a message
    assert store.events(kind="satisfaction") == []
    clock.advance(30)
    store.ingest_batch([inbound(text="5 ⭐", sent_at=clock.now, reply_to="1001:77")])  # Telegram's "reply" to it
    [ev] = store.events(kind="satisfaction")
    assert ev.data["score"] == 5 and ev.customer_id == cid


def test_a_slack_reply_in_the_questions_thread_counts(store, clock, tmp_path):
    auto = _desk(tmp_path, store)
    cid, question = _asked(store, clock, auto, channel="slack", address="U42")
    _send(store, question, "D42:1790000100.000200")
    clock.advance(30)
    store.ingest_batch([inbound("slack", "U42", text="<@U0BOT> :star::star::star::star:", sent_at=clock.now,
                                reply_to="D42:1790000100.000200", thread_key="D42:1790000100.000200",
                                meta={"thread_ts": "1790000100.000200"})])
    [ev] = store.events(kind="satisfaction")
    assert ev.data["score"] == 4 and store.customer(cid).status == "done"


def test_an_email_rating_is_read_above_the_quote_and_the_question_keeps_the_thread(store, clock, tmp_path):
    auto = _desk(tmp_path, store)
    cid, question = _asked(store, clock, auto, channel="email", address="jane@example.com",
                           subject="Parcel 1234", external_id="q1@example.com")
    q = store.message(question)
    assert q.subject == "Re: Parcel 1234" and q.reply_to == "q1@example.com"
    [ev] = store.events(cid, kind="survey")
    assert ev.actor == "satisfaction" and ev.data["message_id"] == question
    assert not [e for e in store.events(cid, kind="reply") if e.actor != "ann"]
    _send(store, question, "survey1@shop.test")
    clock.advance(30)
    quoted = "> I'm glad we could sort this out.\n> **How did we do?** Reply with a number from 1 (poor) to 5 (great)"
    store.ingest_batch([inbound("email", "jane@example.com", text=f"5\n\nOn Monday, Shop wrote:\n{quoted}",
                                sent_at=clock.now, subject="Re: Parcel 1234", reply_to="survey1@shop.test",
                                meta={"new_text": "5"})])
    [ev] = store.events(kind="satisfaction")
    assert ev.data["score"] == 5 and ev.data["answer"] == "5"
    assert store.customer(cid).status == "done" and store.queue_count("waiting") == 0


def test_an_answer_that_is_not_a_rating_stays_a_normal_message(store, clock, tmp_path):
    auto = _desk(tmp_path, store)
    cid, question = _asked(store, clock, auto)
    _send(store, question, "1001:78")
    clock.advance(30)
    store.ingest_batch([inbound(text="5 more chairs please", sent_at=clock.now, reply_to="1001:78")])
    assert store.events(kind="satisfaction") == [] and store.customer(cid).status == "open"
    assert store.queue("waiting")[0].customer_id == cid


def test_a_telegram_reply_quoting_the_question_counts(store, clock, tmp_path):
    auto = _desk(tmp_path, store)
    cid, question = _asked(store, clock, auto)
    _send(store, question, "1001:79")
    clock.advance(30)
    text = "[in reply to Shop Bot, quoting:]\n> How did we do, from 1 (poor) to 5 (great)?\n4"  # as connectors/telegram shows it
    store.ingest_batch([inbound(text=text, sent_at=clock.now, reply_to="1001:79")])
    [ev] = store.events(kind="satisfaction")
    assert ev.data["score"] == 4


def test_a_reply_in_the_slack_thread_the_question_was_posted_in_counts(store, clock, tmp_path):
    auto = _desk(tmp_path, store)
    cid, question = _asked(store, clock, auto, channel="slack", address="U43")
    _send(store, question, "C7:1790000200.000300", thread_ts="1790000100.000100")  # in the customer's thread
    clock.advance(30)
    store.ingest_batch([inbound("slack", "U43", text="one more question, sorry", sent_at=clock.now,
                                reply_to="C7:1790000100.000100")])
    clock.advance(30)
    store.ingest_batch([inbound("slack", "U43", text=":+1:", sent_at=clock.now, reply_to="C7:1790000100.000100")])
    [ev] = store.events(kind="satisfaction")
    assert ev.data["score"] == 5


def test_real_telegram_a_reply_to_the_question_after_a_chat_message_counts(tg, store_location, tmp_path):
    """python-telegram-bot against the loopback Bot API, the engine and the automation."""
    from connectors.desk.automation import attach
    from connectors.engine import Engine
    from store import Store
    from tests.support.chat import telegram_connector, wait_until

    templates.install_starter_templates(tmp_path / "templates")
    cfg = config_mod.validate({"satisfaction": {"template": "closing"}}, tmp_path / "config.toml")
    Store(store_location).close()
    conn = telegram_connector(tg)
    engine = Engine(store_location, [conn], poll_interval=0.5, lease_seconds=3)
    attach(engine, cfg, rules_path=tmp_path / "rules.toml")
    s = Store(store_location)
    jane = tg.user(1001, "Jane", "Roe")
    engine.start()
    try:
        tg.send_text(jane, "where is my parcel?")
        cid = wait_until(lambda: s.queue(filter="all"), what="the message")[0].customer_id
        s.queue_reply(cid, "It left today.", "ann")
        s.set_status(cid, "done", "ann")
        question = wait_until(lambda: [x for x in tg.sent if "How did we do" in x["text"]], 20, what="the survey")[0]
        tg.send_text(jane, "Also, can I pick it up myself?")  # something else first
        wait_until(lambda: s.customer(cid).status == "open", what="the question handled as a message")
        tg.send_text(jane, "5 ⭐", reply_to={"chat": {"id": 1001}, "message_id": question["message_id"]})
        ev = wait_until(lambda: s.events(kind="satisfaction"), 20, what="the rating")[0]
    finally:
        engine.stop()
        conn.close()
    assert ev.data["score"] == 5 and ev.customer_id == cid
    s.close()


def test_real_slack_a_reply_in_the_thread_the_question_went_to_counts(slack, store_location, tmp_path):
    """slack_sdk against the loopback Slack server: in a channel the question goes into the
    customer's thread, and a later reply there with stars is the answer."""
    from connectors.desk.automation import attach
    from connectors.engine import Engine
    from store import Store
    from tests.support.chat import slack_connector, wait_until

    templates.install_starter_templates(tmp_path / "templates")
    cfg = config_mod.validate({"satisfaction": {"template": "closing"}}, tmp_path / "config.toml")
    Store(store_location).close()
    conn = slack_connector(slack, poll_seconds=0, calls_per_minute=100_000)
    engine = Engine(store_location, [conn], poll_interval=0.3, lease_seconds=3)
    attach(engine, cfg, rules_path=tmp_path / "rules.toml")
    s = Store(store_location)
    jane = slack.user("U100", "jane", "Jane Roe")
    ch = slack.channel("support", [jane])
    asked = slack.post(jane, ch, "is the blue one in stock?")
    engine.start()
    try:
        cid = wait_until(lambda: s.queue(filter="all"), what="the message")[0].customer_id
        s.queue_reply(cid, "Yes, it ships today.", "ann")
        s.set_status(cid, "done", "ann")
        question = wait_until(lambda: [x for x in slack.sent if "How did we do" in x["text"]], 20,
                              what="the survey")[0]
        assert question["thread_ts"] == asked["ts"]  # in the customer's thread
        slack.post(jane, ch, "oh, and is there a red one?", thread_ts=asked["ts"])
        wait_until(lambda: s.customer(cid).status == "open", what="the question handled as a message")
        slack.post(jane, ch, ":star::star::star::star:", thread_ts=asked["ts"])
        ev = wait_until(lambda: s.events(kind="satisfaction"), 20, what="the rating")[0]
    finally:
        engine.stop()
        conn.close()
    assert ev.data["score"] == 4 and ev.customer_id == cid
    s.close()
