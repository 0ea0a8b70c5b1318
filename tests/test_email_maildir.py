"""The Maildir backend: read a Maildir kept by mbsync/offlineimap, send with `msmtp -t`."""
from __future__ import annotations

import email
import email.policy
import os
import threading
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from connectors.base import ConnectorError, PermanentError
from connectors.config import validate_table
from connectors.email import OPTIONS, build
from connectors.engine import Engine
from tests.support.dovecot import require
from tests.support.smtp import smtp_sink  # noqa: F401 - fixture

_n = iter(range(10**6))


def mail(sender: str, subject: str, body: str, mid: str, irt: str | None = None, date: float | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = sender, "support@shop.test", subject, f"<{mid}>"
    msg["Date"] = email.utils.formatdate(date)
    if irt:
        msg["In-Reply-To"] = msg["References"] = f"<{irt}>"
    msg.set_content(body)
    return msg.as_bytes()


def make_maildir(path: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def deliver(folder: Path, raw: bytes) -> Path:
    """As an MDA does it: write to tmp/, rename into new/."""
    name = f"{time.time_ns()}.{next(_n)}.testhost"
    (folder / "tmp" / name).write_bytes(raw)
    os.rename(folder / "tmp" / name, folder / "new" / name)
    return folder / "new" / name


def options(root: Path, **extra) -> dict:
    return validate_table("email.local", OPTIONS, {"backend": "maildir", "maildir": str(root),
                                                   "from_address": "support@shop.test", "from_name": "Shop", **extra})


@pytest.mark.parametrize("layout", ["mbsync", "maildir++"])
def test_reads_new_mail_once_even_after_flag_changes(tmp_path, layout):
    root = tmp_path / "Mail"
    inbox = make_maildir(root / "INBOX" if layout == "mbsync" else root)
    conn = build("local", options(root, fetch_chunk=2))
    for i in range(3):
        deliver(inbox, mail("Jane <jane@example.com>", f"q{i}", f"question {i}", f"m{i}@example.com"))
    cursor, got = {}, []
    while True:
        batch = conn.fetch(cursor)
        got += [i.external_id for i in batch.items]
        cursor = batch.cursor
        if not batch.more:
            break
    assert sorted(got) == ["m0@example.com", "m1@example.com", "m2@example.com"]
    # the mail client reads one: new/ -> cur/ with a flag; its content is not new
    first = next((inbox / "new").iterdir())
    os.rename(first, inbox / "cur" / f"{first.name}:2,S")
    deliver(inbox, mail("Bob <bob@example.net>", "hi", "hello", "m3@example.com"))
    again = conn.fetch(cursor)
    assert "m3@example.com" in [i.external_id for i in again.items]
    assert set(i.external_id for i in again.items) <= {"m3@example.com", "m0@example.com", "m1@example.com",
                                                       "m2@example.com"}  # re-read renamed file: the store drops it


def test_engine_dedups_and_wait_wakes_on_delivery(tmp_path, db_path):
    root = tmp_path / "Mail"
    inbox = make_maildir(root)
    conn = build("local", options(root))
    deliver(inbox, mail("Jane <jane@example.com>", "q", "first", "w1@example.com"))
    assert Engine(db_path, [conn]).run_once() == {"email:local": 1}
    stop = threading.Event()
    threading.Timer(0.3, lambda: deliver(inbox, mail("Jane <jane@example.com>", "q", "second", "w2@example.com"))).start()
    t0 = time.monotonic()
    conn.wait(60, stop)
    assert time.monotonic() - t0 < 60  # woken by the delivery, not by the timeout
    assert Engine(db_path, [conn]).run_once() == {"email:local": 1}


def test_a_synced_mail_archive_does_not_fill_the_queue(tmp_path, db_path):
    """mbsync gives every file a fresh time on its first sync: the Date header
    tells old mail from new."""
    from store import Store

    root = tmp_path / "Mail"
    inbox = make_maildir(root)
    for i in range(30):  # two years of one customer's orders
        deliver(inbox, mail("Olga <olga@example.com>", f"order {i}", "thanks", f"o{i}@example.com",
                            date=time.time() - (30 - i) * 25 * 86400))
    deliver(inbox, mail("Jane <jane@example.com>", "vase", "broken, 3 days ago", "j1@example.com",
                        date=time.time() - 3 * 86400))
    assert Engine(db_path, [build("local", options(root, fetch_chunk=7))]).run_once() == {"email:local": 31}
    store = Store(db_path)
    assert [row.name for row in store.queue("waiting")] == ["Jane"]  # within backlog_days (14): waits
    olga = store.find_customer("olga@example.com")
    assert store.customer(olga).status == "done" and len(store.timeline(olga)) == 30
    # what arrives after the first read is never history, whatever its Date says
    deliver(inbox, mail("Olga <olga@example.com>", "order 31", "where is it?", "o31@example.com",
                        date=time.time() - 90 * 86400))
    assert Engine(db_path, [build("local", options(root))]).run_once() == {"email:local": 1}
    assert {row.name for row in store.queue("waiting")} == {"Jane", "Olga"}
    store.close()


def test_reply_through_msmtp_threads_keeps_a_sent_copy_and_flags_answered(tmp_path, db_path, smtp_sink):
    require("msmtp", "msmtp")
    from store import Store

    root = tmp_path / "Mail"
    inbox = make_maildir(root / "INBOX")
    command = (f"msmtp --file=/dev/null --host=127.0.0.1 --port={smtp_sink.port} --auth=off --tls=off "
               f"--from=support@shop.test -t")
    conn = build("local", options(root, sendmail_command=command))
    original = deliver(inbox, mail("Jane <jane@example.com>", "Broken vase", "It broke.", "v1@example.com"))
    Engine(db_path, [conn]).run_once()
    store = Store(db_path)
    jane = store.find_customer("jane@example.com")
    reply_id = store.queue_reply(jane, "A new one is on its way.", "alice")
    Engine(db_path, [conn]).run_once()
    sent = email.message_from_bytes(smtp_sink.wait_for(1)[0].data, policy=email.policy.default)
    assert sent["Subject"] == "Re: Broken vase" and sent["In-Reply-To"] == "<v1@example.com>"
    ours = store.message(reply_id)
    assert ours.state == "sent" and sent["Message-ID"] == f"<{ours.external_id}>"
    copies = list((root / "Sent" / "cur").iterdir())
    assert len(copies) == 1 and copies[0].name.endswith(":2,S") and ours.external_id.encode() in copies[0].read_bytes()
    assert not original.exists()
    [answered] = list((inbox / "cur").iterdir())
    assert answered.name.endswith(":2,R")
    # the customer's answer to our reply lands in the same timeline
    deliver(inbox, mail("Jane <jane@example.com>", "Re: Broken vase", "Thanks!", "v2@example.com", irt=ours.external_id,
                        date=time.time() + 60))  # Date has whole seconds
    Engine(db_path, [conn]).run_once()
    assert [m.direction for m in store.timeline(jane)] == ["in", "out", "in"]
    store.close()


def test_sendmail_failures_are_sorted_into_retry_and_permanent(tmp_path):
    from store.models import OutboundMessage

    make_maildir(tmp_path / "Mail")
    out = OutboundMessage(outbox_id=1, message_id=1, channel="email", account="local",
                          to_address="jane@example.com", text="hi", subject="x")
    with pytest.raises(ConnectorError) as e:
        build("local", options(tmp_path / "Mail", sendmail_command="sh -c 'exit 75'")).send(out)
    assert not isinstance(e.value, PermanentError)
    with pytest.raises(PermanentError):
        build("local", options(tmp_path / "Mail", sendmail_command="sh -c 'exit 77'")).send(out)
    with pytest.raises(PermanentError):
        build("local", options(tmp_path / "Mail", sendmail_command="/nonexistent/sendmail -t")).send(out)


def test_missing_maildir_is_a_retryable_error(tmp_path):
    conn = build("local", options(tmp_path / "not-synced-yet"))
    with pytest.raises(ConnectorError):
        conn.fetch({})


def test_coarse_file_times_do_not_hide_new_mail(tmp_path):
    """Files created in the same clock tick share a ctime: one stamped just before
    the cursor must still be read, and read only once."""
    root = make_maildir(tmp_path / "Mail")
    conn = build("local", options(root))
    first = conn.fetch({})
    late = deliver(root, mail("Jane <jane@example.com>", "q", "late", "late@example.com"))
    ctime = late.stat().st_ctime_ns
    cursor = {"INBOX": f"{ctime + 1_000_000}:zzz"}  # a cursor already a tick past the new file
    batch = conn.fetch(cursor)
    assert [i.external_id for i in batch.items] == ["late@example.com"]
    assert conn.fetch(batch.cursor).items == []  # not again while the engine keeps our cursor
    assert first.items == []


def test_our_own_mail_in_a_watched_sent_folder_is_filed_once_as_our_reply(tmp_path, db_path, smtp_sink):
    """Sent is among the folders read: the copy of a reply sent from here is not
    stored twice, and a reply written in another mail client answers the customer."""
    require("msmtp", "msmtp")
    from store import Store

    root = tmp_path / "Mail"
    inbox, sent = make_maildir(root / "INBOX"), make_maildir(root / "Sent")
    command = (f"msmtp --file=/dev/null --host=127.0.0.1 --port={smtp_sink.port} --auth=off --tls=off "
               f"--from=support@shop.test -t")
    conn = build("local", options(root, sendmail_command=command, folders=["INBOX", "Sent"]))
    deliver(inbox, mail("Jane <jane@example.com>", "Broken vase", "It broke.", "v1@example.com"))
    deliver(inbox, mail("Olga <olga@example.com>", "Invoice", "Copy please?", "o1@example.com"))
    Engine(db_path, [conn]).run_once()
    store = Store(db_path)
    jane, olga = store.find_customer("jane@example.com"), store.find_customer("olga@example.com")
    store.queue_reply(jane, "A new one is on its way.", "alice")
    Engine(db_path, [conn]).run_once()  # sends, and the copy lands in Sent
    Engine(db_path, [conn]).run_once()  # reads Sent
    assert [m.direction for m in store.timeline(jane)] == ["in", "out"]
    # a colleague answers Olga from Thunderbird; the copy is in Sent
    deliver(sent, mail("Shop <support@shop.test>", "Re: Invoice", "Attached.", "tb1@shop.test", irt="o1@example.com",
                       date=time.time() + 60))
    assert store.customer(olga).waiting_since is not None
    Engine(db_path, [conn]).run_once()
    assert [(m.direction, m.text.strip()) for m in store.timeline(olga)] == [("in", "Copy please?"), ("out", "Attached.")]
    assert store.customer(olga).waiting_since is None
    assert store.queue("waiting") == []
    store.close()
