"""Slack mrkdwn (the parts we send) drawn as the customer's Slack shows it: *bold*,
_italic_, ~strike~, `code` and <url|links> styled, &amp; &lt; &gt; decoded, never the
wire format (the preview said "&amp;" where the customer reads "&")."""
from __future__ import annotations

import html
import re

from rich.style import Style
from rich.text import Text

from store.text import clean

_TOKEN = re.compile(
    r"```\n?(?P<block>.*?)\n?```"
    r"|`(?P<code>[^`\n]+)`"
    r"|<(?P<link>[^<>\n]+)>"
    r"|(?<!\w)\*(?P<bold>[^*\s](?:[^*\n]*?[^*\s])?)\*(?!\w)"
    r"|(?<!\w)_(?P<italic>[^_\s](?:[^_\n]*?[^_\s])?)_(?!\w)"
    r"|(?<!\w)~(?P<strike>[^~\s](?:[^~\n]*?[^~\s])?)~(?!\w)",
    re.S)
_STYLES = {"block": Style(color="cyan"), "code": Style(color="cyan"), "bold": Style(bold=True),
           "italic": Style(italic=True), "strike": Style(strike=True)}
_LINK = Style(underline=True, color="blue")


def _plain(text: str) -> str:
    return clean(html.unescape(text))  # Slack escapes only & < >; the customer reads them plain


def _link(inner: str) -> str:
    """What Slack shows for <...>: a link's label or address, a mention's name."""
    target, _, label = inner.partition("|")
    if label:
        return label
    if target[:1] in "@#":
        return target
    if target.startswith("!"):
        return "@" + target[1:]
    return target.removeprefix("mailto:")


def slack_text(mrkdwn: str) -> Text:
    """One Slack message as styled, safe text (marks applied, not shown)."""
    mrkdwn = re.sub(r"(?m)^> ?", "▌ ", mrkdwn)
    out = Text(end="")
    at = 0
    for m in _TOKEN.finditer(mrkdwn):
        out.append(_plain(mrkdwn[at:m.start()]))
        kind = m.lastgroup or ""
        if kind == "link":
            out.append(_plain(_link(m.group("link"))), _LINK)
        else:
            out.append(_plain(m.group(kind)), _STYLES.get(kind))
        at = m.end()
    out.append(_plain(mrkdwn[at:]))
    return out
