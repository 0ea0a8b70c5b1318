"""What the agent sees first about the open customer, above the timeline at any
width (80x24 included): their facts, compactly, and the topic of the case that
is open now, with where and when it started.

    order_number 5521 (Telegram 2h) · plan gold
    topic (e-mail 2h): Where is my teapot?

Facts and topics are customer text: drawn as plain Text (never markup), one
line each, cut to the width."""
from __future__ import annotations

import time
from typing import Callable

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from store.timefmt import format_age
from console.widgets.badges import CHANNEL_NAME
from console.widgets.safe_text import one_line
from store.models import Customer, Message


def open_topic(customer: Customer, messages: list[Message]) -> Message | None:
    """The customer's message that opened the case waiting now (else their latest).
    Mail written by machines (an out-of-office reply, a bounce) is never the topic."""
    inbound = [m for m in messages if m.direction == "in" and not m.deleted]
    human = [m for m in inbound if not (isinstance(m.meta, dict) and (m.meta.get("auto_reply") or m.meta.get("bounce")))]
    inbound = human or inbound
    if not inbound:
        return None
    if customer.waiting_since is not None and customer.status == "open":
        waiting = [m for m in inbound if m.sent_at >= customer.waiting_since]
        if waiting:
            return min(waiting, key=lambda m: (m.sent_at, m.id))
    return max(inbound, key=lambda m: (m.sent_at, m.id))


def topic_text(m: Message) -> str:
    meta = m.meta if isinstance(m.meta, dict) else {}
    words = m.subject if (m.subject and m.channel == "email") else (meta.get("new_text") or m.text or "")
    return one_line(words, 200)


def facts_line(customer: Customer, now: float) -> Text:
    muted = Style(dim=True)
    line = Text(end="")
    if not customer.facts:
        line.append("no facts yet · e adds one", muted)
        return line
    for n, (key, value) in enumerate(customer.facts.items()):
        if n:
            line.append(" · ", muted)
        line.append(one_line(key, 24) + " ", muted)
        line.append(one_line(value, 60), Style(bold=True))
        src = customer.fact_sources.get(key) or {}
        if src.get("channel"):
            age = f" {format_age(max(0.0, now - src['at']))}" if src.get("at") else ""
            line.append(f" ({CHANNEL_NAME.get(src['channel'], src['channel'])}{age})", muted)
    return line


class CaseHeader(Static):
    DEFAULT_CSS = """
    CaseHeader { height: auto; max-height: 2; padding: 0 1; background: $boost; }
    """

    def __init__(self, clock: Callable[[], float] = time.time, **kw):
        super().__init__("", **kw)
        self.clock = clock
        self.customer: Customer | None = None
        self.topic: Message | None = None

    def show_case(self, customer: Customer | None, messages: list[Message]) -> None:
        self.customer = customer
        self.topic = open_topic(customer, messages) if customer is not None else None
        self.display = customer is not None
        self.update(self._render_case())

    def _render_case(self) -> Text:
        c = self.customer
        if c is None:
            return Text("")
        now = self.clock()
        out = facts_line(c, now)
        out.no_wrap, out.overflow = True, "ellipsis"
        if self.topic is not None:
            m = self.topic
            where = f"{CHANNEL_NAME.get(m.channel, m.channel)} {format_age(max(0.0, now - m.sent_at))}"
            topic = Text(f"\ntopic ({where}): ", style=Style(dim=True), end="")
            topic.append(topic_text(m))
            out.append_text(topic)
        return out
