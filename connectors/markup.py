"""Inbound chat markup made readable: the text the console shows and search
indexes, with nothing hidden and nothing left as codes.

Slack mrkdwn: `<https://x|label>` becomes `label (https://x)`, `<@U123>` the
person's name (through the caller's lookup), `<#C1|support>` `#support`,
`<!here>` `@here`, `<!subteam^S1|@team>` `@team`, `<!date^…|fallback>` the
fallback, `&amp;` `&`, and `:shortcodes:` emoji (the `emoji` library's alias
set is GitHub's, which Slack's standard set follows; skin tones and `flag-xx`
are Slack's own spellings; a workspace's custom emoji stay `:name:`). Bold,
italic and code marks (`*`, `_`, `` ` ``) are left as typed: they read fine.

Telegram: the text is plain already; entities only hide things. A `text_link`
hides its URL (shown after the text), a `text_mention` is a person without a
username (their name is the text) and a `blockquote` is someone else's words,
shown as `> ` lines so they are never read as the customer's.

Everything comes out as plain text: links become `label (url)`, which an agent's
reply quoting it sends back as a link again (the outbound renderers autolink
bare URLs).
"""
from __future__ import annotations

import html
import re
from typing import Callable, Iterable

import emoji

Lookup = Callable[[str], "str | None"]

_SLACK_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
_SHORTCODE = re.compile(r":([a-z0-9_+'-]+):(?::skin-tone-([2-6]):)?")
_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)
# Slack spellings the alias set lacks
_SLACK_ALIASES = {"simple_smile": "\U0001F642", "slightly_smiling_face": "\U0001F642",
                  "white_frowning_face": "\u2639\ufe0f", "thinking_face": "\U0001F914"}


def _shortcode(m: re.Match) -> str:
    name, tone = m.group(1), m.group(2)
    if name.startswith("flag-") and len(name) == 7 and name[5:].isalpha():  # :flag-de: -> regional indicators
        char = "".join(chr(0x1F1E6 + ord(c) - ord("a")) for c in name[5:])
    else:
        char = _SLACK_ALIASES.get(name) or emoji.emojize(f":{name}:", language="alias")
        if char == f":{name}:":
            return m.group(0)  # a custom emoji of the workspace: keep its name
    if tone:  # Slack's :skin-tone-2: .. :skin-tone-6: are the five Fitzpatrick modifiers
        char = char.replace("\ufe0f", "") + chr(0x1F3FB + int(tone) - 2)
    return char


def _emoji(text: str) -> str:
    """:shortcodes: to emoji outside code spans (Slack does not render them there)."""
    parts = _CODE.split(text)
    return "".join(p if i % 2 else _SHORTCODE.sub(_shortcode, p) for i, p in enumerate(parts))


def slack_text(text: str, user_name: Lookup | None = None, channel_name: Lookup | None = None) -> str:
    """Slack message text (mrkdwn) to readable plain text.

    `user_name(id)` and `channel_name(id)` name mentions that carry no label;
    None (or a lookup that returns None) leaves the id."""
    def link(m: re.Match) -> str:
        target, label = m.group(1), m.group(2)
        if target.startswith("@"):
            return "@" + (label or (user_name and user_name(target[1:])) or target[1:])
        if target.startswith("#"):
            return "#" + (label or (channel_name and channel_name(target[1:])) or target[1:])
        if target.startswith("!"):
            word = target[1:].split("^")[0]
            if word in ("here", "channel", "everyone"):
                return "@" + word
            if word == "subteam":
                return label or "@" + target.split("^", 1)[-1]
            return label or word  # !date^…|fallback and the like
        if target.startswith("mailto:"):
            return label or target[7:]
        if target.startswith("tel:"):
            return label or target[4:]
        return f"{label} ({target})" if label and label != target else target

    # links first (their labels and URLs keep any colons), then emoji in the rest
    pieces, pos = [], 0
    for m in _SLACK_LINK.finditer(text or ""):
        pieces.append(_emoji(html.unescape(text[pos:m.start()])))
        pieces.append(html.unescape(link(m)))
        pos = m.end()
    pieces.append(_emoji(html.unescape((text or "")[pos:])))
    return "".join(pieces)


def _utf16_index(text: str) -> list[int]:
    """Python index for each UTF-16 code unit offset (Telegram counts in UTF-16)."""
    index = []
    for i, c in enumerate(text):
        index.extend([i] * (2 if ord(c) > 0xFFFF else 1))
    index.append(len(text))
    return index


def telegram_text(text: str, entities: Iterable) -> str:
    """Telegram text or caption plus its entities to readable plain text.

    `entities` are Bot API MessageEntity objects (or dicts) with type, offset,
    length (UTF-16 units), url, user."""
    if not text:
        return ""
    at = _utf16_index(text)
    inserts: dict[int, list[str]] = {}
    quotes: list[tuple[int, int]] = []
    for e in entities or ():
        get = e.get if isinstance(e, dict) else lambda k, e=e: getattr(e, k, None)
        kind, start, end = get("type"), get("offset") or 0, (get("offset") or 0) + (get("length") or 0)
        if start >= len(at) or end >= len(at) + 1:
            continue
        a, b = at[start], at[min(end, len(at) - 1)]
        if kind == "text_link" and get("url"):
            shown = text[a:b].strip()
            if shown != get("url"):
                inserts.setdefault(b, []).append(f" ({get('url')})")
        elif kind in ("blockquote", "expandable_blockquote"):
            quotes.append((a, b))
    out: list[str] = []
    starts = []  # where text[i] begins in the output, after what is inserted before it
    for i, c in enumerate(text + "\0"):
        out.extend(inserts.get(i, ()))
        starts.append(sum(map(len, out)))
        out.append(c)
    plain = "".join(out)[:-1]
    for a, b in sorted(quotes, reverse=True):  # from the end, so earlier positions stay put
        start, end = starts[a], starts[b]  # a link's URL that ends the quote stays inside it
        body = plain[start:end].strip("\n")
        quoted = "\n".join("> " + line if line else ">" for line in body.split("\n"))
        before, after = plain[:start], plain[end:]
        before = before.rstrip(" ")
        if before and not before.endswith("\n"):
            before += "\n"
        if after and not after.startswith("\n"):
            after = "\n" + after
        plain = before + quoted + after
    return plain
