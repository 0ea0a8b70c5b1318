"""Satisfaction: an optional question when a case is done, and its answer.

    [satisfaction]
    template = "closing"   # sent when a customer is set to done (the starter set has one)
    expires = "7d"         # an answer later than this is treated as a new message

The question goes out on the channel the customer used last, only when a
person answered them in that case (no survey after closing spam). Their next
inbound message, if it is only an answer, is recorded as a rating (1-5) and
the case stays done; anything else drops the question and is handled as a
normal message. Recognised answers:

    1 .. 5, "4/5", "5 stars"       -> that number
    👍 :+1: :thumbsup:              -> 5        👎 :-1: :thumbsdown: -> 1
    great excellent perfect awesome -> 5        good -> 4     ok okay -> 3
    bad poor -> 2                               terrible awful horrible -> 1
"""
from __future__ import annotations

import re
from typing import Any

from connectors import config as config_mod
from connectors.config import ConfigError
from connectors.desk.targets import parse_duration

KEYS = ("template", "expires")
WORDS = {"great": 5, "excellent": 5, "perfect": 5, "awesome": 5, "amazing": 5, "fantastic": 5, "very good": 5,
         "good": 4, "ok": 3, "okay": 3, "bad": 2, "poor": 2, "terrible": 1, "awful": 1, "horrible": 1, "very bad": 1}
THUMBS = {"👍": 5, ":+1:": 5, ":thumbsup:": 5, "👎": 1, ":-1:": 1, ":thumbsdown:": 1}
_POLITE = re.compile(r"\b(thanks|thank you|thx|ty|cheers)\b", re.I)
_NUMBER = re.compile(r"([1-5])(?:\s*(?:/\s*5|out of 5|stars?))?")
_SKIN = re.compile("[\U0001F3FB-\U0001F3FF\uFE0F]")


def validate(table: Any) -> None:
    if not isinstance(table, dict):
        raise ConfigError('[satisfaction]: expected a table like [satisfaction] template = "closing"')
    for key, value in table.items():
        if key not in KEYS:
            raise ConfigError(f"satisfaction.{key}: unknown key; expected one of {', '.join(KEYS)}")
    if "template" in table and (not isinstance(table["template"], str) or not table["template"]):
        raise ConfigError(f"satisfaction.template: expected a template name, got {table['template']!r}")
    if "expires" in table:
        parse_duration(table["expires"], "satisfaction.expires")


config_mod.FREEFORM["satisfaction"] = validate


def parse_answer(text: str | None) -> int | None:
    """A score 1-5 if the whole message is a rating, else None."""
    t = _POLITE.sub(" ", _SKIN.sub("", (text or "")[:80]).lower())
    t = " ".join(t.split()).strip(" !.,;")
    if not t or len(t) > 20:
        return None
    if t in THUMBS:
        return THUMBS[t]
    if _NUMBER.fullmatch(t):
        return int(_NUMBER.fullmatch(t).group(1))
    return WORDS.get(t)


class Satisfaction:
    def __init__(self, table: dict | None = None, config: config_mod.Config | None = None):
        table = table or {}
        validate(table)
        self.template = table.get("template")
        self.expires = parse_duration(table.get("expires", "7d"), "satisfaction.expires")
        self.config = config

    @classmethod
    def from_config(cls, config: config_mod.Config | None) -> "Satisfaction":
        return cls((config.extra.get("satisfaction") if config else None) or {}, config)

    def ask(self, store, customer_id: int, done_at: float) -> int | None:
        """Queue the question after a case was set to done; returns the reply's id."""
        if not self.template:
            return None
        if not store.had_agent_reply_since(customer_id, store.case_start(customer_id, before=done_at) or -1e18):
            return None
        from connectors.desk import templates

        customer = store.customer(customer_id)
        channel = customer.last_channel or (customer.channels[0] if customer.channels else None)
        if channel is None:
            return None
        agent = self.config.agent if self.config else "omnidesk"
        rendered = templates.render_for_customer(store, customer_id, self.template, channel, agent, config=self.config)
        message_id = store.queue_auto_reply(customer_id, rendered.source, "satisfaction", channel=channel,
                                            subject=rendered.subject)
        store.ask_survey(customer_id, channel, message_id)
        return message_id

    def take_answer(self, store, message) -> int | None:
        """If `message` answers a pending question, record it; returns the score.
        Any other message drops the question."""
        survey = store.pending_survey(message.customer_id)
        if survey is None:
            return None
        score = parse_answer(message.text)
        if score is None or message.sent_at < survey["asked_at"] - 60 or store.clock() > survey["asked_at"] + self.expires:
            store.drop_survey(message.customer_id)
            return None
        store.record_rating(message.customer_id, message.id, message.channel, score, (message.text or "")[:80])
        return score
