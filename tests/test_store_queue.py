"""The queue, statuses, snooze, tags, notes and the outbox states."""
import pytest

from store import StoreError
from store.models import Receipt

pytestmark = pytest.mark.both_backends


def test_queue_orders_by_longest_wait_and_priority(store, make_inbound):
    late = store.ingest(make_inbound("telegram", "1", "late", sent_at=300.0))
    early = store.ingest(make_inbound("email", "e@x.io", "early", sent_at=100.0))
    mid = store.ingest(make_inbound("slack", "U1", "mid", sent_at=200.0))
    assert [r.customer_id for r in store.queue()] == [early.customer_id, mid.customer_id, late.customer_id]
    store.set_priority(late.customer_id, 1, "rules")
    assert store.queue()[0].customer_id == late.customer_id
    assert store.queue_position(mid.customer_id) == 2
    assert store.queue_count() == 3
    assert [r.customer_id for r in store.queue(channel="slack")] == [mid.customer_id]
    assert [r.customer_id for r in store.queue(limit=1, offset=1)] == [early.customer_id]


def test_answered_customer_leaves_waiting_queue(store, make_inbound):
    r = store.ingest(make_inbound())
    store.queue_reply(r.customer_id, "on it", "alex")
    assert store.queue() == []
    assert [q.customer_id for q in store.queue("all")] == [r.customer_id]


def test_snooze_hides_until_time_then_wakes(store, make_inbound, clock):
    r = store.ingest(make_inbound(sent_at=clock.now))
    store.snooze(r.customer_id, clock.now + 3600, "alex")
    assert store.queue() == [] and [q.customer_id for q in store.queue("snoozed")] == [r.customer_id]
    clock.advance(3601)
    assert [q.customer_id for q in store.queue()] == [r.customer_id]
    assert store.customer(r.customer_id).status == "open"


def test_inbound_wakes_a_snoozed_customer(store, make_inbound, clock):
    r = store.ingest(make_inbound(sent_at=clock.now))
    store.snooze(r.customer_id, clock.now + 86400, "alex")
    store.ingest(make_inbound(text="hello??", sent_at=clock.now + 60))
    assert store.customer(r.customer_id).status == "open"


def test_status_tag_assign_undo(store, make_inbound):
    r = store.ingest(make_inbound())
    cid = r.customer_id
    store.set_status(cid, "done", "alex")
    store.tag(cid, "refund", "alex")
    store.assign(cid, "kim", "alex")
    assert [q.customer_id for q in store.queue("mine", agent="kim")] == []  # done is not in "mine"
    store.undo("alex")  # assign
    store.undo("alex")  # tag
    store.undo("alex")  # status
    c = store.customer(cid)
    assert (c.status, c.tags, c.assignee) == ("open", [], None)
    with pytest.raises(StoreError, match="unknown status"):
        store.set_status(cid, "closed", "alex")


def test_notes_are_never_sent(store, make_inbound):
    r = store.ingest(make_inbound())
    store.add_note(r.customer_id, "VIP, be nice", "alex")
    assert store.claim_due() == []
    assert store.timeline(r.customer_id)[-1].direction == "note"


def test_outbox_states_and_failure_keeps_text(store, make_inbound, clock):
    r = store.ingest(make_inbound("email", "a@b.co", "help", subject="Broken", sent_at=clock.now))
    mid = store.queue_reply(r.customer_id, "Sorry!", "alex")
    m = store.message(mid)
    assert (m.state, m.subject, m.reply_to) == ("queued", "Re: Broken", store.message(r.message_id).external_id)
    [out] = store.claim_due()
    assert out.to_address == "a@b.co" and out.parent.id == r.message_id and out.attempts == 1
    assert store.message(mid).state == "sending" and store.claim_due() == []
    store.mark_failed(out.outbox_id, "connection refused", clock.now + 60)
    assert store.claim_due() == []  # not yet due
    clock.advance(61)
    [out] = store.claim_due()
    assert out.attempts == 2
    store.mark_failed(out.outbox_id, "550 mailbox unavailable", None)
    m = store.message(mid)
    assert (m.state, m.error, m.text) == ("failed", "550 mailbox unavailable", "Sorry!")
    # an undelivered reply does not count as an answer
    assert store.customer(r.customer_id).waiting_since == store.message(r.message_id).sent_at
    store.retry(mid, "alex")
    [out] = store.claim_due()
    store.mark_sent(out.outbox_id, Receipt("<ours@x>", {"smtp": "250"}))
    m = store.message(mid)
    assert (m.state, m.external_id, m.meta["smtp"]) == ("sent", "<ours@x>", "250")


def test_crash_mid_send_becomes_failed_not_resent(store, make_inbound):
    r = store.ingest(make_inbound())
    mid = store.queue_reply(r.customer_id, "hi", "alex")
    store.claim_due()  # then the process dies
    assert store.recover_interrupted() == 1
    m = store.message(mid)
    assert m.state == "failed" and m.uncertain and "may have been delivered" in m.error


def test_reply_on_a_channel_the_customer_lacks(store, make_inbound):
    r = store.ingest(make_inbound("telegram", "1", "hi"))
    with pytest.raises(StoreError, match="no slack identity; they can be reached on: telegram"):
        store.queue_reply(r.customer_id, "x", "alex", channel="slack")
    with pytest.raises(StoreError, match="empty"):
        store.queue_reply(r.customer_id, "  ", "alex")


def test_lease_one_holder_at_a_time(store, clock):
    assert store.acquire_lease("a", ttl=30)
    assert not store.acquire_lease("b", ttl=30)
    clock.advance(10)
    assert store.acquire_lease("a", ttl=30)  # heartbeat
    clock.advance(31)
    assert store.acquire_lease("b", ttl=30)  # a went silent
    assert not store.acquire_lease("a", ttl=30)


def test_presence_of_other_agents(store, make_inbound):
    r = store.ingest(make_inbound())
    store.set_presence("kim", r.customer_id, "replying")
    assert store.presence(r.customer_id, exclude="alex") == [("kim", "replying")]
    assert store.presence(r.customer_id, exclude="kim") == []
