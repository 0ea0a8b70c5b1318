"""Triage rules: every condition, every action, timer rules once per wait,
clear errors for a wrong rules.toml, reloads, and `omnidesk rules test`."""
from __future__ import annotations

import json
import textwrap

import pytest

from connectors import config as config_mod
from connectors.desk import rules as rules_mod
from connectors.config import ConfigError
from store import StoreError
from console.cli import main
from tests.conftest import inbound

from tests.support.rules import T_MON_1000, T_SAT_1000, ingest, make_auto, rule_events  # noqa: F401

pytestmark = pytest.mark.both_backends


# -- conditions ------------------------------------------------------------------------------------
def _tag_vip(s, cid):
    s.tag(cid, "vip", "ann")


def _assign(s, cid):
    s.assign(cid, "alice", "ann")


def _priority(n):
    return lambda s, cid: s.set_priority(cid, n, "ann")


def _fact(v):
    return lambda s, cid: s.set_fact(cid, "plan", v, "ann")


def _email_first(s, cid):
    s.ingest(inbound(channel="email", address="m@x.example", text="first by mail", sent_at=s.clock() - 600))


PRIOR = "prior"  # an earlier message from the same customer, 2h before
CHAT = [dict(sent_at=T_MON_1000 - 300 * i) for i in range(6, 0, -1)]  # six messages 5 minutes apart

CASES = [
    # (condition, hit: (message kwargs, prep), miss: (message kwargs, prep))
    ('channel = "email"', (dict(channel="email", address="a@b.example"), None), (dict(), None)),
    ('account = "shop"', (dict(account="shop"), None), (dict(account="main"), None)),
    ('sender = "@bigcorp\\\\.com$"', (dict(channel="email", address="ann@bigcorp.com"), None),
     (dict(channel="email", address="ann@other.com"), None)),
    ('sender = "^vip_"', (dict(handle="vip_ann"), None), (dict(handle="ann"), None)),
    ('name = "^ann\\\\b"', (dict(name="Ann Lee"), None), (dict(name="Joanne"), None)),
    ('subject = "invoice"', (dict(channel="email", address="a@b.example", subject="Your INVOICE 42"), None),
     (dict(channel="email", address="a@b.example", subject="hello"), None)),
    ('text = "refund|money back"', (dict(text="I want my money back"), None), (dict(text="thanks!"), None)),
    ('tag = "vip"', (dict(), [PRIOR, _tag_vip]), (dict(), [PRIOR])),
    ('not_tag = "vip"', (dict(), [PRIOR]), (dict(), [PRIOR, _tag_vip])),
    ("assigned = false", (dict(), [PRIOR]), (dict(), [PRIOR, _assign])),
    ('assignee = "alice"', (dict(), [PRIOR, _assign]), (dict(), [PRIOR])),
    ("priority_below = 2", (dict(), [PRIOR, _priority(1)]), (dict(), [PRIOR, _priority(2)])),
    ("priority_at_least = 2", (dict(), [PRIOR, _priority(3)]), (dict(), [PRIOR, _priority(1)])),
    ('fact = { plan = "gold|platinum" }', (dict(), [PRIOR, _fact("Gold")]), (dict(), [PRIOR, _fact("basic")])),
    ("new_customer = true", (dict(), None), (dict(), [PRIOR])),
    ('hours = "09:00-17:00"', (dict(now=T_MON_1000), None), (dict(now=T_MON_1000 + 8 * 3600), None)),
    ('hours = "22:00-06:00"', (dict(now=T_MON_1000 - 6 * 3600), None), (dict(now=T_MON_1000), None)),
    ('days = "mon-fri"', (dict(now=T_MON_1000), None), (dict(now=T_SAT_1000), None)),
    ('days = ["sat", "Sun"]', (dict(now=T_SAT_1000), None), (dict(now=T_MON_1000), None)),
    ('days = "fri-mon"', (dict(now=T_SAT_1000), None), (dict(now=T_MON_1000 + 86400), None)),
    ('waiting_over = "1h"', (dict(), [PRIOR]), (dict(), None)),
    ('waiting_under = "1h"', (dict(), None), (dict(), [PRIOR])),
    ('engaged_over = "20m"', (dict(), CHAT), (dict(), [PRIOR])),
    ("case_channels_at_least = 2", (dict(address="7", emails=("m@x.example",)), [_email_first]), (dict(), [PRIOR])),
]


def _fire(store, clock, tmp_path, condition, message_kwargs, prep) -> bool:
    auto = make_auto(tmp_path, f"""
        timezone = "UTC"
        [[rule]]
        name = "under test"
        on = "message"
        when = {{ {condition} }}
        then = {{ tag = "hit" }}
    """)
    kw = dict(message_kwargs)
    clock.now = kw.pop("now", T_MON_1000)
    kw.setdefault("sent_at", clock.now)
    store.claim_new()
    for step in prep or []:
        if step == PRIOR:
            ingest(store, auto, inbound(**{**kw, "text": "earlier", "sent_at": clock.now - 7200}))
        elif isinstance(step, dict):  # a chat: customer and agent taking turns
            ingest(store, auto, inbound(**{**kw, "text": "earlier", **step}))
            saved, clock.now = clock.now, step["sent_at"] + 60
            store.queue_reply(store.find_customer(kw.get("address", "1001")), "ok", "ann")
            clock.now = saved
        else:
            try:
                cid = store.find_customer(kw.get("address", "1001"))
            except StoreError:  # the step creates the customer
                cid = None
            step(store, cid)
    before = len(rule_events(store))
    [result] = ingest(store, auto, inbound(**kw))
    fired = [e for e in rule_events(store)[: len(rule_events(store)) - before] if e.data["message_id"] == result.message_id]
    if fired:
        assert fired[0].actor == "rules" and "hit" in store.customer(result.customer_id).tags
    return bool(fired)


@pytest.mark.parametrize("condition,hit,miss", CASES, ids=[c[0].split(" ")[0] + "-" + str(i) for i, c in enumerate(CASES)])
def test_each_condition_fires_when_it_holds(store, clock, tmp_path, condition, hit, miss):
    assert _fire(store, clock, tmp_path, condition, *hit)


@pytest.mark.parametrize("condition,hit,miss", CASES, ids=[c[0].split(" ")[0] + "-" + str(i) for i, c in enumerate(CASES)])
def test_each_condition_stays_quiet_when_it_does_not(store, clock, tmp_path, condition, hit, miss):
    assert not _fire(store, clock, tmp_path, condition, *miss)


def test_all_conditions_of_a_rule_must_hold(store, clock, tmp_path):
    auto = make_auto(tmp_path, """
        [[rule]]
        name = "email refunds"
        when = { channel = "email", text = "refund" }
        then = { tag = "refund" }
    """)
    store.claim_new()
    ingest(store, auto, inbound(channel="email", address="a@x.example", text="hello"),
           inbound(channel="telegram", address="77", text="refund please"),
           inbound(channel="email", address="b@x.example", text="Refund please"))
    assert [e.customer_id for e in rule_events(store)] == [store.find_customer("b@x.example")]


# -- actions -------------------------------------------------------------------------------------------
def test_actions_tag_priority_assign_status_each_an_event_with_the_rule_name(store, clock, tmp_path):
    auto = make_auto(tmp_path, """
        [[rule]]
        name = "refunds to alice"
        when = { text = "refund" }
        then = { tag = ["refund", "money"], priority = 2, assign = "alice", status = "pending" }
    """)
    store.claim_new()
    [r] = ingest(store, auto, inbound(text="refund please"))
    c = store.customer(r.customer_id)
    assert (c.tags, c.priority, c.assignee, c.status) == (["money", "refund"], 2, "alice", "pending")
    kinds = sorted((e.kind, e.data.get("tag") or e.data.get("new")) for e in store.events(r.customer_id, limit=50))
    assert kinds == [("assign", "alice"), ("priority", 2), ("rule", None), ("status", "pending"),
                     ("tag", "refund, money")]  # the rule's tags: one event, one undo
    assert all(e.data["rule"] == "refunds to alice" and e.actor == "rules" for e in store.events(r.customer_id, limit=50))
    assert rule_events(store)[0].data["actions"] == ["tag refund, money", "priority 2", "assign alice", "status pending"]


def test_action_snooze_hides_the_customer_until_the_time(store, clock, tmp_path):
    auto = make_auto(tmp_path, """
        [[rule]]
        name = "newsletters later"
        when = { sender = "newsletter@" }
        then = { snooze = "2h" }
    """)
    store.claim_new()
    [r] = ingest(store, auto, inbound(channel="email", address="newsletter@shop.example", text="Deals!"))
    c = store.customer(r.customer_id)
    assert c.status == "snoozed" and c.snoozed_until == clock.now + 7200
    assert store.queue_count("waiting") == 0
    clock.advance(7201)
    assert [q.customer_id for q in store.queue("waiting")] == [r.customer_id]


def test_undoing_a_rules_action_works_like_any_other(store, clock, tmp_path):
    auto = make_auto(tmp_path, '[[rule]]\nname = "t"\nthen = { tag = "x" }\n')
    store.claim_new()
    [r] = ingest(store, auto, inbound())
    store.undo("rules")
    assert store.customer(r.customer_id).tags == []


def _templates(tmp_path):
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "ack.md").write_text(
        '+++\nsubject = "We got your message"\n+++\nThanks, we got it and answer within a day.\n'
        "<!-- channel: telegram, slack -->\nGot it! We answer within a day.\n")


def test_auto_acknowledgement_is_opt_in_once_per_wait_and_keeps_the_place_in_the_queue(store, clock, tmp_path):
    _templates(tmp_path)
    auto = make_auto(tmp_path, """
        [[rule]]
        name = "ack"
        when = { channel = "email" }
        then = { acknowledge = "ack" }
    """)
    store.claim_new()
    [r] = ingest(store, auto, inbound(channel="email", address="c@x.example", name="Cleo", subject="Broken lamp",
                                      text="my lamp is broken", sent_at=clock.now))
    clock.advance(60)
    ingest(store, auto, inbound(channel="email", address="c@x.example", text="photo attached", sent_at=clock.now))
    out = [m for m in store.timeline(r.customer_id) if m.direction == "out"]
    assert len(out) == 1  # once per wait, not per message
    ack = out[0]
    assert ack.state == "queued" and ack.author == "rules" and ack.meta["auto"] == "ack"
    assert ack.channel == "email" and ack.subject == "We got your message"
    assert "Hello Cleo," in ack.text and "answer within a day" in ack.text
    c = store.customer(r.customer_id)
    assert c.waiting_since == clock.now - 60 and store.queue("waiting")[0].customer_id == r.customer_id
    assert c.last_outbound_at is None and c.unread == 2  # an acknowledgement is not an answer
    assert [e.data["rule"] for e in store.events(r.customer_id, kind="auto_reply")] == ["ack"]
    # a person answers; the next message starts a new wait and gets a new acknowledgement
    clock.advance(60)
    store.queue_reply(r.customer_id, "On it.", "ann")
    clock.advance(60)
    ingest(store, auto, inbound(channel="email", address="c@x.example", text="thanks, one more thing", sent_at=clock.now))
    assert len([m for m in store.timeline(r.customer_id) if m.author == "rules"]) == 2


@pytest.mark.parametrize("meta", [{"auto_submitted": "auto-replied"}, {"precedence": "bulk"}, {"list_id": "<news.shop>"}])
def test_no_acknowledgement_for_autoresponders_and_lists(store, clock, tmp_path, meta):
    _templates(tmp_path)
    auto = make_auto(tmp_path, '[[rule]]\nname = "ack"\nthen = { acknowledge = "ack", tag = "seen" }\n')
    store.claim_new()
    [r] = ingest(store, auto, inbound(channel="email", address="noreply@x.example", text="I am out of office", meta=meta))
    assert store.customer(r.customer_id).tags == ["seen"]
    assert not [m for m in store.timeline(r.customer_id) if m.direction == "out"]


def test_acknowledgement_uses_the_channel_the_customer_wrote_on(store, clock, tmp_path):
    _templates(tmp_path)
    auto = make_auto(tmp_path, '[[rule]]\nname = "ack"\nthen = { acknowledge = "ack" }\n')
    store.claim_new()
    [r] = ingest(store, auto, inbound(channel="telegram", address="55", name="Dan", text="hi"))
    [ack] = [m for m in store.timeline(r.customer_id) if m.direction == "out"]
    assert ack.channel == "telegram" and "Got it! We answer within a day." in ack.text and ack.subject is None


def test_a_missing_template_is_an_error_event_and_the_other_actions_still_apply(store, clock, tmp_path):
    auto = make_auto(tmp_path, '[[rule]]\nname = "ack"\nthen = { acknowledge = "nope", tag = "seen" }\n')
    store.claim_new()
    [r] = ingest(store, auto, inbound())
    [err] = store.events(r.customer_id, kind="rule_error")
    assert err.data["rule"] == "ack" and "nope" in err.data["error"]
    assert store.customer(r.customer_id).tags == ["seen"]
    assert not [m for m in store.timeline(r.customer_id) if m.direction == "out"]


def test_action_hook_runs_the_command_with_the_rule_and_message_on_stdin(store, clock, tmp_path):
    out = tmp_path / "hook.json"
    auto = make_auto(tmp_path, f"""
        [[rule]]
        name = "urgent"
        when = {{ text = "urgent" }}
        then = {{ hook = "cat > {out}" }}
    """)
    store.claim_new()
    ingest(store, auto, inbound(text="URGENT: $(touch pwned) `id`"))
    assert auto.hooks.wait(10)
    data = json.loads(out.read_text())
    assert data["event"] == "rule_fired" and data["rule"] == "urgent"
    assert data["message"]["text"] == "URGENT: $(touch pwned) `id`"
    assert not (tmp_path / "pwned").exists()


def test_rules_apply_in_order_later_ones_see_earlier_ones_and_stop_stops(store, clock, tmp_path):
    auto = make_auto(tmp_path, """
        [[rule]]
        name = "mark vip"
        when = { sender = "^42$" }
        then = { tag = "vip" }
        [[rule]]
        name = "vip first"
        when = { tag = "vip" }
        then = { priority = 5 }
        stop = true
        [[rule]]
        name = "never for vips"
        then = { tag = "ordinary" }
    """)
    store.claim_new()
    [vip, other] = ingest(store, auto, inbound(address="42"), inbound(address="43"))
    assert store.customer(vip.customer_id).tags == ["vip"] and store.customer(vip.customer_id).priority == 5
    assert store.customer(other.customer_id).tags == ["ordinary"]


def test_imported_history_is_not_triaged(store, clock, tmp_path):
    auto = make_auto(tmp_path, '[[rule]]\nname = "t"\nthen = { tag = "x" }\n')
    store.claim_new()
    [old, new] = ingest(store, auto, inbound(sent_at=clock.now - 30 * 86400), inbound(address="2", sent_at=clock.now - 60))
    assert store.customer(old.customer_id).tags == [] and store.customer(new.customer_id).tags == ["x"]


def test_a_rule_sees_each_message_once_even_with_two_automations_on_one_store(store, clock, tmp_path, store_location):
    from store import Store

    auto = make_auto(tmp_path, '[[rule]]\nname = "count"\nthen = { tag = "x" }\n')
    other = Store(store_location, clock=clock)
    store.claim_new()
    ingest(store, auto, inbound(), inbound(address="2"))
    auto.tick(other)
    auto.tick(store)
    other.close()
    assert len(rule_events(store)) == 2


# -- rules.toml errors ------------------------------------------------------------------------------------
ERRORS = [
    ('[[rule]]\nthen = { tag = "x" }', "rule #1: name: missing"),
    ('[[rule]]\nname = "a"\nwhen = { colour = "red" }\nthen = { tag = "x" }', "rule 'a': when.colour: unknown condition"),
    ('[[rule]]\nname = "a"\nwhen = { text = "(unclosed" }\nthen = { tag = "x" }', "rule 'a': when.text: not a valid regular expression"),
    ('[[rule]]\nname = "a"\nwhen = { waiting_over = "soon" }\nthen = { tag = "x" }', "rule 'a': when.waiting_over: expected a duration"),
    ('[[rule]]\nname = "a"\nwhen = { channel = "fax" }\nthen = { tag = "x" }', "rule 'a': when.channel: unknown value 'fax'"),
    ('[[rule]]\nname = "a"\nwhen = { hours = "9-5" }\nthen = { tag = "x" }', "rule 'a': when.hours: expected a time range"),
    ('[[rule]]\nname = "a"\nthen = { explode = true }', "rule 'a': then.explode: unknown action"),
    ('[[rule]]\nname = "a"\nthen = { status = "closed" }', "rule 'a': then.status: unknown value 'closed'"),
    ('[[rule]]\nname = "a"\nthen = { priority = "high" }', "rule 'a': then.priority: expected a whole number"),
    ('[[rule]]\nname = "a"\nwhen = { text = "x" }', "rule 'a': then: missing"),
    ('[[rule]]\nname = "a"\ntext = "x"\nthen = { tag = "x" }', "rule 'a': text: unknown key"),
    ('[[rule]]\nname = "a"\non = "sometimes"\nthen = { tag = "x" }', "rule 'a': on: expected"),
    ('[[rule]]\nname = "a"\nthen = { tag = "x" }\n[[rule]]\nname = "a"\nthen = { tag = "y" }', "rule 'a': the name is used twice"),
    ('[[rule]]\nname = "a"\nwhen = { days = "mon-xyz" }\nthen = { tag = "x" }', "rule 'a': when.days: expected days like"),
    ('[[rule]]\nname = "a"\nwhen = { days = ["mon", 1] }\nthen = { tag = "x" }', "rule 'a': when.days: expected a string or a list"),
    ('[[rule]]\nname = "a"\nwhen = { hours = "09:00-25:00" }\nthen = { tag = "x" }', "rule 'a': when.hours: expected a time range"),
    ('timezone = "Mars/Olympus"', "timezone: unknown time zone"),
    ('[[rule]\nname = "a"', "not valid TOML"),
]


@pytest.mark.parametrize("text,message", ERRORS)
def test_a_wrong_rules_file_names_the_rule_and_the_key(tmp_path, text, message):
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        rules_mod.load_rules(path)
    assert message in str(e.value)


def test_a_broken_rules_file_at_start_does_not_stop_the_engine(store, tmp_path):
    auto = make_auto(tmp_path, '[[rule]]\nname = "x"\nthen = { tag = [1] }\n')
    assert auto.rules.rules == [] and "rule 'x': then.tag" in auto.rules_error
    auto.tick(store)  # runs, with no rules


def test_a_disabled_rule_is_skipped_and_a_missing_file_means_no_rules(tmp_path):
    assert rules_mod.load_rules(tmp_path / "rules.toml").rules == []
    (tmp_path / "rules.toml").write_text('[[rule]]\nname = "off"\nenabled = false\nthen = { tag = "x" }\n')
    assert rules_mod.load_rules(tmp_path / "rules.toml").rules == []


def test_edited_rules_are_picked_up_and_a_broken_edit_keeps_the_old_ones(store, clock, tmp_path):
    import os

    auto = make_auto(tmp_path, '[[rule]]\nname = "one"\nthen = { tag = "one" }\n')
    path = tmp_path / "rules.toml"
    path.write_text('[[rule]]\nname = "two"\nthen = { tag = "two" }\n')
    os.utime(path, ns=(1, 1))
    auto.tick(store)
    assert [r.name for r in auto.rules.rules] == ["two"] and auto.rules_error is None
    path.write_text('[[rule]]\nname = "three"\nthen = { tag = 3 }\n')
    os.utime(path, ns=(2, 2))
    auto.tick(store)
    assert [r.name for r in auto.rules.rules] == ["two"] and "rule 'three': then.tag" in auto.rules_error


# -- omnidesk rules list / test ----------------------------------------------------------------------------
def test_rules_test_shows_what_would_happen_and_changes_nothing(store_location, clock, capsys):
    from store import Store

    rules_file = config_mod.config_dir() / "rules.toml"
    rules_file.parent.mkdir(parents=True, exist_ok=True)
    rules_file.write_text(textwrap.dedent("""
        [[rule]]
        name = "refunds"
        when = { text = "refund" }
        then = { tag = "refund", assign = "alice" }
        [[rule]]
        name = "slow"
        when = { waiting_over = "1h" }
        then = { priority = 2 }
    """))
    s = Store(store_location, clock=clock)
    s.ingest(inbound(text="I need a refund", name="Eve\x1b[2J\x1b]0;pwned\x07", sent_at=clock.now - 7200))
    s.ingest(inbound(address="2", text="hello", sent_at=clock.now - 7200))
    from connectors.desk.automation import wait_period

    s.claim_rule_fire("slow", 2, wait_period(s.customer(2)))  # already fired for #2 in this wait
    before = (s.events(limit=100), s.customer(1).tags, s.outbox())
    s.close()
    assert main(["--db", str(store_location), "rules", "test", "--since", "2026-01-01"]) == 0
    out = capsys.readouterr().out
    assert "refunds -> tag refund; assign alice" in out and "\x1b" not in out and "\x07" not in out
    assert "waiting now: slow -> priority 2" in out
    assert "(already fired in this wait)" in out
    assert "Would fire: refunds ×1, slow ×1" in out and "Already fired (not again): slow ×1" in out
    assert main(["--db", str(store_location), "--json", "rules", "test", "--since", "2026-01-01"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [(h["rule"], h["customer_id"]) for h in hits] == [("refunds", 1), ("slow", 1), ("slow", 2)]
    assert hits[0]["at"] == "2026-09-21T12:13:20Z" and hits[0]["actions"] == ["tag refund", "assign alice"]
    s = Store(store_location, clock=clock)
    assert (s.events(limit=100), s.customer(1).tags, s.outbox()) == before
    s.close()
    assert main(["--db", str(store_location), "rules", "list"]) == 0
    out = capsys.readouterr().out
    assert "1. refunds  [message]" in out and "2. slow  [timer]" in out and 'waiting_over="1h"' in out


def test_rules_test_reports_a_broken_file_with_the_rule_name(store_location, capsys):
    rules_file = config_mod.config_dir() / "rules.toml"
    rules_file.parent.mkdir(parents=True, exist_ok=True)
    rules_file.write_text('[[rule]]\nname = "bad one"\nwhen = { text = "[" }\nthen = { tag = "x" }\n')
    assert main(["--db", str(store_location), "rules", "test"]) == 1
    assert "rule 'bad one': when.text: not a valid regular expression" in capsys.readouterr().err


def test_the_example_rules_file_is_all_comments_and_its_rules_are_valid(tmp_path):
    path = rules_mod.install_example(tmp_path / "rules.toml")
    assert rules_mod.load_rules(path).rules == []  # nothing happens until the owner uncomments
    assert rules_mod.install_example(path) is None  # never overwritten
    lines = path.read_text().splitlines()
    start = lines.index("# [[rule]]")
    path.write_text("\n".join(x[2:] if x.startswith("# ") else x for x in lines[start:]) + "\n")
    ruleset = rules_mod.load_rules(path)
    assert [(r.name, r.on) for r in ruleset.rules] == [("refunds to alice", "message"),
                                                       ("acknowledge e-mail out of hours", "message"),
                                                       ("escalate long chats", "timer")]


def test_the_real_engine_sends_the_acknowledgement_once(tmp_path, store_location):
    import time

    from connectors.desk.automation import attach
    from connectors.engine import Engine
    from store import Store
    from tests.support.fake_channel import FileChannel

    _templates(tmp_path)
    (tmp_path / "rules.toml").write_text('[[rule]]\nname = "ack"\nthen = { acknowledge = "ack" }\n')
    server = tmp_path / "server.jsonl"
    server.write_text("".join(json.dumps({"from": "900", "name": "Eve", "text": t, "at": time.time()}) + "\n"
                              for t in ("hello?", "anyone there?")))
    cfg = config_mod.validate({}, tmp_path / "config.toml")
    Store(store_location).close()
    channel = FileChannel(server)
    engine = Engine(store_location, [channel], poll_interval=0.05, lease_seconds=2)
    attach(engine, cfg)
    engine.run_once()
    assert [m.text for m in channel.sent] == ["Hi Eve!\n\nGot it! We answer within a day."]
    s = Store(store_location)
    [row] = s.queue("waiting")
    assert row.name == "Eve" and row.unread == 2  # still waiting for a person
    s.close()
