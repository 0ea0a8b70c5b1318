"""Timer rules: once per wait, snoozes that end, engaged customers escalated, long queues
covered in turns."""
from __future__ import annotations

import pytest

from tests.conftest import inbound
from tests.support.rules import T_MON_1000, T_SAT_1000, ingest, make_auto, rule_events  # noqa: F401

pytestmark = pytest.mark.both_backends


# -- timer rules ----------------------------------------------------------------------------------------
def test_timer_rule_fires_once_per_wait(store, clock, tmp_path):
    auto = make_auto(tmp_path, """
        [[rule]]
        name = "slow chat"
        when = { channel = "telegram", waiting_over = "30m" }
        then = { priority = 2, tag = "slow" }
    """)
    assert auto.rules.rules[0].on == "timer"  # a waiting_* condition makes it a timer rule
    store.claim_new()
    [r] = ingest(store, auto, inbound(sent_at=clock.now))
    clock.advance(29 * 60)
    auto.tick(store)
    assert rule_events(store) == []
    clock.advance(2 * 60)
    auto.tick(store)
    auto.tick(store)
    assert len(rule_events(store, "slow chat")) == 1
    store.set_priority(r.customer_id, 0, "ann")  # the agent lowers it again: the rule must not fight back
    clock.advance(3600)
    auto.tick(store)
    assert len(rule_events(store)) == 1 and store.customer(r.customer_id).priority == 0
    # answered, then a new wait: fires again, once
    store.queue_reply(r.customer_id, "hi", "ann")
    clock.advance(60)
    ingest(store, auto, inbound(sent_at=clock.now))
    clock.advance(31 * 60)
    auto.tick(store)
    auto.tick(store)
    assert len(rule_events(store, "slow chat")) == 2


def test_timer_snooze_does_not_refire_when_the_snooze_ends(store, clock, tmp_path):
    auto = make_auto(tmp_path, """
        [[rule]]
        name = "park"
        when = { waiting_over = "1h" }
        then = { snooze = "1h" }
    """)
    store.claim_new()
    [r] = ingest(store, auto, inbound(sent_at=clock.now))
    clock.advance(3601)
    auto.tick(store)
    assert store.customer(r.customer_id).status == "snoozed"
    clock.advance(3601)
    store.wake_snoozed()
    auto.tick(store)
    assert store.customer(r.customer_id).status == "open" and len(rule_events(store)) == 1


def test_engaged_customers_get_escalated_by_a_timer_rule(store, clock, tmp_path):
    auto = make_auto(tmp_path, """
        [[rule]]
        name = "bounced around"
        on = "timer"
        when = { engaged_over = "25m" }
        then = { priority = 3 }
    """)
    store.claim_new()
    start = clock.now
    for i, channel in enumerate(["telegram", "email", "telegram", "email"]):
        clock.now = start + i * 600
        addr = "77" if channel == "telegram" else "e@x.example"
        ingest(store, auto, inbound(channel=channel, address=addr, emails=("e@x.example",) if channel == "telegram" else (),
                                    sent_at=clock.now))
        if i < 3:
            clock.now += 300
            store.queue_reply(store.find_customer("77"), "let me check", "ann")
    cid = store.find_customer("77")
    assert store.engagement(cid)["seconds"] == 6 * 300  # seven messages over two channels, 5 minutes apart
    auto.tick(store)
    assert store.customer(cid).priority == 3


def test_a_long_queue_is_covered_in_turns_when_a_pass_runs_out_of_time(store, clock, tmp_path):
    auto = make_auto(tmp_path, '[[rule]]\nname = "late"\nwhen = { waiting_over = "1h" }\nthen = { tag = "late" }\n')
    auto.timer_budget = 0  # one customer per pass
    store.claim_new()
    ingest(store, auto, *(inbound(address=str(n), sent_at=clock.now) for n in range(3)))
    clock.advance(3601)
    fired = []
    for _ in range(3):
        auto.tick(store)
        fired.append(len(rule_events(store)))
    assert fired == [1, 2, 3]


def test_a_timer_rule_reads_the_message_that_arrived_last_not_the_latest_dated(store, clock, tmp_path):
    """The customer's latest words are the message that came in last: a mail whose Date is an
    hour behind (a sender's clock) is still what they wrote last."""
    auto = make_auto(tmp_path, """
        [[rule]]
        name = "refund waits"
        when = { text = "refund", waiting_over = "30m" }
        then = { tag = "refund" }
    """)
    store.claim_new()
    [r] = ingest(store, auto, inbound("email", "jane@example.com", "where is my parcel?", sent_at=clock.now))
    clock.advance(60)
    ingest(store, auto, inbound("email", "jane@example.com", "I want a refund", sent_at=clock.now - 3600))
    clock.advance(31 * 60)
    auto.tick(store)
    assert len(rule_events(store, "refund waits")) == 1 and store.customer(r.customer_id).tags == ["refund"]
