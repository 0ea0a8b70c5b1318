"""New text versus quoted history and signature, for display.

mail-parser-reply knows the reply headers of many clients and languages
("On ... wrote:", Outlook's "From:/Sent:" block, "Sent from my iPhone"); its
regexes are compiled once and applied to a whitespace-stripped copy that has
the same lines as the original, so the new text keeps its own line layout.
On top of that, `>` quote blocks and the attribution line just above them are
dropped in any language, which also handles bottom-posting.
The full body always stays in the message's `text`; this only decides what
the console shows first.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "sv", "da", "pl", "cs")
SCAN_LIMIT = 64_000  # characters examined; the new text sits at the top
_QUOTED = re.compile(r"^\s*>")
# A wrapped attribution line: it names an address or a date ("2012-04-02", "02.04.2012 14:20").
_ATTRIBUTION_PART = re.compile(r"@|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{1,2}:\d{2}|[<,]\s*$")


@dataclass
class Reply:
    new_text: str
    signature: str = ""


@lru_cache(maxsize=1)
def _regexes():
    from mailparser_reply.parser import EmailMessage

    template = EmailMessage(text="", languages=list(LANGUAGES), keep_hyphen_lists=True)
    return template.HEADER_REGEX, template.SIGNATURE_REGEX


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos)


def _drop_quote_blocks(lines: list[str]) -> list[str]:
    """Remove `>` lines and the short attribution paragraph ending in ':' right above each block."""
    keep = [not _QUOTED.match(line) for line in lines]
    for i, line in enumerate(lines):
        if keep[i] or (i and not keep[i - 1]):
            continue
        # i starts a quote block: look upwards past blank lines for "... wrote:"
        j = i - 1
        while j >= 0 and keep[j] and not lines[j].strip():
            j -= 1
        if j >= 0 and keep[j] and lines[j].rstrip().endswith(":"):
            start = j
            while (start > 0 and j - start < 2 and keep[start - 1] and lines[start - 1].strip()
                   and _ATTRIBUTION_PART.search(lines[start - 1])):
                start -= 1
            for k in range(start, j + 1):
                keep[k] = False
    return [line for line, k in zip(lines, keep) if k]


def split_reply(text: str) -> Reply:
    """Never raises; on any surprise the whole text is the new text."""
    try:
        return _split(text or "")
    except Exception:
        return Reply((text or "").strip())


def _split(text: str) -> Reply:
    header_re, signature_re = _regexes()
    head = text[:SCAN_LIMIT].replace("\r\n", "\n")
    lines = head.split("\n")
    stripped = "\n".join(line.strip() for line in lines)
    m = header_re.search(stripped)
    if m:
        # the match may begin with the newline before the header line
        start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip("\n")))
        cut = _line_of(stripped, start)
        if any(line.strip() for line in lines[:cut]):  # a header on top means bottom-posting: keep all
            lines = lines[:cut]
    lines = _drop_quote_blocks(lines)
    signature = ""
    stripped = "\n".join(line.strip() for line in lines)
    s = signature_re.search(stripped)
    if s and s.start() > 0:
        cut = _line_of(stripped, s.start() + len(s.group(0)) - len(s.group(0).lstrip()))
        signature = "\n".join(lines[cut:]).strip()
        lines = lines[:cut]
    new_text = "\n".join(lines).strip()
    if not new_text:  # all quoted (a forward, a bare quote): show everything
        return Reply(text.strip())
    return Reply(new_text, signature)
