"""Drafts in the store (store/drafts.py), on SQLite and PostgreSQL: one per agent and
customer, replaced on save, gone when emptied; a draft to a customer a teammate merges
away follows them to the customer they were merged into, never lost."""
from __future__ import annotations

import pytest

from store.drafts import Draft
from store.models import InboundMessage, Sender

pytestmark = pytest.mark.both_backends


def _customer(store, address: str, name: str) -> int:
    return store.ingest(InboundMessage("email", "main", f"<{address}>", Sender("email", address, name), "hi",
                                       store.clock())).customer_id


def test_a_draft_is_kept_whole_replaced_and_removed(store):
    jane, bob = _customer(store, "jane@x.example", "Jane"), _customer(store, "bob@x.example", "Bob")
    store.save_draft("alice", Draft(jane, "first", attachments=["/tmp/a.pdf"], cc=["c@x.example"],
                                    literals={"*urgent*": "\\*urgent\\*"}, subject="Re: hi", identity_id=1))
    store.save_draft("alice", Draft(bob, "a note", mode="note"))
    store.save_draft("carl", Draft(jane, "carl's own"))
    store.save_draft("alice", Draft(jane, "second", attachments=["/tmp/a.pdf"], cc=["c@x.example"],
                                    literals={"*urgent*": "\\*urgent\\*"}, subject="Re: hi", identity_id=1))
    kept = {d.customer_id: d for d in store.drafts("alice")}
    assert set(kept) == {jane, bob}
    j = kept[jane]
    assert (j.text, j.attachments, j.cc, j.literals, j.subject, j.identity_id) == (
        "second", ["/tmp/a.pdf"], ["c@x.example"], {"*urgent*": "\\*urgent\\*"}, "Re: hi", 1)
    assert kept[bob].mode == "note" and kept[bob].cc == [] and kept[bob].attachments == []
    assert [d.text for d in store.drafts("carl")] == ["carl's own"]
    store.save_draft("alice", Draft(jane, "  "))  # emptied
    store.delete_draft("alice", bob)
    assert store.drafts("alice") == [] and len(store.drafts("carl")) == 1


def test_a_draft_to_a_customer_merged_away_follows_the_merge(store):
    jane, other = _customer(store, "jane@x.example", "Jane"), _customer(store, "jane@y.example", "Jane R")
    store.save_draft("alice", Draft(other, "Your refund of 40 EUR is on its way", attachments=["/tmp/r.pdf"]))
    store.merge(jane, other, "bob")  # a teammate merges while alice is writing
    [d] = store.drafts("alice")
    assert (d.customer_id, d.text, d.attachments) == (jane, "Your refund of 40 EUR is on its way", ["/tmp/r.pdf"])
    # saved again (the console writes to the id it had): kept once, for the customer that is left
    store.save_draft("alice", Draft(other, "Your refund of 40 EUR is on its way. Best, Alice"))
    assert [(d.customer_id, d.text) for d in store.drafts("alice")] == [(jane, "Your refund of 40 EUR is on its way. Best, Alice")]
    assert store.q1("SELECT count(*) FROM drafts WHERE agent='alice'")[0] == 1


def test_two_drafts_meeting_in_a_merge_are_both_kept_then_saved_as_one(store):
    jane, other = _customer(store, "jane@x.example", "Jane"), _customer(store, "jane@y.example", "Jane R")
    store.save_draft("alice", Draft(jane, "Hi Jane,", cc=["boss@x.example"]))
    store.save_draft("alice", Draft(other, "order 1234 ships today", cc=["boss@x.example", "w@x.example"]))
    store.save_draft("carl", Draft(other, "carl's own"))
    store.merge(jane, other, "bob")
    [d] = store.drafts("alice")
    assert d.customer_id == jane
    assert d.text.startswith("Hi Jane,") and d.text.endswith("order 1234 ships today")
    assert f"written to Jane R #{other} before the merge" in d.text
    assert d.cc == ["boss@x.example", "w@x.example"]
    assert [(d.customer_id, d.text) for d in store.drafts("carl")] == [(jane, "carl's own")]
    # the agent edits the combined draft and it is saved: one draft, the merged-away one gone
    store.save_draft("alice", Draft(jane, "Hi Jane, order 1234 ships today"))
    assert [d.text for d in store.drafts("alice")] == ["Hi Jane, order 1234 ships today"]
    # sending it (or emptying it) leaves nothing behind for either id
    store.delete_draft("carl", jane)
    assert store.drafts("carl") == []


def test_undoing_the_merge_gives_each_customer_their_draft_back(store):
    jane, other = _customer(store, "jane@x.example", "Jane"), _customer(store, "jane@y.example", "Jane R")
    store.save_draft("alice", Draft(other, "to the duplicate"))
    event = store.merge(jane, other, "bob")
    assert [d.customer_id for d in store.drafts("alice")] == [jane]
    store.undo("bob", event)
    assert [(d.customer_id, d.text) for d in store.drafts("alice")] == [(other, "to the duplicate")]
