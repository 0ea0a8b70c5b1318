"""Importing years of mail must not bury today's customers (newcomer trial 1, finding 6),
and mail without a usable sender never joins strangers into one customer."""
from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.support.console import anyio_backend  # noqa: F401 - fixture

from store import Store
from tests.support.cli import OMNIDESK
from tests.support.smtp import smtp_sink  # noqa: F401 - fixture
from tests.test_email_bounce_flow import desk  # noqa: F401 - fixture

NOW = time.time()


def omnidesk(db, *args, check=True):
    proc = subprocess.run([str(OMNIDESK), "--db", str(db), *args], capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def mail(path, text: str, name: str | None = None) -> None:
    (path / "cur").mkdir(parents=True, exist_ok=True)
    for sub in ("new", "tmp"):
        (path / sub).mkdir(exist_ok=True)
    name = name or f"{time.time_ns()}.M1P1.host:2,S"
    (path / "cur" / name).write_text(text.strip() + "\n")


def rfc(ts: float) -> str:
    from email.utils import formatdate

    return formatdate(ts)


@pytest.fixture
def old_maildir(tmp_path):
    root = tmp_path / "Mail"
    for n in range(3):
        mail(root, f"From: Old {n} <old{n}@example.com>\nMessage-ID: <old{n}@x>\nSubject: tea {n}\n"
                   f"Date: Mon, 1{n} Dec 2012 10:00:00 +0000\n\nold question {n}")
    mail(root, f"From: Today <today@example.com>\nMessage-ID: <today@x>\nSubject: where is it\n"
               f"Date: {rfc(NOW - 3600)}\n\nmy order, today")
    return root


def queue(db) -> list[str]:
    return [row["name"] for row in json.loads(omnidesk(db, "--json", "queue").stdout)]


def test_old_mail_is_history_by_default_and_can_be_made_to_wait(tmp_path, old_maildir):
    db = tmp_path / "o.db"
    omnidesk(db, "import", "maildir", str(old_maildir))
    assert queue(db) == ["Today"]  # 2012's mail is stored and searchable, but waits for nobody
    store = Store(db)
    old = store.find_customer("old1@example.com")
    assert store.customer(old).status == "done"
    assert [m.text for m in store.timeline(old)] == ["old question 1"]
    store.close()
    assert "Old 1" in omnidesk(db, "search", "old question").stdout

    waiting = tmp_path / "w.db"  # the flag for those who want old mail to wait
    omnidesk(waiting, "import", "maildir", str(old_maildir), "--backlog-days", "0")
    assert queue(waiting) == ["Old 0", "Old 1", "Old 2", "Today"]  # longest wait first
    omnidesk(waiting, "import", "maildir", str(old_maildir), "--done")  # again, on the imported mailbox
    assert queue(waiting) == []  # it adds nothing, but marks this mailbox's customers done
    assert "Nobody is waiting" in omnidesk(waiting, "queue").stdout


def test_done_older_than_closes_quiet_conversations_and_one_undo_reopens_them(tmp_path, old_maildir):
    db = tmp_path / "o.db"
    omnidesk(db, "import", "maildir", str(old_maildir), "--backlog-days", "0")
    dry = omnidesk(db, "done", "--older-than", "30d", "--dry-run").stdout
    assert "would mark 3 customers done" in dry and "Old 2" in dry and "Today" not in dry
    assert len(queue(db)) == 4
    out = omnidesk(db, "done", "--older-than", "30d").stdout
    assert "marked 3 customers done" in out
    assert queue(db) == ["Today"]
    assert "reopened 3 customers" in omnidesk(db, "undo").stdout
    assert queue(db) == ["Old 0", "Old 1", "Old 2", "Today"]  # one undo: the whole batch
    bad = omnidesk(db, "done", "--older-than", "soon", check=False)
    assert bad.returncode == 1 and "30d" not in queue(db) and "expected a span like 7d" in bad.stderr


def test_mail_without_a_sender_is_one_customer_per_conversation(tmp_path):
    root = tmp_path / "Mail"
    recent = rfc(NOW - 600)
    mail(root, f"Message-ID: <a1@x>\nSubject: refund\nDate: {recent}\n\nI want my money back")
    mail(root, f"Message-ID: <a2@x>\nReferences: <a1@x>\nSubject: Re: refund\nDate: {recent}\n\nstill waiting")
    mail(root, f"Message-ID: <b1@x>\nSubject: wholesale\nDate: {recent}\n\nprices for 50 kg?")
    mail(root, f"Sender: Cleo <cleo@example.com>\nMessage-ID: <c1@x>\nSubject: hi\nDate: {recent}\n\nfrom Cleo")
    mail(root, f"Return-Path: <dan@example.com>\nMessage-ID: <d1@x>\nSubject: yo\nDate: {recent}\n\nfrom Dan")
    db = tmp_path / "o.db"
    omnidesk(db, "import", "maildir", str(root))
    store = Store(db)
    refund = store.find_customer(str(store.search("money")[0].customer_id))
    wholesale = store.search("wholesale")[0].customer_id
    assert refund != wholesale  # strangers never share a timeline
    assert [m.text for m in store.timeline(refund)] == ["I want my money back", "still waiting"]
    assert store.customer(store.find_customer("cleo@example.com")).name == "Cleo"
    assert [m.text for m in store.timeline(store.find_customer("dan@example.com"))] == ["from Dan"]
    store.close()

    refused = omnidesk(db, "reply", str(refund), "-m", "Sure, refunded.", check=False)
    assert refused.returncode == 1
    message = refused.stderr.strip().removeprefix("omnidesk: error: ")
    assert message == f"no e-mail address for #{refund}; add one: omnidesk identity add {refund} ADDRESS"
    assert len(message) <= 78  # fits a console toast at 80 columns

    added = omnidesk(db, "identity", "add", str(refund), "Ann@Example.com").stdout
    assert f"#{refund} can be answered at ann@example.com" in added
    omnidesk(db, "reply", str(refund), "-m", "Sure, refunded.")
    store = Store(db)
    [reply] = [m for m in store.timeline(refund) if m.direction == "out"]
    assert reply.subject == "Re: refund"  # it answers their last mail
    assert store.identities(refund)[-1].address == "ann@example.com"
    assert store.pick_identity(refund, "email").address == "ann@example.com"
    store.close()
    taken = omnidesk(db, "identity", "add", str(wholesale), "ann@example.com", check=False)
    assert taken.returncode == 1 and f"omnidesk merge {wholesale} {refund}" in taken.stderr


def test_identity_add_is_undoable(tmp_path):
    root = tmp_path / "Mail"
    mail(root, f"Message-ID: <a1@x>\nSubject: hi\nDate: {rfc(NOW)}\n\nno sender")
    db = tmp_path / "o.db"
    omnidesk(db, "import", "maildir", str(root))
    omnidesk(db, "identity", "add", "1", "eve@example.com")
    assert "undid “added address eve@example.com”" in omnidesk(db, "undo").stdout
    assert omnidesk(db, "show", "eve@example.com", check=False).returncode == 1
    assert omnidesk(db, "identity", "add", "1", "not an address", check=False).returncode == 1


def test_mail_without_date_gets_its_delivery_time_and_customer_since_is_the_first_mail(tmp_path):
    delivered = 1_355_314_122  # 2012-12-12: in the Maildir file name, as every delivery agent writes it
    root = tmp_path / "Mail"
    mail(root, "From: Zed <zed@example.com>\nMessage-ID: <z1@x>\nSubject: no date\n\nwhen was this?",
         name=f"{delivered}.M5P7.host:2,S")
    mbox = tmp_path / "old.mbox"
    mbox.write_text("From yan@example.com Sat Jan  3 01:05:34 2015\nFrom: Yan <yan@example.com>\n"
                    "Message-ID: <y1@x>\nSubject: mbox\n\nno date either\n")
    db = tmp_path / "o.db"
    omnidesk(db, "import", "maildir", str(root))
    omnidesk(db, "import", "mbox", str(mbox))
    store = Store(db)
    zed = store.customer(store.find_customer("zed@example.com"))
    assert store.timeline(zed.id)[0].sent_at == delivered
    assert zed.created_at == delivered  # "customer since" their first mail, not the import
    yan = store.find_customer("yan@example.com")
    assert time.gmtime(store.timeline(yan)[0].sent_at)[:6] == (2015, 1, 3, 1, 5, 34)
    store.close()
    stats = json.loads(omnidesk(db, "--json", "stats").stdout)
    assert stats["channels"]["email"]["messages_in"] == 0  # not "arrived now": not in this week's figures
    assert "Zed" not in omnidesk(db, "queue").stdout


@pytest.mark.anyio
async def test_console_refuses_in_a_short_toast_and_e_adds_the_address(db_path, clock, tmp_path):
    from connectors.email.parse import parse
    from console.screens.pickers import PickerScreen, PromptScreen
    from tests.support.console import make_app, open_customer, screen_text, settle, until

    s = Store(db_path, clock=clock)
    cid = s.ingest(parse(b"Message-ID: <n1@x>\nSubject: refund\n\nmy money back please", "shop")).customer_id
    s.close()
    app = make_app(db_path, clock, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_customer(pilot, cid)
        await pilot.press("r", *"Refunded today.", "ctrl+s")
        toast = "No e-mail address for them: e → add an e-mail address"
        await until(pilot, lambda: any(n.message == toast for n in app._notifications))
        assert len(toast) <= 60  # whole in a toast at 80 columns
        await pilot.press("escape")
        await settle(pilot)
        app.timeline.focus()
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, PickerScreen))
        await pilot.press(*"e-mail address", "enter")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press(*"ann@example.com", "enter")
        await until(pilot, lambda: app.composer.identity is not None and app.composer.identity.address == "ann@example.com")
        await pilot.press("r", "ctrl+s")
        await settle(pilot, 3)
    s = Store(db_path, clock=clock)
    [reply] = [m for m in s.timeline(cid) if m.direction == "out"]
    assert reply.text == "Refunded today." and reply.subject == "Re: refund"
    assert s.identities(cid)[-1].address == "ann@example.com"
    s.close()


def test_a_synced_maildir_mail_without_date_counts_from_its_delivery_time(desk):  # noqa: F811
    """The Maildir backend (mbsync's copy: the file's mtime is when it was synced)."""
    run = desk
    name = "1355314122.M9P9.mailhost"
    (run.inbox / "new" / name).write_text("From: Zed <zed@example.com>\nMessage-ID: <zz@x>\nSubject: hi\n\nno date\n")
    run("sync", "--once")
    shown = json.loads(run("--json", "show", "zed@example.com").stdout)
    assert [m["sent_at"] for m in shown["messages"]] == ["2012-12-12T12:08:42Z"]
