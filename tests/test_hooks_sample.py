"""`omnidesk hooks test` builds its payload from the message that reached omnidesk last
(arrival order), not from the one whose Date sorts first or last: real mail carries Date
headers from 1993 (the RFC examples in the shared corpora) or from a sender's clock set
years ahead. It says which message it used, and takes --customer or --message."""
from __future__ import annotations

import email.utils
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CORPORA
from tests.support.cli import OMNIDESK

pytestmark = pytest.mark.both_backends

OLD = CORPORA / "mime-edge" / "rfc" / "003.eml"  # Nathaniel Borenstein, Date: 22 Mar 1993
OLD_TOO = CORPORA / "mime-edge" / "rfc" / "005.eml"  # the same sender, 21 Mar 1993
FUTURE = time.time() + 5 * 365 * 86400  # a sender's clock five years ahead (read as its arrival time)


def mail(sender: str, subject: str, body: str, date: float) -> bytes:
    return (f"From: {sender}\nTo: support@shop.test\nSubject: {subject}\n"
            f"Message-ID: <{time.time_ns()}@example.org>\nDate: {email.utils.formatdate(date)}\n"
            f"Content-Type: text/plain; charset=utf-8\n\n{body}\n").encode()


def maildir(path: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def deliver(inbox: Path, raw: bytes) -> None:
    """As an MDA does: write to tmp/, rename into new/."""
    name = f"{time.time_ns()}.{os.getpid()}.testhost"
    (inbox / "tmp" / name).write_bytes(raw)
    os.rename(inbox / "tmp" / name, inbox / "new" / name)


@pytest.fixture
def desk(tmp_path, store_location):
    """The installed command on a Maildir account; `desk.test(EVENT, ...)` runs `hooks test`
    with a hook that keeps its stdin (a config of its own, so `sync` runs no hook)."""
    inbox = maildir(tmp_path / "Mail")
    account = (f'[agent]\nname = "Alex Morgan"\n\n[email.shop]\nbackend = "maildir"\nmaildir = "{inbox}"\n'
               f'from_address = "support@shop.test"\nsendmail_command = "/bin/true"\n')
    plain, hooked = tmp_path / "config.toml", tmp_path / "hooks.toml"
    plain.write_text(account)
    got = tmp_path / "payload.json"
    hooked.write_text(account + f'\n[[hook]]\non = ["message_received", "reply_sent"]\ncommand = "cat > {got}"\n')

    def run(*args: str, config: Path = plain, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(OMNIDESK), "--db", store_location, "--config", str(config), *args],
                              capture_output=True, text=True, timeout=120)
        assert not check or proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def test(event: str, *args: str) -> tuple[str, dict]:
        got.unlink(missing_ok=True)
        proc = run("hooks", "test", event, *args, config=hooked)
        return proc.stdout, json.loads(got.read_text())

    run.test, run.inbox, run.hooked = test, inbox, hooked
    return run


def test_the_sample_is_the_message_that_arrived_last_whatever_its_date(desk):
    deliver(desk.inbox, mail("Ann Lee <ann@example.org>", "hello", "first mail", time.time() - 3600))
    desk("sync", "--once")  # past the first read (which files old mail as backlog): the next mails wait
    # Old and future dates arrive next; a mail with an ordinary date arrives after them.
    deliver(desk.inbox, OLD.read_bytes())
    deliver(desk.inbox, mail("Fiona Future <fiona@example.org>", "clock ahead", "my clock is wrong", FUTURE))
    desk("sync", "--once")
    deliver(desk.inbox, mail("ÉMILE Zola <emile@example.org>", "Order 4411", "where is my tea?", time.time() - 7200))
    desk("sync", "--once")

    out, payload = desk.test("message_received")
    # not the 1993 mail (longest waiting, oldest date), not the one dated five years ahead
    assert payload["message"]["text"].startswith("where is my tea?")
    assert payload["customer"]["name"] == "ÉMILE Zola" and payload["test"] is True
    said = out.splitlines()[0]
    assert said.startswith(f"sample: message #{payload['message']['id']} from ÉMILE Zola (#{payload['customer']['id']})"
                           " on email, received 20"), said
    assert "dated" not in said  # its Date is ordinary: nothing to point out

    # Another customer, named: their message that arrived last, and its odd date is pointed out.
    out, payload = desk.test("message_received", "--customer", "nsb@bellcore.com")
    assert payload["message"]["subject"] == "Formatted text mail"
    assert "on email, received 20" in out and "(it is dated 1993-03-22T17:41:09Z)" in out.splitlines()[0]
    # A message named by id, and the JSON form says which one too.
    old = json.loads(desk("--json", "show", "nsb@bellcore.com").stdout)
    old_id = next(m["id"] for m in old["messages"] if m["direction"] == "in")
    proc = desk("--json", "hooks", "test", "message_received", "--message", str(old_id), config=desk.hooked)
    sample = json.loads(proc.stdout)["sample"]
    assert sample["message_id"] == old_id and sample["customer"] == "Nathaniel Borenstein"
    assert sample["sent_at"].startswith("1993-03-22") and sample["channel"] == "email"
    assert sample["imported"] is False


def test_imported_history_does_not_displace_a_message_that_came_in_live(desk, tmp_path):
    # only history so far: its last message is the sample, and the output says what it is
    history = maildir(tmp_path / "Old")
    shutil.copy(OLD_TOO, history / "cur" / "1.eml:2,S")
    desk("import", "maildir", str(history))
    out, payload = desk.test("message_received")
    assert payload["customer"]["name"] == "Nathaniel Borenstein"
    assert "on email, imported history, dated 1993-03-22" in out.splitlines()[0]  # 23:56 PST is the 22nd in UTC

    deliver(desk.inbox, mail("Zoë Müller <zoe@example.org>", "Lieferung 3391", "Wo bleibt sie?", time.time()))
    desk("sync", "--once")
    shutil.copy(OLD, history / "cur" / "2.eml:2,S")
    desk("import", "maildir", str(history))  # imported after Zoë's mail came in
    out, payload = desk.test("message_received")
    assert payload["customer"]["name"] == "Zoë Müller", out


def test_reply_hooks_get_our_latest_reply_and_a_customer_without_one_is_said(desk):
    deliver(desk.inbox, mail("Ann Lee <ann@example.org>", "hello", "hi there", time.time()))
    deliver(desk.inbox, mail("Bo Chen <bo@example.org>", "hello", "hi again", time.time()))
    desk("sync", "--once")
    desk("reply", "ann@example.org", "-m", "Hello Ann, on its way.")
    out, payload = desk.test("reply_sent")
    assert payload["message"]["direction"] == "out" and "on its way" in payload["message"]["text"]
    assert out.splitlines()[0].startswith(f"sample: reply #{payload['message']['id']} to Ann Lee")
    out, payload = desk.test("reply_sent", "--customer", "bo@example.org")
    assert "message" not in payload and payload["customer"]["name"] == "Bo Chen"
    assert out.splitlines()[0].startswith("sample: Bo Chen (#") and "has no reply yet" in out
    # a message id that does not exist is a plain error
    proc = desk("hooks", "test", "message_received", "--message", "999999", config=desk.hooked, check=False)
    assert proc.returncode == 1 and "no message with id 999999" in proc.stderr
