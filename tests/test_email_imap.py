"""The IMAP/SMTP e-mail channel against a real Dovecot and a real SMTP server."""
from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from email.message import EmailMessage

import pytest

from connectors.base import FAILED, OK, RETRYING
from connectors.email import build
from connectors.engine import Engine
from store import Store
from store.models import AttachmentIn
from tests.conftest import ROOT
from tests.support.dovecot import DOVECOT, Dovecot, require
from tests.support.dovecot import dovecot  # noqa: F401 - fixture
from tests.support.smtp import smtp_sink  # noqa: F401 - fixture

pytestmark = pytest.mark.slow


def customer_mail(sender: str, subject: str, body: str, mid: str, refs=(), irt=None, date=None) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "Shop Support <support@shop.test>"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{mid}>"
    msg["Date"] = email.utils.formatdate(date)
    if refs:
        msg["References"] = " ".join(f"<{r}>" for r in refs)
    if irt:
        msg["In-Reply-To"] = f"<{irt}>"
    msg.set_content(body)
    return msg.as_bytes()


@pytest.fixture
def db(tmp_path):
    return tmp_path / "omnidesk.db"


@pytest.fixture
def store(db):
    s = Store(db)
    yield s
    s.close()


def connector(server, **extra):
    options = server.options("support", from_name="Shop Support", **extra)
    return build("support", options)


def wait_until(check, timeout=30.0, step=0.02):  # generous: a loaded CI box
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s")


def test_mailbox_messages_land_under_the_right_customer(dovecot, store, db):
    dovecot.deliver("support", [
        customer_mail("Jane Roe <jane@example.com>", "Order 1042 arrived broken", "The vase is broken.", "j1@example.com"),
        customer_mail("Bob Li <bob@example.net>", "Invoice?", "Where is my invoice?", "b1@example.net"),
        customer_mail("Jane Roe <JANE@example.com>", "Photo", "Here is a photo.", "j2@example.com"),
    ])
    counts = Engine(db, [connector(dovecot)]).run_once()
    assert counts == {"email:support": 3}
    jane = store.find_customer("jane@example.com")
    bob = store.find_customer("bob@example.net")
    assert jane != bob
    assert [m.text.strip() for m in store.timeline(jane)] == ["The vase is broken.", "Here is a photo."]
    assert store.customer(jane).name == "Jane Roe"
    assert store.timeline(bob)[0].subject == "Invoice?"
    assert store.health()["email:support"]["state"] == OK
    # a second pass finds nothing new
    assert Engine(db, [connector(dovecot)]).run_once() == {"email:support": 0}


def test_first_read_keeps_old_mail_as_history_and_queues_only_recent_mail(dovecot, store, db):
    from datetime import datetime, timedelta, timezone

    last_year = datetime.now(timezone.utc) - timedelta(days=400)
    dovecot.deliver("support", customer_mail("Olga Berg <olga@example.com>", "Last year's order", "All good, thanks!",
                                             "o1@example.com", date=last_year.timestamp()), arrived=last_year)
    dovecot.deliver("support", customer_mail("Jane Roe <jane@example.com>", "Order 1042", "The vase is broken.",
                                             "j1@example.com"))
    assert Engine(db, [connector(dovecot)]).run_once() == {"email:support": 2}
    olga, jane = store.find_customer("olga@example.com"), store.find_customer("jane@example.com")
    assert [row.customer_id for row in store.queue("waiting")] == [jane]  # last year's mail does not wait
    assert (store.customer(olga).status, store.customer(olga).unread) == ("done", 0)
    assert store.timeline(olga)[0].meta["backlog"] is True
    assert [h.customer_id for h in store.search("thanks") if h.message_id] == [olga]  # but it is all there
    # Olga writes again: she waits like anyone, her history in the same timeline
    dovecot.deliver("support", customer_mail("Olga Berg <olga@example.com>", "Re: Last year's order",
                                             "It broke again.", "o2@example.com", refs=["o1@example.com"]))
    assert Engine(db, [connector(dovecot)]).run_once() == {"email:support": 1}
    assert {row.customer_id for row in store.queue("waiting")} == {jane, olga}
    assert store.customer(olga).unread == 1 and len(store.timeline(olga)) == 2
    # a customer's mail found in Junk and moved to INBOX keeps its old INTERNALDATE: it still waits
    dovecot.deliver("support", customer_mail("Sam Lee <sam@example.com>", "Refund?", "Still no refund.",
                                             "s1@example.com", date=last_year.timestamp()), arrived=last_year)
    assert Engine(db, [connector(dovecot)]).run_once() == {"email:support": 1}
    assert store.find_customer("sam@example.com") in {row.customer_id for row in store.queue("waiting")}


def test_backlog_days_zero_makes_all_old_mail_wait(dovecot, store, db):
    from datetime import datetime, timedelta, timezone

    last_year = datetime.now(timezone.utc) - timedelta(days=400)
    dovecot.deliver("support", customer_mail("Olga Berg <olga@example.com>", "Last year's order", "Still waiting.",
                                             "o1@example.com", date=last_year.timestamp()), arrived=last_year)
    Engine(db, [connector(dovecot, backlog_days=0)]).run_once()
    assert [row.customer_id for row in store.queue("waiting")] == [store.find_customer("olga@example.com")]


def test_reply_threads_and_the_answer_comes_back_to_the_same_customer(dovecot, smtp_sink, store, db):
    dovecot.deliver("support", customer_mail("Jane Roe <jane@example.com>", "Order 1042 arrived broken",
                                             "The vase is broken.", "q1@example.com", refs=["q0@example.com"],
                                             irt="q0@example.com"))
    conn = connector(dovecot, smtp_host="127.0.0.1", smtp_port=smtp_sink.port, smtp_security="plain",
                     smtp_username="-")
    Engine(db, [conn]).run_once()
    jane = store.find_customer("jane@example.com")
    reply_id = store.queue_reply(jane, "Sorry! **A replacement** ships today.", "alice",
                                 attachments=[AttachmentIn("label.pdf", "application/pdf", b"%PDF-1.4 label")])
    Engine(db, [connector(dovecot, smtp_host="127.0.0.1", smtp_port=smtp_sink.port, smtp_security="plain",
                          smtp_username="-")]).run_once()

    got = smtp_sink.wait_for(1)[0]
    assert got.rcpt_tos == ["jane@example.com"]
    sent = email.message_from_bytes(got.data, policy=email.policy.default)
    assert sent["Subject"] == "Re: Order 1042 arrived broken"
    assert sent["In-Reply-To"] == "<q1@example.com>"
    assert sent["References"].split() == ["<q0@example.com>", "<q1@example.com>"]
    assert sent["From"].addresses[0].display_name == "Shop Support"
    assert sent["From"].addresses[0].addr_spec == "support@shop.test"
    assert sent["Date"] and sent["Message-ID"]
    plain = sent.get_body(("plain",)).get_content()
    assert "A replacement* ships today." in plain and "**" not in plain  # Markdown rendered for plain text
    assert "<strong>A replacement</strong>" in sent.get_body(("html",)).get_content()
    [att] = list(sent.iter_attachments())
    assert att.get_filename() == "label.pdf" and att.get_content() == b"%PDF-1.4 label"

    ours = store.message(reply_id)
    assert ours.state == "sent"
    assert f"<{ours.external_id}>" == sent["Message-ID"]

    # the copy in Sent, and \Answered on the customer's message
    imap = dovecot.client("support")
    imap.select_folder("Sent", readonly=True)
    assert imap.search(["HEADER", "Message-ID", sent["Message-ID"]])
    imap.select_folder("INBOX", readonly=True)
    flags = imap.get_flags(imap.search(["ALL"]))
    assert all(b"\\Answered" in f for f in flags.values())
    imap.logout()

    # Jane answers our reply from her mail client
    dovecot.deliver("support", customer_mail("Jane Roe <jane@example.com>", "Re: Order 1042 arrived broken",
                                             "Thanks, got it!\n\n> Sorry! A replacement ships today.",
                                             "q2@example.com", refs=["q0@example.com", "q1@example.com",
                                                                     ours.external_id], irt=ours.external_id,
                                             date=time.time() + 60))  # Date has whole seconds
    Engine(db, [connector(dovecot)]).run_once()
    timeline = store.timeline(jane)
    assert [m.direction for m in timeline] == ["in", "out", "in"]
    answer = timeline[-1]
    assert answer.meta["new_text"] == "Thanks, got it!"
    assert answer.reply_to == ours.external_id
    assert answer.thread_key == timeline[0].thread_key == ours.thread_key == "q0@example.com"


KILLABLE_SYNC = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, sys.argv[1])
    from tests.support.dovecot import Dovecot
    from connectors.config import validate_table
    from connectors.email import OPTIONS, build
    from connectors.engine import Engine
    options = validate_table("email.support", OPTIONS, {
        "imap_host": "127.0.0.1", "imap_port": int(sys.argv[3]), "imap_security": "plain",
        "username": "support", "password_env": "OMNIDESK_TEST_PW_SUPPORT", "fetch_chunk": 7})
    Engine(sys.argv[2], [build("support", options)]).run_once()
""")


def test_sync_killed_midway_loses_and_doubles_nothing(dovecot, store, db, tmp_path):
    n = 400
    mails = [customer_mail(f"Customer {i} <c{i % 37}@example.org>", f"Question {i}", f"Body {i}", f"k{i}@example.org")
             for i in range(n)]
    dovecot.deliver("support", mails)
    dovecot.options("support")  # puts the password into the environment the child inherits
    script = tmp_path / "sync.py"
    script.write_text(KILLABLE_SYNC)
    child = subprocess.Popen([sys.executable, str(script), str(ROOT), str(db), str(dovecot.port)])
    try:
        wait_until(lambda: 0 < len(store.search("body")) or child.poll() is not None, timeout=60, step=0.005)
        stored_before = wait_until(lambda: store.queue_count("all") or child.poll() is not None, timeout=60)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(10)
    first = sum(len(store.timeline(c.customer_id, limit=1000)) for c in store.queue("all", limit=100))
    assert stored_before and first < n, "the sync finished before it could be killed"
    # restart once the dead process's polling lease runs out; it picks up at the saved cursor
    time.sleep(1.1)
    Engine(db, [connector(dovecot, fetch_chunk=50)], lease_seconds=1.0).run_once()
    ids = [m.external_id for c in store.queue("all", limit=100) for m in store.timeline(c.customer_id, limit=1000)]
    assert len(ids) == n and set(ids) == {f"k{i}@example.org" for i in range(n)}


def test_uidvalidity_change_resyncs_without_duplicates(dovecot, store, db):
    first = [customer_mail("Jane <jane@example.com>", f"m{i}", f"text {i}", f"u{i}@example.com") for i in range(5)]
    dovecot.deliver("support", first, folder="Support")
    Engine(db, [connector(dovecot, folders=["Support"])]).run_once()
    before = store.load_cursor("email:support")["Support"]
    # the server renumbers the folder (restored from backup, recreated...)
    imap = dovecot.client("support")
    imap.delete_folder("Support")
    imap.logout()
    time.sleep(1.1)  # UIDVALIDITY is derived from the clock
    dovecot.deliver("support", first + [customer_mail("Jane <jane@example.com>", "new", "new one", "u9@example.com")],
                    folder="Support")
    counts = Engine(db, [connector(dovecot, folders=["Support"])]).run_once()
    after = store.load_cursor("email:support")["Support"]
    assert before.split(":")[0] != after.split(":")[0]
    assert counts == {"email:support": 1}
    assert len(store.timeline(store.find_customer("jane@example.com"))) == 6


def test_idle_brings_new_mail_within_two_seconds(dovecot, store, db):
    engine = Engine(db, [connector(dovecot)], poll_interval=60.0)  # only IDLE can explain a fast arrival
    engine.start()
    try:
        wait_until(lambda: store.health().get("email:support", {}).get("state") == OK)
        latencies = []
        for i in range(3):
            dovecot.deliver("support", customer_mail("Jane <jane@example.com>", f"ping {i}", "hi", f"idle{i}@x.org"))
            t0 = time.monotonic()
            wait_until(lambda: len(store.search(f"ping {i}")) > 0, timeout=30, step=0.01)
            latencies.append(time.monotonic() - t0)
            time.sleep(0.2)
    finally:
        engine.stop()
    print(f"IDLE latency (APPEND done -> row in store): {', '.join(f'{x:.3f}s' for x in latencies)}")
    assert max(latencies) < 30  # the poll interval is 60 s: only IDLE explains these (figures printed above)


def delivering_client(dovecot, moment: str, mail: bytes):
    """The real IMAPClient the connector uses, which delivers `mail` once, at `moment`
    of the engine's first IDLE start, on its IDLE connection (the second one opened)."""
    from imapclient import IMAPClient

    opened, delivered = [], threading.Event()

    class Client(IMAPClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self)

        def _deliver_at(self, now: str) -> None:
            if now == moment and len(opened) > 1 and self is opened[1] and not delivered.is_set():
                delivered.set()
                dovecot.deliver("support", mail)

        def select_folder(self, *args, **kwargs):
            self._deliver_at("before the IDLE connection's SELECT")
            return super().select_folder(*args, **kwargs)

        def idle(self):
            self._deliver_at("between SELECT and IDLE")
            super().idle()
            self._deliver_at("just after IDLE started")

    return Client, delivered


@pytest.fixture(params=["plain", "tls"])
def plain_or_tls_dovecot(request):
    require(DOVECOT, "dovecot-imapd")
    server = Dovecot({"support": "s3cret-pw"}, tls=request.param == "tls")
    server.start()
    yield server
    server.cleanup()


@pytest.mark.parametrize("moment", ["before the IDLE connection's SELECT", "between SELECT and IDLE",
                                    "just after IDLE started"])
def test_mail_arriving_while_idle_starts_comes_at_once(plain_or_tls_dovecot, store, db, monkeypatch, moment):
    """A mail may land at any moment of IDLE's start. Between SELECT and IDLE, Dovecot
    announces it right after "+ idling", in the same packet, where a plain idle_check
    never looked: it waited for the next keepalive or the 60 s poll."""
    import connectors.email.imap as imap_mod

    server = plain_or_tls_dovecot
    mail = customer_mail("Jane <jane@example.com>", "race window", "hi", "race@x.org")
    client, delivered = delivering_client(server, moment, mail)
    monkeypatch.setattr(imap_mod, "IMAPClient", client)
    tls = {"imap_security": "tls", "imap_port": server.tls_port, "ca_file": str(server.cert)} if server.cert else {}
    engine = Engine(db, [connector(server, **tls)], poll_interval=60.0)  # only IDLE can explain a fast arrival
    engine.start()
    try:
        wait_until(delivered.is_set)
        t0 = time.monotonic()
        wait_until(lambda: store.search("race window"), timeout=30, step=0.01)
        print(f"{moment}: {time.monotonic() - t0:.3f}s")
    finally:
        engine.stop()


def test_wrong_password_is_failed_health_then_recovers(dovecot, store, db, monkeypatch, caplog):
    options = dovecot.options("support")
    monkeypatch.setenv(options["password_env"], "not-the-password")
    conn = build("support", options)
    Engine(db, [conn]).run_once()
    health = store.health()["email:support"]
    assert health["state"] == FAILED and "login failed for support" in health["detail"]
    assert "not-the-password" not in health["detail"] + caplog.text
    monkeypatch.setenv(options["password_env"], dovecot.users["support"])  # the user fixes the secret
    dovecot.deliver("support", customer_mail("Jane <jane@example.com>", "hello", "hi", "pw1@example.com"))
    assert Engine(db, [conn]).run_once() == {"email:support": 1}
    assert store.health()["email:support"]["state"] == OK


def test_server_down_is_retrying_health_and_sync_recovers(dovecot, store, db):
    engine = Engine(db, [connector(dovecot)], poll_interval=60.0)
    engine.start()
    try:
        wait_until(lambda: store.health().get("email:support", {}).get("state") == OK)
        dovecot.stop()
        wait_until(lambda: store.health()["email:support"]["state"] == RETRYING)
        assert "127.0.0.1" in store.health()["email:support"]["detail"]
        dovecot.start()
        dovecot.deliver("support", customer_mail("Jane <jane@example.com>", "back", "are you there?", "down1@x.org"))
        wait_until(lambda: store.search("there"), timeout=20, step=0.05)
        wait_until(lambda: store.health()["email:support"]["state"] == OK)
    finally:
        engine.stop()


def test_big_mail_is_fetched_in_size_bounded_batches(dovecot, store, db, monkeypatch):
    import connectors.email.imap as imap_mod

    monkeypatch.setattr(imap_mod, "MAX_BATCH_BYTES", 300_000)  # a small budget instead of 32 MB
    big = "x" * 200_000
    dovecot.deliver("support", [customer_mail("Jane <jane@example.com>", f"scan {i}", big, f"big{i}@x.org")
                                for i in range(3)])
    conn = connector(dovecot)
    sizes, cursor = [], {}
    while True:
        batch = conn.fetch(cursor)
        sizes.append(len(batch.items))
        store.ingest_batch(batch.items, conn.name, batch.cursor)
        cursor = batch.cursor
        if not batch.more:
            break
    conn.close()
    assert sizes == [1, 1, 1]
    assert len(store.timeline(store.find_customer("jane@example.com"))) == 3


def test_a_dropped_connection_is_reopened_without_a_health_blip(dovecot, store, db, caplog):
    """Servers close connections that sat idle; the next poll just reconnects."""
    caplog.set_level("INFO", logger="omnidesk.email")
    conn = connector(dovecot)
    first = conn.fetch({})
    dovecot.stop()  # every open connection dies with the server
    dovecot.start()
    dovecot.deliver("support", customer_mail("Jane <jane@example.com>", "after restart", "hi", "stale1@x.org"))
    second = conn.fetch(first.cursor)  # no ConnectorError: one transparent reconnect
    conn.close()
    assert [i.external_id for i in second.items] == ["stale1@x.org"]
    assert "reconnecting" in caplog.text
