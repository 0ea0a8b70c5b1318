"""`omnidesk import mbox|maildir PATH`."""
from __future__ import annotations

import json
import mailbox
import os
import pty
import re
import shutil
import subprocess

import pytest

from console.cli import main
from store import Store
from tests.conftest import CORPORA
from tests.support.cli import OMNIDESK

EMLS = sorted(CORPORA.rglob("*.eml"))


def run(capsys, *argv) -> tuple[int, dict | str]:
    code = main(list(argv))
    out = capsys.readouterr()
    try:
        return code, json.loads(out.out)
    except json.JSONDecodeError:
        return code, out.out + out.err


@pytest.fixture
def corpus_maildir(tmp_path):
    root = tmp_path / "Mail"
    for sub in ("cur", "new", "tmp"):
        (root / "INBOX" / sub).mkdir(parents=True)
    (root / ".Archive" / "cur").mkdir(parents=True)
    for i, path in enumerate(EMLS):
        folder = root / "INBOX" if i % 3 else root / ".Archive"
        shutil.copy(path, folder / "cur" / f"{i}.{i}.host:2,S")
    (root / "INBOX" / "tmp" / "half-written").write_bytes(b"From: x@y.z\r\n")  # never read
    return root


def test_maildir_import_then_reimport_adds_nothing(capsys, tmp_path, corpus_maildir):
    db = str(tmp_path / "o.db")
    code, first = run(capsys, "--db", db, "--json", "import", "maildir", str(corpus_maildir), "--jobs", "2")
    assert code == 0
    assert first["messages"] == len(EMLS) and first["account"] == "local"
    assert first["added"] >= len(EMLS) - 2  # a corpus file or two share a Message-ID
    code, second = run(capsys, "--db", db, "--json", "import", "maildir", str(corpus_maildir))
    assert code == 0 and second["added"] == 0 and second["already_there"] == len(EMLS)
    store = Store(db)
    jane = store.find_customer("xxx@gmail.com")  # the Gmail/iPhone/Sparrow replies share a sender
    assert any(m.meta.get("new_text") == "Hello" for m in store.timeline(jane))
    store.close()


def test_mbox_import_with_the_done_flag(capsys, tmp_path, make_inbound):
    path = tmp_path / "archive.mbox"
    box = mailbox.mbox(path)
    for eml in EMLS[:40]:
        box.add(eml.read_bytes())
    box.add(b"From: Ann <ann@example.com>\nMessage-ID: <ann1@example.com>\nSubject: hi\n\n"
            b"line one\nFrom the start of a line\nlast line\n")  # the mbox keeps it as ">From the start"
    box.flush()
    db = tmp_path / "o.db"
    store = Store(db)
    waiting = store.ingest(make_inbound("telegram", "777", "still waiting for an answer")).customer_id
    code, data = run(capsys, "--db", str(db), "--json", "import", "mbox", str(path), "--done")
    assert code == 0 and data["messages"] == 41
    ann = store.find_customer("ann@example.com")
    [msg] = store.timeline(ann)
    assert b"\n>From the start" in path.read_bytes()
    assert msg.text.splitlines() == ["line one", "From the start of a line", "last line"]
    assert store.customer(ann).status == "done"
    assert store.customer(waiting).status == "open"  # only what the import created is closed
    assert store.queue("waiting") == [store.queue("waiting")[0]] and store.queue("waiting")[0].customer_id == waiting
    code, again = run(capsys, "--db", str(db), "--json", "import", "mbox", str(path))
    assert again["added"] == 0
    store.close()


def test_import_errors_are_plain_messages(capsys, tmp_path):
    code, out = run(capsys, "--db", str(tmp_path / "o.db"), "import", "mbox", str(tmp_path / "nope.mbox"))
    assert code == 1 and "no such file" in out
    bad = tmp_path / "not.mbox"
    bad.write_bytes(b"Subject: not an mbox\n\nhello\n")
    code, out = run(capsys, "--db", str(tmp_path / "o.db"), "import", "mbox", str(bad))
    assert code == 1 and "not an mbox" in out
    config = tmp_path / "c.toml"
    config.write_text('[email.a]\nbackend = "maildir"\nmaildir = "/x"\n[email.b]\nbackend = "maildir"\nmaildir = "/y"\n')
    (tmp_path / "md" / "cur").mkdir(parents=True)
    code, out = run(capsys, "--db", str(tmp_path / "o.db"), "--config", str(config), "import", "maildir",
                    str(tmp_path / "md"))
    assert code == 1 and "--account" in out


def test_large_maildir_is_parsed_on_several_processes(capsys, tmp_path):
    root = tmp_path / "Big"
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    for i in range(600):  # above the size where a process pool pays off
        (root / "new" / f"{i}.m.host").write_bytes(
            f"From: C{i % 50} <c{i % 50}@example.com>\nMessage-ID: <big{i}@example.com>\nSubject: n{i}\n\nbody {i}\n".encode())
    db = str(tmp_path / "o.db")
    code, data = run(capsys, "--db", db, "--json", "import", "maildir", str(root), "--jobs", "2")
    assert code == 0 and data["added"] == 600
    store = Store(db)
    assert store.queue_count("all") == 50
    assert len(store.timeline(store.find_customer("c7@example.com"), limit=100)) == 12
    store.close()


def test_trash_spam_and_our_own_sent_mail_stay_out(capsys, tmp_path):
    root = tmp_path / "Mail"
    for folder in ("INBOX", "Sent", "Trash", "[Gmail]/Spam"):
        for sub in ("cur", "new", "tmp"):
            (root / folder / sub).mkdir(parents=True)
    (root / "INBOX" / "cur" / "1.a.h:2,S").write_bytes(b"From: Ann <ann@example.com>\nMessage-ID: <in1@x>\n\nhi\n")
    (root / "Sent" / "cur" / "2.a.h:2,S").write_bytes(b"From: Shop <support@shop.test>\nTo: ann@example.com\n"
                                                      b"Message-ID: <out1@x>\n\nhello Ann\n")
    (root / "Trash" / "cur" / "3.a.h:2,S").write_bytes(b"From: Old <old@example.com>\nMessage-ID: <t1@x>\n\nx\n")
    (root / "[Gmail]/Spam" / "cur" / "4.a.h:2,S").write_bytes(b"From: Spam <s@spam.example>\nMessage-ID: <s1@x>\n\nx\n")
    config = tmp_path / "c.toml"
    config.write_text('[email.shop]\nbackend = "maildir"\nmaildir = "/unused"\nfrom_address = "Support@Shop.test"\n')
    db = str(tmp_path / "o.db")
    code, data = run(capsys, "--db", db, "--config", str(config), "--json", "import", "maildir", str(root))
    assert code == 0 and data["account"] == "shop"
    assert (data["messages"], data["added"], data["ours"]) == (2, 2, 1)
    store = Store(db)
    assert store.queue_count("all") == 1 and store.find_customer("ann@example.com")
    store.close()
    code, data = run(capsys, "--db", db, "--config", str(config), "--json", "import", "maildir", str(root),
                     "--all-folders")
    assert data["messages"] == 4 and data["added"] == 2 and data["already_there"] == 2


def test_a_directory_given_as_mbox_is_a_clear_error(capsys, tmp_path):
    (tmp_path / "Local Folders").mkdir()
    code, out = run(capsys, "--db", str(tmp_path / "o.db"), "import", "mbox", str(tmp_path / "Local Folders"))
    assert code == 1 and "is a directory, not an mbox file" in out and "import maildir" in out


def test_mboxrd_escapes_come_off_once(capsys, tmp_path):
    path = tmp_path / "rd.mbox"
    path.write_bytes(b"From ann@example.com Mon Jan  1 00:00:00 2024\nFrom: Ann <ann@example.com>\n"
                     b"Message-ID: <rd1@example.com>\n\n>From here\n>>From there\n> quoted\n")
    db = str(tmp_path / "o.db")
    assert run(capsys, "--db", db, "--json", "import", "mbox", str(path))[0] == 0
    store = Store(db)
    [msg] = store.timeline(store.find_customer("ann@example.com"))
    assert msg.text.splitlines() == ["From here", ">From there", "> quoted"]
    store.close()


def test_our_sent_mail_is_filed_as_our_replies_and_waiting_counts_from_the_last_unanswered(capsys, tmp_path):
    """An mbox holding both sides (as a Gmail export does): Ann asked, we answered,
    Ann asked again (waiting since then); Bob asked and we answered (not waiting);
    Cleo only ever got mail from us (a customer, nothing waiting)."""
    def m(sender, to, mid, date, body, irt=None):
        head = f"From: {sender}\nTo: {to}\nMessage-ID: <{mid}>\nDate: {date}\nSubject: Order\n"
        if irt:
            head += f"In-Reply-To: <{irt}>\nReferences: <{irt}>\n"
        return (head + "\n" + body + "\n").encode()
    box = mailbox.mbox(tmp_path / "all.mbox")
    for raw in [
        m("Ann <ann@example.com>", "support@shop.test", "a1@x", "Mon, 01 Jan 2024 09:00:00 +0000", "Where is it?"),
        m("Shop <support@shop.test>", "Ann <ann@example.com>", "s1@shop.test", "Mon, 01 Jan 2024 10:00:00 +0000",
          "On its way.", irt="a1@x"),
        m("Ann <ann@example.com>", "support@shop.test", "a2@x", "Tue, 02 Jan 2024 09:00:00 +0000", "Still nothing."),
        m("Shop <support@shop.test>", "Bob <bob@example.com>", "s2@shop.test", "Wed, 03 Jan 2024 10:00:00 +0000",
          "Refund done.", irt="b1@x"),
        m("Bob <bob@example.com>", "support@shop.test", "b1@x", "Wed, 03 Jan 2024 09:00:00 +0000", "Refund?"),
        m("Shop <support@shop.test>", "Cleo <cleo@example.com>", "s3@shop.test", "Thu, 04 Jan 2024 10:00:00 +0000",
          "Your voucher."),
    ]:
        box.add(raw)
    box.flush()
    config = tmp_path / "c.toml"
    config.write_text('[email.shop]\nbackend = "maildir"\nmaildir = "/unused"\nfrom_address = "support@shop.test"\n')
    db = str(tmp_path / "o.db")
    code, data = run(capsys, "--db", db, "--config", str(config), "--json", "import", "mbox", str(tmp_path / "all.mbox"),
                         "--backlog-days", "0")  # 2024 mail waits as if new
    assert code == 0 and (data["added"], data["ours"]) == (6, 3)
    store = Store(db)
    ann, bob, cleo = (store.find_customer(f"{n}@example.com") for n in ("ann", "bob", "cleo"))
    assert [(x.direction, x.text) for x in store.timeline(ann)] == [
        ("in", "Where is it?"), ("out", "On its way."), ("in", "Still nothing.")]
    assert store.customer(ann).waiting_since == store.timeline(ann)[-1].sent_at
    assert [x.direction for x in store.timeline(bob)] == ["in", "out"] and store.customer(bob).waiting_since is None
    assert [x.direction for x in store.timeline(cleo)] == ["out"] and store.customer(cleo).waiting_since is None
    assert store.customer(cleo).status == "done"  # nothing to do until she writes
    assert [r.customer_id for r in store.queue("waiting")] == [ann]
    code, again = run(capsys, "--db", db, "--config", str(config), "--json", "import", "mbox",
                      str(tmp_path / "all.mbox"), "--done")
    assert again["added"] == 0 and again["already_there"] == 6
    code, done = run(capsys, "--db", str(tmp_path / "d.db"), "--config", str(config), "--json", "import", "mbox",
                     str(tmp_path / "all.mbox"), "--done")
    assert Store(str(tmp_path / "d.db")).queue("waiting") == []
    store.close()


def test_done_also_closes_a_known_customer_made_to_wait_by_old_mail_only(capsys, tmp_path, make_inbound):
    db = tmp_path / "o.db"
    store = Store(db, clock=lambda: 1_650_000_000.0)  # 2022: our reply to the known customer
    live = store.ingest(make_inbound("email", "live@example.com", "help, today", sent_at=1_790_000_000.0)).customer_id
    known = store.ingest(make_inbound("email", "old@example.com", "hi", sent_at=1_600_000_000.0)).customer_id
    store.queue_reply(known, "hello", "agent")  # answered in 2022; then the import brings mail of 2024
    path = tmp_path / "a.mbox"
    box = mailbox.mbox(path)
    for n, who in enumerate(("old", "old", "live")):
        box.add(f"From: {who} <{who}@example.com>\nMessage-ID: <h{n}@x>\nDate: Mon, 0{n + 1} Jan 2024 10:00:00 +0000\n"
                f"\nold question {n}\n".encode())
    box.flush()
    assert run(capsys, "--db", str(db), "--json", "import", "mbox", str(path), "--done", "--backlog-days", "0")[0] == 0
    assert store.customer(known).waiting_since is not None  # the old mail is unanswered, but closed
    assert store.customer(known).status == "done"
    assert store.customer(live).status == "open"  # a live message waits whatever the import brought
    store.close()


def test_import_on_a_terminal_shows_progress(tmp_path):
    """A big mbox takes minutes: on a terminal the import draws a progress bar with
    the count of messages done (issue 19.3); piped, it prints only the summary."""
    mbox = tmp_path / "big.mbox"
    with open(mbox, "wb") as f:
        for i in range(1200):
            f.write(f"From x@y Mon Nov 30 00:00:00 2026\nFrom: C{i} <c{i}@ex.org>\nMessage-ID: <m{i}@ex.org>\n"
                    f"Subject: order {i}\n\nwhere is order {i}?\n\n".encode())
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100"}
    proc = subprocess.Popen([str(OMNIDESK), "--db", str(tmp_path / "o.db"), "import", "mbox", str(mbox), "--jobs", "2"],
                            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out = b""
    while True:  # until the command exits and the terminal closes
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: no writer left
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait() == 0
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode("utf-8", "replace"))
    assert "importing" in screen and "1200/1200" in screen and "msg/s" in screen
    assert "imported 1,200 new of 1,200 messages" in screen
    piped = subprocess.run([str(OMNIDESK), "--db", str(tmp_path / "p.db"), "import", "mbox", str(mbox)],
                           capture_output=True, text=True)
    assert "importing" not in piped.stderr + piped.stdout and "imported 1,200 new" in piped.stdout


def test_mails_sharing_a_message_id_are_kept_unless_they_are_the_same_mail(capsys, tmp_path):
    """A corpus holds one mail in two folders (a duplicate: stored once), and a mailer
    reuses a Message-ID for a different mail (kept: nothing may be lost), on 2 processes."""
    def mail(body: str, to: str = "support@shop.test") -> bytes:
        return (f"From: Jane Roe <jane@roe.example>\nTo: {to}\nMessage-ID: <same@roe.example>\n"
                f"Subject: order 1042\n\n{body}\n").encode()

    root = tmp_path / "Mail"
    for folder in ("INBOX", ".Archive"):
        for sub in ("cur", "new", "tmp"):
            (root / folder / sub).mkdir(parents=True)
    (root / "INBOX" / "cur" / "1.a:2,S").write_bytes(mail("Where is my parcel?"))
    (root / ".Archive" / "cur" / "2.a:2,S").write_bytes(mail("Where is my parcel?", to="help@shop.test"))  # a copy
    (root / ".Archive" / "cur" / "3.a:2,S").write_bytes(mail("The lid is cracked, too."))  # another mail
    for i in range(300):  # enough mail for more than one chunk, so both workers import
        (root / "INBOX" / "cur" / f"x{i}.a:2,S").write_bytes(
            f"From: c{i}@ex.org\nMessage-ID: <x{i}@ex.org>\nSubject: hi\n\nhello {i}\n".encode())
    db = str(tmp_path / "o.db")
    code, report = run(capsys, "--db", db, "--json", "import", "maildir", str(root), "--jobs", "2")
    assert code == 0 and (report["messages"], report["added"], report["already_there"]) == (303, 302, 1)
    store = Store(db)
    for word in ("parcel", "cracked"):  # each mail once
        assert len([hit for hit in store.search(word) if hit.message_id]) == 1, word
