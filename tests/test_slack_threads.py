"""Slack threads with the real slack_sdk against the loopback server: edits and
deletions of thread replies in polling mode, and replies to threads days old,
across restarts, within the Tier-3 budget, and in Socket Mode's catch-up."""
from __future__ import annotations

import threading
import time

from tests.support.chat import live_store, running_engine, slack, slack_connector, wait_until  # noqa: F401

DAY = 86400.0


def pull(conn, store):
    """One engine round: wait until the poll is due, fetch from the saved cursor, ingest."""
    conn.wait(10.0, threading.Event())
    batch = conn.fetch(store.load_cursor(conn.name))
    return store.ingest_batch(batch.items, conn.name, batch.cursor)


def timeline(store):
    [row] = store.queue(filter="all")
    return store.timeline(row.customer_id, limit=1000)


def test_thread_reply_edits_and_deletions_by_polling(slack, store):
    """shared/cases/slack-thread-reply-edits: both edits show with the earlier text
    kept; the deleted reply is marked deleted, its text kept."""
    conn = slack_connector(slack, poll_seconds=0, rescan_seconds=0)
    jane = slack.user("U100", "jane", "Jane Roe")
    ch = slack.channel("support", [jane])
    top = slack.post(jane, ch, "My order 881 arrived damaged")
    reply = slack.post(jane, ch, "The box was crushed, 2 cups broken", thread_ts=top["ts"])
    second = slack.post(jane, ch, "Also the lid", thread_ts=top["ts"])
    pull(conn, store)
    assert [m.text for m in timeline(store)] == [
        "My order 881 arrived damaged", "The box was crushed, 2 cups broken", "Also the lid"]
    slack.edit(top, "My order 881 arrived damaged (edited: it is order 882)")
    slack.edit(reply, "The box was crushed, 3 cups broken")
    pull(conn, store)
    slack.delete(second)
    pull(conn, store)
    conn.close()
    msgs = timeline(store)
    assert msgs[0].text == "My order 881 arrived damaged (edited: it is order 882)"
    assert msgs[0].previous_texts == ["My order 881 arrived damaged"]
    assert msgs[1].text == "The box was crushed, 3 cups broken"
    assert msgs[1].previous_texts == ["The box was crushed, 2 cups broken"]
    assert msgs[2].deleted and msgs[2].text == "Also the lid" and not msgs[1].deleted


def test_an_edit_read_twice_keeps_one_earlier_version(slack, store):
    conn = slack_connector(slack, poll_seconds=0, rescan_seconds=0)
    jane = slack.user("U100", "jane", "Jane Roe")
    ch = slack.channel("support", [jane])
    top = slack.post(jane, ch, "parent")
    reply = slack.post(jane, ch, "2 cups", thread_ts=top["ts"])
    pull(conn, store)
    slack.edit(reply, "3 cups")
    for _ in range(3):  # every rescan re-reads the thread
        pull(conn, store)
    conn.close()
    assert [(m.text, m.previous_texts) for m in timeline(store)][1] == ("3 cups", ["2 cups"])


def test_a_reply_to_a_thread_days_old_is_read_after_a_restart(slack, store):
    jane = slack.user("U100", "jane", "Jane Roe")
    ch = slack.channel("support", [jane])
    now = time.time()
    old = slack.post(jane, ch, "the heater is loud", at=now - 5 * DAY)
    slack.post(jane, ch, "mostly at night", thread_ts=old["ts"], at=now - 5 * DAY + 60)
    first = slack_connector(slack, poll_seconds=0, backfill_days=7)
    pull(first, store)
    first.close()  # a restart: nothing of the thread is left in memory
    assert [m.text for m in timeline(store)] == ["the heater is loud", "mostly at night"]
    slack.post(jane, ch, "it stopped, thanks", thread_ts=old["ts"])  # five days later
    second = slack_connector(slack, poll_seconds=0, thread_scan_seconds=0)
    pull(second, store)
    second.close()
    msgs = timeline(store)
    assert [m.text for m in msgs] == ["the heater is loud", "mostly at night", "it stopped, thanks"]
    assert msgs[2].meta["thread_ts"] == old["ts"] and msgs[2].reply_to == msgs[0].external_id


def test_a_thread_we_answered_days_ago_is_followed_across_a_restart(slack, live_store):
    """The agent answered a three-day-old channel message (starting a thread); the
    customer answers in that thread a day later, after a restart."""
    jane = slack.user("U100", "jane", "Jane Roe")
    ch = slack.channel("support", [jane])
    asked = slack.post(jane, ch, "do you ship to Norway?", at=time.time() - 3 * DAY)
    conn = slack_connector(slack, poll_seconds=0, backfill_days=7)
    pull(conn, live_store)
    cid = live_store.queue(filter="all")[0].customer_id
    live_store.queue_reply(cid, "Yes, in 5 days.", "ann")
    [out] = live_store.claim_due()
    live_store.mark_sent(out.outbox_id, conn.send(out))
    assert slack.sent[0]["thread_ts"] == asked["ts"]
    conn.close()
    slack.post(jane, ch, "great, ordering now", thread_ts=asked["ts"])
    again = slack_connector(slack, poll_seconds=0, thread_scan_seconds=0)
    pull(again, live_store)
    again.close()
    assert [m.text for m in live_store.timeline(cid)] == ["do you ship to Norway?", "Yes, in 5 days.",
                                                          "great, ordering now"]


def test_old_threads_cost_one_history_page_per_conversation_not_a_call_per_thread(slack, store):
    jane = slack.user("U100", "jane", "Jane Roe")
    ch = slack.channel("support", [jane])
    now = time.time()
    parents = []
    for i in range(20):  # twenty threads from 2 to 21 days old
        p = slack.post(jane, ch, f"question {i}", at=now - (2 + i) * DAY)
        slack.post(jane, ch, f"detail {i}", thread_ts=p["ts"], at=now - (2 + i) * DAY + 30)
        parents.append(p)
    conn = slack_connector(slack, poll_seconds=0, backfill_days=30, thread_scan_seconds=0)
    pull(conn, store)
    assert len(timeline(store)) == 40
    slack.post(jane, ch, "any news on 7?", thread_ts=parents[7]["ts"])
    history, replies = slack.count("conversations.history"), slack.count("conversations.replies")
    pull(conn, store)
    conn.close()
    assert timeline(store)[-1].text == "any news on 7?"
    assert slack.count("conversations.history") - history == 1  # one page: the last 30 days
    assert slack.count("conversations.replies") - replies == 1  # only the thread with news


def test_threads_past_thread_days_are_forgotten(slack, store):
    jane = slack.user("U100", "jane", "Jane Roe")
    ch = slack.channel("support", [jane])
    now = time.time()
    p = slack.post(jane, ch, "old question", at=now - 10 * DAY)
    slack.post(jane, ch, "old detail", thread_ts=p["ts"], at=now - 9 * DAY)
    conn = slack_connector(slack, poll_seconds=0, backfill_days=30, thread_days=30)
    pull(conn, store)
    key = f"t:{ch}:{p['ts']}"
    assert key in store.load_cursor(conn.name)
    conn.close()
    short = slack_connector(slack, poll_seconds=0, thread_days=7)  # the setting lowered: followed 7 days
    pull(short, store)
    short.close()
    assert key not in store.load_cursor(conn.name)


def test_socket_mode_catch_up_reads_a_reply_to_an_old_thread(slack, live_store, db_path):
    jane = slack.user("U100", "jane", "Jane Roe")
    ch = slack.channel("support", [jane])
    old = slack.post(jane, ch, "the heater is loud", at=time.time() - 4 * DAY)
    conn = slack_connector(slack, app_token=slack.app_token, poll_seconds=0.2, backfill_days=7,
                           thread_scan_seconds=0)
    with running_engine(db_path, [conn], poll_interval=30):
        wait_until(lambda: live_store.queue(filter="all"), what="the old message")
        wait_until(lambda: slack.connected_sockets and conn._polled_epoch == conn._epoch, what="connected")
        slack.drop_sockets()
        slack.post(jane, ch, "still loud", thread_ts=old["ts"])  # no socket: only the catch-up can read it
        wait_until(lambda: len(timeline(live_store)) == 2, timeout=20, what="caught up after reconnecting")
    conn.close()
    assert timeline(live_store)[1].text == "still loud"


def test_the_first_thread_scan_after_an_upgrade_brings_back_no_old_replies(slack, store):
    """A store from a version without thread scans has the conversation's cursor but no
    record of its threads: replies from before the upgrade stay out (no flood of old
    messages into the queue); replies from then on come in."""
    jane = slack.user("U100", "jane", "Jane Roe")
    ch = slack.channel("support", [jane])
    now = time.time()
    old = slack.post(jane, ch, "the heater is loud", at=now - 5 * DAY)
    slack.post(jane, ch, "an old reply never read", thread_ts=old["ts"], at=now - 4 * DAY)
    recent = slack.post(jane, ch, "hello again", at=now - 60)
    store.save_cursor("slack:team", {f"c:{ch}": recent["ts"]})  # what the old version left
    conn = slack_connector(slack, poll_seconds=0, thread_scan_seconds=0)
    pull(conn, store)
    assert store.queue(filter="all") == []
    slack.post(jane, ch, "still loud", thread_ts=old["ts"])
    pull(conn, store)
    conn.close()
    assert [m.text for m in timeline(store)] == ["still loud"]
