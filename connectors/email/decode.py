"""Turning what mail carries into clean text: header encodings, charsets
(declared, wrong, or missing), raw 8-bit header bytes, control characters,
addresses. None of these raise on bad input."""
from __future__ import annotations

import codecs
import email.header
import email.utils
import re
from email.message import Message

# Charset names seen in the wild that Python does not know.
_CHARSET_ALIASES = {"unknown-8bit": None, "x-unknown": None, "unknown": None, "x-user-defined": "latin-1",
                    "ks_c_5601-1987": "cp949", "iso-8859-8-i": "iso-8859-8", "x-mac-roman": "mac-roman",
                    "utf8": "utf-8", "ascii": "us-ascii", "gb2312": "gb18030", "gbk": "gb18030"}


_SURROGATE = re.compile("[\udc80-\udcff]")  # raw 8-bit bytes, surrogate-escaped by the parser


def has_8bit(value: str | None) -> bool:
    return bool(value) and _SURROGATE.search(value) is not None


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
    """RFC 2047 words, raw 8-bit bytes, unknown charsets: always a clean str."""
    if value is None:
        return ""
    value = str(value)
    if has_8bit(value):
        # undeclared 8-bit bytes (surrogate-escaped by the parser); an encoded
        # word's charset is the best hint for the raw bytes around it
        declared = re.search(r"=\?([^?\s]+)\?", value)
        value = decode_bytes(value.encode("ascii", "surrogateescape"), declared.group(1) if declared else hint)
    if "=?" in value:
        try:
            parts = email.header.decode_header(value)
            value = "".join(decode_bytes(p, c) if isinstance(p, bytes) else p for p, c in parts)
        except Exception:  # malformed encoded-words: keep the text as it came
            pass
    return clean_text(" ".join(value.split()))


def clean_text(text: str) -> str:
    """Drop NULs and C0/C1 controls except newline and tab; they can only harm."""
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", "", text)


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
