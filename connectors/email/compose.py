"""Outbound reply -> a MIME message that threads in the customer's mail client.

Shared by the SMTP and the sendmail (Maildir) backends.
"""
from __future__ import annotations

import email.utils
import mimetypes
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from connectors.base import PermanentError
from connectors.email.addresses import parse_one
from connectors.email.parse import bare_id, id_list
from store.models import OutboundMessage
from store.outbox import base_subject, reply_subject

MAX_REFERENCES = 20  # RFC 5322 3.6.4: keep the root and the most recent ids


def from_address(options: dict) -> str:
    addr = options.get("from_address") or options.get("username") or ""
    if "@" not in addr:
        raise PermanentError("email: set from_address (the address replies come from)")
    return addr


def bodies(markdown: str) -> tuple[str, str | None]:
    """(plain, html) from the agent's Markdown."""
    try:
        from connectors.formatting import email_bodies
    except ImportError:  # formatting not available: plain text is always correct
        return markdown, None
    return email_bodies(markdown)


def threading_headers(out: OutboundMessage) -> tuple[str | None, list[str]]:
    """In-Reply-To and References (parent's references + the parent's id)."""
    parent = out.parent
    if parent is None:
        return None, []
    meta = parent.meta or {}
    parent_id = bare_id(meta.get("message_id")) or (
        parent.external_id if parent.external_id and not parent.external_id.startswith("sha256:") else None)
    refs = [bare_id(r) for r in meta.get("references", [])]
    refs = [r for r in refs if r]
    if not refs and parent.reply_to:
        refs = id_list(f"<{parent.reply_to}>")
    if parent_id:
        refs.append(parent_id)
    if len(refs) > MAX_REFERENCES:
        refs = refs[:1] + refs[-(MAX_REFERENCES - 1):]
    return parent_id, refs


def recipient(out: OutboundMessage) -> str:
    """The customer's address, or the Reply-To their message asked for."""
    parent = out.parent
    if parent is not None:
        reply_to = (parent.meta or {}).get("reply_to")
        if reply_to and "@" in reply_to:
            return reply_to
    return out.to_address


def compose(out: OutboundMessage, options: dict) -> tuple[EmailMessage, str]:
    """The MIME message and its bare Message-ID."""
    sender = from_address(options)
    to = recipient(out)
    if "@" not in to or any(c in to for c in "\r\n"):
        raise PermanentError(f"email: not a usable recipient address: {to!r}")
    msg = EmailMessage(policy=SMTP)
    msg["From"] = email.utils.formataddr((options.get("from_name") or "", sender))
    msg["To"] = to
    cc = [a for a in (out.meta or {}).get("cc") or [] if isinstance(a, str) and a.strip()]
    try:  # each entry one address, as typed: ann@example.com or "Doe, John" <john@example.com>
        cc = [str(parse_one(a)) for a in cc]
    except ValueError:
        raise PermanentError(f"email: not a usable Cc address in {cc!r}") from None
    if cc:  # the agent's copy-to (omnidesk reply --cc, the console's Cc); SMTP sends to To and Cc
        msg["Cc"] = ", ".join(cc)
    parent_subject = out.parent.subject if out.parent and out.parent.subject else ""
    subject = out.subject or parent_subject
    # their thread's subject gets one "Re:", however many AW:/SV:/Fwd: piled up; a subject of
    # our own (a survey's, when their mail had none) gets no "Re:" for a subject they never used
    if out.parent is not None and subject and (not out.subject or base_subject(out.subject) == base_subject(parent_subject)):
        subject = reply_subject(subject) or subject
    msg["Subject"] = " ".join((subject or "(no subject)").split())
    msg["Date"] = email.utils.formatdate(localtime=True)
    message_id = email.utils.make_msgid(domain=sender.rpartition("@")[2] or None)
    msg["Message-ID"] = message_id
    parent_id, refs = threading_headers(out)
    if parent_id:
        msg["In-Reply-To"] = f"<{parent_id}>"
    if refs:
        msg["References"] = " ".join(f"<{r}>" for r in refs)
    msg["Auto-Submitted"] = "no"  # a person wrote this, not an autoresponder
    plain, html = bodies(out.text)
    if out.html:
        html = out.html
    msg.set_content(plain)
    if html:
        msg.add_alternative(html, subtype="html")
    for att in out.attachments:
        if not att.path:
            raise PermanentError(f"attachment {att.filename!r} was over the size limit and is not kept")
        try:
            data = Path(att.path).read_bytes()
        except OSError as e:
            raise PermanentError(f"attachment {att.filename!r} cannot be read: {e.strerror}") from None
        ctype = att.content_type or mimetypes.guess_type(att.filename)[0] or "application/octet-stream"
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(data, maintype=maintype or "application", subtype=subtype or "octet-stream",
                           filename=att.filename)
    return msg, bare_id(message_id)
