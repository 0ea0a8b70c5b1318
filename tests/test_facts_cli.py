"""`omnidesk fact` and `omnidesk rename` end to end (the installed entry point):
set, change, remove, undo; facts with their source in show/customers --json;
search by fact."""
from __future__ import annotations

from store import Store
from tests.conftest import inbound
from tests.test_cli import ok_json, omnidesk

T0 = 1_790_000_000.0


def _seed(db_path):
    s = Store(db_path)
    r = s.ingest(inbound("telegram", "4242", "order 5520 please", name="jane", sent_at=T0))
    s.capture_fact(r.customer_id, "order_number", "5520", "order_number", message_id=r.message_id,
                   channel="telegram", at=T0)
    s.close()
    return r


def test_set_change_remove_and_undo_from_the_cli(db_path):
    r = _seed(db_path)
    out = ok_json(db_path, "fact", "4242", "plan=gold", "order_number=5521")
    assert {f["key"]: f["value"] for f in out["facts"]} == {"order_number": "5521", "plan": "gold"}
    [order] = [f for f in out["facts"] if f["key"] == "order_number"]
    assert order["actor"] == "alex" and [e["value"] for e in order["earlier"]] == ["5520"]
    assert order["earlier"][0]["message_id"] == r.message_id and order["earlier"][0]["channel"] == "telegram"

    human = omnidesk(db_path, "fact", "4242", "-r", "plan").stdout
    assert "order_number: 5521" in human and "earlier: 5520 (Telegram" in human and "plan" not in human
    assert ok_json(db_path, "undo")["kind"] == "fact"  # the removal
    assert ok_json(db_path, "undo")["kind"] == "fact"  # order_number=5521
    facts = ok_json(db_path, "show", "4242")["facts"]
    assert {f["key"]: (f["value"], f["message_id"]) for f in facts}["order_number"] == ("5520", r.message_id)

    bad = omnidesk(db_path, "fact", "4242", "plan=silver", "oops")
    assert bad.returncode == 1 and "expected KEY=VALUE" in bad.stderr
    missing = omnidesk(db_path, "fact", "4242", "plan=silver", "-r", "nothing")
    assert missing.returncode == 1 and "has no fact 'nothing'" in missing.stderr
    assert {f["key"]: f["value"] for f in ok_json(db_path, "fact", "4242")["facts"]}["plan"] == "gold"  # all or none


def test_a_fact_name_templates_and_search_could_not_spell_is_refused(db_path):
    _seed(db_path)
    bad = omnidesk(db_path, "fact", "4242", "plan=silver", "bad key=1")
    assert bad.returncode == 1 and "'bad key': a fact name is letters, digits, _ and -" in bad.stderr
    assert {f["key"] for f in ok_json(db_path, "fact", "4242")["facts"]} == {"order_number"}  # nothing set
    assert ok_json(db_path, "fact", "4242", "plan-2=gold")["facts"][1]["key"] == "plan-2"


def test_show_customers_and_search_carry_the_facts_and_their_source(db_path):
    r = _seed(db_path)
    show = ok_json(db_path, "show", str(r.customer_id))
    [fact] = show["facts"]
    assert fact["value"] == "5520" and fact["message_id"] == r.message_id and fact["at"] == "2026-09-21T14:13:20Z"
    assert "order_number: 5520  · Telegram," in omnidesk(db_path, "show", "4242").stdout
    [c] = ok_json(db_path, "customers")
    assert c["facts"] == {"order_number": "5520"} and c["fact_sources"]["order_number"]["message_id"] == r.message_id
    hits = ok_json(db_path, "search", "fact:order_number=5520")
    assert hits[0]["customer_id"] == r.customer_id and hits[0]["message_id"] is None


def test_rename_and_undo(db_path):
    r = _seed(db_path)
    assert "is now Jane Doe" in omnidesk(db_path, "rename", "4242", "Jane", "Doe").stdout
    assert ok_json(db_path, "show", "4242")["customer"]["name"] == "Jane Doe"
    ok_json(db_path, "undo")
    assert ok_json(db_path, "show", str(r.customer_id))["customer"]["name"] == "jane"
    assert omnidesk(db_path, "rename", "4242", " ").returncode == 1
