"""The promise end to end: a customer tells us their order number on Telegram
(the loopback Bot API server, the real python-telegram-bot connector, a [[fact]]
rule at ingest); later they write by e-mail (a real Maildir read by the e-mail
connector). The e-mail address they typed on Telegram links the two as merge
evidence; once merged, the fact is there with its source, in `show --json` and
in the reply template, and the reply goes out by e-mail."""
from __future__ import annotations

import pytest

from connectors import config as config_mod
from connectors.desk.automation import attach
from connectors.desk.templates import install_starter_templates
from connectors.email import build
from connectors.engine import Engine
from store import Store
from tests.support.chat import telegram_connector, tg, wait_until  # noqa: F401
from tests.test_cli import ok_json, omnidesk
from tests.test_email_maildir import deliver, mail, make_maildir, options

pytestmark = pytest.mark.slow

RULES = r'''
[[fact]]
name = "order_number"
pattern = '(?i)\border\s*(?:number|no\.?|nr\.?)?\s*(?:is\s*)?[:#]?\s*(\d{3,12})\b'

[[fact]]
name = "email"
pattern = '(?i)\b([a-z0-9._%+-]{1,64}@[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63}){1,4})\b'
channel = ["telegram", "slack"]
'''


def test_a_fact_told_on_telegram_is_there_when_they_write_by_e_mail(tg, db_path, tmp_path):  # noqa: F811
    rules = config_mod.config_dir() / "rules.toml"
    rules.parent.mkdir(parents=True, exist_ok=True)
    rules.write_text(RULES)
    install_starter_templates(rules.parent / "templates")  # as `omnidesk init` does
    inbox = make_maildir(tmp_path / "Mail" / "INBOX")
    telegram = telegram_connector(tg)
    email = build("local", options(tmp_path / "Mail"))
    engine = Engine(db_path, [telegram, email], poll_interval=0.5, lease_seconds=10.0, permanent_retry=1.0)
    attach(engine)
    store = Store(db_path)
    jane = tg.user(1001, "Jane", "Roe", "janeroe")
    try:
        engine.start()
        tg.send_text(jane, "Hi! My order number is 5521 and it has not arrived. I'm jane.roe@example.com btw")
        tg_customer = wait_until(lambda: next(iter(store.customers_with_fact("order_number", "5521")), None),
                                 what="the order number captured from Telegram")
        deliver(inbox, mail("Jane Roe <jane.roe@example.com>", "Where is my parcel?",
                            "Any news?\n\nOn Monday you wrote:\n> Your order number 9999 has shipped", "e1@example.com"))
        mail_customer = wait_until(lambda: store.q1("SELECT customer_id FROM messages WHERE channel='email'"),
                                   what="the e-mail")[0]
    finally:
        engine.stop()
        telegram.close()
    assert mail_customer != tg_customer  # typed text links nobody by itself ...
    [suggestion] = ok_json(db_path, "suggest", "jane.roe@example.com")
    assert suggestion["other_id"] == tg_customer  # ... but it is the evidence the agent merges on
    assert any("gave email jane.roe@example.com on telegram" in e for e in suggestion["evidence"])
    ok_json(db_path, "merge", "jane.roe@example.com", str(tg_customer))

    shown = ok_json(db_path, "show", "jane.roe@example.com")
    facts = {f["key"]: f for f in shown["facts"]}
    tg_message = next(m for m in shown["messages"] if m["channel"] == "telegram")
    assert facts["order_number"]["value"] == "5521"  # not the 9999 in the quoted history
    assert (facts["order_number"]["channel"], facts["order_number"]["message_id"]) == ("telegram", tg_message["id"])
    assert [e["value"] for e in facts["order_number"]["earlier"]] == []

    assert "⇄ now on e-mail, " in omnidesk(db_path, "show", "jane.roe@example.com").stdout  # the handoff is marked

    reply = ok_json(db_path, "reply", "jane.roe@example.com", "--template", "order-status",
                    "--set", "status=shipped today", "--set", "tracking_url=https://t.example/1")
    assert reply["channel"] == "email"  # the reply follows them to e-mail
    assert "**5521**" in reply["text"]
    store.close()
