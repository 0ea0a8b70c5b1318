"""The handoff: where a customer moves on from one channel to another.

    channel_switches(messages) -> [Switch(id, channel, previous, gap)]
    Switch.describe() -> "now on e-mail, 2h after Telegram"

The timeline and `omnidesk show` mark the switch before the customer's first
message on the new channel; replies follow them there (the store answers on
the channel they used last)."""
from __future__ import annotations

from dataclasses import dataclass

from store.timefmt import format_age
from store.models import Message

NAMES = {"email": "e-mail", "telegram": "Telegram", "slack": "Slack"}


@dataclass
class Switch:
    """The customer went on to another channel: marked before their first message there."""
    id: int  # the message on the new channel
    channel: str
    previous: str
    gap: float  # seconds since their last message on `previous`

    def describe(self) -> str:
        gap = format_age(self.gap) if self.gap >= 60 else "moments"
        return (f"now on {NAMES.get(self.channel, self.channel)}, {gap} after "
                f"{NAMES.get(self.previous, self.previous)}")


def channel_switches(messages: list[Message]) -> list[Switch]:
    """Where the customer's own messages move from one channel to another
    (in time order, whatever the order given; our replies and notes do not count)."""
    out, last = [], None
    for m in sorted(messages, key=lambda m: (m.sent_at, m.id)):
        if m.direction != "in":
            continue
        if last is not None and m.channel != last.channel:
            out.append(Switch(m.id, m.channel, last.channel, max(0.0, m.sent_at - last.sent_at)))
        last = m
    return out
