"""What the agent sees of each Slack message subtype and of Slack's markup: the real
slack_sdk against the loopback server, polling and Socket Mode."""
from __future__ import annotations

import threading

import pytest

from tests.support.chat import live_store, running_engine, slack, slack_connector, wait_until  # noqa: F401


def pull(conn, store):
    conn.wait(10.0, threading.Event())
    batch = conn.fetch(store.load_cursor(conn.name))
    return store.ingest_batch(batch.items, conn.name, batch.cursor)


def by_customer(store):
    return {r.name: [m.text for m in store.timeline(r.customer_id, limit=1000)] for r in store.queue(filter="all")}


@pytest.fixture
def conn(slack):
    c = slack_connector(slack, poll_seconds=0, rescan_seconds=0)
    yield c
    c.close()


def test_only_people_are_customers(slack, conn, store):
    jane = slack.user("U100", "jane", "Jane Roe")
    helper = slack.user("U300", "statusbot", "Status Bot")
    slack.users["U300"]["is_bot"] = True  # another app's bot user
    ch = slack.channel("support", [jane])
    slack.join(jane, ch)
    slack.post(jane, ch, "hello")
    slack.post_bot(ch, "Deploy finished")  # bot_message: an integration, no user
    slack.post(helper, ch, "I am a bot user")
    slack.post(jane, ch, "via an app", bot_id="B0APP", app_id="A0APP")  # a person's message sent by an app
    slack.join(jane, ch, leave=True)
    pull(conn, store)
    assert by_customer(store) == {"Jane Roe": ["hello", "via an app"]}


def test_me_message_broadcast_and_tombstone(slack, conn, store):
    jane = slack.user("U100", "jane", "Jane Roe")
    ch = slack.channel("support", [jane])
    slack.post(jane, ch, "waves", subtype="me_message")
    parent = slack.post(jane, ch, "parent")
    slack.post(jane, ch, "also in the channel", thread_ts=parent["ts"], broadcast=True)
    pull(conn, store)
    pull(conn, store)  # the broadcast is in both history and the thread: stored once
    [row] = store.queue(filter="all")
    msgs = store.timeline(row.customer_id)
    assert [m.text for m in msgs] == ["/me waves", "parent", "also in the channel"]
    assert msgs[2].meta["broadcast"] and msgs[2].meta["thread_ts"] == parent["ts"]
    slack.delete(parent)  # a parent with replies leaves a tombstone
    pull(conn, store)
    msgs = store.timeline(row.customer_id)
    assert [m.text for m in msgs] == ["/me waves", "parent", "also in the channel"]  # no "This message was deleted."
    assert msgs[1].deleted and not msgs[2].deleted


def test_a_shared_message_is_quoted_with_its_author_and_unfurls_are_no_edit(slack, conn, store):
    jane = slack.user("U100", "jane", "Jane Roe")
    bob = slack.user("U200", "bob", "Bob Li")
    ch = slack.channel("support", [jane, bob])
    shared = {"is_share": True, "is_msg_unfurl": True, "author_id": "U200", "author_name": "Bob Li",
              "text": "we never got the refund", "from_url": "https://sandbox.slack.com/archives/C1/p1",
              "channel_id": ch, "ts": "1.0"}
    slack.post(jane, ch, "see what Bob said", attachments=[shared])
    slack.post(jane, ch, "form sent", attachments=[{"title": "Return form", "text": "order 881, reason: damaged"}])
    linked = slack.post(jane, ch, "tracking: https://track.example/1")
    pull(conn, store)
    slack.unfurl(linked, [{"from_url": "https://track.example/1", "title": "Parcel 1", "text": "In transit"}])
    pull(conn, store)
    [row] = store.queue(filter="all")
    msgs = store.timeline(row.customer_id)
    assert msgs[0].text == ("see what Bob said\n[shared a message from Bob Li "
                            "(https://sandbox.slack.com/archives/C1/p1)]\n> we never got the refund")
    assert msgs[1].text == "form sent\n[attachment: Return form · order 881, reason: damaged]"  # an app's card
    assert msgs[2].text == "tracking: https://track.example/1" and msgs[2].previous_texts == []


def test_slack_connect_users_and_users_without_email(slack, conn, store):
    guest = slack.external_user("UEXT1", "kim", "Kim Park", team="T0PARTNER")
    nomail = slack.user("U400", "lee", "Lee Chan")  # no e-mail in the profile (scope or privacy)
    ch = slack.channel("shared-support", [])
    slack.post(guest, ch, "hello from Partner Inc")
    slack.post(nomail, ch, "hi")
    pull(conn, store)
    rows = {r.name: r.customer_id for r in store.queue(filter="all")}
    assert set(rows) == {"Kim Park", "Lee Chan"}  # the guest is named from the message's profile
    [guest_msg] = store.timeline(rows["Kim Park"])
    assert guest_msg.meta["external_team"] == "T0PARTNER"
    lee = store.customer(rows["Lee Chan"])
    assert [(i.channel, i.address) for i in lee.identities] == [("slack", "U400")]


def test_mrkdwn_reads_as_text_in_console_and_search_and_a_quoting_reply_round_trips(slack, conn, live_store):
    jane = slack.user("U100", "jane", "Jane Roe")
    slack.user("U200", "bob", "Bob Li")
    ch = slack.channel("support", [jane])
    slack.post(jane, ch, "<@U200> said <https://shop.example/o/881|order 881> is late :disappointed: "
                         "&amp; ask in <#C0000009|billing> :wave::skin-tone-3: :partyparrot:")
    pull(conn, live_store)
    [row] = live_store.queue(filter="all")
    [msg] = live_store.timeline(row.customer_id)
    assert msg.text == ("@Bob Li said order 881 (https://shop.example/o/881) is late \U0001F61E & ask in "
                        "#billing \U0001F44B\U0001F3FC :partyparrot:")
    assert [h.customer_id for h in live_store.search("Bob")] == [row.customer_id]
    assert [h.customer_id for h in live_store.search("881")] == [row.customer_id]
    live_store.queue_reply(row.customer_id, "> " + msg.text + "\n\nSorry! Refund on its way.", "ann")
    [out] = live_store.claim_due()
    conn.send(out)
    [sent] = slack.wait_sent(1)
    assert "<https://shop.example/o/881>" in sent["text"] and "\U0001F61E" in sent["text"]
    assert "<@" not in sent["text"] and "@Bob Li" in sent["text"]  # a quoted mention does not ping


def test_socket_mode_applies_the_same_decisions(slack, live_store, db_path):
    jane = slack.user("U100", "jane", "Jane Roe")
    ch = slack.channel("support", [jane])
    conn = slack_connector(slack, app_token=slack.app_token, poll_seconds=0.2)
    with running_engine(db_path, [conn], poll_interval=30):
        wait_until(lambda: slack.connected_sockets and conn._polled_epoch == conn._epoch, what="connected")
        slack.join(jane, ch)
        slack.post_bot(ch, "Deploy finished")
        m = slack.post(jane, ch, "see https://track.example/1")
        slack.unfurl(m, [{"from_url": "https://track.example/1", "title": "Parcel"}])
        slack.post(jane, ch, "waves", subtype="me_message")
        wait_until(lambda: by_customer(live_store).get("Jane Roe", [None])[-1] == "/me waves", what="both")
        # a parent with replies deleted arrives as a change into a tombstone
        with slack.lock:
            slack._event(ch, {"type": "message", "subtype": "message_changed", "hidden": True, "ts": slack._next_ts(),
                              "message": {"type": "message", "subtype": "tombstone", "user": "USLACKBOT",
                                          "text": "This message was deleted.", "ts": m["ts"], "thread_ts": m["ts"]},
                              "previous_message": dict(m)})
        wait_until(lambda: live_store.timeline(live_store.queue(filter="all")[0].customer_id)[0].deleted,
                   what="the tombstone")
    conn.close()
    [row] = live_store.queue(filter="all")
    msgs = live_store.timeline(row.customer_id)
    assert [m.text for m in msgs] == ["see https://track.example/1", "/me waves"]
    assert msgs[0].previous_texts == [] and msgs[0].deleted
