"""Mail details a newcomer met (trial 1, finding 15): forwarded headers decoded,
the reply's text part as typed, its HTML keeping typed line breaks."""
from __future__ import annotations

import email
import email.policy
import shutil
import subprocess

from tests.conftest import CORPORA
from tests.support.cli import OMNIDESK
from tests.test_email_bounce_flow import deliver, desk, sent  # noqa: F401 - fixture


def test_a_forwarded_mail_with_a_mangled_header_block_shows_its_headers_decoded(tmp_path):
    """thirdparty/015: the shop mail was pasted with its header folding lost, so the
    Subject's second encoded word starts a line of its own."""
    inbox = tmp_path / "Mail"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    shutil.copy(CORPORA / "mime-edge" / "thirdparty" / "015.eml", inbox / "cur" / "1771018820.M1P1.host:2,S")
    db = tmp_path / "o.db"
    subprocess.run([str(OMNIDESK), "--db", str(db), "import", "maildir", str(inbox)], check=True, timeout=120,
                   capture_output=True)
    found = subprocess.run([str(OMNIDESK), "--db", str(db), "search", "Trainings-Plus"], check=True,
                           capture_output=True, text=True, timeout=60).stdout
    assert "Jonas Sterr" in found  # the forwarded subject is searchable, decoded
    from store import Store

    store = Store(db)
    [message] = store.timeline(store.find_customer("jsterr@proxforge.de"))
    store.close()
    assert "=?us-ascii" not in message.text
    assert ("Subject: [Ticket ID: 255909] Bestellung: Proxmox VE inkl. Trainings-Plus Rabatt (\n"
            "To: Vorname Nachname <user@mailserver.de>") in message.text
    assert message.meta["forwarded"][-1] == {
        "from": "Proxmox Server Solutions GmbH Sales and General Requests <sales@proxmox.com>",
        "subject": "[Ticket ID: 255909] Bestellung: Proxmox VE inkl. Trainings-Plus Rabatt (",
        "date": "Thu, 12 Feb 2026 13:21:03 +0100"}


TYPED = ("Hi Ann, our prices:\n- 1 kg: 49 EUR\n- 2 kg: 89 EUR\nShipping is free from 2 kg.\n\n"
         "> Do you ship to Austria?\nYes, we do.")


def test_the_text_part_is_what_the_agent_typed_and_html_keeps_its_line_breaks(desk):  # noqa: F811
    deliver(desk.inbox, f"From: Ann <ann@example.org>\nTo: support@shop.test\nSubject: Prices\n"
                        f"Message-ID: <p1@example.org>\nDate: {email.utils.formatdate()}\n\nHow much is the tea?\n")
    desk("sync", "--once")
    desk("reply", "ann@example.org", "-m", TYPED)
    desk("sync", "--once")
    msg = sent(desk.sink, 1)
    plain = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert plain.rstrip("\n") == TYPED  # no blank line added, nothing glued into the bullet or the quote
    html = msg.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert "<li>2 kg: 89 EUR</li>" in html and "<p>Shipping is free from 2 kg.</p>" in html
    assert "<p>Do you ship to Austria?</p>\n</blockquote>\n<p>Yes, we do.</p>" in html
