"""A fast path in front of the stdlib's MIME parser, for well-formed mail.

The stdlib feedparser walks every body line in Python: half of our parse time
on ordinary mail, most of it on mail with attachments. Here bodies are split
with bytes.find at the multipart boundaries, and header blocks are unfolded
with the same compat32 policy calls the feedparser makes, giving the same
compat32 `Message` tree. Anything
unusual (a missing close boundary, a header block the stdlib would flag, a
nested message/*, a digest, bare-CR line ends) returns None, and the caller
uses the stdlib parser on the whole message: broken mail is handled exactly
as the stdlib handles it. tests/test_email_parse.py checks both agree.
"""
from __future__ import annotations

import email
import email.utils
import re
from email.message import Message
from email.policy import compat32

MAX_DEPTH = 20
_BARE_CR = re.compile(rb"\r(?!\n)")
_FIELD = re.compile(r"[\041-\071\073-\176]+:")  # a header field name and its colon
_HEADER_FIELD = re.compile(r"([\041-\071\073-\176]+):([^\n]*\n(?:[ \t][^\n]*\n)*)")  # with its continuations
_PADDING = re.compile(rb"(--)?[ \t]*(\r\n|\n)?")  # after "--boundary": close mark, transport padding
_PARAM = re.compile(r';\s*([\w.-]+)\s*=\s*(?:"([^"\\]*)"|([^\s;"]+))')


def param(msg: Message, name: str, header: str = "content-type") -> str | None:
    """A header parameter (charset, boundary, filename) without the stdlib's
    general (slow) parameter parser; unusual shapes (RFC 2231 `*`, escapes,
    comments) still go to it."""
    value = msg.get(header)
    if value is None:
        return None
    value = str(value)
    if "*" in value or "\\" in value or "(" in value:
        found = msg.get_param(name, header=header)
        if isinstance(found, tuple):  # RFC 2231
            found = email.utils.collapse_rfc2231_value(found)
        return found if isinstance(found, str) else None
    for m in _PARAM.finditer(value):
        if m.group(1).lower() == name:
            return m.group(2) if m.group(2) is not None else m.group(3)
    return None


# Header damage that mail clients read through, mended before parsing (the raw
# bytes are kept as they came): a boundary with no ";" before it, a quoted
# boundary folded onto the next line, a mangled first header line.
_NO_SEMICOLON = re.compile(rb"(?im)^(content-type:[ \t]*multipart/[\w.+-]+)([ \t]*\r?\n[ \t]+)(boundary=)")
_FOLDED_BOUNDARY = re.compile(rb'(?i)(boundary="[^"\r\n]*)\r?\n[ \t]+([^"\r\n]*")')
_FIELD_BYTES = re.compile(rb"[\041-\071\073-\176]+:")


REPAIR_SCAN = 256 * 1024  # bytes looked at for damaged boundaries: header blocks come early; attachments are long


def _boundary_damage(raw: bytes) -> bool:
    """Is any `boundary=` not preceded by ";" or quoted across a line end? Found
    with bytes.find (a regex over megabytes of attachment took ~1 s)."""
    at, seen = raw.find(b"oundary=", 0, REPAIR_SCAN), 0
    while at > 0 and seen < 50:
        before = raw[max(0, at - 200):at - 1].rstrip()[-1:]
        if before != b";":
            return True
        value = raw[at + 8:at + 8 + 200]
        if value.startswith(b'"') and b"\n" in value[:value.find(b'"', 1) + 1 or 200]:
            return True
        at, seen = raw.find(b"oundary=", at + 8, REPAIR_SCAN), seen + 1
    return False


def repair(raw: bytes) -> bytes:
    if _boundary_damage(raw):
        raw = _NO_SEMICOLON.sub(rb"\1;\2\3", raw, count=20)
        raw = _FOLDED_BOUNDARY.sub(rb"\1 \2", raw, count=20)
    first_end = raw.find(b"\n")
    first = raw[:first_end]
    if first_end > 0 and not _FIELD_BYTES.match(first) and not first.startswith(b"From ") and first.strip():
        # not a header line: if real header lines follow, the first one was garbled in transit
        rest = raw[first_end + 1:]
        if _FIELD_BYTES.match(rest) and rest.find(b"\n\n") != 0:
            raw = rest
    return raw


def parse(raw: bytes) -> Message:
    raw = repair(raw)
    msg = None
    if not _BARE_CR.search(raw):  # bare CR line ends: leave them to the stdlib
        msg = _entity(raw, 0)
    return msg if msg is not None else email.message_from_bytes(raw, policy=compat32)


def _headers(raw: bytes) -> tuple[Message, bytes] | None:
    """(headers as a Message, body bytes) split at the first blank line, the way
    the stdlib's feedparser reads a header block; None where it would note a defect."""
    if raw.startswith((b"\n", b"\r\n")):
        return None  # no header block at all: rare, stdlib
    # the first blank line (LF or CRLF), found with bytes.find (a regex tries every byte)
    lf = raw.find(b"\n\n")
    crlf = raw.find(b"\n\r\n", 0, lf + 1 if lf >= 0 else len(raw))
    at = crlf if crlf >= 0 else lf  # the line end of the last header line
    if at < 0:
        return None
    body_start = at + (2 if raw[at + 1] == 10 else 3)
    text = raw[:at + 1].decode("ascii", "surrogateescape")  # every header line with its line end
    msg = Message(policy=compat32)
    pos = 0
    if text.startswith("From "):  # an mbox envelope line (a header name has no space)
        pos = text.find("\n") + 1
        msg.set_unixfrom(text[:pos].rstrip("\r\n"))
    while pos < len(text):
        m = _HEADER_FIELD.match(text, pos)
        if m is None:
            return None  # not a header line (or a continuation with nothing to continue): the stdlib's case
        # as compat32.header_source_parse: the name before the first colon; the value after it with
        # its continuation lines, leading blanks and the last line end removed
        msg.set_raw(m.group(1), m.group(2).lstrip(" \t").rstrip("\r\n"))
        pos = m.end()
    return msg, raw[body_start:]


def _entity(raw: bytes, depth: int) -> Message | None:
    split = _headers(raw)
    if split is None or depth > MAX_DEPTH:
        return None
    msg, body = split
    maintype, _, subtype = msg.get_content_type().partition("/")
    if maintype == "message":
        return None  # the stdlib parses the enclosed message into a sub-tree
    if maintype != "multipart":
        msg.set_payload(body.decode("ascii", "surrogateescape"))
        return msg
    if subtype == "digest":
        return None  # parts default to message/rfc822 there
    boundary = (param(msg, "boundary") or "").rstrip()
    if not boundary or str(msg.get("Content-Transfer-Encoding", "7bit")).lower() not in ("7bit", "8bit", "binary"):
        return None
    parts = _split(body, ("--" + boundary).encode("ascii", "surrogateescape"))
    if parts is None:
        return None
    children = []
    for part in parts:
        child = _entity(part, depth + 1)
        if child is None:
            return None
        children.append(child)
    msg.set_payload(children)
    return msg


def _split(body: bytes, delimiter: bytes) -> list[bytes] | None:
    """The parts between delimiter lines; None unless there is a close delimiter
    and every part is non-empty (the shapes the stdlib treats specially)."""
    parts: list[bytes] = []
    start = None  # where the current part begins
    pos = 0
    while True:
        at = body.find(delimiter, pos)
        if at < 0:
            return None  # no close delimiter
        pos = at + len(delimiter)
        if at and body[at - 1] != 10:  # not at a line start
            continue
        pad = _PADDING.match(body, pos)
        end = pad.end()
        if end < len(body) and not pad.group(2):  # more text on the delimiter line: not a delimiter
            continue
        if start is not None:
            # the line break before a delimiter belongs to the delimiter
            cut = at - 2 if body[at - 2:at] == b"\r\n" else at - 1
            if cut <= start:
                return None
            parts.append(body[start:cut])
        if pad.group(1):  # close delimiter
            return parts or None
        start = end
        pos = end
