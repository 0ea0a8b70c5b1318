"""Telegram HTML (the parts we send) drawn as the customer's app shows it:
bold, italic, links and code styled, entities decoded, never the raw tags."""
from __future__ import annotations

from html.parser import HTMLParser

from rich.style import Style
from rich.text import Text

from store.text import clean

# Telegram's HTML subset (core.telegram.org/bots/api#html-style) and how each looks here
_STYLES = {"b": Style(bold=True), "strong": Style(bold=True), "i": Style(italic=True), "em": Style(italic=True),
           "u": Style(underline=True), "ins": Style(underline=True), "s": Style(strike=True),
           "strike": Style(strike=True), "del": Style(strike=True), "code": Style(color="cyan"),
           "pre": Style(color="cyan"), "tg-spoiler": Style(reverse=True), "a": Style(underline=True, color="blue"),
           "blockquote": Style(italic=True)}


class _Viewer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = Text(end="")
        self.open: list[tuple[str, Style]] = []

    def handle_starttag(self, tag, attrs) -> None:
        style = _STYLES.get(tag)
        if tag == "span" and ("class", "tg-spoiler") in attrs:
            style = _STYLES["tg-spoiler"]
        if tag == "blockquote":
            self.text.append("▌ ", Style(dim=True))
        self.open.append((tag, style or Style()))

    def handle_endtag(self, tag) -> None:
        for n in range(len(self.open) - 1, -1, -1):
            if self.open[n][0] == tag:
                del self.open[n:]
                break

    def handle_data(self, data) -> None:
        style = Style.combine(s for _, s in self.open) if self.open else None
        self.text.append(clean(data), style)


def telegram_text(html: str) -> Text:
    """One Telegram HTML message as styled, safe text (tags applied, not shown)."""
    viewer = _Viewer()
    viewer.feed(html)
    viewer.close()
    return viewer.text
