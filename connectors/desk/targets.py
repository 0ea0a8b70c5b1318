"""Waiting-time targets per channel, and what happens when one is missed.

    [targets]
    chat = "15m"        # Telegram and Slack, unless set on their own
    email = "4h"
    telegram = "10m"    # optional, overrides chat
    raise_priority = 1  # how much a breach raises the customer's priority (0: not at all)

A breach is recorded once per wait (store.record_breach): the priority goes
up, a 'breach' event is logged (the console and `omnidesk events` show it) and
the `target_breached` hooks run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, TYPE_CHECKING

from connectors.schema import ConfigError
from store import timefmt
from store.terms import CHANNELS, Channel

if TYPE_CHECKING:
    from connectors.config import Config
from store import StoreError

CHAT = (Channel.TELEGRAM.value, Channel.SLACK.value)  # what the "chat" key sets
CHANNEL_KEYS = ("chat", *CHANNELS)


def parse_duration(value: Any, where: str) -> float:
    """A config duration ("15m", "4h", "1h30m", "2d", "90s") -> seconds; ConfigError names `where`."""
    try:
        return timefmt.parse_duration(value)
    except timefmt.WhenError as e:
        raise ConfigError(f"{where}: {e}") from None


def validate(table: Any) -> None:
    if not isinstance(table, dict):
        raise ConfigError("[targets]: expected a table like [targets] chat = \"15m\"")
    for key, value in table.items():
        if key == "raise_priority":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"targets.raise_priority: expected a whole number 0 or more, got {value!r}")
        elif key in CHANNEL_KEYS:
            parse_duration(value, f"targets.{key}")
        else:
            raise ConfigError(f"targets.{key}: unknown key; expected one of "
                              f"{', '.join(CHANNEL_KEYS + ('raise_priority',))}")




class Targets:
    """The configured targets; `for_channel` is what the queue shows against."""

    def __init__(self, table: dict | None = None):
        table = table or {}
        validate(table)
        self.raise_priority = table.get("raise_priority", 1)
        self.by_channel: dict[str, float] = {}
        for channel in ("email", *CHAT):
            value = table.get(channel) or (table.get("chat") if channel in CHAT else None)
            if value:
                self.by_channel[channel] = parse_duration(value, f"targets.{channel}")

    @classmethod
    def from_config(cls, config: Config | None) -> "Targets":
        return cls((config.extra.get("targets") if config else None) or {})

    def for_channel(self, channel: str | None) -> float | None:
        return self.by_channel.get(channel or "")

    def time_left(self, customer, now: float) -> float | None:
        """Seconds until the target (negative: overdue by that much), or None when
        the customer is not waiting or their channel has no target. Takes a
        Customer or a QueueRow."""
        target = self.for_channel(customer.last_channel)
        if target is None or customer.waiting_since is None or customer.status != "open":
            return None
        return customer.waiting_since + target - now

    def unbreached(self, store, limit: int = 1000) -> Iterator[tuple[str, float, int, float]]:
        """(channel, target, customer id, waiting since) of every wait past its
        channel's target that no breach was recorded for yet."""
        for channel, target in self.by_channel.items():
            for cid, since in store.unbreached_waits(channel, target, limit=limit):
                yield channel, target, cid, since

    def check(self, store) -> list[int]:
        """Record every wait that has just gone past its target; returns the
        breach event ids."""
        events = []
        for channel, target, cid, since in self.unbreached(store):
            event = store.record_breach(cid, since, channel, target, self.raise_priority)
            if event:
                events.append(event)
        return events


def target_for(channel: str | None, config: Config | None = None) -> float | None:
    """The waiting-time target for a channel in seconds (None: no target)."""
    return Targets.from_config(config).for_channel(channel)


def time_left(customer, now: float, config: Config | None = None) -> float | None:
    """For the queue: seconds left before the target, negative when overdue.
    (Rendering many rows? Build `Targets.from_config(config)` once and call its
    `time_left`.)"""
    return Targets.from_config(config).time_left(customer, now)


def describe_time_left(seconds: float | None) -> str:
    """"12m left", "1h05m over", "" (no target): short enough for a queue row."""
    if seconds is None:
        return ""
    s = int(abs(seconds))
    text = f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{max(1, s // 60)}m" if s >= 60 else f"{s}s"
    return f"{text} left" if seconds >= 0 else f"{text} over"


@dataclass(frozen=True)
class Breach:
    """A wait that went past its channel's target: who, since when (epoch
    seconds), on which channel (None when a recorded event did not say)."""
    customer_id: int
    waiting_since: float
    channel: str | None
    name: str


class BreachWatch:
    """Tells each missed target once: `look(store)` returns the breaches that
    are news since the last look. A wait counts whether the engine recorded it
    (a 'breach' event, maybe from another process) or nobody did yet (no engine
    running). What was already overdue at the first look is not news."""

    def __init__(self, targets: Targets):
        self.targets = targets
        self._seen: set[tuple[int, float]] = set()  # overdue waits already known
        self._after: int | None = None  # newest 'breach' event looked at; None: not looked yet

    def look(self, store, limit: int = 5000) -> list[Breach]:
        """The new breaches, oldest wait first. Raises StoreError (look again later)."""
        overdue = {(cid, since): channel for channel, _, cid, since in self.targets.unbreached(store, limit=limit)}
        if self._after is None:  # unbreached first: a breach recorded in between is not news
            newest = store.events(limit=1)
            self._seen, self._after = set(overdue), newest[0].id if newest else 0
            return []
        recorded = store.events(kind="breach", after_id=self._after, limit=500)
        found = dict(overdue)
        for e in recorded:
            if e.customer_id is not None and isinstance(e.data.get("waiting_since"), (int, float)):
                found.setdefault((e.customer_id, e.data["waiting_since"]), e.data.get("channel"))
        news = []
        for (cid, since), channel in found.items():
            if (cid, since) in self._seen:
                continue
            try:
                name = store.customer(cid).name or f"#{cid}"
            except StoreError:
                name = f"#{cid}"
            news.append(Breach(cid, since, channel, name))
        # what the engine records later comes back as an event: known by then
        self._seen = set(overdue)
        self._after = max([self._after, *(e.id for e in recorded)])
        return sorted(news, key=lambda b: b.waiting_since)
