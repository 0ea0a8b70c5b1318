"""Slack Socket Mode: slack_sdk's SocketModeClient against the loopback websocket."""
from __future__ import annotations

import time

import pytest

from tests.support.chat import live_store, running_engine, slack, slack_connector, wait_until  # noqa: F401


@pytest.fixture
def socket_conn(slack):
    c = slack_connector(slack, app_token=slack.app_token, poll_seconds=0.2, catchup_seconds=300)
    yield c
    c.close()


def timeline(store, cid):
    return store.timeline(cid, limit=1000)


def test_socket_mode_delivers_in_well_under_a_second_and_acks(slack, socket_conn, live_store, db_path):
    jane = slack.user("U100", "jane", "Jane Roe", email="jane@example.com")
    dm = slack.dm(jane)
    slack.post(jane, dm, "before we connected")  # read by the catch-up poll
    with running_engine(db_path, [socket_conn], poll_interval=30):
        cid = wait_until(lambda: live_store.queue(filter="all"), what="catch-up")[0].customer_id
        wait_until(lambda: slack.connected_sockets, what="socket")
        history_calls = slack.count("conversations.history")
        delays = []
        for i in range(5):
            t0 = time.monotonic()
            slack.post(jane, dm, f"live {i}")
            wait_until(lambda: len(timeline(live_store, cid)) == 2 + i, interval=0.005, what="live message")
            delays.append(time.monotonic() - t0)
        print(f"socket mode delivery: max {max(delays) * 1000:.0f} ms over {len(delays)} messages")
        assert slack.count("conversations.history") <= history_calls + 1  # pushed, not polled (no timing assert)
        assert slack.wait_acked(len(slack.envelopes)) == {e["envelope_id"] for e in slack.envelopes}
    assert [m.text for m in timeline(live_store, cid)] == ["before we connected"] + [f"live {i}" for i in range(5)]


def test_socket_mode_edits_deletions_threads_and_files(slack, socket_conn, live_store, db_path):
    jane = slack.user("U100", "jane", "Jane Roe")
    ch = slack.channel("support", [jane])
    with running_engine(db_path, [socket_conn], poll_interval=30):
        wait_until(lambda: socket_conn._epoch and socket_conn._polled_epoch == socket_conn._epoch,
                   what="connected and caught up")
        parent = slack.post(jane, ch, "the lid is crakced")
        wait_until(lambda: live_store.queue(filter="all"), what="message")
        cid = live_store.queue(filter="all")[0].customer_id
        slack.edit(parent, "the lid is cracked")
        reply = slack.post(jane, ch, "photo", thread_ts=parent["ts"], files=[("lid.jpg", "image/jpeg", b"jpg")])
        slack.post(jane, ch, "ignore this", thread_ts=parent["ts"])
        wait_until(lambda: len(timeline(live_store, cid)) == 3, what="thread replies")
        slack.delete({"ts": timeline(live_store, cid)[2].meta["ts"]}, ch)
        wait_until(lambda: timeline(live_store, cid)[2].deleted, what="deletion")
        msgs = timeline(live_store, cid)
    assert msgs[0].text == "the lid is cracked" and msgs[0].previous_texts == ["the lid is crakced"]
    assert msgs[1].reply_to == msgs[0].external_id and msgs[1].meta["thread_ts"] == parent["ts"]
    assert msgs[1].meta["ts"] == reply["ts"]
    assert [(a.filename, a.size) for a in msgs[1].attachments] == [("lid.jpg", 3)]


def test_messages_sent_while_the_socket_is_down_are_caught_up(slack, socket_conn, live_store, db_path):
    jane = slack.user("U100", "jane", "Jane Roe")
    dm = slack.dm(jane)
    with running_engine(db_path, [socket_conn], poll_interval=30):
        wait_until(lambda: slack.connected_sockets, what="socket")
        slack.post(jane, dm, "one")
        cid = wait_until(lambda: live_store.queue(filter="all"), what="first")[0].customer_id
        slack.drop_sockets()
        slack.post(jane, dm, "two, while disconnected")
        assert slack.dropped_events  # Slack could not push it
        wait_until(lambda: len(timeline(live_store, cid)) == 2, timeout=20, what="caught up after reconnecting")
        wait_until(lambda: slack.connected_sockets, timeout=20, what="reconnected")
        slack.post(jane, dm, "three")
        wait_until(lambda: len(timeline(live_store, cid)) == 3, what="live again")
    assert [m.text for m in timeline(live_store, cid)] == ["one", "two, while disconnected", "three"]


def test_socket_mode_restart_doubles_nothing(slack, live_store, db_path):
    jane = slack.user("U100", "jane", "Jane Roe")
    dm = slack.dm(jane)
    for round_ in range(2):
        conn = slack_connector(slack, app_token=slack.app_token, poll_seconds=0.2)
        with running_engine(db_path, [conn], poll_interval=30):
            wait_until(lambda: conn._epoch and conn._polled_epoch == conn._epoch, what="connected, caught up")
            slack.post(jane, dm, f"round {round_}")
            wait_until(lambda: any(m.text == f"round {round_}" for r in live_store.queue(filter="all")
                                   for m in timeline(live_store, r.customer_id)), what="message")
        wait_until(lambda: not slack.connected_sockets, what="socket closed")
    [row] = live_store.queue(filter="all")
    assert [m.text for m in timeline(live_store, row.customer_id)] == ["round 0", "round 1"]
    cursor = live_store.load_cursor("slack:team")
    assert float(cursor[f"c:{dm}"]) >= float(timeline(live_store, row.customer_id)[-1].meta["ts"])


def test_bad_app_token_is_a_clear_failure(slack, live_store, db_path):
    conn = slack_connector(slack, app_token="xapp-wrong")
    with running_engine(db_path, [conn]):
        wait_until(lambda: live_store.health().get("slack:team", {}).get("state") == "failed", what="failed")
        detail = live_store.health()["slack:team"]["detail"]
    conn.close()
    assert "invalid_auth" in detail and "xapp-wrong" not in detail


def test_polling_carries_on_when_the_socket_cannot_open(slack, live_store, db_path):
    jane = slack.user("U100", "jane", "Jane Roe")
    slack.fail(500, method="apps.connections.open")
    conn = slack_connector(slack, app_token=slack.app_token, poll_seconds=0.2)
    with running_engine(db_path, [conn]):
        slack.post(jane, slack.dm(jane), "anyone?")
        wait_until(lambda: live_store.queue(filter="all"), what="message by polling")
        assert slack.connected_sockets == 0
        assert live_store.health()["slack:team"]["state"] == "ok"
    conn.close()


def test_a_channel_the_bot_is_added_to_is_read_from_then_on(slack, socket_conn, live_store, db_path):
    jane = slack.user("U100", "jane", "Jane Roe")
    ch = slack.channel("sales", [jane], bot_member=False)
    slack.post(jane, ch, "before the bot joined")
    with running_engine(db_path, [socket_conn], poll_interval=30):
        wait_until(lambda: socket_conn._epoch and socket_conn._polled_epoch == socket_conn._epoch, what="ready")
        slack.invite_bot(ch)
        slack.post(jane, ch, "hello bot")
        cid = wait_until(lambda: live_store.queue(filter="all"), what="message")[0].customer_id
        wait_until(lambda: len(timeline(live_store, cid)) == 2, what="the backfill from the catch-up poll")
    assert sorted(m.text for m in timeline(live_store, cid)) == ["before the bot joined", "hello bot"]
