"""Turning what mail carries into clean text: header encodings, charsets
(declared, wrong, or missing), raw 8-bit header bytes, control characters,
addresses. None of these raise on bad input."""
from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import email.utils
import re
from email.message import Message

# Charset names seen in the wild that Python does not know.
_CHARSET_ALIASES = {"unknown-8bit": None, "x-unknown": None, "unknown": None, "x-user-defined": "latin-1",
                    "ks_c_5601-1987": "cp949", "iso-8859-8-i": "iso-8859-8", "x-mac-roman": "mac-roman",
                    "utf8": "utf-8", "ascii": "us-ascii", "gb2312": "gb18030", "gbk": "gb18030"}


_SURROGATE = re.compile("[\udc80-\udcff]")  # raw 8-bit bytes, surrogate-escaped by the parser


def has_8bit(value: str | None) -> bool:
    return bool(value) and not value.isascii() and _SURROGATE.search(value) is not None


def header(msg: Message, name: str) -> str | None:
    """The header's value as received: compat32's get() turns raw 8-bit
    headers into Header objects that have already lost the bytes."""
    lname = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == lname:
            return value if isinstance(value, str) else str(value)
    return None


def raw_headers(msg: Message) -> dict[str, str]:
    """Lower-cased name -> first value as received (see `header`), read once per message."""
    out: dict[str, str] = {}
    for key, value in msg.raw_items():
        out.setdefault(key.lower(), value if isinstance(value, str) else str(value))
    return out


def decode_header(value, hint: str | None = None) -> str:
    """RFC 2047 words, raw 8-bit bytes, unknown charsets: always a clean str,
    the way a mail client shows it (never a \\uXXXX or \\xNN escape)."""
    if value is None:
        return ""
    value = str(value)
    if has_8bit(value):
        # undeclared 8-bit bytes (surrogate-escaped by the parser); an encoded
        # word's charset is the best hint for the raw bytes around it
        declared = _ENCODED_WORD.search(value)
        data = value.encode("ascii", "surrogateescape")
        try:  # valid UTF-8 is UTF-8 (as mail clients read raw header bytes), whatever the body declares
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            value = decode_bytes(data, declared.group(1) if declared else hint)
    if "=?" in value:
        value = decode_words(value)
    return clean_text(" ".join(value.split()))


# charset (RFC 2231 language dropped), encoding, text; lenient: spaces inside Q text happen
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?]*)?\?([qQbB])\?(.*?)\?=")


def _word_bytes(encoding: str, text: str, charset: str) -> bytes:
    # raw 8-bit letters inside a word (it happens) are in the word's own charset
    data = text.encode(_codec(charset) or "utf-8", "replace") if not text.isascii() else text.encode("ascii")
    if encoding in "bB":
        data = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        try:
            return base64.b64decode(data + b"=" * (-len(data) % 4))
        except (binascii.Error, ValueError):
            return base64.b64decode(data[: len(data) // 4 * 4] or b"") if len(data) >= 4 else b""
    return quopri.decodestring(data.replace(b"_", b" "), header=True)


def decode_words(value: str) -> str:
    """RFC 2047 encoded-words inside any other text. Our own decoder, because the
    stdlib's turns the plain text next to an encoded word into `\\u2013`
    escapes. Adjacent words of one charset are joined as bytes before decoding
    (mailers split words inside a multi-byte character); whitespace between
    encoded words is dropped (RFC 2047 6.2); unknown or misspelt charsets are
    guessed from the bytes."""
    out: list[str] = []
    pending: list = []  # [charset, bytes] of the run of encoded words being read
    pos = 0

    def flush() -> None:
        if pending:
            out.append(decode_bytes(pending[1], pending[0]))
            pending.clear()

    for m in _ENCODED_WORD.finditer(value):
        between = value[pos:m.start()]
        if between and not (pending and not between.strip()):
            flush()
            out.append(between)
        charset, data = m.group(1), _word_bytes(m.group(2), m.group(3), m.group(1))
        if pending and _codec(pending[0]) == _codec(charset):
            pending[1] += data
        else:
            flush()
            pending[:] = [charset, data]
        pos = m.end()
    flush()
    out.append(value[pos:])
    return "".join(out)


_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ASCII_CONTROLS = bytes([*range(0x00, 0x09), 0x0b, 0x0c, *range(0x0e, 0x20), 0x7f])


def clean_text(text: str) -> str:
    """Drop NULs and C0/C1 controls except newline and tab; they can only harm."""
    if text.isascii():  # most text: bytes.translate is ~20x faster than the regex
        data = text.encode("ascii")
        kept = data.translate(None, _ASCII_CONTROLS)
        return text if len(kept) == len(data) else kept.decode("ascii")
    return _CONTROLS.sub("", text)


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    name = charset.strip().strip('"').lower()
    if name in _CHARSET_ALIASES:
        return _CHARSET_ALIASES[name]
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes in a declared (maybe wrong) or undeclared charset -> str."""
    return decode_guess(data, charset)[0]


SHORT = 48  # bytes; below this an undeclared charset is taken to be Windows-1252


def decode_guess(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """(text, the charset we had to guess or None when the declared one or UTF-8 worked)."""
    codec = _codec(charset)
    if codec:
        try:
            return data.decode(codec), None
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    if len(data) < SHORT:  # too little for a detector: it picks CJK for "caf\xe9"
        try:
            return data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            return data.decode("latin-1"), "latin-1"
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:200_000]).best()
        if best is not None:
            return data.decode(best.encoding, errors="replace"), best.encoding
    except Exception:  # a detector bug must not stop ingest
        pass
    return data.decode(codec or "latin-1", errors="replace"), None


_SIMPLE_ADDRESS = re.compile(r'\s*(?:"?([^"<>@]*?)"?\s*)?<([^<>\s@",;]+@[^<>\s@",;]+)>\s*|\s*([^<>\s@",;]+@[^<>\s@",;]+)\s*')


def parse_address(value: str) -> tuple[str, str]:
    """(display name, address); the common shapes without the (slow) general parser."""
    m = _SIMPLE_ADDRESS.fullmatch(value) if len(value) < 500 else None  # the regex is quadratic on hostile input
    if m:
        return (m.group(1) or "").strip(), m.group(2) or m.group(3)
    return email.utils.parseaddr(value)
