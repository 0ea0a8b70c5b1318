"""Customer text is untrusted: turn it into something safe to draw.

- Rich markup is never interpreted: everything becomes a `rich.text.Text`
  built from the plain string (never `Text.from_markup`, never a markup str).
- Terminal control sequences are removed: ANSI CSI (colours, cursor moves,
  screen clears), OSC (window titles, hyperlinks, clipboard writes), DCS/APC/PM/SOS
  strings, 8-bit C1 controls, other C0 controls, and bidi overrides that can
  make text read differently from what it is.
"""
from __future__ import annotations

import re

from rich.text import Text

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


def clean(value: object, *, single_line: bool = False, tab: int = 4) -> str:
    """The text with every terminal control sequence removed."""
    if value is None:
        return ""
    text = str(value)
    if "\x1b" in text or any("\x80" <= c <= "\x9f" for c in text):
        text = _OSC_LIKE.sub("", text)
        text = _CSI.sub("", text)
        text = _ESC_OTHER.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\t", " " * tab)
    text = _CONTROLS.sub("", text)
    if single_line:
        text = " ".join(text.split())
    return text


def safe(value: object, style: str = "", *, single_line: bool = False) -> Text:
    """A Rich Text of untrusted content: no markup, no escape sequences."""
    return Text(clean(value, single_line=single_line), style=style, no_wrap=single_line, end="")


def one_line(value: object, limit: int | None = None) -> str:
    text = clean(value, single_line=True)
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    return text
