"""Turn the agent's Markdown into what each channel accepts.

One parser (markdown-it-py, raw HTML disabled so `<b>` typed by anyone is text)
and one small renderer per channel. Libraries considered and not used:
telegramify-markdown 1.x emits text + entities (we send HTML parse mode) through
a Rust parser; sulguk turns HTML into entities; slackify-markdown (checked: 0.2)
lets `<!channel>` through live and turns an escaped asterisk back into markup.
Only telegramify splits long messages, into entity payloads. Escaping is the
part that must be right, so we own it, with one splitter for every channel,
tested against the Bot API sandbox's parser.

Rendering goes through a flat list of atoms (open tag, close, text, break) so a
single splitter can cut at paragraph, then line, then word boundaries, closing
the open tags at the end of a part and reopening them at the start of the next:
every part is valid on its own.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Callable

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

TELEGRAM_LIMIT = 4096
SLACK_LIMIT = 4000

# breaks=True: an agent typing in a terminal means a newline when they press Enter.
_MD = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable("strikethrough")

PARAGRAPH, LINE, WORD = 3, 2, 1


# -- atoms ------------------------------------------------------------------
@dataclass(frozen=True)
class _Open:
    text: str
    close: str


@dataclass(frozen=True)
class _Close:
    pass


@dataclass(frozen=True)
class _Text:
    raw: str
    esc: Callable[[str], str]
    visible: bool = True  # False for line prefixes ("> ", indentation)
    piece_esc: Callable[[str], str] | None = None  # for pieces of a word cut in two, if not `esc`

    def out(self) -> str:
        return self.esc(self.raw)


@dataclass(frozen=True)
class _Break:
    level: int
    sep: str  # emitted when the message is not cut here; dropped when it is


# -- escaping -----------------------------------------------------------------
def _html_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _html_attr(s: str) -> str:
    return _html_text(s).replace('"', "&quot;")


def _same(s: str) -> str:
    return s


# Slack has no escape for its formatting characters, and a zero-width space does
# not stop its parser. Literal `*`, `~` and backticks become look-alikes; so does
# `_` where it could open or close italics (inside a word, snake_case, Slack does
# not format it). Bare addresses are sent as <url> links so they stay intact.
_SLACK_LOOKALIKE = {"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"}
_BARE_URL = re.compile(r"(?:https?://|mailto:)[\w\-.~:/?#\[\]@!$&'()*+,;=%]*(?:[^\W_]|[-/#=&%~+])")


def _slack_plain(s: str) -> str:
    out = []
    for i, c in enumerate(s):
        if c in _SLACK_LOOKALIKE:
            before = s[i - 1] if i else " "
            after = s[i + 1] if i + 1 < len(s) else " "
            if c != "_" or not (before.isalnum() and after.isalnum()):
                c = _SLACK_LOOKALIKE[c]
        out.append(c)
    return _html_text("".join(out))  # Slack wants exactly & < > escaped


def _slack_text(s: str) -> str:
    out, pos = [], 0
    for m in _BARE_URL.finditer(s):
        if m.start() < pos:
            continue
        url, end = m.group(0), m.end()
        if s[end:end + 1] == ")" and url.count("(") > url.count(")"):  # wiki/Foo_(bar)
            url, end = url + ")", end + 1
        out += [_slack_plain(s[pos:m.start()]), f"<{_html_text(url)}>"]
        pos = end
    out.append(_slack_plain(s[pos:]))
    return "".join(out)


# -- styles -------------------------------------------------------------------
@dataclass(frozen=True)
class _Style:
    escape: Callable[[str], str]
    code_escape: Callable[[str], str]
    strong: tuple[str, str]
    em: tuple[str, str]
    strike: tuple[str, str]
    code: tuple[str, str]
    pre: Callable[[str], tuple[str, str]]
    link: Callable[[str], tuple[str, str] | None]  # None: show text then the URL
    quote_tag: tuple[str, str] | None  # Telegram wraps; the others prefix lines
    quote_prefix: str
    bullet: str
    hr: str


_SAFE_SCHEMES = ("http://", "https://", "mailto:", "tg://", "tel:")


def _tg_link(href: str):
    return (f'<a href="{_html_attr(href)}">', "</a>") if href.lower().startswith(_SAFE_SCHEMES) else None


def _slack_link(href: str):
    if not href.lower().startswith(_SAFE_SCHEMES) or "|" in href:
        return None
    return (f"<{_html_text(href)}|", ">")


def _tg_pre(info: str):
    lang = re.sub(r"[^A-Za-z0-9_+-]", "", info.split()[0]) if info.strip() else ""
    return (f'<pre><code class="language-{lang}">', "</code></pre>") if lang else ("<pre>", "</pre>")


TELEGRAM = _Style(_html_text, _html_text, ("<b>", "</b>"), ("<i>", "</i>"), ("<s>", "</s>"),
                  ("<code>", "</code>"), _tg_pre, _tg_link, ("<blockquote>", "</blockquote>"), "",
                  "\u2022 ", "\u2014\u2014\u2014")
def _slack_autolink(s: str) -> str:
    return f"<{_html_text(s)}>"


def _slack_code(s: str) -> str:
    return _html_text(s.replace("`", "\u02cb"))  # a backtick would end the code span


SLACK = _Style(_slack_text, _slack_code, ("*", "*"), ("_", "_"), ("~", "~"), ("`", "`"),
               lambda info: ("```\n", "\n```"), _slack_link, None, "> ", "\u2022 ", "\u2014\u2014\u2014")
PLAIN = _Style(_same, _same, ("*", "*"), ("_", "_"), ("~", "~"), ("", ""),
               lambda info: ("", ""), lambda href: None, None, "> ", "- ", "----")


# -- tree -> atoms ----------------------------------------------------------------
class _Renderer:
    def __init__(self, style: _Style):
        self.s = style
        self.atoms: list = []
        self.prefix: list[str] = []  # quote prefixes and list indentation, outermost first
        self.quote_depth = 0
        self.in_link = False
        self.open_pairs: list[tuple[str, str]] = []

    def render(self, md: str) -> list:
        self.blocks(SyntaxTreeNode(_MD.parse(md)).children, PARAGRAPH)
        return self.atoms

    # line handling
    def newline(self, level: int) -> None:
        lead = "".join(self.prefix)
        sep = "\n" if level < PARAGRAPH else "\n" + lead.rstrip() + "\n"
        self.atoms.append(_Break(level, sep))
        if lead:
            self.atoms.append(_Text(lead, _same, visible=False))

    def words(self, text: str, esc: Callable[[str], str], keep_spaces: bool = False) -> None:
        if self.in_link and esc is _slack_text:  # no <url> inside the label of a <url|label>
            esc = _slack_plain
        if keep_spaces:  # code: spaces are content; a cut keeps them on the left
            pieces = re.findall(r"\S+\s*|\s+", text)
            for i, p in enumerate(pieces):
                if i:
                    self.atoms.append(_Break(WORD, ""))
                self.atoms.append(_Text(p, esc))
            return
        for i, w in enumerate(text.split(" ")):
            if i:
                self.atoms.append(_Break(WORD, " "))
            if w:
                self.atoms.append(_Text(w, esc))

    def wrap(self, pair: tuple[str, str], children) -> None:
        # a style already open is not reopened: a bold heading holding **x** would print "**x**" on Slack
        tag = bool(pair[0] or pair[1]) and pair not in self.open_pairs
        if tag:
            self.atoms.append(_Open(*pair))
            self.open_pairs.append(pair)
        self.inline(children)
        if tag:
            self.atoms.append(_Close())
            self.open_pairs.pop()

    # blocks
    def blocks(self, nodes, level: int) -> None:
        first = True
        for node in nodes:
            if not first:
                self.newline(level)
            first = False
            self.block(node, level)

    def block(self, node, level: int) -> None:
        t, s = node.type, self.s
        if t == "paragraph":
            self.inline(node.children[0].children)
        elif t == "heading":
            self.wrap(s.strong, node.children[0].children)
        elif t in ("bullet_list", "ordered_list"):
            start = int(node.attrs.get("start", 1) or 1)
            for i, item in enumerate(node.children):
                if i:
                    self.newline(LINE)
                marker = f"{start + i}. " if t == "ordered_list" else s.bullet
                self.atoms.append(_Text(marker, _same))
                self.prefix.append(" " * len(marker))
                self.blocks(item.children, LINE)
                self.prefix.pop()
        elif t == "blockquote":
            tag = s.quote_tag if self.quote_depth == 0 else None  # Telegram cannot nest quotes
            self.quote_depth += 1
            if tag:
                self.atoms.append(_Open(*tag))
            if s.quote_prefix:
                self.atoms.append(_Text(s.quote_prefix, _same, visible=False))
                self.prefix.append(s.quote_prefix)
            self.blocks(node.children, level)
            if s.quote_prefix:
                self.prefix.pop()
            if tag:
                self.atoms.append(_Close())
            self.quote_depth -= 1
        elif t in ("fence", "code_block"):
            pair = s.pre(node.info or "")
            plain = s is PLAIN
            if not plain:
                self.atoms.append(_Open(*pair))
            else:
                self.prefix.append("    ")
                self.atoms.append(_Text("    ", _same, visible=False))
            for i, line in enumerate(node.content.rstrip("\n").split("\n")):
                if i:
                    self.newline(LINE)
                self.words(line, s.code_escape, keep_spaces=True)
            if plain:
                self.prefix.pop()
            else:
                self.atoms.append(_Close())
        elif t == "hr":
            self.atoms.append(_Text(s.hr, _same))
        elif node.children:  # anything else: its text
            self.blocks(node.children, level)
        elif node.content:
            self.words(node.content, s.escape)

    # inline
    def inline(self, nodes) -> None:
        s = self.s
        for node in nodes:
            t = node.type
            if t == "text":
                self.words(node.content, s.escape)
            elif t in ("softbreak", "hardbreak"):
                self.newline(LINE)
            elif t == "strong":
                self.wrap(s.strong, node.children)
            elif t == "em":
                self.wrap(s.em, node.children)
            elif t == "s":
                self.wrap(s.strike, node.children)
            elif t == "code_inline":
                # Telegram: a link cannot contain a code entity, so code inside a link is plain text
                tagged = bool(s.code[0]) and not (self.in_link and s is TELEGRAM)
                if tagged:
                    self.atoms.append(_Open(*s.code))
                self.words(node.content, s.code_escape if tagged else s.escape, keep_spaces=True)
                if tagged:
                    self.atoms.append(_Close())
            elif t in ("link", "image"):
                href = node.attrs.get("href") or node.attrs.get("src") or ""
                label = "".join(c.content for c in node.walk() if c.type in ("text", "code_inline"))
                pair = None if self.in_link else s.link(href)  # a link inside a link is its text
                bare = label in (href, href.removeprefix("mailto:"))  # <https://...>, <jane@example.com>
                if pair and label == href and s is SLACK:  # Slack shows <url> as is
                    # one atom: only a URL longer than a whole message is cut, as plain text
                    self.atoms.append(_Text(href, _slack_autolink, piece_esc=_html_text))
                elif pair and label:
                    self.in_link = True
                    self.wrap(pair, node.children)
                    self.in_link = False
                elif self.in_link:
                    self.inline(node.children)
                else:  # unsafe scheme, plain text, or no label: show the address itself
                    if label and not bare:
                        self.inline(node.children)
                        self.atoms.append(_Break(WORD, " "))
                        self.words(f"<{href}>" if s is PLAIN else f"({href})", s.escape)
                    else:
                        self.words(label or href, s.escape)
            elif node.children:
                self.inline(node.children)
            elif node.content:
                self.words(node.content, s.escape)


# -- atoms -> parts -------------------------------------------------------------
def _utf16(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def _safe_cut(raw: str, n: int) -> int:
    """Step back so a cut does not separate a combining mark, ZWJ or variation selector."""
    while 0 < n < len(raw) and (unicodedata.combining(raw[n]) or raw[n] in "\u200d\ufe0f\ufe0e"
                                 or raw[n - 1] == "\u200d"):
        n -= 1
    return n


def _pack(atoms: list, limit: int, measure: Callable[[str], int]) -> list[str]:
    """Fill parts of at most `limit` (closing tags included). When the next atom
    does not fit, cut at the last paragraph break of the part, else the last line
    break, else the last space, else inside the word; then start the next part
    with the line prefix and the tags still open."""
    atoms = list(atoms)
    parts: list[str] = []
    stack: list[_Open] = []
    lead = ""  # the line prefix ("> ") a part cut mid-line repeats, before any reopened tag
    i = 0
    while i < len(atoms):
        while i < len(atoms) and isinstance(atoms[i], _Text) and not atoms[i].visible:
            lead += atoms[i].raw  # a line prefix goes before the reopened tags ("> _..." not "_> ...")
            i += 1
        start_stack = list(stack)
        out = [lead] + [o.text for o in stack]
        size = measure(lead) + sum(measure(o.text) for o in stack)
        closing = sum(measure(o.close) for o in stack)
        has_text = False
        cands: dict[int, tuple] = {}
        line_prefix = lead
        opened_at: list[int | None] = [None] * len(stack)  # atom index of each open tag (None: reopened)
        j = i
        cut = None  # (out_len, stack, resume_index, prefix to repeat)
        while j < len(atoms):
            a = atoms[j]
            if isinstance(a, _Break):
                if has_text:
                    cands[a.level] = (len(out), list(stack), j + 1, "" if a.level > WORD else line_prefix)
                piece, d_close = a.sep, 0
            elif isinstance(a, _Open):
                piece, d_close = a.text, measure(a.close)
            elif isinstance(a, _Close):
                piece, d_close = stack[-1].close, -measure(stack[-1].close)
            else:
                piece, d_close = a.out(), 0
            if size + measure(piece) + closing + d_close <= limit:
                if isinstance(a, _Open):
                    stack.append(a)
                    opened_at.append(j)
                elif isinstance(a, _Close):
                    stack.pop()
                    opened_at.pop()
                elif isinstance(a, _Text) and a.visible and a.raw.strip():
                    has_text = True
                elif isinstance(a, _Text) and not a.visible:
                    line_prefix += a.raw
                if isinstance(a, _Break) and a.level > WORD:
                    line_prefix = ""
                out.append(piece)
                size += measure(piece)
                closing += d_close
                j += 1
                continue
            if isinstance(a, _Break) and not has_text:  # a separator at the start of a part: drop it
                j += 1
                continue
            if cands:
                cut = cands[max(cands)]
            elif isinstance(a, _Text) and a.raw:
                room = limit - size - closing
                esc = a.piece_esc or a.esc
                lo, hi = 0, len(a.raw)  # longest prefix whose escaped form fits
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    lo, hi = (mid, hi) if measure(esc(a.raw[:mid])) <= room else (lo, mid - 1)
                n = _safe_cut(a.raw, lo) or (0 if has_text else lo)
                if n:
                    out.append(esc(a.raw[:n]))
                    atoms[j] = _Text(a.raw[n:], esc, a.visible)
                    has_text = has_text or bool(a.raw[:n].strip())
                    cut = (len(out), list(stack), j, line_prefix)
                elif has_text or j > i:  # (a part of only empty tags is dropped below)
                    cut = (len(out), list(stack), j, line_prefix)
            elif has_text or j > i:
                cut = (len(out), list(stack), j, line_prefix)
            break
        if cut is None and j < len(atoms):
            # Stuck: tags (a link with a huge URL, nested quotes) leave no room for text.
            # Drop the innermost one and send that stretch unformatted rather than not at all.
            mine = [k for k in opened_at if k is not None and atoms[k].text]
            if isinstance(atoms[j], _Open) and atoms[j].text:
                atoms[j] = _Open("", "")
            elif mine:
                atoms[mine[-1]] = _Open("", "")
            elif any(o.text for o in start_stack):
                k = max(n for n, o in enumerate(start_stack) if o.text)
                start_stack[k] = _Open("", "")
            else:
                raise ValueError(f"message cannot be split into parts of {limit} characters")
            stack = start_stack
            continue
        if cut is None:  # reached the end
            cut = (len(out), list(stack), len(atoms), "")
        n_out, stack, i, repeat = cut
        lead = repeat if repeat.strip() else ""
        text = "".join(out[:n_out]) + "".join(o.close for o in reversed(stack))
        if text.strip() and has_text:
            parts.append(text.strip("\n"))
    return parts


_LIST_OR_QUOTE = re.compile(r"^ {0,3}(?:>|[-+*](?:[ \t]|$)|\d{1,9}[.)](?:[ \t]|$))")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def _typed_breaks(md: str) -> str:
    """The agent's line breaks kept as breaks: a line typed right under a list item
    or a quote, without indentation, is not glued into that item or quote (CommonMark's
    "lazy continuation"): a blank line goes between, so it starts its own paragraph."""
    out, fence, inside = [], "", False
    for line in md.split("\n"):
        mark = _FENCE.match(line)
        if fence:
            fence = "" if mark and mark.group(1)[0] == fence[0] and len(mark.group(1)) >= len(fence) else fence
        elif mark:
            fence, inside = mark.group(1), False
        elif not line.strip():
            inside = False
        elif _LIST_OR_QUOTE.match(line):
            inside = True
        elif inside and not line[:1].isspace():
            out.append("")
            inside = False
        out.append(line)
    return "\n".join(out)


def _render(md: str, style: _Style) -> list:
    return _Renderer(style).render(_typed_breaks(md or ""))


# -- public API -------------------------------------------------------------------
def plain_text(md: str) -> str:
    """Readable plain text: links as `text <url>`, lists with `- `, code indented."""
    lines = [line.rstrip() for line in "".join(_pack(_render(md, PLAIN), 10**12, len)).split("\n")]
    # "-- " (with its space) is the e-mail signature separator mail clients look for
    return "\n".join("-- " if line == "--" else line for line in lines).strip("\n")


_LINE_PREFIX = re.compile(r"^([ \t]*(?:>[ \t]?)*(?:[-+*][ \t]+|\d{1,9}[.)][ \t]+|#{1,6}[ \t]+)?)(.*)$")


def typed_text(md: str) -> str:
    """The e-mail's text/plain: line for line what the agent typed (lists, quotes,
    blank lines and indentation as they are), with only the inline marks made plain
    as in `plain_text` (**a** -> *a*, [t](url) -> t <url>, \\* -> *); code as typed."""
    out, fence = [], ""
    for line in (md or "").replace("\r\n", "\n").split("\n"):
        mark = _FENCE.match(line)
        if fence or mark:
            if fence and mark and mark.group(1)[0] == fence[0] and len(mark.group(1)) >= len(fence):
                fence = ""
            elif not fence and mark:
                fence = mark.group(1)
            out.append(line.rstrip())
            continue
        prefix_match = _LINE_PREFIX.match(line)
        prefix, rest = prefix_match.groups() if prefix_match else ("", line)
        if rest.strip() and prefix.strip(" \t") == "" and len(prefix.expandtabs(4)) >= 4:
            out.append(line.rstrip())  # indented code: as typed
            continue
        shown = plain_text(rest).replace("\n", " ") if rest.strip() else ""
        out.append((prefix + shown).rstrip() if shown.strip() != "--" else "-- ")
    return "\n".join(out).strip("\n")


def email_bodies(md: str) -> tuple[str, str]:
    """(text/plain, text/html) for one Markdown body. Raw HTML in `md` is escaped.
    The text part keeps the agent's lines as typed (`typed_text`); the HTML part
    keeps each typed line break a break."""
    html = _MD.render(_typed_breaks(md or ""))
    doc = ('<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>\n'
           f'<body>\n{html}</body></html>\n')
    return typed_text(md), doc


def telegram_parts(md: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Telegram HTML parse mode messages, each <= limit UTF-16 units of markup
    (so also within Telegram's limit on the parsed text)."""
    return _pack(_render(md, TELEGRAM), limit, _utf16)


def slack_parts(md: str, limit: int = SLACK_LIMIT) -> list[str]:
    """Slack mrkdwn messages, each <= limit characters."""
    return _pack(_render(md, SLACK), limit, len)


def parts_for(channel: str, md: str) -> list[str]:
    """The messages one Markdown body becomes on `channel` (e-mail: one plain body)."""
    if channel == "telegram":
        return telegram_parts(md)
    if channel == "slack":
        return slack_parts(md)
    return [typed_text(md)]
