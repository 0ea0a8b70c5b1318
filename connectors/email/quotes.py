"""New text versus quoted history and signature, for display.

mail-parser-reply knows the reply headers of many clients and languages
("On ... wrote:", Outlook's "From:/Sent:" block, "Sent from my iPhone"); its
regexes are compiled once and applied to a whitespace-stripped copy that has
the same lines as the original, so the new text keeps its own line layout.
On top of that, `>` quote blocks and the attribution line just above them are
dropped in any language, which also handles bottom-posting.
The full body always stays in the message's `text`; this only decides what
the console shows first (`fold`). CRLF, CR and LF line ends fold alike.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "sv", "da", "pl", "cs")
SCAN_LIMIT = 64_000  # characters examined; the new text sits at the top
_QUOTED = re.compile(r"^\s*>")
_QUOTED_ANY = re.compile(r"^\s*>", re.M)
# A wrapped attribution line: it names an address or a date ("2012-04-02", "02.04.2012 14:20").
_ATTRIBUTION_PART = re.compile(r"@|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{1,2}:\d{2}|[<,]\s*$")
_LINE_END = re.compile(r"\r\n?")
SIGN_OFF_MAX = 40  # characters: "Thanks, Jane" is a sign-off, "Thanks, the parcel came today." is text


@dataclass
class Reply:
    new_text: str
    signature: str = ""


def normalize(text: str) -> str:
    """CRLF and lone CR line ends as LF: IMAP delivers CRLF, files usually LF."""
    return _LINE_END.sub("\n", text) if "\r" in text else text


@lru_cache(maxsize=1)
def _regexes():
    """mail-parser-reply's header patterns, split in two families: "On ... wrote:"
    lines and header blocks ("From: ... Sent: ...", "-----Original Message-----");
    its signature rules as a per-line regex (its whole-text signature regex ends
    in `(.|\\s)*`, which costs ~0.1 ms a message); and the key-line regex that
    spots where a header block can start. The library's own key lists ("From|Sent|To",
    "Von|Gesendet|An", ...) are read out of its patterns, so they stay in step."""
    from mailparser_reply.constants import GENERIC_MAIL_SEPARATOR
    from mailparser_reply.parser import EmailMessage

    template = EmailMessage(text="", languages=list(LANGUAGES), keep_hyphen_lists=True)

    def words(key: str) -> list[str]:
        return [w for w in (template._get_language_regex(lang, key) for lang in template.languages) if w]

    flags = re.MULTILINE | re.IGNORECASE
    wrote = re.compile("|".join(words("wrote_header")), flags)
    block = re.compile("|".join(words("from_header") + [f"({GENERIC_MAIL_SEPARATOR})"]), flags)
    quoted = r"(?:> ?)*"
    signature_line = re.compile(
        rf"^{quoted}(?:[-_]{{2}}$|(?:{'|'.join(words('sent_from'))}) ?[\w.<>:// ]+$|(?:{'|'.join(words('signatures'))})(?!\w))",
        re.IGNORECASE)
    keys = [m.group(1) for w in words("from_header") for m in [re.search(r"\[\* \]\*\(\?:(.*?)\):", w)] if m]
    key_line = re.compile(rf"{quoted}[* ]*(?:{'|'.join(keys)})\s?:|-+ ?original message|-+ ?oprindelig", re.IGNORECASE)
    _SENT_FROM_STARTS.update(w.lstrip("(?:")[:3].lower() for w in "|".join(words("sent_from")).split("|"))
    if all(w.startswith(_LINE_ANCHORED) for w in words("from_header") + [f"({GENERIC_MAIL_SEPARATOR})"]):
        block = _LineAnchored(block)
    return wrote, block, key_line, signature_line


# How each of the library's header-block patterns begins: at a line start (^), at a line
# end (\n), or (Danish) at "-----Oprindelig meddelelse-----" before a line end.
_LINE_START = "(?:(?:^|\\n|\\n(?:> ?)*)"
_LINE_ANCHORED = ("(^", "(" + _LINE_START + "[", "(" + _LINE_START + "?-----Oprindelig meddelelse-----\\n)?" + _LINE_START)
_DANISH_SEPARATOR = re.compile("-----Oprindelig meddelelse-----\n", re.IGNORECASE)


class _LineAnchored:
    """`search` for a pattern whose matches can only begin where _LINE_ANCHORED says:
    the same match as the pattern's own search (the leftmost), found by trying only
    those places. re.search tries every character, and the block pattern's eleven
    alternatives cost ~1 us a character: a third of quote separation on real mail."""

    def __init__(self, pattern: re.Pattern):
        self.pattern = pattern

    def search(self, text: str) -> re.Match | None:
        starts = [0]
        at = text.find("\n")
        while at >= 0:
            starts += (at, at + 1)
            at = text.find("\n", at + 1)
        if "-----" in text:
            starts = sorted({*starts, *(m.start() for m in _DANISH_SEPARATOR.finditer(text))})
        match = self.pattern.match
        for start in starts:
            m = match(text, start)
            if m:
                return m
        return None


# The verbs that end an attribution line in LANGUAGES ("On <date>, <name> wrote:"), lower case.
WROTE = ("wrote:", "schrieb", "a écrit", "escribió", "ha scritto", "schreef", "skrev", "nadesłał", "napisał", "napsal")
_OUTLOOK_RULE = re.compile(r" ?[_-]{32,}")
_SENT_FROM_STARTS: set[str] = set()  # "sen", "get", "ges", ...: how "Sent from my ..." lines begin
WINDOW = 8  # lines: the longest header block the patterns describe
MAX_TRIES = 200  # candidate lines examined per message
LONGEST_HEADER = 400  # characters; the library's patterns backtrack badly on long lines (hostile mail)


def _candidates(key_line, lines: list[str]) -> list[tuple[int, bool]]:
    """(line index, is an attribution verb) where a reply header may be: a line
    that starts like a header block, or one holding "wrote:" in some language.
    Cheap tests first (a word before an early colon, substring search in C), so
    the slow many-language patterns run on a handful of lines."""
    found: dict[int, bool] = {}
    for i, line in enumerate(lines):
        colon = line.find(":", 0, 48)
        if colon > 0:
            word = line[:colon].lstrip("> *\t").rstrip()
            if 0 < len(word) <= 24 and word.replace(" ", "").isalpha() and _key_line(key_line, line[:colon + 1]):
                found[i] = False
        elif line.startswith(("-----", ">-----", "> -----")) and key_line.match(line.lstrip("> ")):
            found[i] = False
    low = "\n".join(lines).lower()
    for w in WROTE:
        at, line_no, counted = low.find(w), 0, 0
        while at >= 0 and len(found) <= MAX_TRIES:
            line_no += low.count("\n", counted, at)  # the line `at` is on (lower() may change lengths)
            counted = at
            found.setdefault(line_no, True)
            at = low.find(w, at + 1)
    return sorted(found.items())


_KEY_LINES: dict[str, bool] = {}  # "> From:" -> does key_line match it (the same few heads recur in every mail)


def _key_line(key_line: re.Pattern, head: str) -> bool:
    """key_line.match on a line up to its first colon: the pattern (a word of ~70
    alternatives, case-insensitive, ~5 us a try) never looks past that colon."""
    hit = _KEY_LINES.get(head)
    if hit is None:
        if len(_KEY_LINES) >= 4096:
            _KEY_LINES.clear()
        hit = _KEY_LINES[head] = key_line.match(head) is not None
    return hit


def _header_line(regexes, lines: list[str]) -> int | None:
    """Index of the first stripped line where a quoted-reply header starts."""
    wrote, block, key_line, _ = regexes
    for tried, (i, verb) in enumerate(_candidates(key_line, lines)):
        if tried >= MAX_TRIES:  # a body of "key: value" lines (a web form, a log): not a reply
            return None
        if len(lines[i]) > LONGEST_HEADER:
            continue
        # "On <date>, <name>" may wrap before "wrote:", and "schrieb <name>" before its ":"
        lo, hi, pattern = (max(0, i - 2), i + 3, wrote) if verb else (max(0, i - 1), i + WINDOW, block)
        window = "\n".join(part[:LONGEST_HEADER] for part in lines[lo:hi])
        m = pattern.search(window)
        if m:
            start = m.start() + len(m.group(0)) - len(m.group(0).lstrip("\n"))
            return lo + window.count("\n", 0, start)
    return None


def _signature_line(signature_re, lines: list[str]) -> int | None:
    """Index of the first stripped line (never the first one) that starts a signature."""
    for i in range(1, len(lines)):
        line = lines[i]
        if not line:
            continue
        if not lines[i - 1] and _OUTLOOK_RULE.match(line):
            return i
        if len(line) > SIGN_OFF_MAX and line.lstrip("> ")[:3].lower() not in _SENT_FROM_STARTS:
            continue  # a long line is a signature only as "Sent from my ..." (cheap test first)
        m = signature_re.match(line)
        if m and (len(line) <= SIGN_OFF_MAX or m.end() == len(line)):
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
        return _split(normalize(text or ""))
    except Exception:
        return Reply(normalize(text or "").strip())


def _split(text: str) -> Reply:
    regexes = _regexes()
    lines = text[:SCAN_LIMIT].split("\n")
    stripped = [line.strip() for line in lines]
    cut = _header_line(regexes, stripped)
    if cut is not None and any(stripped[:cut]):  # a header on top means bottom-posting: keep all
        lines, stripped = lines[:cut], stripped[:cut]
    if ">" in text and _QUOTED_ANY.search(text):  # (the regex alone tries every character)
        lines = _drop_quote_blocks(lines)
        stripped = [line.strip() for line in lines]
    signature = ""
    cut = _signature_line(regexes[3], stripped)
    if cut is not None:
        signature = "\n".join(lines[cut:]).strip()
        lines = lines[:cut]
    new_text = "\n".join(lines).strip()
    if not new_text:  # all quoted (a forward, a bare quote): show everything
        return Reply(text.strip())
    return Reply(new_text, signature)


@dataclass
class Fold:
    """A message as the console shows it: `new` first, the rest folded.

    `signature` and `quoted` (the history) are what folding hides, each
    counted on its own; `interleaved` is set when the new text is not simply
    the top of the message (answers written between quotes): unfolded, the
    whole `text` is shown instead of new + signature + quoted."""
    new: str
    signature: str = ""
    quoted: str = ""
    text: str = ""
    interleaved: bool = False

    @property
    def folded(self) -> bool:
        return bool(self.signature or self.quoted or self.interleaved)

    def summary(self) -> str:
        """'signature and 12 quoted lines folded' (empty when nothing is folded)."""
        parts = []
        if self.signature:
            parts.append("signature")
        lines = self.quoted.count("\n") + 1 if self.quoted else 0
        if lines:
            parts.append(f"{lines} quoted line{'s' if lines != 1 else ''}")
        if not parts and self.interleaved:
            parts.append("quoted lines")
        return " and ".join(parts) + " folded" if parts else ""


def fold(text: str, new_text: str | None = None, signature: str | None = None) -> Fold:
    """Split `text` for display, from the parser's `new_text`/`signature` when
    stored (else computed now). Line ends are normalized first, so a CRLF
    message and its LF twin fold the same way."""
    text = normalize(text or "").strip("\n")
    if new_text is None:
        reply = split_reply(text)
        new_text, signature = reply.new_text, reply.signature
    new = normalize(new_text).strip()
    signature = normalize(signature or "").strip()
    body = text.strip()
    if not new or new == body:
        return Fold(text, text=text)
    if not body.startswith(new):
        return Fold(new, text=text, interleaved=True)
    rest = body[len(new):].strip("\n")
    sig = ""
    if signature and rest.lstrip().startswith(signature):
        sig = signature
        rest = rest.lstrip()[len(signature):].strip("\n")
    return Fold(new, sig, rest.strip("\n") if rest.strip() else "", text)
