"""TLS is the default: implicit TLS and STARTTLS against a real Dovecot and aiosmtpd with a test CA."""
from __future__ import annotations

import email
import email.policy

import pytest

from connectors.base import PermanentError
from connectors.email import build
from store.models import OutboundMessage
from tests.support.dovecot import DOVECOT, Dovecot, require
from tests.support.smtp import SmtpSink

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tls_dovecot():
    require(DOVECOT, "dovecot-imapd")
    require("openssl", "openssl")
    server = Dovecot({"support": "tls-pw"}, tls=True)
    server.start()
    server.deliver("support", b"From: Jane <jane@example.com>\r\nMessage-ID: <tls1@example.com>\r\n"
                              b"Subject: over TLS\r\n\r\nhello\r\n")
    yield server
    server.cleanup()


def test_defaults_are_tls_on_standard_ports():
    from connectors.config import validate_table
    from connectors.email import OPTIONS

    options = validate_table("email.x", OPTIONS, {"imap_host": "imap.example.com", "username": "u"})
    assert options["imap_security"] == "tls" and options["smtp_security"] == "tls"


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_imap_over_tls_and_starttls(tls_dovecot, security):
    port = tls_dovecot.tls_port if security == "tls" else tls_dovecot.port
    options = tls_dovecot.options("support", imap_security=security, imap_port=port, ca_file=str(tls_dovecot.cert))
    conn = build("support", options)
    batch = conn.fetch({})
    conn.close()
    assert [i.external_id for i in batch.items] == ["tls1@example.com"]


def test_untrusted_certificate_is_a_permanent_error(tls_dovecot):
    options = tls_dovecot.options("support", imap_security="tls", imap_port=tls_dovecot.tls_port)
    with pytest.raises(PermanentError, match="certificate not trusted"):
        build("support", options).fetch({})


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_smtp_over_tls_and_starttls(tls_dovecot, security):
    sink = SmtpSink(tls=security, cert=tls_dovecot.cert, key=tls_dovecot.cert.with_name("key.pem"))
    sink.start()
    try:
        options = tls_dovecot.options("support", smtp_host="127.0.0.1", smtp_port=sink.port, smtp_security=security,
                                      smtp_username="-", ca_file=str(tls_dovecot.cert), sent_folder="")
        out = OutboundMessage(outbox_id=1, message_id=1, channel="email", account="support",
                              to_address="jane@example.com", text="Hello over TLS", subject="Hi")
        receipt = build("support", options).send(out)
        got = email.message_from_bytes(sink.wait_for(1)[0].data, policy=email.policy.default)
        assert got["Message-ID"] == f"<{receipt.external_id}>"
    finally:
        sink.stop()
