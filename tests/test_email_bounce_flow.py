"""Bounces and out-of-office replies through the real product (newcomer trial 1, finding 7):
Maildir in, msmtp out to a real SMTP server, the installed `omnidesk` command."""
from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import time

import pytest

from tests.support.console import anyio_backend  # noqa: F401 - fixture

from tests.support.cli import OMNIDESK
from tests.support.dovecot import require
from tests.support.smtp import smtp_sink  # noqa: F401 - fixture

SUBJECT = "Where is my Earl Grey? Order 4411"


def deliver(inbox, raw: str) -> None:
    name = f"{time.time_ns()}.M1P1.testhost"
    (inbox / "tmp" / name).write_text(raw)
    os.rename(inbox / "tmp" / name, inbox / "new" / name)


@pytest.fixture
def desk(tmp_path, smtp_sink):
    require("msmtp", "msmtp")
    inbox = tmp_path / "Mail"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    config = tmp_path / "config.toml"
    config.write_text(f'[agent]\nname = "Alex"\n\n[email.shop]\nbackend = "maildir"\nmaildir = "{inbox}"\n'
                      f'from_address = "support@shop.test"\nsendmail_command = "msmtp --file=/dev/null'
                      f' --host=127.0.0.1 --port={smtp_sink.port} --auth=off --tls=off --from=support@shop.test -t"\n')
    env = {**os.environ, "OMNIDESK_CONFIG": str(config), "OMNIDESK_DB": str(tmp_path / "o.db")}

    def run(*args, check=True):
        proc = subprocess.run([str(OMNIDESK), *args], capture_output=True, text=True, env=env, timeout=120)
        assert not check or proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    run.inbox, run.sink = inbox, smtp_sink
    return run


def sent(sink, n: int):
    return email.message_from_bytes(sink.wait_for(n)[n - 1].data, policy=email.policy.default)


def waiting(desk) -> list[str]:
    return [r["name"] for r in json.loads(desk("--json", "queue").stdout)]


@pytest.mark.parametrize("then", ["pending", "done"])
def test_a_bounce_brings_the_customer_back_and_replies_keep_their_subject(desk, then):
    deliver(desk.inbox, f"From: Hannah Roth <hannah@example.org>\nTo: support@shop.test\nSubject: {SUBJECT}\n"
                        f"Message-ID: <h1@example.org>\nDate: {email.utils.formatdate()}\n\nStill not here.\n")
    desk("sync", "--once")
    assert waiting(desk) == ["Hannah Roth"]
    desk("reply", "hannah@example.org", "-m", "It left our warehouse today.")
    desk("sync", "--once")
    first = sent(desk.sink, 1)
    assert first["Subject"] == f"Re: {SUBJECT}"
    desk("status", "hannah@example.org", then)
    assert waiting(desk) == []

    # her out-of-office reply: shown, but it makes nobody wait and is not what we answer
    deliver(desk.inbox, f"From: Hannah Roth <hannah@example.org>\nTo: support@shop.test\n"
                        f"Subject: Abwesenheitsnotiz: Re: {SUBJECT}\nAuto-Submitted: auto-replied\n"
                        f"Message-ID: <ooo1@example.org>\nIn-Reply-To: {first['Message-ID']}\n"
                        f"Date: {email.utils.formatdate()}\n\nIch bin bis Montag nicht im Büro.\n")
    desk("sync", "--once")
    assert waiting(desk) == []
    show = desk("show", "hannah@example.org").stdout
    assert "Abwesenheitsnotiz" in show
    desk("reply", "hannah@example.org", "-m", "One more thing: the tracking number is 123.")
    desk("sync", "--once")
    second = sent(desk.sink, 2)
    assert second["Subject"] == f"Re: {SUBJECT}"  # not "Re: Abwesenheitsnotiz: Re: ..."
    assert second["In-Reply-To"] == "<h1@example.org>"

    # her mailbox is full: the report marks our reply failed and she is back in the default queue
    deliver(desk.inbox, "From: Mail Delivery Subsystem <mailer-daemon@mx.example.org>\nTo: support@shop.test\n"
                        "Subject: Undelivered Mail Returned to Sender\nMessage-ID: <dsn1@mx.example.org>\n"
                        f"Date: {email.utils.formatdate()}\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\n"
                        "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
                        "--b\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n"
                        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
                        "Final-Recipient: rfc822; hannah@example.org\nAction: failed\nStatus: 5.2.2\n"
                        "Diagnostic-Code: smtp; 552 5.2.2 mailbox full\n\n"
                        f"--b\nContent-Type: text/rfc822-headers\n\nMessage-ID: {second['Message-ID']}\n"
                        f"Subject: Re: {SUBJECT}\n\n--b--\n")
    desk("sync", "--once", check=False)  # exits 1: a reply failed (cron notices)
    assert waiting(desk) == ["Hannah Roth"]
    assert "Hannah Roth" in desk("queue").stdout
    timeline = json.loads(desk("--json", "show", "hannah@example.org").stdout)
    failed = [m for m in timeline["messages"] if m["direction"] == "out" and m["state"] == "failed"]
    assert len(failed) == 1 and "552 5.2.2 mailbox full" in failed[0]["error"]

    # --delivered is for "may have been delivered"; a bounce proves it was not
    refused = desk("retry", str(failed[0]["id"]), "--delivered", check=False)
    assert refused.returncode == 1
    assert "was not delivered" in refused.stderr and f"omnidesk retry {failed[0]['id']}" in refused.stderr
    again = json.loads(desk("--json", "show", "hannah@example.org").stdout)
    assert [m["state"] for m in again["messages"] if m["id"] == failed[0]["id"]] == ["failed"]


@pytest.mark.anyio
async def test_the_console_topic_is_the_customer_s_own_mail_never_the_auto_reply_or_bounce(db_path, clock, tmp_path):
    from connectors.email.parse import parse
    from store import Store
    from tests.support.console import make_app, open_customer, screen_text, settle
    from tests.test_email_cases import case, reply

    clock.now = 1_796_027_400.0  # 2026-11-30 08:30 UTC: the case's mail is of that morning
    s = Store(db_path, clock=clock)
    nina = s.ingest(parse(case("mail-bounce-and-auto-reply", "1-customer.eml"), "shop")).customer_id  # 08:00
    _, first = reply(s, nina, "Sorry! A blue mug ships today.")
    clock.advance(1800)
    s.ingest(parse(case("mail-bounce-and-auto-reply", "3-out-of-office.eml", **{"OUR-REPLY-ID": first}), "shop"))
    clock.advance(120)  # 09:02, after the out-of-office reply of 09:01
    msg, second = reply(s, nina, "And a voucher.")
    clock.advance(300)
    assert msg["Subject"] == "Re: Wrong colour"
    s.ingest(parse(case("mail-bounce-and-auto-reply", "2-bounce-of-our-reply.eml", **{"OUR-REPLY-ID": second}), "shop"))
    assert s.customer(nina).status == "open" and s.customer(nina).waiting_since is not None
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_customer(pilot, nina)
        text = screen_text(app)
        assert "topic (e-mail" in text and "Wrong colour" in text.split("topic (e-mail", 1)[1].split("\n", 1)[0]
        assert "Automatic reply" not in text.split("topic (e-mail", 1)[1].split("\n", 1)[0]
