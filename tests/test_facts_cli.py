"""`omnidesk fact` and `omnidesk rename` end to end (the installed entry point):
set, change, remove, undo; facts with their source in show/customers --json;
search by fact."""
from __future__ import annotations

import pytest

from store import Store
from tests.conftest import inbound
from tests.test_cli import ok_json, omnidesk

T0 = 1_790_000_000.0

pytestmark = pytest.mark.both_backends


def _seed(store_location):
    s = Store(store_location)
    r = s.ingest(inbound("telegram", "4242", "order 5520 please", name="jane", sent_at=T0))
    s.capture_fact(r.customer_id, "order_number", "5520", "order_number", message_id=r.message_id,
                   channel="telegram", at=T0)
    s.close()
    return r


def test_set_change_remove_and_undo_from_the_cli(store_location):
    r = _seed(store_location)
    out = ok_json(store_location, "fact", "4242", "plan=gold", "order_number=5521")
    assert {f["key"]: f["value"] for f in out["facts"]} == {"order_number": "5521", "plan": "gold"}
    [order] = [f for f in out["facts"] if f["key"] == "order_number"]
    assert order["actor"] == "alex" and [e["value"] for e in order["earlier"]] == ["5520"]
    assert order["earlier"][0]["message_id"] == r.message_id and order["earlier"][0]["channel"] == "telegram"

    human = omnidesk(store_location, "fact", "4242", "-r", "plan").stdout
    assert "order_number: 5521" in human and "earlier: 5520 (Telegram" in human and "plan" not in human
    assert ok_json(store_location, "undo")["kind"] == "fact"  # the removal
    assert ok_json(store_location, "undo")["kind"] == "fact"  # plan=gold order_number=5521: one command, one undo
    facts = ok_json(store_location, "show", "4242")["facts"]
    assert {f["key"]: (f["value"], f["message_id"]) for f in facts}["order_number"] == ("5520", r.message_id)
    assert "plan" not in {f["key"] for f in facts}

    bad = omnidesk(store_location, "fact", "4242", "plan=silver", "oops")
    assert bad.returncode == 1 and "expected KEY=VALUE" in bad.stderr
    missing = omnidesk(store_location, "fact", "4242", "plan=silver", "-r", "nothing")
    assert missing.returncode == 1 and "has no fact 'nothing'" in missing.stderr
    assert "plan" not in {f["key"] for f in ok_json(store_location, "fact", "4242")["facts"]}  # all or none


def test_a_fact_name_templates_and_search_could_not_spell_is_refused(store_location):
    _seed(store_location)
    bad = omnidesk(store_location, "fact", "4242", "plan=silver", "bad.key=1")
    assert bad.returncode == 1 and "'bad.key': a fact name is letters, digits, _ and -" in bad.stderr
    assert {f["key"] for f in ok_json(store_location, "fact", "4242")["facts"]} == {"order_number"}  # nothing set
    assert ok_json(store_location, "fact", "4242", "plan-2=gold")["facts"][1]["key"] == "plan-2"


def test_show_customers_and_search_carry_the_facts_and_their_source(store_location):
    r = _seed(store_location)
    show = ok_json(store_location, "show", str(r.customer_id))
    [fact] = show["facts"]
    assert fact["value"] == "5520" and fact["message_id"] == r.message_id and fact["at"] == "2026-09-21T14:13:20Z"
    assert "order_number: 5520  · Telegram," in omnidesk(store_location, "show", "4242").stdout
    [c] = ok_json(store_location, "customers")
    assert c["facts"] == {"order_number": "5520"} and c["fact_sources"]["order_number"]["message_id"] == r.message_id
    hits = ok_json(store_location, "search", "fact:order_number=5520")
    assert hits[0]["customer_id"] == r.customer_id and hits[0]["message_id"] is None


def test_rename_and_undo(store_location):
    r = _seed(store_location)
    assert "is now Jane Doe" in omnidesk(store_location, "rename", "4242", "Jane", "Doe").stdout
    assert ok_json(store_location, "show", "4242")["customer"]["name"] == "Jane Doe"
    ok_json(store_location, "undo")
    assert ok_json(store_location, "show", str(r.customer_id))["customer"]["name"] == "jane"
    assert omnidesk(store_location, "rename", "4242", " ").returncode == 1
