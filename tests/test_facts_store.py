"""Customer facts in the store: set, change, remove, undo (sources kept), values
captured from messages (a later value wins, an earlier one stays visible),
merges, rename, and search by fact."""
from __future__ import annotations

import pytest

from store import StoreError
from tests.conftest import inbound

pytestmark = pytest.mark.both_backends


def _customer(store, text="hi", **kw):
    r = store.ingest(inbound(text=text, **kw))
    return r.customer_id, r.message_id


def test_set_change_remove_and_undo_keep_the_source(store, clock):
    cid, _ = _customer(store)
    store.set_fact(cid, "plan", "gold", "ann")
    clock.advance(60)
    store.set_fact(cid, "plan", "silver", "bob")
    c = store.customer(cid)
    assert c.facts == {"plan": "silver"}
    assert c.fact_sources["plan"]["actor"] == "bob"
    assert [e["value"] for e in store.fact_history(cid)["plan"]] == ["gold"]

    assert store.set_fact(cid, "plan", "silver", "bob") is None  # the same value again: no event
    store.set_fact(cid, "plan", None, "bob")
    assert store.customer(cid).facts == {}
    store.undo("bob")  # the removal
    assert store.customer(cid).facts == {"plan": "silver"}
    store.undo("bob")  # the change to silver: gold is back, with who set it
    c = store.customer(cid)
    assert c.facts == {"plan": "gold"} and c.fact_sources["plan"]["actor"] == "ann"
    with pytest.raises(StoreError, match="has no fact"):
        store.set_fact(cid, "nothing", None, "ann")


def test_undo_of_an_older_change_waits_for_the_later_one(store):
    cid, _ = _customer(store)
    first = store.set_fact(cid, "plan", "gold", "ann")
    store.set_fact(cid, "plan", "silver", "ann")
    with pytest.raises(StoreError, match="changed again later"):
        store.undo("ann", first)
    assert store.customer(cid).facts == {"plan": "silver"}


def test_values_are_inert_one_line_and_capped(store):
    cid, _ = _customer(store)
    store.set_fact(cid, "note\x1b[31m", "a\x1b]52;c;evil\x07\nb \u202eX" + "9" * 500, "ann")
    [(key, value)] = store.customer(cid).facts.items()
    assert "\x1b" not in key + value and "\u202e" not in value and "\n" not in value
    assert len(value) == 200 and value.endswith("…")
    with pytest.raises(StoreError):
        store.set_fact(cid, "  ", "x", "ann")
    with pytest.raises(StoreError):
        store.set_fact(cid, "k", " \n ", "ann")


def test_captured_value_keeps_its_message_and_a_later_one_wins(store, clock):
    cid, m1 = _customer(store, "order 5520", sent_at=clock() - 7200)
    _, m2 = _customer(store, "no wait, order 5521", sent_at=clock() - 3600)
    store.capture_fact(cid, "order_number", "5521", "orders", message_id=m2, channel="telegram", at=clock() - 3600)
    # the older message is handled after the newer one: recorded, not current
    store.capture_fact(cid, "order_number", "5520", "orders", message_id=m1, channel="telegram", at=clock() - 7200)
    c = store.customer(cid)
    assert c.facts["order_number"] == "5521"
    assert c.fact_sources["order_number"] == {"actor": "rules", "at": clock() - 3600, "channel": "telegram",
                                              "message_id": m2}
    [earlier] = store.fact_history(cid)["order_number"]
    assert (earlier["value"], earlier["message_id"]) == ("5520", m1)
    assert store.capture_fact(cid, "order_number", "5521", "orders", message_id=m2, channel="telegram",
                              at=clock()) is None


def test_merge_carries_facts_with_their_source_and_undo_gives_them_back(store):
    a, _ = _customer(store, address="1")
    b, mb = _customer(store, address="2")
    store.capture_fact(b, "order_number", "77", "orders", message_id=mb, channel="telegram", at=store.clock())
    event = store.merge(a, b, "ann")
    assert store.customer(a).fact_sources["order_number"]["message_id"] == mb
    store.undo("ann", event)
    assert store.customer(a).facts == {}
    assert store.customer(b).fact_sources["order_number"]["message_id"] == mb


def test_rename_is_an_undoable_event(store):
    cid, _ = _customer(store, name="jane d")
    store.rename(cid, "  Jane\nDoe\x1b[2J ", "ann")
    assert store.customer(cid).name == "Jane Doe"
    assert store.rename(cid, "Jane Doe", "ann") is None
    store.undo("ann")
    assert store.customer(cid).name == "jane d"
    with pytest.raises(StoreError):
        store.rename(cid, " ", "ann")


def test_search_by_fact(store):
    a, _ = _customer(store, "where is it", address="1", name="Ann")
    b, _ = _customer(store, "hello", address="2", name="Bob")
    store.set_fact(a, "Order number", "A-1042", "ann")
    store.set_fact(b, "order_number", "77", "ann")
    hits = store.search("fact:order_number=a-1042")
    assert hits[0].customer_id == a and "A-1042" in hits[0].snippet
    assert {h.customer_id for h in hits} == {a}
    assert {h.customer_id for h in store.search("fact:order_number")} == {a, b}
    assert [h.customer_id for h in store.search("hello fact:order_number=77")] == [b]
    assert store.search("fact:order_number=1") == []
    assert store.customers_with_fact("order number", "77") == [b]


def test_a_typed_phone_or_e_mail_is_merge_evidence(store):
    chat, m = _customer(store, "reach me at Jane.Doe@Example.com", address="1", name="jd")
    mail = store.ingest(inbound("email", "jane.doe@example.com", "hello", name="Jane Doe")).customer_id
    store.capture_fact(chat, "email", "Jane.Doe@Example.com", "email", message_id=m, channel="telegram",
                       at=store.clock())
    [s] = store.merge_suggestions(chat)
    assert (s.customer_id, s.other_id) == (chat, mail)
    assert f"#{chat} gave email jane.doe@example.com on telegram; #{mail} has it too" in s.evidence
    assert [(x.customer_id, x.other_id) for x in store.merge_suggestions()] == [(chat, mail)]
    assert store.customer(chat).identities[0].customer_id == chat  # evidence, never an automatic link
