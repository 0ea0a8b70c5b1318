"""Waiting-time targets: config, time left / overdue, breaches once per wait
with a controlled clock (priority up, a 'breach' event, the hook)."""
from __future__ import annotations

import json

import pytest

from connectors import config as config_mod
from connectors.desk.automation import Automation
from connectors.config import ConfigError
from connectors.desk.targets import BreachWatch, Targets, target_for, time_left
from tests.conftest import inbound

pytestmark = pytest.mark.both_backends


def config(tmp_path, **data):
    return config_mod.validate(data, tmp_path / "config.toml")


def test_chat_covers_telegram_and_slack_unless_they_have_their_own(tmp_path):
    cfg = config(tmp_path, targets={"chat": "15m", "email": "4h", "slack": "1h"})
    assert target_for("telegram", cfg) == 900
    assert target_for("slack", cfg) == 3600
    assert target_for("email", cfg) == 4 * 3600
    assert target_for("email", config(tmp_path)) is None  # no [targets]: no targets


@pytest.mark.parametrize("table,message", [
    ({"chat": "soon"}, "targets.chat: expected a duration like"),
    ({"chat": 15}, "targets.chat: expected a duration like"),
    ({"fax": "1h"}, "targets.fax: unknown key; expected one of chat, email, telegram, slack"),
    ({"raise_priority": -1}, "targets.raise_priority: expected a whole number"),
])
def test_wrong_targets_are_clear_errors(tmp_path, table, message):
    with pytest.raises(ConfigError, match=message):
        config(tmp_path, targets=table)


def test_the_queue_can_show_time_left_and_overdue(store, clock, tmp_path):
    cfg = config(tmp_path, targets={"chat": "15m", "email": "4h"})
    store.ingest(inbound(sent_at=clock.now))
    store.ingest(inbound(channel="email", address="e@x.example", sent_at=clock.now))
    tg, mail = store.find_customer("1001"), store.find_customer("e@x.example")
    clock.advance(10 * 60)
    assert time_left(store.customer(tg), clock.now, cfg) == 5 * 60
    rows = {r.customer_id: r for r in store.queue("waiting")}
    assert time_left(rows[mail], clock.now, cfg) == 4 * 3600 - 600  # works on queue rows too
    clock.advance(20 * 60)
    assert time_left(store.customer(tg), clock.now, cfg) == -15 * 60  # overdue by 15 minutes
    store.queue_reply(tg, "hi", "ann")
    assert time_left(store.customer(tg), clock.now, cfg) is None  # answered: nothing to count down


def test_a_breach_raises_priority_logs_an_event_and_fires_the_hook_once_per_wait(store, clock, tmp_path):
    out = tmp_path / "breaches.jsonl"
    cfg = config(tmp_path, targets={"chat": "15m", "email": "4h"},
                 hook=[{"on": "target_breached", "command": f"cat >> {out}; echo >> {out}"}])
    auto = Automation(cfg, rules_path=tmp_path / "rules.toml", log_path=tmp_path / "hooks.log")
    store.claim_new()
    store.ingest(inbound(name="Tia", sent_at=clock.now))
    store.ingest(inbound(channel="email", address="e@x.example", sent_at=clock.now))
    tg = store.find_customer("1001")
    clock.advance(14 * 60)
    auto.tick(store)
    assert store.events(kind="breach") == []
    clock.advance(2 * 60)
    auto.tick(store)
    auto.tick(store)
    [ev] = store.events(kind="breach")
    assert ev.customer_id == tg and ev.data["channel"] == "telegram" and ev.data["target"] == 900
    assert ev.data["waited"] == 16 * 60 and ev.actor == "targets"
    assert store.customer(tg).priority == 1
    assert store.queue("waiting")[0].customer_id == tg  # the breached chat jumps the queue
    assert auto.hooks.wait(10)
    [payload] = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    assert payload["event"] == "target_breached" and payload["customer"]["name"] == "Tia"
    assert payload["event_data"]["data"]["channel"] == "telegram"
    # e-mail is not late at 16 minutes; the chat's second wait breaches again, once
    store.queue_reply(tg, "sorry for the wait", "ann")
    clock.advance(60)
    store.ingest(inbound(sent_at=clock.now))
    clock.advance(16 * 60)
    auto.tick(store)
    auto.tick(store)
    assert [e.customer_id for e in store.events(kind="breach")] == [tg, tg]
    assert store.customer(tg).priority == 2
    assert auto.hooks.wait(10)
    assert len([line for line in out.read_text().splitlines() if line.strip()]) == 2
    assert "target_breached" in (tmp_path / "hooks.log").read_text()


def test_snoozed_and_pending_customers_do_not_breach(store, clock, tmp_path):
    targets = Targets({"chat": "15m", "raise_priority": 0})
    store.ingest(inbound(sent_at=clock.now))
    store.ingest(inbound(address="2", sent_at=clock.now))
    store.snooze(1, clock.now + 3600, "ann")
    store.set_status(2, "pending", "ann")
    clock.advance(30 * 60)
    assert targets.check(store) == []
    store.set_status(2, "open", "ann")
    [event] = targets.check(store)
    assert store.event(event).customer_id == 2 and store.customer(2).priority == 0  # raise_priority = 0


def test_the_breach_watch_tells_each_missed_target_once(store, clock):
    """What the console toasts: news since the last look, whether the engine
    recorded the breach or nobody did; what was overdue at the start is not news."""
    targets = Targets({"chat": "15m", "email": "4h"})
    store.ingest(inbound(name="Old", address="1", sent_at=clock.now - 3600))  # overdue before the first look
    watch = BreachWatch(targets)
    assert watch.look(store) == []
    store.ingest(inbound(name="Tia", address="2", sent_at=clock.now))
    store.ingest(inbound(channel="email", address="e@x.example", name="Eve", sent_at=clock.now))
    clock.advance(14 * 60)
    assert watch.look(store) == []
    clock.advance(2 * 60)
    [news] = watch.look(store)  # nobody recorded it: still news, once
    assert (news.name, news.channel, news.waiting_since) == ("Tia", "telegram", clock.now - 16 * 60)
    assert watch.look(store) == []
    targets.check(store)  # the engine records it later: known already
    assert watch.look(store) == []
    # a breach another process recorded between two looks is news too
    store.ingest(inbound(name="Sam", address="3", sent_at=clock.now))
    clock.advance(20 * 60)
    targets.check(store)
    assert [b.name for b in watch.look(store)] == ["Sam"]
    assert watch.look(store) == []


def test_breaches_are_counted_in_stats(store, clock, tmp_path):
    targets = Targets({"chat": "15m"})
    start = clock.now
    store.ingest(inbound(sent_at=clock.now))
    store.ingest(inbound(channel="slack", address="U1", sent_at=clock.now))
    clock.advance(3600)
    targets.check(store)
    stats = store.stats(start)["channels"]
    assert (stats["telegram"]["breaches"], stats["slack"]["breaches"], stats["email"]["breaches"],
            stats["all"]["breaches"]) == (1, 1, 0, 2)


def test_the_config_example_is_valid_once_uncommented(tmp_path):
    import re
    import tomllib

    from connectors.desk.automation import CONFIG_EXAMPLE
    from connectors.desk.targets import describe_time_left

    text = "\n".join(x[2:] for x in CONFIG_EXAMPLE.splitlines() if re.match(r"# (\[|[a-z_]+ = )", x))
    cfg = config(tmp_path, **tomllib.loads(text))
    assert target_for("slack", cfg) == 900 and cfg.extra["hook"][0]["on"] == "target_breached"
    assert [describe_time_left(x) for x in (None, 30, 300, -3900)] == ["", "30s left", "5m left", "1h05m over"]
