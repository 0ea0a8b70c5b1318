"""Drafts in the store (store/drafts.py), on SQLite and PostgreSQL: one per agent and
customer, replaced on save, gone when emptied, never those to a merged-away customer."""
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


def test_a_draft_to_a_customer_merged_away_is_not_offered(store):
    jane, other = _customer(store, "jane@x.example", "Jane"), _customer(store, "jane@y.example", "Jane R")
    store.save_draft("alice", Draft(other, "to the duplicate"))
    store.merge(jane, other, "alice")
    assert store.drafts("alice") == []
