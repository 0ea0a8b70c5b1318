"""Large attachments go to disk while a mail is parsed, never whole into memory.

A mail with a 60 MB attachment carries 81 MB of base64; parsed as is, the
text, its bytes and the decoded file all sit in memory at once (596 MB peak
measured). Here every base64 body over SPOOL_MIN is decoded in chunks straight
into a file next to the attachment store, and the parser sees the mail with
that body replaced by a short marker; the attachment then points at the file
(AttachmentIn.path), which the store hashes and moves into place. The stored
raw source is the original mail, byte for byte.
"""
from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import replace
from pathlib import Path

from connectors.email.parse import parse, raw_id
from store.models import InboundMessage

SPOOL_MIN = 1 << 20  # bytes of base64: smaller bodies are parsed in memory as usual
CHUNK = 4 << 20  # base64 bytes decoded at a time (a multiple of 4 after whitespace goes)
_B64_PART = re.compile(rb"^content-transfer-encoding:[ \t]*\"?base64\"?[ \t]*\r?$", re.I | re.M)
_TEXT_BODY = re.compile(rb"^content-type:[ \t]*text/", re.I | re.M)
_BLANK = re.compile(rb"\r?\n\r?\n")
_MARK = b"omnidesk-spooled:"


def _decode_into(body: memoryview, out) -> int:
    """Decode base64 `body` (with line breaks) into the file `out`; bytes written."""
    written, carry = 0, b""
    for at in range(0, len(body), CHUNK):
        data = carry + bytes(body[at:at + CHUNK]).translate(None, b" \t\r\n")
        cut = len(data) - len(data) % 4
        carry = data[cut:]
        try:
            piece = base64.b64decode(data[:cut])
        except (binascii.Error, ValueError):
            piece = base64.b64decode(data[:cut], validate=False) if cut else b""
        written += out.write(piece)
    if carry.strip(b"="):
        try:
            written += out.write(base64.b64decode(carry + b"=" * (-len(carry) % 4)))
        except (binascii.Error, ValueError):
            pass
    return written


def extract(raw: bytes, spool_dir: Path) -> tuple[bytes, dict[bytes, tuple[str, int]]]:
    """(the mail with each large base64 body replaced by a marker, marker -> (file, size))."""
    if len(raw) < SPOOL_MIN:
        return raw, {}
    view = memoryview(raw)
    pieces: list[bytes | memoryview] = []
    spooled: dict[bytes, tuple[str, int]] = {}
    pos = 0
    for m in _B64_PART.finditer(raw):
        if m.start() < pos:
            continue
        blank = _BLANK.search(raw, m.end())
        if blank is None:
            break
        start = blank.end()
        end = raw.find(b"\n--", start)  # base64 has no "-": the next boundary line ends the body
        end = len(raw) if end < 0 else end + 1
        if end - start < SPOOL_MIN:
            continue
        head = raw[max(0, raw.rfind(b"\n--", 0, m.start())):start]
        if _TEXT_BODY.search(head) and b"attachment" not in head.lower():
            continue  # a (huge) text body: the parser needs it
        token = _MARK + secrets.token_hex(12).encode()
        path = spool_dir / f"{token[len(_MARK):].decode()}.part"
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            size = _decode_into(view[start:end], out)
        spooled[token] = (str(path), size)
        pieces += [view[pos:start], base64.b64encode(token) + b"\r\n"]
        pos = end
    if not spooled:
        return raw, {}
    pieces.append(view[pos:])
    return b"".join(pieces), spooled


def parse_spooled(raw: bytes, account: str, spool_dir: Path, **kw) -> InboundMessage:
    """parse(), with large attachments decoded to files under `spool_dir` on the way.
    Never raises (as parse); spooled files of an unreadable mail are removed."""
    try:
        skeleton, spooled = extract(raw, spool_dir)
    except OSError:
        skeleton, spooled = raw, {}
    item = parse(skeleton, account, **kw)
    if skeleton is raw:
        return item
    left = dict(spooled)
    atts = []
    for att in item.attachments:
        found = left.pop(att.data, None) if isinstance(att.data, bytes) and att.data.startswith(_MARK) else None
        atts.append(replace(att, data=None, path=found[0], size=found[1]) if found else att)
    for path, _ in left.values():  # not an attachment after all (a broken mail): nothing points at it
        Path(path).unlink(missing_ok=True)
    own = raw_id(skeleton)
    item.attachments = atts
    item.raw = raw  # the original, byte for byte
    if item.external_id == own:  # no Message-ID: the id is the hash of the real bytes
        item.external_id = raw_id(raw)
        item.thread_key = item.external_id if item.thread_key == own else item.thread_key
    return item
