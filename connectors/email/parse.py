"""Raw RFC 5322 bytes -> InboundMessage.

Speed matters (mailboxes are years deep) and so does robustness (they are full
of broken mail). The structure is a compat32 Message tree (mime.py builds it
fast, the stdlib builds it for anything odd): compat32 is ~10x faster than
policy.default and does not raise on headers like `Message-Id: <>`. The few
fields a person reads (From, Subject, the body, attachment names) are then
decoded carefully (decode.py), and new text is told from quoted history
(quotes.py). Nothing in here may raise: a message we cannot understand is
still stored, raw, with a note.
"""
from __future__ import annotations

import binascii
import email
import email.utils
import hashlib
import mimetypes
import re
import time
from email.message import Message
from email.policy import compat32

from connectors.email import mime
from connectors.email.decode import (clean_text, decode_bytes, decode_guess, decode_header, has_8bit, header,
                                     raw_headers)
from connectors.email.html import html_to_text
from connectors.email.person import Person, from_form_body, person
from connectors.email.quotes import normalize, split_reply
from connectors.email.reports import machine_mail
from store.outbox import REPLY_PREFIX, base_subject
from store.models import AttachmentIn, InboundMessage, Sender
from store.terms import UNKNOWN_SENDER

CHANNEL = "email"
_MSGID = re.compile(r"<([^<>\s]*)>")
def bare_id(value: str | None) -> str | None:
    """`<abc@host>` -> `abc@host`; None for a missing or empty id (`<>`)."""
    if not value:
        return None
    value = str(value).strip()
    m = _MSGID.search(value)
    ident = m.group(1) if m else value.split()[0] if value.split() else ""
    ident = ident.strip()
    return ident[:512] or None


def id_list(value: str | None) -> list[str]:
    """All message ids in a References / In-Reply-To header, in order."""
    if not value:
        return []
    ids = [i for i in _MSGID.findall(str(value)) if i]
    if not ids:  # some mailers drop the angle brackets
        ids = [w.strip(",;") for w in str(value).split() if "@" in w]
    return [i[:512] for i in ids]


def raw_id(raw: bytes) -> str:
    """A stable external id for mail without a usable Message-ID."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:40]


def _part_text(part: Message, out: "_Body") -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if payload is None:
        payload = part.get_payload()
        if isinstance(payload, str):
            payload = payload.encode("ascii", "surrogateescape")
        else:
            return ""
    text, guessed = decode_guess(payload, (mime.param(part, "charset") or "").lower() or None)
    if guessed and not out.guessed:  # a guessed body charset also fits raw header bytes
        out.guessed = guessed
    return clean_text(text)


_UU_BLOCK = re.compile(r"^begin [0-7]{3,4} ([^\r\n]+)\r?\n(.*?)^end[ \t]*\r?$", re.M | re.S)


def _uudecode_files(text: str, out: "_Body") -> str:
    """Files uuencoded into a plain-text body (old Outlook, Usenet habits): taken
    out as attachments, as a mail client shows them."""
    def take(m: re.Match) -> str:
        data = bytearray()
        for line in m.group(2).splitlines():
            if not line.strip() or line.strip() == "`":
                continue
            try:
                data += binascii.a2b_uu(line)
            except binascii.Error:  # a sloppy encoder's overlong line: its declared length decides
                try:
                    data += binascii.a2b_uu(line[:((ord(line[0]) - 32) & 63) * 4 // 3 + 5])
                except (binascii.Error, IndexError):
                    return m.group(0)  # not uuencode after all: leave the text alone
        name = m.group(1).strip()
        out.attachments.append(AttachmentIn(name, mimetypes.guess_type(name)[0] or "application/octet-stream",
                                            bytes(data)))
        return ""
    return _UU_BLOCK.sub(take, text)


def _filename(part: Message, out: "_Body") -> str:
    try:
        name = part.get_filename()
        for hdr in ("Content-Disposition", "Content-Type"):
            raw = header(part, hdr)
            if has_8bit(raw):  # a raw 8-bit name: decode the bytes before reading the parameter
                tmp = Message()
                tmp[hdr] = decode_bytes(raw.encode("ascii", "surrogateescape"), out.hint())
                name = tmp.get_filename() or name
                break
    except Exception:
        name = None
    if isinstance(name, tuple):  # RFC 2231 that the parser could not decode
        name = name[2]
    name = decode_header(name, out.hint() if has_8bit(name) else None) if name else ""
    if not name:
        ext = mimetypes.guess_extension(part.get_content_type()) or ".bin"
        name = "attachment" + ext
    return name  # the store sanitizes before anything touches the disk


def _disposition(part: Message) -> str:
    return str(part.get("Content-Disposition") or "").split(";")[0].strip().lower()


def _is_attachment(part: Message, ctype: str) -> bool:
    disposition = _disposition(part)
    if disposition == "attachment":
        return True
    maintype = ctype.partition("/")[0]
    if maintype == "text":  # a text part is an attachment only when it carries a file name
        named = "name" in (str(part.get("Content-Disposition", "")) + str(part.get("Content-Type", ""))).lower()
        return named and bool(part.get_param("filename", header="content-disposition") or part.get_param("name"))
    return maintype != "multipart"


class _Body:
    def __init__(self, root: Message):
        self.root = root
        self.guessed: str | None = None
        self._declared: str | None | bool = False
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[AttachmentIn] = []
        self.forwarded: list[str] = []  # forwarded mails, as text blocks
        self.forwarded_meta: list[dict] = []
        self.notes: list[str] = []  # what the agent must be told (content that could not be read)

    def hint(self) -> str | None:
        """The best guess for raw 8-bit header bytes: the message's own declared
        charset, else what its body was detected as. Computed only when needed."""
        if self._declared is False:
            self._declared = _charset_hint(self.root)
        return self._declared or self.guessed


_ENCRYPTED = {"multipart/encrypted": "OpenPGP"}


def _walk(part: Message, out: _Body, depth: int = 0) -> None:
    if depth > 30:  # hostile nesting
        return
    ctype = part.get_content_type()
    if ctype in ("message/rfc822", "message/global"):  # compat32 calls these multipart
        _attach(part, "message/rfc822", out, depth)
        return
    if ctype in _ENCRYPTED or (ctype in ("application/pkcs7-mime", "application/x-pkcs7-mime")
                               and "signed" not in str(mime.param(part, "smime-type") or "")):
        # nothing here can read it; say so, rather than show an empty message
        out.notes.append(f"This message is encrypted ({_ENCRYPTED.get(ctype, 'S/MIME')}); its content cannot be"
                         " read here. The encrypted part is attached.")
    if part.is_multipart():
        children = part.get_payload()
        if not isinstance(children, list):
            return
        if ctype == "multipart/alternative":
            _alternative(children, out, depth)
            return
        for child in children:
            _walk(child, out, depth + 1)
        return
    if ctype == "message/rfc822" or _is_attachment(part, ctype):
        _attach(part, ctype, out, depth)
    elif ctype == "text/html":
        out.html.append(_part_text(part, out))
    else:
        text = _part_text(part, out)
        if "begin " in text:
            text = _uudecode_files(text, out)
        out.plain.append(text)


def _alternative(children: list, out: _Body, depth: int) -> None:
    """Prefer text/plain; keep the HTML version too (for the record)."""
    sub = _Body(out.root)
    for child in children:
        _walk(child, sub, depth + 1)
    if any(t.strip() for t in sub.plain):
        out.plain.extend(sub.plain)
        out.html.extend(sub.html)
    elif sub.html:
        out.html.extend(sub.html)
        out.plain.append(html_to_text("\n".join(sub.html)))
    out.attachments.extend(sub.attachments)
    out.forwarded.extend(sub.forwarded)
    out.forwarded_meta.extend(sub.forwarded_meta)
    out.notes.extend(sub.notes)
    out.guessed = out.guessed or sub.guessed


def _attach(part: Message, ctype: str, out: _Body, depth: int = 0) -> None:
    if ctype == "message/rfc822":
        _forwarded(part, out, depth)
        return
    try:
        data = part.get_payload(decode=True) or b""
    except Exception:
        data = b""
    name = _filename(part, out)
    if ctype == "application/ms-tnef" or name.lower() == "winmail.dat":
        if _tnef(data, name, out):
            return
    disposition = _disposition(part)
    inline = disposition == "inline" or (disposition != "attachment" and bool(part.get("Content-ID")))
    out.attachments.append(AttachmentIn(name, ctype, data, inline=inline))


FORWARD_MARK = "---------- Forwarded message ----------"
_HEADER_LINE = re.compile(rb"^([!-9;-~]+):[ \t]*(.*)$")


def _mend_headers(data: bytes) -> bytes | None:
    """A forwarded mail whose header block was pasted by hand or by a broken tool:
    folded lines that lost their indentation (a second `=?us-ascii?Q?...?=` line
    of a Subject), a blank line inside the block. The stdlib then sees no From or
    Subject and shows the rest as text, encoded words and all. Read leniently: a
    line that is not `Name: value` continues the header before it, and a blank
    line does not end the block while From and Subject are still to come. None
    when that finds no From or Subject in the first 2,000 lines either."""
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    fields: list[list[bytes]] = []
    i = 0
    while i < len(lines) and i < 2000:
        line = lines[i]
        if not line.strip():
            if not {b"from", b"subject"} <= {f[0].lower() for f in fields}:
                i += 1  # not the end of the block while From and Subject are still to come
                continue
            break
        found = _HEADER_LINE.match(line)
        if found and not line[:1].isspace():
            fields.append([found[1], found[2].strip()])
        elif fields:
            fields[-1][1] += b" " + line.strip()
        else:
            return None
        i += 1
    if not {b"from", b"subject"} & {name.lower() for name, _ in fields}:
        return None
    head = b"\n".join(name + b": " + value for name, value in fields)
    return head + b"\n\n" + b"\n".join(lines[i + 1:])


def _forwarded(part: Message, out: _Body, depth: int) -> None:
    """A message/rfc822 part (a forward, a digest entry, a returned mail): shown
    as a forwarded mail with its own From, Date and Subject, searchable, and
    kept whole as an .eml attachment. The files inside it are listed too."""
    inner = part.get_payload()
    inner = inner[0] if isinstance(inner, list) and inner else None
    cte = str(part.get("Content-Transfer-Encoding") or "").strip().lower()
    if cte in ("base64", "quoted-printable"):  # not allowed (RFC 2046 5.2.1), but sent: decode, then read
        try:
            encoded = part.get_payload(decode=False)
            if isinstance(encoded, list):  # the stdlib took the encoded text for headers
                encoded = encoded[0].as_string() if encoded else ""
            tmp = Message()
            tmp["Content-Transfer-Encoding"] = cte
            tmp.set_payload(encoded)
            inner = mime.parse(tmp.get_payload(decode=True) or b"")
        except Exception:  # noqa: BLE001 - keep what the stdlib made of it
            pass
    if not isinstance(inner, Message):
        out.attachments.append(AttachmentIn(_filename(part, out) or "forwarded.eml", "message/rfc822", b""))
        return
    try:
        data = inner.as_bytes()
    except Exception:  # an unserializable tree: keep what the part held
        data = str(inner).encode("utf-8", "surrogateescape")
    heads = raw_headers(inner)
    if not (heads.get("from") or heads.get("subject")):  # headers pasted with their folding lost
        mended = _mend_headers(data)
        if mended is not None:
            inner = mime.parse(mended)
            heads = raw_headers(inner)
    sub = _Body(inner)
    _walk(inner, sub, depth + 1)
    hint = sub.hint() if any(has_8bit(v) for v in heads.values()) else None
    subject = decode_header(heads.get("subject"), hint)
    lines = [FORWARD_MARK]
    for field in ("from", "date", "subject", "to"):
        value = decode_header(heads.get(field), hint)
        if value:
            lines.append(f"{field.capitalize()}: {value}")
    body = "\n\n".join(t.strip("\n") for t in sub.plain if t.strip())
    if not body and sub.html:
        body = html_to_text("\n".join(sub.html))
    text = "\n".join(lines) + ("\n\n" + body if body else "")
    out.forwarded.append(text)
    out.forwarded_meta.append({k: decode_header(heads.get(k), hint)[:300] for k in ("from", "subject", "date")
                               if heads.get(k)})
    out.forwarded.extend(sub.forwarded)
    out.forwarded_meta.extend(sub.forwarded_meta)
    out.notes.extend(sub.notes)
    name = part.get_filename() and _filename(part, out)  # the sender's name for it, if any
    if not name:
        name = (" ".join(subject.split())[:80] or "forwarded") + ".eml"
    out.attachments.append(AttachmentIn(name, "message/rfc822", data))
    out.attachments.extend(sub.attachments)


def _tnef(data: bytes, name: str, out: _Body) -> bool:
    """Outlook's winmail.dat (TNEF), opened with tnefparse: its body becomes
    text, its files attachments. False when nothing could be read (the caller
    keeps the file and the agent is told)."""
    try:
        import tnefparse

        tnef = tnefparse.TNEF(data)
        body = tnef.body
        files = [(a.long_filename() or a.name or "attachment.bin", a.data) for a in tnef.attachments]
        html = tnef.htmlbody
    except Exception:  # noqa: BLE001 - a broken TNEF blob must not stop the mail
        body, files, html = None, [], None
    codepage = getattr(locals().get("tnef"), "codepage", None) or "cp1252"
    text = ""
    if isinstance(body, bytes):
        text = decode_bytes(body.rstrip(b"\0"), codepage)
    elif isinstance(body, str):
        text = body
    if not text.strip() and html:
        text = html_to_text(decode_bytes(html, None) if isinstance(html, bytes) else html)
    text = clean_text(text).strip()
    if not text and not files:
        out.notes.append(f"The message content is in {name} (Outlook TNEF) and could not be read here;"
                         " the file is attached.")
        return False
    if text:
        out.plain.append(text)
    for fname, fdata in files:
        fname = fname.decode("utf-8", "replace") if isinstance(fname, bytes) else str(fname)
        ctype = mimetypes.guess_type(fname)[0] or "application/octet-stream"
        out.attachments.append(AttachmentIn(fname.strip("\0") or "attachment.bin", ctype, bytes(fdata or b"")))
    if not text:
        out.notes.append(f"{name} (Outlook TNEF) held no message text; its files are attached.")
    return True


def _date(msg: Message, heads: dict[str, str], fallback: float) -> float:
    candidates = [heads.get("date")]
    received = msg.get_all("Received") or []
    if received:
        candidates.append(str(received[0]).rpartition(";")[2])
    for value in candidates:
        if not value:
            continue
        try:
            parsed = email.utils.parsedate_to_datetime(str(value))
            ts = parsed.timestamp()
        except Exception:
            continue
        if 0 < ts < time.time() + 86400:  # far-future spam dates would jump the queue
            return ts
    return fallback


def _charset_hint(msg: Message) -> str | None:
    try:
        return next((c for c in msg.get_charsets() if c and c not in ("us-ascii", "utf-8")), None)
    except Exception:
        return None


def _sender(who: Person | None = None, heads: dict[str, str] | None = None, thread: str = "") -> Sender:
    if who is None:
        who = person(heads or {})
    if who.address:
        return Sender(CHANNEL, who.address, clean_text(who.name).strip(' "\''))
    return unknown_sender(thread)


def unknown_sender(thread: str) -> Sender:
    """A mail that names no usable address (no From, Sender, Reply-To or
    Return-Path): one customer per conversation (`thread`: its root id), so
    unrelated people never share a timeline. The .invalid domain keeps any
    reply from being sent until the agent adds their real address."""
    key = hashlib.sha256(thread.encode("utf-8", "replace")).hexdigest()[:12] if thread else "sender"
    return Sender(CHANNEL, f"unknown-{key}@invalid", UNKNOWN_SENDER)


def thread_key(own_id: str, references: list[str], in_reply_to: list[str], subject: str) -> str:
    """Root of the conversation: first References id, else In-Reply-To, else
    this message's own id. The subject is a last resort, used only for a
    'Re:' that lost its headers."""
    if references:
        return references[0]
    if in_reply_to:
        return in_reply_to[0]
    base = base_subject(subject).lower()
    if base and REPLY_PREFIX.match(subject or ""):
        return "subject:" + base
    return own_id


def warm() -> None:
    """Load now what parsing loads on first use (the HTML and charset libraries, the
    compiled quote patterns: ~0.15 s of CPU). Called before forking import workers,
    so each starts with them instead of loading them again."""
    import charset_normalizer  # noqa: F401
    import resiliparse.extract.html2text  # noqa: F401

    split_reply("")  # compiles the quote patterns


def parse(raw: bytes, account: str, *, fallback_time: float | None = None, meta: dict | None = None,
          own_address: str = "") -> InboundMessage:
    """Never raises. Unparsable mail comes back with `parse_error` set and the raw bytes kept."""
    fallback_time = fallback_time if fallback_time is not None else time.time()
    try:
        return _parse(raw, account, fallback_time, dict(meta or {}), own_address.lower())
    except Exception as e:  # the agent sees the note; the raw bytes are kept
        return InboundMessage(
            channel=CHANNEL, account=account, external_id=raw_id(raw),
            sender=unknown_sender(raw_id(raw)),
            text="[This message could not be read; its original source is kept.]",
            sent_at=fallback_time, raw=raw, parse_error=f"{type(e).__name__}: {e}"[:500], meta=dict(meta or {}),
        )


def _parse(raw: bytes, account: str, fallback_time: float, meta: dict, own_address: str = "") -> InboundMessage:
    msg = mime.parse(raw)
    heads = raw_headers(msg)
    problems = [type(d).__name__ for d in msg.defects]
    message_id = bare_id(heads.get("message-id"))
    own_id = message_id or raw_id(raw)
    references = id_list(heads.get("references"))
    in_reply_to = id_list(heads.get("in-reply-to"))
    body = _Body(msg)
    _walk(msg, body)
    hint = body.hint() if any(has_8bit(v) for v in heads.values()) else None
    subject = decode_header(heads.get("subject"), hint)
    own = "\n\n".join(normalize(t).strip("\n") for t in body.plain if t.strip())  # CRLF mail reads as LF mail
    html = "\n".join(body.html) or None
    if not own and html:
        own = html_to_text(html)
    reply = split_reply(own)
    # The customer's own words first; forwarded mails follow, whole (they are
    # what the customer wants read, not quoted history), and searchable.
    shown = normalize("\n\n".join(filter(None, [reply.new_text.strip("\n")] + body.forwarded + body.notes)))
    text = normalize("\n\n".join(filter(None, [own.strip("\n")] + body.forwarded + body.notes)))
    who = from_form_body(person(heads, hint, own_address), own)
    meta.update({
        "message_id": f"<{message_id}>" if message_id else None,
        "references": [f"<{r}>" for r in references[-50:]],  # enough to thread; bounded
        "new_text": shown,
    })
    if reply.signature:
        meta["signature"] = reply.signature
    if who.reply_to:
        meta["reply_to"] = who.reply_to  # where this mail asks replies to go
    if who.via:
        meta["via"] = who.via  # the relay (form mailer, list) that carried it
        if who.via_name:
            meta["via_name"] = who.via_name[:200]
    if who.on_behalf_of:
        meta["sender"] = who.on_behalf_of  # "sent on behalf of" From
    if body.forwarded_meta:
        meta["forwarded"] = body.forwarded_meta[:20]
    for hdr in ("To", "Cc"):
        value = decode_header(heads.get(hdr.lower()), hint)
        if value:
            meta[hdr.lower()] = value[:2000]
    # Facts triage rules want: out-of-office and other machine mail, list traffic, bounces
    auto = (heads.get("auto-submitted") or "").strip().lower()
    if (auto and auto != "no") or (heads.get("precedence") or "").strip().lower() in ("bulk", "junk", "list") \
            or "x-autoreply" in heads or "x-autorespond" in heads:
        meta["automatic"] = True
    if heads.get("list-id"):
        meta["list_id"] = decode_header(heads["list-id"])[:300]
    meta.update(machine_mail(msg, heads))
    if meta.get("bounce"):  # what the agent must read first: who did not get what, and why
        failed = ", ".join(meta["bounce"]["recipients"][:5]) or "a recipient"
        summary = f"Delivery failed to {failed}: {meta['bounce']['reason']}"
        text, meta["new_text"] = f"{summary}\n\n{text}", f"{summary}\n\n{meta['new_text']}"
    if not text and not body.attachments and problems:
        # nothing readable came out of a broken message
        return parse_failed(raw, account, fallback_time, meta, "no readable body: " + ", ".join(problems[:5]))
    thread = thread_key(own_id, references, in_reply_to, subject)
    return InboundMessage(
        channel=CHANNEL,
        account=account,
        external_id=own_id,
        sender=_sender(who, thread=thread),
        text=text,
        sent_at=_date(msg, heads, fallback_time),
        subject=subject or None,
        html=html,
        thread_key=thread,
        reply_to=(in_reply_to or references[-1:] or [None])[0],
        attachments=body.attachments,
        raw=raw,
        meta={k: v for k, v in meta.items() if v not in (None, "", [])},
    )


def parse_failed(raw: bytes, account: str, fallback_time: float, meta: dict, why: str) -> InboundMessage:
    msg = email.message_from_bytes(raw, policy=compat32)
    heads = raw_headers(msg)
    message_id = bare_id(heads.get("message-id"))
    return InboundMessage(
        channel=CHANNEL, account=account, external_id=message_id or raw_id(raw), sender=_sender(heads=heads, thread=message_id or raw_id(raw)),
        text="[This message could not be read; its original source is kept.]",
        sent_at=_date(msg, heads, fallback_time), subject=decode_header(heads.get("subject")) or None,
        thread_key=message_id or raw_id(raw), raw=raw, parse_error=why[:500],
        meta={k: v for k, v in meta.items() if v not in (None, "", [])},
    )
