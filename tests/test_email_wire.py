"""Every outbound mail is valid on the wire: no line over 998 octets (RFC 5322
2.1.1) whatever the agent wrote (a one-line 5,000-character paragraph, a long
URL, an HTML part), CRLF on SMTP, the headers a server and a client expect.
Checked against a real aiosmtpd (its default line limit) and Dovecot, for the
SMTP backend, the sendmail backend (msmtp and the demo's relay) and the Sent copy."""
from __future__ import annotations

import email
import email.policy
import re
import sys

import pytest

from connectors.email import build
from connectors.email.compose import compose
from connectors.engine import Engine
from store import Store
from store.models import OutboundMessage
from tests.support.dovecot import dovecot, require  # noqa: F401 - fixture
from tests.support.smtp import smtp_sink  # noqa: F401 - fixture
from tests.test_email_maildir import deliver, make_maildir, options as maildir_options

PARAGRAPH = "Dear customer, " + " ".join(f"wörd{n}" for n in range(800))  # one line, ~6,000 characters
URL = "https://tracking.example.com/parcel?" + "&".join(f"k{n}=v{n}" for n in range(300))
LONG = f"{PARAGRAPH}\n\nTrack it here: {URL}\n\n" + "x" * 5000
HTML = "<p>" + "<b>bold</b> and plain text " * 400 + f'<a href="{URL}">track</a></p>'


def lines(raw: bytes, sep: bytes = b"\r\n") -> list[bytes]:
    return raw.split(sep)


def assert_valid(raw: bytes, sep: bytes = b"\r\n") -> email.message.EmailMessage:
    assert max(len(line) for line in lines(raw, sep)) <= 998
    if sep == b"\r\n":
        assert not re.search(rb"(?<!\r)\n", raw), "bare LF on SMTP"
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    for header in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version"):
        assert msg[header], header
    assert not msg.defects
    return msg


def assert_intact(msg) -> None:
    plain = msg.get_body(("plain",)).get_content()
    assert PARAGRAPH in plain.replace("\r\n", "\n") and URL in plain and "x" * 5000 in plain


def outbound(**kw) -> OutboundMessage:
    return OutboundMessage(outbox_id=1, message_id=1, channel="email", account="shop", to_address="jane@example.com",
                           text=LONG, subject="Your parcel " + "and more " * 30, **kw)


def test_composed_mail_has_short_lines_whatever_the_text():
    msg, _ = compose(outbound(html=HTML), {"from_address": "support@shop.test", "from_name": "Shöp Süpport"})
    sent = assert_valid(msg.as_bytes())
    assert_intact(sent)
    assert HTML in sent.get_body(("html",)).get_content()
    assert sent["Subject"] == "Your parcel " + "and more " * 29 + "and more"  # folded, and unfolds the same


def test_smtp_backend_through_aiosmtpd_and_the_sent_copy_in_dovecot(dovecot, smtp_sink, tmp_path):
    db = tmp_path / "omnidesk.db"
    dovecot.deliver("support", b"From: Jane <jane@example.com>\r\nTo: support@shop.test\r\nSubject: Parcel\r\n"
                               b"Message-ID: <p1@example.com>\r\n\r\nWhere is it?\r\n")
    options = dict(smtp_host="127.0.0.1", smtp_port=smtp_sink.port, smtp_security="plain", smtp_username="-")
    Engine(db, [build("support", dovecot.options("support", **options))]).run_once()
    store = Store(db)
    jane = store.find_customer("jane@example.com")
    reply_id = store.queue_reply(jane, LONG, "alice", html=HTML)
    Engine(db, [build("support", dovecot.options("support", **options))]).run_once()
    assert store.message(reply_id).state == "sent", store.message(reply_id).error
    got = smtp_sink.wait_for(1)[0]
    assert_intact(assert_valid(got.data))
    imap = dovecot.client("support")
    imap.select_folder("Sent", readonly=True)
    [uid] = imap.search(["ALL"])
    copy = imap.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
    imap.logout()
    assert_intact(assert_valid(copy))
    store.close()


@pytest.mark.parametrize("relay", ["msmtp", "demo"])
def test_sendmail_backend_delivers_long_lines_and_keeps_a_valid_sent_copy(tmp_path, smtp_sink, relay):
    if relay == "msmtp":
        require("msmtp", "msmtp")
        command = (f"msmtp --file=/dev/null --host=127.0.0.1 --port={smtp_sink.port} --auth=off --tls=off "
                   "--from=support@shop.test -t")
    else:
        command = f"{sys.executable} -m console.demo_sendmail 127.0.0.1:{smtp_sink.port}"
    root = tmp_path / "Mail"
    inbox = make_maildir(root / "INBOX")
    deliver(inbox, b"From: Jane <jane@example.com>\nTo: support@shop.test\nSubject: Parcel\n"
                   b"Message-ID: <p1@example.com>\n\nWhere is it?\n")
    conn = build("local", maildir_options(root, sendmail_command=command))
    db = tmp_path / "omnidesk.db"
    Engine(db, [conn]).run_once()
    store = Store(db)
    reply_id = store.queue_reply(store.find_customer("jane@example.com"), LONG, "alice", html=HTML)
    Engine(db, [conn]).run_once()
    assert store.message(reply_id).state == "sent", store.message(reply_id).error
    assert_intact(assert_valid(smtp_sink.wait_for(1)[0].data))
    [copy] = list((root / "Sent" / "cur").iterdir())
    assert_intact(assert_valid(copy.read_bytes(), b"\n"))  # a local file: LF, as Maildir readers expect
    store.close()


def test_a_long_non_ascii_file_name_and_subject_fold_within_the_limit(tmp_path):
    from store.models import Attachment

    path = tmp_path / "f.pdf"
    path.write_bytes(b"%PDF-1.4")
    name = "Rechnung für Größenänderung " * 12 + ".pdf"
    att = Attachment(id=1, message_id=1, filename=name, content_type="application/pdf", size=8, sha256="", path=str(path))
    out = OutboundMessage(outbox_id=1, message_id=1, channel="email", account="shop", to_address="jane@example.com",
                          text="Attached.", subject="Ihre Bestellung – " * 40, attachments=[att])
    msg, _ = compose(out, {"from_address": "support@shop.test"})
    sent = assert_valid(msg.as_bytes())
    [part] = list(sent.iter_attachments())
    assert part.get_filename() == name and sent["Subject"] == ("Ihre Bestellung – " * 40).strip()
