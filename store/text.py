"""Customer text is untrusted: the one sanitizer for text bound for a terminal.

Removed: ANSI CSI (colours, cursor moves, screen clears), OSC (window titles,
hyperlinks, clipboard writes), DCS/APC/PM/SOS strings, 8-bit C1 controls, other
C0 controls, and bidi overrides that can make text read differently from what
it is. Used by the console's widgets (console/widgets/safe_text.py adds the
Rich side), the CLI's tables, hook logs and template values.
"""
from __future__ import annotations

import re

# ESC-introduced sequences (7-bit) and their 8-bit C1 twins.
_OSC_LIKE = re.compile(
    r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])"  # OSC, DCS, SOS, PM, APC
    r".*?"
    r"(?:\x07|\x1b\\|\x9c|$)",  # ended by BEL or ST (or the end of the text)
    re.DOTALL,
)
_CSI = re.compile(r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?")
_ESC_OTHER = re.compile(r"\x1b[\x20-\x2f]*[\x30-\x7e]?")
# Remaining controls: C0 except \t and \n, DEL, C1; bidi embeddings/overrides/isolates.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def clean(value: object, *, single_line: bool = False, tab: int | None = 4) -> str:
    """The text with every terminal control sequence removed; CR/CRLF become LF,
    tabs `tab` spaces (None keeps them), and `single_line` folds all white space."""
    if value is None:
        return ""
    text = str(value)
    if "\x1b" in text or any("\x80" <= c <= "\x9f" for c in text):
        text = _OSC_LIKE.sub("", text)
        text = _CSI.sub("", text)
        text = _ESC_OTHER.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if tab is not None:
        text = text.replace("\t", " " * tab)
    text = _CONTROLS.sub("", text)
    if single_line:
        text = " ".join(text.split())
    return text


def plural(n: int, word: str, words: str | None = None) -> str:
    """A count with its noun: "1 message", "2 messages", "1,204 replies" (`words` for an irregular plural)."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def article(word: str) -> str:
    """The word with "a" or "an": "an assign", "a merge", "an undo"."""
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def one_line(value: object, limit: int | None = None) -> str:
    """One line of untrusted text, at most `limit` characters (an ellipsis marks the cut)."""
    text = clean(value, single_line=True)
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    return text


def utf8_problem(where: str, e: UnicodeDecodeError) -> str:
    """A decoding error in words that find the spot: "config.toml: not valid
    UTF-8 at byte 41 (0xff)"."""
    return f"{where}: not valid UTF-8 at byte {e.start} (0x{e.object[e.start]:02x})"
