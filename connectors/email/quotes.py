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
    """mail-parser-reply's header regex, and its signature rules as a per-line regex
    (its whole-text signature regex ends in `(.|\\s)*`, which costs ~0.1 ms a message)."""
    from mailparser_reply.parser import EmailMessage

    template = EmailMessage(text="", languages=list(LANGUAGES), keep_hyphen_lists=True)

    def words(key: str) -> str:
        return "|".join(filter(None, (template._get_language_regex(lang, key) for lang in template.languages)))

    quoted = r"(?:> ?)*"
    signature_line = re.compile(
        rf"^{quoted}(?:[-_]{{2}}$|(?:{words('sent_from')}) ?[\w.<>:// ]+$|(?:{words('signatures')}))",
        re.IGNORECASE)
    return template.HEADER_REGEX, signature_line


# Lines where a reply header can begin: "From: ..." style keys, "... wrote:", separators.
# The full (slow, many-language) header regex only runs on a few lines around them.
_KEY_LINE = re.compile(r"(?:> ?)*[* ]*[^\W\d][\w .'-]{0,30}?\s?:")
_OUTLOOK_RULE = re.compile(r" ?[_-]{32,}")
WINDOW = 8  # lines: the longest header block the patterns describe
MAX_TRIES = 200  # candidate lines examined per message
LONGEST_HEADER = 400  # characters; the library's patterns backtrack badly on long lines (hostile mail)


def _header_line(header_re, lines: list[str]) -> int | None:
    """Index of the first stripped line where a quoted-reply header starts."""
    tries = 0
    for i, line in enumerate(lines):
        if not line or len(line) > LONGEST_HEADER or not (
                line.endswith(":") or line.startswith(("-----", "_____", ">-----")) or _KEY_LINE.match(line)):
            continue
        tries += 1
        if tries > MAX_TRIES:  # a body of "key: value" lines (a web form, a log): not a reply
            return None
        lo = max(0, i - 1)  # "On <date>, <name>" may wrap before "wrote:"
        window = "\n".join(part[:LONGEST_HEADER] for part in lines[lo:i + WINDOW])
        m = header_re.search(window)
        if m:
            start = m.start() + len(m.group(0)) - len(m.group(0).lstrip("\n"))
            return lo + window.count("\n", 0, start)
    return None


def _signature_line(signature_re, lines: list[str]) -> int | None:
    """Index of the first stripped line (never the first one) that starts a signature."""
    for i in range(1, len(lines)):
        line = lines[i]
        if line and (signature_re.match(line) or (not lines[i - 1] and _OUTLOOK_RULE.match(line))):
            return i
    return None


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
    cut = _header_line(header_re, [line.strip() for line in lines])
    if cut is not None:
        if any(line.strip() for line in lines[:cut]):  # a header on top means bottom-posting: keep all
            lines = lines[:cut]
    lines = _drop_quote_blocks(lines)
    signature = ""
    cut = _signature_line(signature_re, [line.strip() for line in lines])
    if cut is not None:
        signature = "\n".join(lines[cut:]).strip()
        lines = lines[:cut]
    new_text = "\n".join(lines).strip()
    if not new_text:  # all quoted (a forward, a bare quote): show everything
        return Reply(text.strip())
    return Reply(new_text, signature)
